//! The producer's view of a `BPF_MAP_TYPE_USER_RINGBUF`.

use super::{MapType, MapViewError, RawMap};
use crate::kernel::{BpfCmd, BpfReply, MapFd, Runtime};

/// A user ring buffer (`BPF_MAP_TYPE_USER_RINGBUF`) written from user space:
/// what libbpf's `user_ring_buffer__reserve`, `__submit` and `__discard` give
/// an application. Programs consume the samples with
/// `bpf_user_ringbuf_drain`, in the order they were reserved; a sample
/// reserved and not yet committed holds back the ones after it.
///
/// Every operation goes through the runtime's dispatcher
/// ([`BpfCmd::UserRingbufReserve`], [`BpfCmd::UserRingbufCommit`]); a
/// reserved sample's bytes are written into the ring when it is submitted.
///
/// ```
/// use bpfvm::maps::{MapType, UserRingBuf};
/// use bpfvm::{MapCreateAttr, Runtime};
///
/// let rt = Runtime::with_cpus(1);
/// let fd = rt.create_map(&MapCreateAttr {
///     map_type: MapType::UserRingbuf,
///     max_entries: 4096,
///     name: "urb".into(),
///     ..Default::default()
/// })?;
/// let ring = UserRingBuf::new(&rt, &fd)?;
/// ring.submit(b"first")?;
/// let mut s = ring.reserve(8)?;
/// s.data_mut().copy_from_slice(&7u64.to_ne_bytes());
/// s.submit()?;
/// ring.reserve(16)?.discard()?; // drains skip it
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "BPF_MAP_TYPE_USER_RINGBUF")]
#[derive(Debug)]
pub struct UserRingBuf {
    map: RawMap,
}

impl UserRingBuf {
    /// A view of the map `fd` refers to.
    pub fn new(rt: &Runtime, fd: &MapFd) -> Result<Self, MapViewError> {
        RawMap::new(rt, fd).try_into()
    }

    /// The untyped view underneath.
    pub fn raw(&self) -> &RawMap {
        &self.map
    }

    /// Reserves a `size`-byte sample (zeroed), to be filled through
    /// [`UserRingBufSample::data_mut`] and then submitted or discarded.
    /// Fails with `E2BIG` when the sample can never fit the ring and
    /// `ENOSPC` when it does not fit until programs drain more.
    pub fn reserve(&self, size: u32) -> Result<UserRingBufSample<'_>, MapViewError> {
        const CMD: &str = "user_ring_buffer__reserve";
        match self.map.rt.bpf(BpfCmd::UserRingbufReserve {
            map_id: self.map.id(),
            size,
        }) {
            Ok(BpfReply::Sample(pos)) => Ok(UserRingBufSample {
                ring: self,
                pos,
                data: vec![0; size as usize],
                committed: false,
            }),
            Ok(_) => Err(MapViewError::UnexpectedReply {
                cmd: CMD,
                id: self.map.id(),
            }),
            Err(e) => Err(self.map.command_error(CMD, e)),
        }
    }

    /// Reserves a sample holding `data` and submits it.
    pub fn submit(&self, data: &[u8]) -> Result<(), MapViewError> {
        let size = u32::try_from(data.len()).map_err(|_| MapViewError::Command {
            cmd: "user_ring_buffer__reserve",
            id: self.map.id(),
            name: self.map.name().to_string(),
            source: Box::new(crate::BpfError::Map(bpfvm_maps::MapError::TooBig {
                map: self.map.name().to_string(),
                reason: format!("a sample of {} bytes", data.len()),
            })),
        })?;
        let mut s = self.reserve(size)?;
        s.data_mut().copy_from_slice(data);
        s.submit()
    }

    fn commit(&self, pos: u64, data: Vec<u8>, discard: bool) -> Result<(), MapViewError> {
        let cmd = if discard {
            "user_ring_buffer__discard"
        } else {
            "user_ring_buffer__submit"
        };
        match self.map.rt.bpf(BpfCmd::UserRingbufCommit {
            map_id: self.map.id(),
            pos,
            data,
            discard,
        }) {
            Ok(BpfReply::Ok) => Ok(()),
            Ok(_) => Err(MapViewError::UnexpectedReply {
                cmd,
                id: self.map.id(),
            }),
            Err(e) => Err(self.map.command_error(cmd, e)),
        }
    }
}

impl TryFrom<RawMap> for UserRingBuf {
    type Error = MapViewError;

    fn try_from(map: RawMap) -> Result<Self, MapViewError> {
        map.check_type(&[MapType::UserRingbuf], "BPF_MAP_TYPE_USER_RINGBUF")?;
        Ok(UserRingBuf { map })
    }
}

/// A sample reserved in a [`UserRingBuf`]. Dropping it without
/// [`submit`](Self::submit) discards it, so a forgotten sample never blocks
/// the ring (libbpf leaves such a sample reserved for good).
#[derive(Debug)]
pub struct UserRingBufSample<'a> {
    ring: &'a UserRingBuf,
    pos: u64,
    data: Vec<u8>,
    committed: bool,
}

impl UserRingBufSample<'_> {
    /// The sample's bytes, to fill before submitting.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Commits the sample: the next drains hand it to their callback.
    pub fn submit(mut self) -> Result<(), MapViewError> {
        self.committed = true;
        let data = std::mem::take(&mut self.data);
        self.ring.commit(self.pos, data, false)
    }

    /// Discards the sample: drains skip it.
    pub fn discard(mut self) -> Result<(), MapViewError> {
        self.committed = true;
        self.ring.commit(self.pos, Vec::new(), true)
    }
}

impl Drop for UserRingBufSample<'_> {
    fn drop(&mut self) {
        if !self.committed {
            // Nothing to report to: the ring stays usable either way.
            let _ = self.ring.commit(self.pos, Vec::new(), true);
        }
    }
}
