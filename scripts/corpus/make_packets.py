#!/usr/bin/env python3
"""Write the corpus packet set: raw Ethernet frames for `prog run data_in`.

Usage: python3 scripts/corpus/make_packets.py [OUT_DIR]
       (default tests/corpus/packets; no dependencies; deterministic)

Every frame is built field by field with struct; IPv4 header checksums and
UDP/TCP/ICMP/ICMPv6 checksums are correct unless the frame's point is that
they are not. OUT_DIR/index.json lists the frames in the order every capture
and test uses them: {name, file, bytes, what}.

Addresses: sender 02:00:00:00:00:01 / 10.0.0.1 / fd00::1, receiver
02:00:00:00:00:02 / 10.0.0.2 / fd00::2; tunnel outer addresses 192.168.1.x /
fd01::x. The set covers what packet programs of real projects branch on:
L2 (ARP, 802.1Q, 802.1ad QinQ, unknown EtherType), L3 (IPv4 with and
without options, fragments, TTL 1, IPv6 with extension headers and
fragments), L4 (TCP flags, UDP, ICMP, ICMPv6 echo and neighbour discovery),
tunnels (GRE, IPIP, IPv4-in-IPv6, 6in4, VXLAN, GENEVE, GUE-like UDP) and
broken frames (truncated at each layer, bad lengths, bad versions, bad
checksums).
"""
import json
import os
import struct
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "corpus", "packets")

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
BCAST = b"\xff" * 6
P_IP, P_ARP, P_IPV6, P_8021Q, P_8021AD, P_LLDP = 0x0800, 0x0806, 0x86DD, 0x8100, 0x88A8, 0x88CC
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def a4(s: str) -> bytes:
    return bytes(int(x) for x in s.split("."))


def a6(s: str) -> bytes:
    head, _, tail = s.partition("::")
    h = [int(x, 16) for x in head.split(":") if x]
    t = [int(x, 16) for x in tail.split(":") if x]
    return struct.pack("!8H", *(h + [0] * (8 - len(h) - len(t)) + t))


def eth(proto, dst=MAC_B, src=MAC_A, vlans=()):
    """vlans: ((tpid, vid), ...) outermost first."""
    tags = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in vlans)
    return dst + src + tags + struct.pack("!H", proto)


def ipv4(src, dst, proto, payload, ttl=64, options=b"", frag=0x4000, ident=0x1234, tos=0,
         total=None, ihl=None, version=4, bad_csum=False):
    ihl = 5 + len(options) // 4 if ihl is None else ihl
    total = 20 + len(options) + len(payload) if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, tos, total, ident, frag, ttl, proto, 0,
                    a4(src), a4(dst)) + options
    c = csum(h) ^ (0xFFFF if bad_csum else 0)
    return h[:10] + struct.pack("!H", c) + h[12:] + payload


def ipv6(src, dst, nh, payload, hlim=64, plen=None):
    plen = len(payload) if plen is None else plen
    return struct.pack("!IHBB16s16s", 6 << 28, plen, nh, hlim, a6(src), a6(dst)) + payload


def l4_csum4(src, dst, proto, seg):
    return csum(a4(src) + a4(dst) + struct.pack("!BBH", 0, proto, len(seg)) + seg)


def l4_csum6(src, dst, proto, seg):
    return csum(a6(src) + a6(dst) + struct.pack("!IxxxB", len(seg), proto) + seg)


def udp(sport, dport, data, v6=None, v4=None):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    if v4:
        c = l4_csum4(v4[0], v4[1], 17, seg) or 0xFFFF
    elif v6:
        c = l4_csum6(v6[0], v6[1], 17, seg) or 0xFFFF
    else:
        c = 0  # no checksum (allowed for UDP over IPv4 tunnels)
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def tcp(sport, dport, flags, data=b"", seq=1000, ack=0, v4=None, v6=None, bad_csum=False, opts=b""):
    off = (20 + len(opts)) // 4
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 65535, 0, 0) + opts + data
    c = l4_csum4(v4[0], v4[1], 6, seg) if v4 else l4_csum6(v6[0], v6[1], 6, seg)
    c ^= 0xFFFF if bad_csum else 0
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def icmp4(typ, code, rest, data):
    m = struct.pack("!BBH", typ, code, 0) + rest + data
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]


def icmp6(src, dst, typ, code, body):
    m = struct.pack("!BBH", typ, code, 0) + body
    return m[:2] + struct.pack("!H", l4_csum6(src, dst, 58, m)) + m[4:]


S4, D4, S6, D6 = "10.0.0.1", "10.0.0.2", "fd00::1", "fd00::2"
PAY = bytes(range(32))


def udp4_frame(dport=53, sport=12345, data=PAY, src=S4, dst=D4, vlans=(), ttl=64, **kw):
    return eth(P_IP, vlans=vlans) + ipv4(src, dst, 17, udp(sport, dport, data, v4=(src, dst)), ttl=ttl, **kw)


def tcp4_frame(dport=80, flags=TCP_SYN, data=b"", src=S4, dst=D4, **kw):
    return eth(P_IP) + ipv4(src, dst, 6, tcp(40000, dport, flags, data, v4=(src, dst), **kw))


def inner_eth_udp4():
    return eth(P_IP, dst=bytes.fromhex("020000000004"), src=bytes.fromhex("020000000003")) + \
        ipv4("172.16.0.1", "172.16.0.2", 17, udp(1111, 2222, PAY, v4=("172.16.0.1", "172.16.0.2")))


def inner_ip4_tcp():
    return ipv4("172.16.0.1", "172.16.0.2", 6, tcp(1111, 80, TCP_SYN, v4=("172.16.0.1", "172.16.0.2")))


def arp(op, sha, spa, tha, tpa, dst):
    return eth(P_ARP, dst=dst) + struct.pack("!HHBBH6s4s6s4s", 1, P_IP, 6, 4, op, sha, a4(spa), tha, a4(tpa))


def frames():
    f = []

    def add(name, data, what):
        f.append((name, data, what))

    # --- IPv4
    add("ipv4_udp", udp4_frame(), "IPv4 UDP 10.0.0.1:12345 -> 10.0.0.2:53, 32 bytes of payload")
    add("ipv4_udp_dhcp", udp4_frame(dport=67, sport=68, src="0.0.0.0", dst="255.255.255.255"),
        "IPv4 UDP 68 -> 67 (DHCP client to broadcast)")
    add("ipv4_udp_big", udp4_frame(data=bytes(i & 0xFF for i in range(1400))), "IPv4 UDP, 1400-byte payload")
    add("ipv4_tcp_syn", tcp4_frame(), "IPv4 TCP SYN 40000 -> 80")
    add("ipv4_tcp_synack", tcp4_frame(flags=TCP_SYN | TCP_ACK, ack=1), "IPv4 TCP SYN+ACK")
    add("ipv4_tcp_data", tcp4_frame(dport=443, flags=TCP_PSH | TCP_ACK, data=PAY, ack=1),
        "IPv4 TCP PSH+ACK with 32 bytes of data -> 443")
    add("ipv4_tcp_rst", tcp4_frame(flags=TCP_RST), "IPv4 TCP RST")
    add("ipv4_tcp_fin", tcp4_frame(flags=TCP_FIN | TCP_ACK), "IPv4 TCP FIN+ACK")
    add("ipv4_tcp_mss", tcp4_frame(opts=struct.pack("!BBH", 2, 4, 1460) + b"\x01\x01\x04\x02"),
        "IPv4 TCP SYN with MSS and SACK-permitted options")
    add("ipv4_icmp_echo", eth(P_IP) + ipv4(S4, D4, 1, icmp4(8, 0, struct.pack("!HH", 1, 1), PAY)),
        "IPv4 ICMP echo request")
    add("ipv4_icmp_unreach",
        eth(P_IP) + ipv4(D4, S4, 1, icmp4(3, 4, struct.pack("!HH", 0, 1400),
                                          ipv4(S4, "10.0.0.9", 6, tcp(40000, 80, TCP_SYN, v4=(S4, "10.0.0.9")))[:28])),
        "IPv4 ICMP destination unreachable, fragmentation needed (MTU 1400), quoting a TCP header")
    add("ipv4_options", udp4_frame(options=b"\x94\x04\x00\x00"), "IPv4 UDP, IHL 6 (router alert option)")
    add("ipv4_options_max", udp4_frame(options=b"\x01" * 40), "IPv4 UDP, IHL 15 (40 bytes of NOP options)")
    add("ipv4_frag_first", udp4_frame(frag=0x2000, data=bytes(64)), "IPv4 UDP first fragment (MF, offset 0)")
    add("ipv4_frag_later", eth(P_IP) + ipv4(S4, D4, 17, bytes(40), frag=0x0008),
        "IPv4 later fragment (offset 64 bytes, no L4 header)")
    add("ipv4_ttl1", udp4_frame(ttl=1), "IPv4 UDP with TTL 1")
    add("ipv4_tos_ecn", udp4_frame(tos=0xB9), "IPv4 UDP, DSCP 46 (EF), ECN CE")
    add("ipv4_multicast", udp4_frame(dst="224.0.0.251", dport=5353, sport=5353), "IPv4 UDP multicast (mDNS)")
    add("ipv4_sctp", eth(P_IP) + ipv4(S4, D4, 132, bytes(28)), "IPv4, protocol 132 (SCTP): neither TCP nor UDP")

    # --- IPv6
    add("ipv6_udp", eth(P_IPV6) + ipv6(S6, D6, 17, udp(12345, 53, PAY, v6=(S6, D6))), "IPv6 UDP fd00::1 -> fd00::2:53")
    add("ipv6_tcp_syn", eth(P_IPV6) + ipv6(S6, D6, 6, tcp(40000, 80, TCP_SYN, v6=(S6, D6))), "IPv6 TCP SYN -> 80")
    add("ipv6_icmp_echo", eth(P_IPV6) + ipv6(S6, D6, 58, icmp6(S6, D6, 128, 0, struct.pack("!HH", 1, 1) + PAY)),
        "ICMPv6 echo request")
    ns_dst = "ff02::1:ff00:2"
    add("ipv6_icmp_ns",
        eth(P_IPV6, dst=bytes.fromhex("3333ff000002")) +
        ipv6(S6, ns_dst, 58, icmp6(S6, ns_dst, 135, 0, bytes(4) + a6(D6) + b"\x01\x01" + MAC_A), hlim=255),
        "ICMPv6 neighbour solicitation for fd00::2")
    hop = struct.pack("!BB", 17, 0) + b"\x05\x02\x00\x00\x01\x00"  # router alert + PadN
    add("ipv6_hopopts_udp", eth(P_IPV6) + ipv6(S6, D6, 0, hop + udp(12345, 53, PAY, v6=(S6, D6))),
        "IPv6 hop-by-hop options header, then UDP")
    fragh = struct.pack("!BBHI", 17, 0, 0x0001, 0xABCD)  # offset 0, M=1
    add("ipv6_frag_first", eth(P_IPV6) + ipv6(S6, D6, 44, fragh + udp(12345, 53, bytes(64), v6=(S6, D6))),
        "IPv6 fragment header (first fragment, M=1), then UDP")
    add("ipv6_hlim1", eth(P_IPV6) + ipv6(S6, D6, 17, udp(12345, 53, PAY, v6=(S6, D6)), hlim=1), "IPv6 UDP, hop limit 1")

    # --- L2
    add("arp_request", arp(1, MAC_A, S4, bytes(6), D4, BCAST), "ARP request who-has 10.0.0.2, broadcast")
    add("arp_reply", arp(2, MAC_B, D4, MAC_A, S4, MAC_A), "ARP reply 10.0.0.2 is-at 02:00:00:00:00:02")
    add("vlan_ipv4_udp", udp4_frame(vlans=((P_8021Q, 100),)), "802.1Q VLAN 100, IPv4 UDP")
    add("vlan_ipv6_tcp",
        eth(P_IPV6, vlans=((P_8021Q, 0x2000 | 200),)) + ipv6(S6, D6, 6, tcp(40000, 80, TCP_SYN, v6=(S6, D6))),
        "802.1Q VLAN 200 priority 1, IPv6 TCP SYN")
    add("qinq_ipv4_udp", udp4_frame(vlans=((P_8021AD, 10), (P_8021Q, 20))), "802.1ad QinQ, outer VLAN 10, inner 20, IPv4 UDP")
    add("qinq_8100_8100", udp4_frame(vlans=((P_8021Q, 10), (P_8021Q, 20))), "double 802.1Q tags (0x8100 twice), IPv4 UDP")
    add("lldp", eth(P_LLDP, dst=bytes.fromhex("0180c200000e")) + bytes.fromhex("020704" + "020000000001") +
        bytes.fromhex("04030502") + bytes.fromhex("06020078") + b"\0\0", "LLDP frame: an EtherType nobody parses")
    add("eth_broadcast_ipv4", eth(P_IP, dst=BCAST) + ipv4(S4, "10.0.0.255", 17, udp(137, 137, PAY, v4=(S4, "10.0.0.255"))),
        "IPv4 UDP to the broadcast MAC and subnet broadcast")

    # --- tunnels (outer 192.168.1.1 -> 192.168.1.2)
    o1, o2 = "192.168.1.1", "192.168.1.2"
    add("gre_ipv4", eth(P_IP) + ipv4(o1, o2, 47, struct.pack("!HH", 0, P_IP) + inner_ip4_tcp()),
        "GRE (no options) carrying IPv4 TCP")
    add("gre_key_eth",
        eth(P_IP) + ipv4(o1, o2, 47, struct.pack("!HHI", 0x2000, 0x6558, 42) + inner_eth_udp4()),
        "GRE with key 42 carrying Ethernet (transparent bridging), inner IPv4 UDP")
    add("ipip", eth(P_IP) + ipv4(o1, o2, 4, inner_ip4_tcp()), "IPIP: IPv4 in IPv4, inner TCP SYN")
    add("ip6ip", eth(P_IPV6) + ipv6("fd01::1", "fd01::2", 4, inner_ip4_tcp()), "IPv4 in IPv6 (next header 4)")
    add("ip6ip6",
        eth(P_IPV6) + ipv6("fd01::1", "fd01::2", 41, ipv6(S6, D6, 17, udp(12345, 53, PAY, v6=(S6, D6)))),
        "IPv6 in IPv6 (next header 41)")
    add("sit_6in4", eth(P_IP) + ipv4(o1, o2, 41, ipv6(S6, D6, 17, udp(12345, 53, PAY, v6=(S6, D6)))),
        "6in4 (SIT): IPv6 UDP in IPv4")
    vx = struct.pack("!BxxxI", 0x08, 1234 << 8)
    add("vxlan", eth(P_IP) + ipv4(o1, o2, 17, udp(54321, 4789, vx + inner_eth_udp4())), "VXLAN VNI 1234 (UDP 4789), inner Ethernet IPv4 UDP")
    gn = struct.pack("!BBHI", 0, 0, 0x6558, 77 << 8)
    add("geneve", eth(P_IP) + ipv4(o1, o2, 17, udp(54321, 6081, gn + inner_eth_udp4())), "GENEVE VNI 77 (UDP 6081), inner Ethernet IPv4 UDP")
    add("gue_ipv4", eth(P_IP) + ipv4(o1, o2, 17, udp(54321, 9886, inner_ip4_tcp())),
        "UDP 9886 carrying a bare IPv4 packet (GUE variant 1, as Katran encapsulates)")

    # --- truncated and malformed
    full = udp4_frame()
    add("short_10", full[:10], "10 bytes: shorter than an Ethernet header")
    add("eth_only", full[:14], "Ethernet header only (IPv4 EtherType, no IP header)")
    add("ipv4_trunc_hdr", full[:24], "IPv4 header cut after 10 bytes")
    add("ipv4_trunc_l4", full[:38], "IPv4 header complete, UDP header cut after 4 bytes")
    tcpf = tcp4_frame()
    add("ipv4_trunc_tcp", tcpf[:44], "IPv4 TCP, TCP header cut after 10 bytes")
    v6f = eth(P_IPV6) + ipv6(S6, D6, 17, udp(12345, 53, PAY, v6=(S6, D6)))
    add("ipv6_trunc_hdr", v6f[:34], "IPv6 header cut after 20 bytes")
    add("vlan_trunc", udp4_frame(vlans=((P_8021Q, 100),))[:16], "802.1Q tag cut in the middle")
    add("ipv4_ihl_small", udp4_frame(ihl=3), "IPv4 with IHL 3 (less than the 5-word minimum)")
    add("ipv4_ihl_past_end", full[:14] + ipv4(S4, D4, 17, b"", ihl=15)[:20] + bytes(8),
        "IPv4 with IHL 15 but only 28 bytes after Ethernet")
    add("ipv4_totlen_long", udp4_frame(total=1500), "IPv4 total length 1500 in a 74-byte frame")
    add("ipv4_totlen_short", udp4_frame(total=20), "IPv4 total length 20: UDP outside the datagram")
    add("ipv4_bad_version", udp4_frame(version=6), "IPv4 EtherType, header version 6")
    add("ipv4_bad_csum", udp4_frame(bad_csum=True), "IPv4 UDP with a wrong IP header checksum")
    add("ipv4_tcp_bad_csum", tcp4_frame(bad_csum=True), "IPv4 TCP SYN with a wrong TCP checksum")
    add("ipv6_plen_long", eth(P_IPV6) + ipv6(S6, D6, 17, udp(12345, 53, PAY, v6=(S6, D6)), plen=2000),
        "IPv6 payload length 2000 in a 102-byte frame")
    add("ipv4_udp_zero_len", eth(P_IP) + ipv4(S4, D4, 17, struct.pack("!HHHH", 1, 2, 0, 0)),
        "IPv4 UDP header with length field 0")
    add("ipv4_padded", udp4_frame(data=b"") + bytes(18), "IPv4 UDP with no payload, padded to 60 bytes with zeros")
    return f


def main():
    os.makedirs(OUT, exist_ok=True)
    index = []
    names = set()
    for name, data, what in frames():
        assert name not in names, name
        names.add(name)
        with open(os.path.join(OUT, name + ".bin"), "wb") as fh:
            fh.write(data)
        index.append({"name": name, "file": name + ".bin", "bytes": len(data), "what": what})
    with open(os.path.join(OUT, "index.json"), "w") as fh:
        json.dump(index, fh, indent=1)
        fh.write("\n")
    print("%d frames in %s" % (len(index), OUT))


if __name__ == "__main__":
    main()
