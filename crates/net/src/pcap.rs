//! The classic libpcap file format (pcapng: [`crate::pcapng`]): a 24-byte file header, then per
//! record a 16-byte header and the captured bytes. Both byte orders and both
//! timestamp resolutions (microseconds, magic 0xa1b2c3d4; nanoseconds, 0xa1b23c4d)
//! are read; files are written little-endian with microseconds. Only Ethernet
//! captures (LINKTYPE_ETHERNET) make sense for XDP.

use std::io::{self, Read, Write};
use thiserror::Error;

/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;
const MAGIC_US: u32 = 0xa1b2_c3d4;
const MAGIC_NS: u32 = 0xa1b2_3c4d;
const PCAPNG_MAGIC: u32 = 0x0a0d_0d0a;
/// Records larger than this are taken as a corrupt file, not allocated.
const MAX_RECORD: u32 = 256 * 1024;

#[derive(Debug, Error)]
pub enum PcapError {
    #[error("reading the capture failed")]
    Io(#[from] io::Error),
    #[error("not a pcap file (magic {magic:#010x})")]
    BadMagic { magic: u32 },
    #[error("pcapng files are not supported; convert with `editcap -F pcap`")]
    Pcapng,
    #[error("record {index}: captured length {len} is larger than {MAX_RECORD} bytes")]
    RecordTooLarge { index: u64, len: u32 },
    #[error("record {index} is cut short by the end of the file")]
    Truncated { index: u64 },
    #[error("record {index} names interface {interface}, which no interface block describes")]
    NoInterface { index: u64, interface: u32 },
}

/// One captured frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapRecord {
    pub ts_sec: u32,
    /// Nanoseconds within the second (microsecond files are scaled up).
    pub ts_nsec: u32,
    /// Length on the wire; more than `data.len()` when the capture cut the frame.
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// Reads records from a pcap stream.
pub struct PcapReader<R> {
    r: R,
    swapped: bool,
    nanos: bool,
    pub linktype: u32,
    pub snaplen: u32,
    index: u64,
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
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

impl<R: Read> PcapReader<R> {
    pub fn new(mut r: R) -> Result<PcapReader<R>, PcapError> {
        let mut h = [0u8; 24];
        if read_full(&mut r, &mut h)? < 24 {
            return Err(PcapError::BadMagic { magic: 0 });
        }
        let le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let (swapped, nanos) = match le {
            MAGIC_US => (false, false),
            MAGIC_NS => (false, true),
            m if m.swap_bytes() == MAGIC_US => (true, false),
            m if m.swap_bytes() == MAGIC_NS => (true, true),
            PCAPNG_MAGIC => return Err(PcapError::Pcapng),
            m => return Err(PcapError::BadMagic { magic: m }),
        };
        let word = |o: usize| {
            let v = u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
            if swapped {
                v.swap_bytes()
            } else {
                v
            }
        };
        Ok(PcapReader {
            snaplen: word(16),
            // The upper bits carry FCS information in some writers.
            linktype: word(20) & 0x0fff_ffff,
            r,
            swapped,
            nanos,
            index: 0,
        })
    }

    /// The next record, or None at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<PcapRecord>, PcapError> {
        let mut h = [0u8; 16];
        let n = read_full(&mut self.r, &mut h)?;
        if n == 0 {
            return Ok(None);
        }
        let index = self.index;
        if n < 16 {
            return Err(PcapError::Truncated { index });
        }
        let word = |o: usize| {
            let v = u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
            if self.swapped {
                v.swap_bytes()
            } else {
                v
            }
        };
        let (ts_sec, frac, incl, orig) = (word(0), word(4), word(8), word(12));
        if incl > MAX_RECORD {
            return Err(PcapError::RecordTooLarge { index, len: incl });
        }
        let mut data = vec![0u8; incl as usize];
        if read_full(&mut self.r, &mut data)? < data.len() {
            return Err(PcapError::Truncated { index });
        }
        self.index += 1;
        Ok(Some(PcapRecord {
            ts_sec,
            ts_nsec: if self.nanos {
                frac
            } else {
                frac.saturating_mul(1000)
            },
            orig_len: orig,
            data,
        }))
    }
}

impl<R: Read> Iterator for PcapReader<R> {
    type Item = Result<PcapRecord, PcapError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// Writes a little-endian, microsecond pcap stream.
pub struct PcapWriter<W: Write> {
    w: W,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut w: W, linktype: u32, snaplen: u32) -> io::Result<PcapWriter<W>> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&MAGIC_US.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&snaplen.to_le_bytes());
        h.extend_from_slice(&linktype.to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter { w })
    }

    pub fn write(&mut self, ts_sec: u32, ts_nsec: u32, data: &[u8]) -> io::Result<()> {
        let len = data.len() as u32;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&ts_sec.to_le_bytes());
        h[4..8].copy_from_slice(&(ts_nsec / 1000).to_le_bytes());
        h[8..12].copy_from_slice(&len.to_le_bytes());
        h[12..16].copy_from_slice(&len.to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(data)
    }

    pub fn into_inner(self) -> W {
        self.w
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut w = PcapWriter::new(Vec::new(), LINKTYPE_ETHERNET, 65535).unwrap();
        w.write(1, 2000, &[1, 2, 3]).unwrap();
        w.write(5, 0, &[9; 60]).unwrap();
        let bytes = w.into_inner();
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        assert_eq!(r.linktype, LINKTYPE_ETHERNET);
        let a = r.next_record().unwrap().unwrap();
        assert_eq!(
            (a.ts_sec, a.ts_nsec, a.data.as_slice()),
            (1, 2000, &[1u8, 2, 3][..])
        );
        assert_eq!(r.next_record().unwrap().unwrap().data.len(), 60);
        assert!(r.next_record().unwrap().is_none());
    }

    #[test]
    fn big_endian_and_errors() {
        let mut be = Vec::new();
        for v in [MAGIC_NS, 0x0002_0004, 0, 0, 65535, 1] {
            be.extend_from_slice(&v.to_be_bytes());
        }
        for v in [7u32, 5, 2, 2] {
            be.extend_from_slice(&v.to_be_bytes());
        }
        be.extend_from_slice(&[0xaa, 0xbb]);
        let recs: Vec<_> = PcapReader::new(&be[..])
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(recs[0].ts_nsec, 5);
        assert_eq!(recs[0].data, vec![0xaa, 0xbb]);

        let mut cut = be.clone();
        cut.pop();
        let r: Result<Vec<_>, _> = PcapReader::new(&cut[..]).unwrap().collect();
        assert!(matches!(r, Err(PcapError::Truncated { index: 0 })));

        assert!(matches!(
            PcapReader::new(&PCAPNG_MAGIC.to_le_bytes().repeat(6)[..]),
            Err(PcapError::Pcapng)
        ));
        assert!(matches!(
            PcapReader::new(&[0u8; 3][..]),
            Err(PcapError::BadMagic { .. })
        ));

        let mut huge = be[..24].to_vec();
        for v in [0u32, 0, MAX_RECORD + 1, 0] {
            huge.extend_from_slice(&v.to_be_bytes());
        }
        let r: Result<Vec<_>, _> = PcapReader::new(&huge[..]).unwrap().collect();
        assert!(matches!(r, Err(PcapError::RecordTooLarge { .. })));
    }
}
