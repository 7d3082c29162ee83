#!/usr/bin/env python3
"""Write the test frames in packets/ as raw Ethernet frames (.bin).

Usage: python3 tests/golden/make_packets.py   (from anywhere; no dependencies)

Every frame is built by hand with struct: Ethernet II header, then IPv4
(with a correct header checksum), IPv6 or ARP, then UDP/TCP/ICMP with
correct checksums over the pseudo-header. packets/index.json lists the
frames in the order every capture uses them, with what each one is for.
The output is deterministic: rerunning rewrites identical bytes.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "packets")

MAC_A = bytes.fromhex("020000000001")  # sender
MAC_B = bytes.fromhex("020000000002")  # receiver (the XDP host)
ETH_P_IP, ETH_P_ARP, ETH_P_IPV6 = 0x0800, 0x0806, 0x86DD


def csum(data: bytes) -> int:
    """Internet checksum (RFC 1071): ones' complement of the ones' complement sum."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(addr: str) -> bytes:
    return bytes(int(x) for x in addr.split("."))


def eth(proto: int, dst=MAC_B, src=MAC_A) -> bytes:
    return dst + src + struct.pack("!H", proto)


def ipv4(src, dst, proto, payload: bytes, ident=0x1234, ttl=64, options=b"") -> bytes:
    assert len(options) % 4 == 0
    ihl = 5 + len(options) // 4
    total = ihl * 4 + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, total, ident, 0x4000,
                      ttl, proto, 0, ip4(src), ip4(dst)) + options
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def pseudo4(src, dst, proto, length) -> bytes:
    return ip4(src) + ip4(dst) + struct.pack("!BBH", 0, proto, length)


def udp4(src, dst, sport, dport, data: bytes) -> bytes:
    length = 8 + len(data)
    seg = struct.pack("!HHHH", sport, dport, length, 0) + data
    c = csum(pseudo4(src, dst, 17, length) + seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def tcp4(src, dst, sport, dport, seq, flags, data=b"") -> bytes:
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0) + data
    c = csum(pseudo4(src, dst, 6, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def icmp_echo(ident, seq, data: bytes) -> bytes:
    msg = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + data
    return msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]


def ipv6_udp(src: bytes, dst: bytes, sport, dport, data: bytes) -> bytes:
    length = 8 + len(data)
    seg = struct.pack("!HHHH", sport, dport, length, 0) + data
    pseudo = src + dst + struct.pack("!IxxxB", length, 17)
    c = csum(pseudo + seg) or 0xFFFF
    seg = seg[:6] + struct.pack("!H", c) + seg[8:]
    hdr = struct.pack("!IHBB", 6 << 28, length, 17, 64) + src + dst
    return hdr + seg


def arp_request(sender_ip, target_ip) -> bytes:
    return struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 1, MAC_A, ip4(sender_ip),
                       b"\0" * 6, ip4(target_ip))


def frames():
    """(name, description, bytes) in capture order."""
    udp = ipv4("10.0.0.1", "10.0.0.2", 17,
               udp4("10.0.0.1", "10.0.0.2", 12345, 53, b"hello bpfvm"))
    yield ("ipv4_udp", "IPv4 UDP 10.0.0.1:12345 -> 10.0.0.2:53, 11-byte payload",
           eth(ETH_P_IP) + udp)

    tcp = ipv4("10.0.0.1", "10.0.0.2", 6,
               tcp4("10.0.0.1", "10.0.0.2", 40000, 80, 0x01020304, 0x02))
    yield ("ipv4_tcp", "IPv4 TCP SYN 10.0.0.1:40000 -> 10.0.0.2:80", eth(ETH_P_IP) + tcp)

    yield ("arp", "ARP request: who has 10.0.0.2? tell 10.0.0.1 (broadcast, 42 bytes, no padding)",
           eth(ETH_P_ARP, dst=b"\xff" * 6) + arp_request("10.0.0.1", "10.0.0.2"))

    full = ipv4("10.0.0.1", "10.0.0.2", 17, udp4("10.0.0.1", "10.0.0.2", 1, 2, b""))
    yield ("ipv4_truncated", "IPv4 header cut after 10 of its 20 bytes (frame is 24 bytes)",
           eth(ETH_P_IP) + full[:10])

    blocked = ipv4("10.0.0.66", "10.0.0.2", 17,
                   udp4("10.0.0.66", "10.0.0.2", 5555, 53, b"blocked?"))
    yield ("ipv4_blocked", "IPv4 UDP from the blocked source 10.0.0.66", eth(ETH_P_IP) + blocked)

    echo = ipv4("10.0.0.1", "10.0.0.2", 17,
                udp4("10.0.0.1", "10.0.0.2", 33000, 7, b"ping"))
    yield ("ipv4_udp_echo", "IPv4 UDP 10.0.0.1:33000 -> 10.0.0.2:7 (echo), payload 'ping'",
           eth(ETH_P_IP) + echo)

    src6 = bytes.fromhex("fe800000000000000000000000000001")
    dst6 = bytes.fromhex("fe800000000000000000000000000002")
    yield ("ipv6_udp", "IPv6 UDP fe80::1:5000 -> fe80::2:6000, payload 'v6'",
           eth(ETH_P_IPV6) + ipv6_udp(src6, dst6, 5000, 6000, b"v6"))

    icmp = ipv4("10.0.0.1", "10.0.0.2", 1, icmp_echo(0x42, 1, b"abcdefgh"))
    yield ("ipv4_icmp", "IPv4 ICMP echo request (neither TCP nor UDP)", eth(ETH_P_IP) + icmp)

    opt = ipv4("10.0.0.1", "10.0.0.2", 17,
               udp4("10.0.0.1", "10.0.0.2", 1000, 2000, b"opts"),
               options=bytes([0x01, 0x01, 0x01, 0x00]))  # NOP NOP NOP EOL: IHL 6
    yield ("ipv4_options", "IPv4 with 4 bytes of options (IHL 6), UDP 1000 -> 2000",
           eth(ETH_P_IP) + opt)

    big_payload = bytes((i * 7) & 0xFF for i in range(1200 - 14 - 20 - 8))
    big = ipv4("10.0.0.1", "10.0.0.2", 17,
               udp4("10.0.0.1", "10.0.0.2", 4000, 4001, big_payload))
    yield ("ipv4_udp_big", "IPv4 UDP, 1200-byte frame (longer than 1000: takes gotol's branch)",
           eth(ETH_P_IP) + big)


def main():
    os.makedirs(OUT, exist_ok=True)
    index = []
    for name, desc, data in frames():
        with open(os.path.join(OUT, name + ".bin"), "wb") as f:
            f.write(data)
        index.append({"name": name, "file": name + ".bin", "len": len(data),
                      "description": desc})
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    for e in index:
        print("%-16s %5d  %s" % (e["name"], e["len"], e["description"]))


if __name__ == "__main__":
    main()
