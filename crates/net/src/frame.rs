//! Turning what an AF_PACKET ring hands over into the frame that was on the wire:
//! the VLAN tag the driver moved into metadata goes back into the header, and a
//! TCP/UDP checksum left for offload (`TP_STATUS_CSUMNOTREADY`, e.g. traffic a
//! local socket sent over a veth) is computed, as the NIC would have done. A
//! program then parses what it would parse on a real wire, and an `XDP_TX`ed frame
//! carries a valid checksum, since the offload information does not survive the
//! trip through user space.

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// Puts an 802.1Q/802.1ad tag back after the MAC addresses.
pub fn insert_vlan(frame: &[u8], tpid: u16, tci: u16) -> Vec<u8> {
    if frame.len() < 12 {
        return frame.to_vec();
    }
    let mut out = Vec::with_capacity(frame.len() + 4);
    out.extend_from_slice(&frame[..12]);
    out.extend_from_slice(&tpid.to_be_bytes());
    out.extend_from_slice(&tci.to_be_bytes());
    out.extend_from_slice(&frame[12..]);
    out
}

fn be16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(off)?, *b.get(off + 1)?]))
}

/// One's-complement sum of `data` added to `acc` (not folded).
fn sum_bytes(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        acc += (*last as u64) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Computes the TCP or UDP checksum of an IPv4/IPv6 frame in place. Returns false
/// (and leaves the frame alone) when the frame is not TCP/UDP over IP with the
/// transport header right after the IP header, or is cut short.
pub fn complete_l4_checksum(frame: &mut [u8]) -> bool {
    let mut off = 12;
    let mut proto = match be16(frame, off) {
        Some(p) => p,
        None => return false,
    };
    // Up to two VLAN tags (QinQ).
    for _ in 0..2 {
        if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
            off += 4;
            proto = match be16(frame, off) {
                Some(p) => p,
                None => return false,
            };
        }
    }
    let l3 = off + 2;
    let (l4, l4_len, pseudo, l4proto) = match proto {
        ETH_P_IP => {
            let Some(&vihl) = frame.get(l3) else {
                return false;
            };
            let ihl = (vihl & 0x0f) as usize * 4;
            let (Some(tot), Some(frag)) = (be16(frame, l3 + 2), be16(frame, l3 + 6)) else {
                return false;
            };
            // Fragments carry no complete transport segment to sum.
            if vihl >> 4 != 4 || ihl < 20 || frag & 0x3fff != 0 {
                return false;
            }
            let Some(&p) = frame.get(l3 + 9) else {
                return false;
            };
            let tot = tot as usize;
            if tot < ihl || l3 + tot > frame.len() {
                return false;
            }
            let l4_len = tot - ihl;
            let mut acc = sum_bytes(0, &frame[l3 + 12..l3 + 20]);
            acc += p as u64 + l4_len as u64;
            (l3 + ihl, l4_len, acc, p)
        }
        ETH_P_IPV6 => {
            if frame.len() < l3 + 40 || frame[l3] >> 4 != 6 {
                return false;
            }
            let Some(plen) = be16(frame, l3 + 4) else {
                return false;
            };
            let p = frame[l3 + 6];
            let plen = plen as usize;
            if l3 + 40 + plen > frame.len() {
                return false;
            }
            let mut acc = sum_bytes(0, &frame[l3 + 8..l3 + 40]);
            acc += p as u64 + plen as u64;
            (l3 + 40, plen, acc, p)
        }
        _ => return false,
    };
    let check_off = match l4proto {
        IPPROTO_UDP if l4_len >= 8 => 6,
        IPPROTO_TCP if l4_len >= 20 => 16,
        _ => return false,
    };
    let seg = &mut frame[l4..l4 + l4_len];
    seg[check_off] = 0;
    seg[check_off + 1] = 0;
    let mut sum = !fold(sum_bytes(pseudo, seg));
    // UDP sends 0xffff for a computed zero: 0 means "no checksum".
    if sum == 0 && l4proto == IPPROTO_UDP {
        sum = 0xffff;
    }
    seg[check_off..check_off + 2].copy_from_slice(&sum.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checksum is valid when summing the segment with it folds to 0xffff.
    fn udp_frame() -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8 + 5];
        f[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&33u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = IPPROTO_UDP;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let udp = &mut f[34..];
        udp[0..2].copy_from_slice(&1234u16.to_be_bytes());
        udp[2..4].copy_from_slice(&7u16.to_be_bytes());
        udp[4..6].copy_from_slice(&13u16.to_be_bytes());
        udp[8..13].copy_from_slice(b"hello");
        f
    }

    #[test]
    fn udp_checksum_verifies() {
        let mut f = udp_frame();
        assert!(complete_l4_checksum(&mut f));
        let mut acc = sum_bytes(0, &f[14 + 12..14 + 20]);
        acc += IPPROTO_UDP as u64 + 13;
        acc = sum_bytes(acc, &f[34..]);
        assert_eq!(fold(acc), 0xffff);
        assert_ne!(&f[40..42], &[0, 0]);
    }

    #[test]
    fn leaves_other_frames_alone() {
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        let before = arp.clone();
        assert!(!complete_l4_checksum(&mut arp));
        assert_eq!(arp, before);
        let mut short = udp_frame();
        short.truncate(30);
        assert!(!complete_l4_checksum(&mut short));
    }

    #[test]
    fn vlan_goes_back_in() {
        let f = udp_frame();
        let v = insert_vlan(&f, ETH_P_8021Q, 5);
        assert_eq!(v.len(), f.len() + 4);
        assert_eq!(&v[12..16], &[0x81, 0x00, 0x00, 0x05]);
        assert_eq!(&v[16..], &f[12..]);
        let mut v = v;
        assert!(complete_l4_checksum(&mut v));
    }
}
