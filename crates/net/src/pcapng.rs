//! pcapng (the format Wireshark and tcpdump write by default) read as a
//! sequence of [`PcapRecord`]s, and `Capture`, which reads either format,
//! telling them apart by the first four bytes.
//!
//! Blocks read: section headers (byte order per section), interface
//! descriptions (link type, timestamp resolution `if_tsresol`), enhanced,
//! simple and (obsolete) packet blocks. Other blocks are skipped.

use crate::pcap::{PcapError, PcapReader, PcapRecord};
use std::io::{self, Read};

const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
/// Blocks larger than this are taken as a corrupt file.
const MAX_BLOCK: u32 = 16 << 20;

#[derive(Clone, Copy)]
struct Iface {
    linktype: u32,
    snaplen: u32,
    /// Timestamp units per second.
    units: u64,
}

/// Reads a pcapng stream.
pub struct PcapngReader<R> {
    r: R,
    swapped: bool,
    ifaces: Vec<Iface>,
    index: u64,
    /// The first block's type was read by the caller (format detection).
    first: Option<u32>,
}

fn read_exact_or_eof<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read> PcapngReader<R> {
    /// A reader whose first block type (`0x0a0d0d0a`) was already consumed.
    fn after_magic(r: R) -> PcapngReader<R> {
        PcapngReader {
            r,
            swapped: false,
            ifaces: Vec::new(),
            index: 0,
            first: Some(SHB),
        }
    }

    pub fn new(mut r: R) -> Result<PcapngReader<R>, PcapError> {
        let mut m = [0u8; 4];
        if read_exact_or_eof(&mut r, &mut m)? < 4 || u32::from_le_bytes(m) != SHB {
            return Err(PcapError::BadMagic {
                magic: u32::from_le_bytes(m),
            });
        }
        Ok(Self::after_magic(r))
    }

    fn u32_at(&self, b: &[u8], o: usize) -> u32 {
        let v = u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        if self.swapped {
            v.swap_bytes()
        } else {
            v
        }
    }

    fn u16_at(&self, b: &[u8], o: usize) -> u16 {
        let v = u16::from_le_bytes([b[o], b[o + 1]]);
        if self.swapped {
            v.swap_bytes()
        } else {
            v
        }
    }

    /// The next packet, with its interface's link type; None at the end.
    pub fn next_packet(&mut self) -> Result<Option<(u32, PcapRecord)>, PcapError> {
        loop {
            let index = self.index;
            let ty = match self.first.take() {
                Some(t) => t,
                None => {
                    let mut h = [0u8; 4];
                    match read_exact_or_eof(&mut self.r, &mut h)? {
                        0 => return Ok(None),
                        4 => {}
                        _ => return Err(PcapError::Truncated { index }),
                    }
                    self.u32_at(&h, 0)
                }
            };
            let mut lenb = [0u8; 4];
            if read_exact_or_eof(&mut self.r, &mut lenb)? < 4 {
                return Err(PcapError::Truncated { index });
            }
            if ty == SHB {
                // The byte order is known only after the section header's magic.
                let mut bom = [0u8; 4];
                if read_exact_or_eof(&mut self.r, &mut bom)? < 4 {
                    return Err(PcapError::Truncated { index });
                }
                self.swapped = match u32::from_le_bytes(bom) {
                    BYTE_ORDER_MAGIC => false,
                    m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
                    m => return Err(PcapError::BadMagic { magic: m }),
                };
                self.ifaces.clear();
                let total = self.u32_at(&lenb, 0);
                if !(28..=MAX_BLOCK).contains(&total) || !total.is_multiple_of(4) {
                    return Err(PcapError::RecordTooLarge { index, len: total });
                }
                let mut rest = vec![0u8; total as usize - 12];
                if read_exact_or_eof(&mut self.r, &mut rest)? < rest.len() {
                    return Err(PcapError::Truncated { index });
                }
                continue;
            }
            let total = self.u32_at(&lenb, 0);
            if !(12..=MAX_BLOCK).contains(&total) || !total.is_multiple_of(4) {
                return Err(PcapError::RecordTooLarge { index, len: total });
            }
            let mut body = vec![0u8; total as usize - 8];
            if read_exact_or_eof(&mut self.r, &mut body)? < body.len() {
                return Err(PcapError::Truncated { index });
            }
            let body = &body[..body.len() - 4];
            match ty {
                IDB if body.len() >= 8 => {
                    let mut iface = Iface {
                        linktype: self.u16_at(body, 0) as u32,
                        snaplen: self.u32_at(body, 4),
                        units: 1_000_000,
                    };
                    // Options: code, length, value padded to 4.
                    let mut o = 8;
                    while o + 4 <= body.len() {
                        let (code, len) = (self.u16_at(body, o), self.u16_at(body, o + 2) as usize);
                        if code == 0 || o + 4 + len > body.len() {
                            break;
                        }
                        if code == 9 && len >= 1 {
                            let v = body[o + 4];
                            let exp = (v & 0x7f) as u32;
                            iface.units = if v & 0x80 != 0 {
                                1u64.checked_shl(exp).unwrap_or(1_000_000)
                            } else {
                                10u64.checked_pow(exp).unwrap_or(1_000_000)
                            };
                        }
                        o += 4 + len.next_multiple_of(4);
                    }
                    self.ifaces.push(iface);
                }
                EPB | PB if body.len() >= 20 => {
                    let iface_id = if ty == EPB {
                        self.u32_at(body, 0) as usize
                    } else {
                        self.u16_at(body, 0) as usize
                    };
                    let (hi, lo) = (self.u32_at(body, 4) as u64, self.u32_at(body, 8) as u64);
                    let (cap, orig) = (self.u32_at(body, 12), self.u32_at(body, 16));
                    if 20 + cap as usize > body.len() {
                        return Err(PcapError::Truncated { index });
                    }
                    let iface = self.iface(iface_id, index)?;
                    let ts = (hi << 32) | lo;
                    self.index += 1;
                    return Ok(Some((
                        iface.linktype,
                        PcapRecord {
                            ts_sec: (ts / iface.units) as u32,
                            ts_nsec: ((ts % iface.units) as u128 * 1_000_000_000
                                / iface.units as u128) as u32,
                            orig_len: orig,
                            data: body[20..20 + cap as usize].to_vec(),
                        },
                    )));
                }
                SPB if body.len() >= 4 => {
                    let orig = self.u32_at(body, 0);
                    let iface = self.iface(0, index)?;
                    let mut cap = orig.min((body.len() - 4) as u32);
                    if iface.snaplen != 0 {
                        cap = cap.min(iface.snaplen);
                    }
                    self.index += 1;
                    return Ok(Some((
                        iface.linktype,
                        PcapRecord {
                            ts_sec: 0,
                            ts_nsec: 0,
                            orig_len: orig,
                            data: body[4..4 + cap as usize].to_vec(),
                        },
                    )));
                }
                _ => {}
            }
        }
    }

    fn iface(&self, id: usize, index: u64) -> Result<Iface, PcapError> {
        self.ifaces.get(id).copied().ok_or(PcapError::NoInterface {
            index,
            interface: id as u32,
        })
    }
}

/// A capture file of either format, read from a file.
pub struct CaptureFile {
    inner: Kind,
    /// `pcap` or `pcapng`.
    pub format: &'static str,
}

enum Kind {
    Pcap(PcapReader<io::Chain<io::Cursor<Vec<u8>>, io::BufReader<std::fs::File>>>),
    Pcapng(PcapngReader<io::BufReader<std::fs::File>>),
}

impl CaptureFile {
    pub fn open(path: &std::path::Path) -> Result<CaptureFile, PcapError> {
        let f = std::fs::File::open(path)?;
        let mut r = io::BufReader::new(f);
        let mut m = [0u8; 4];
        let n = read_exact_or_eof(&mut r, &mut m)?;
        if n == 4 && u32::from_le_bytes(m) == SHB {
            return Ok(CaptureFile {
                inner: Kind::Pcapng(PcapngReader::after_magic(r)),
                format: "pcapng",
            });
        }
        let chained = io::Cursor::new(m[..n].to_vec()).chain(r);
        Ok(CaptureFile {
            inner: Kind::Pcap(PcapReader::new(chained)?),
            format: "pcap",
        })
    }

    /// The next frame and its link type, or None at the end of the file.
    pub fn next_packet(&mut self) -> Result<Option<(u32, PcapRecord)>, PcapError> {
        match &mut self.inner {
            Kind::Pcap(p) => {
                let lt = p.linktype;
                Ok(p.next_record()?.map(|r| (lt, r)))
            }
            Kind::Pcapng(p) => p.next_packet(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(ty: u32, body: &[u8]) -> Vec<u8> {
        let mut b = body.to_vec();
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
        let total = (b.len() + 12) as u32;
        let mut out = ty.to_le_bytes().to_vec();
        out.extend_from_slice(&total.to_le_bytes());
        out.extend_from_slice(&b);
        out.extend_from_slice(&total.to_le_bytes());
        out
    }

    /// A small pcapng file: section, an Ethernet interface with nanosecond
    /// timestamps, one enhanced and one simple packet block.
    pub(crate) fn sample() -> Vec<u8> {
        let mut shb = BYTE_ORDER_MAGIC.to_le_bytes().to_vec();
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        let mut idb = vec![1, 0, 0, 0];
        idb.extend_from_slice(&0u32.to_le_bytes());
        idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0]); // if_tsresol = 10^-9
        idb.extend_from_slice(&[0, 0, 0, 0]);
        let mut epb = 0u32.to_le_bytes().to_vec();
        let ts: u64 = 5_000_000_123;
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&3u32.to_le_bytes());
        epb.extend_from_slice(&3u32.to_le_bytes());
        epb.extend_from_slice(&[1, 2, 3]);
        let mut spb = 2u32.to_le_bytes().to_vec();
        spb.extend_from_slice(&[7, 8]);
        [
            block(SHB, &shb),
            block(IDB, &idb),
            block(EPB, &epb),
            block(0x8000_0001, &[1, 2, 3, 4]),
            block(SPB, &spb),
        ]
        .concat()
    }

    #[test]
    fn reads_enhanced_and_simple_blocks() {
        let bytes = sample();
        let mut r = PcapngReader::new(&bytes[..]).unwrap();
        let (lt, a) = r.next_packet().unwrap().unwrap();
        assert_eq!(
            (lt, a.ts_sec, a.ts_nsec, a.data.as_slice()),
            (1, 5, 123, &[1u8, 2, 3][..])
        );
        let (_, b) = r.next_packet().unwrap().unwrap();
        assert_eq!(b.data, vec![7, 8]);
        assert!(r.next_packet().unwrap().is_none());
        // Cut anywhere inside the last block: an error naming the record.
        let cut = &bytes[..bytes.len() - 3];
        let mut r = PcapngReader::new(cut).unwrap();
        r.next_packet().unwrap();
        assert!(matches!(
            r.next_packet(),
            Err(PcapError::Truncated { index: 1 })
        ));
        // A packet before any interface description.
        let mut no_if = bytes[..28].to_vec();
        no_if.extend_from_slice(&bytes[28 + 32..]);
        let mut r = PcapngReader::new(&no_if[..]).unwrap();
        assert!(matches!(
            r.next_packet(),
            Err(PcapError::NoInterface { .. })
        ));
    }
}
