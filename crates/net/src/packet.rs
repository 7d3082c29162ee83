//! AF_PACKET sockets: a receive socket bound to one interface with a memory-mapped
//! `PACKET_RX_RING` (TPACKET_V2), and an unbound send socket that writes whole
//! Ethernet frames out of any interface by ifindex. Both are plain `std::io`
//! wrappers; the datapath names the interface in its errors.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

// <linux/if_packet.h> values (not all are exported by the libc crate).
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const TPACKET_V2: libc::c_int = 1;
/// `PACKET_OUTGOING` in `sll_pkttype`: a frame this host sent.
pub const PACKET_OUTGOING: u8 = 4;

pub const TP_STATUS_KERNEL: u32 = 0;
pub const TP_STATUS_USER: u32 = 1 << 0;
pub const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;
pub const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
pub const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

const ETH_P_ALL: u16 = 0x0003;

/// `struct tpacket2_hdr` is 32 bytes; `struct sockaddr_ll` follows at
/// TPACKET_ALIGN(32) = 32.
const TPACKET2_HDRLEN: usize = 32;

/// Ring geometry: 4096-byte slots hold any frame an XDP run accepts (3520 bytes)
/// plus the headers; 1024 slots absorb bursts while a frame is being run.
const FRAME_SIZE: usize = 4096;
const BLOCK_SIZE: usize = 1 << 16;
const BLOCK_NR: usize = 64;
const FRAME_NR: usize = BLOCK_SIZE / FRAME_SIZE * BLOCK_NR;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: val points at a live T of the size we pass.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            val as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn packet_socket() -> io::Result<OwnedFd> {
    // Protocol 0: the socket receives nothing until it is bound with ETH_P_ALL, so
    // no frame lands before the ring exists.
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = cvt(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn sockaddr_ll(ifindex: u32, protocol_be: u16) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = protocol_be;
    sa.sll_ifindex = ifindex as i32;
    sa
}

/// `struct tpacket_req`.
#[repr(C)]
struct TpacketReq {
    tp_block_size: u32,
    tp_block_nr: u32,
    tp_frame_size: u32,
    tp_frame_nr: u32,
}

/// `struct tpacket_stats`.
#[repr(C)]
#[derive(Default)]
struct TpacketStats {
    tp_packets: u32,
    tp_drops: u32,
}

/// Which setup step failed, for error messages.
#[derive(Debug)]
pub struct SetupError {
    pub op: &'static str,
    pub source: io::Error,
}

fn step<T>(op: &'static str, r: io::Result<T>) -> Result<T, SetupError> {
    r.map_err(|source| SetupError { op, source })
}

/// A receive socket bound to one interface, with its mapped ring.
pub struct RxRing {
    fd: OwnedFd,
    map: *mut u8,
    map_len: usize,
    next: usize,
}

// The mapping is owned by this value and only touched through &mut self.
unsafe impl Send for RxRing {}

/// One received frame, still in the ring until dropped.
pub struct RxFrame<'a> {
    slot: &'a AtomicU32,
    pub status: u32,
    pub data: &'a [u8],
    /// `tp_len`: the frame's length on the wire (more than `data` if cut short).
    pub wire_len: usize,
    pub vlan_tci: u16,
    pub vlan_tpid: u16,
    pub pkttype: u8,
}

impl Drop for RxFrame<'_> {
    fn drop(&mut self) {
        // Hand the slot back to the kernel.
        self.slot.store(TP_STATUS_KERNEL, Ordering::Release);
    }
}

impl RxRing {
    /// Opens the socket, maps the ring and binds to `ifindex` for every protocol.
    pub fn open(ifindex: u32) -> Result<RxRing, SetupError> {
        let fd = step("socket(AF_PACKET, SOCK_RAW)", packet_socket())?;
        let raw = fd.as_raw_fd();
        step(
            "setsockopt(PACKET_VERSION, TPACKET_V2)",
            setsockopt(raw, libc::SOL_PACKET, PACKET_VERSION, &TPACKET_V2),
        )?;
        // Kernels before 4.20 lack it; the receive loop also skips PACKET_OUTGOING.
        let _ = setsockopt(
            raw,
            libc::SOL_PACKET,
            PACKET_IGNORE_OUTGOING,
            &1 as &libc::c_int,
        );
        let req = TpacketReq {
            tp_block_size: BLOCK_SIZE as u32,
            tp_block_nr: BLOCK_NR as u32,
            tp_frame_size: FRAME_SIZE as u32,
            tp_frame_nr: FRAME_NR as u32,
        };
        step(
            "setsockopt(PACKET_RX_RING)",
            setsockopt(raw, libc::SOL_PACKET, PACKET_RX_RING, &req),
        )?;
        let map_len = BLOCK_SIZE * BLOCK_NR;
        // SAFETY: mapping the ring the kernel just allocated for this socket.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                raw,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(SetupError {
                op: "mmap(PACKET_RX_RING)",
                source: io::Error::last_os_error(),
            });
        }
        let ring = RxRing {
            fd,
            map: map as *mut u8,
            map_len,
            next: 0,
        };
        let sa = sockaddr_ll(ifindex, ETH_P_ALL.to_be());
        // SAFETY: sa is a valid sockaddr_ll of the length given.
        step(
            "bind(AF_PACKET)",
            cvt(unsafe {
                libc::bind(
                    raw,
                    &sa as *const libc::sockaddr_ll as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            }),
        )?;
        Ok(ring)
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The next frame the kernel has filled, if any. Frames come in ring order.
    pub fn next_frame(&mut self) -> Option<RxFrame<'_>> {
        let base = self.next * FRAME_SIZE;
        // SAFETY: base + FRAME_SIZE <= map_len; every slot starts 16-byte aligned in
        // a page-aligned mapping, so the status word is an aligned u32.
        let slot_ptr = unsafe { self.map.add(base) };
        let status_word = unsafe { &*(slot_ptr as *const AtomicU32) };
        let status = status_word.load(Ordering::Acquire);
        if status & TP_STATUS_USER == 0 {
            return None;
        }
        self.next = (self.next + 1) % FRAME_NR;
        // SAFETY: the kernel owns no part of a slot whose status has TP_STATUS_USER;
        // the whole slot lies inside the mapping.
        let slot = unsafe { std::slice::from_raw_parts(slot_ptr as *const u8, FRAME_SIZE) };
        let u16_at = |o: usize| u16::from_ne_bytes([slot[o], slot[o + 1]]);
        let u32_at =
            |o: usize| u32::from_ne_bytes([slot[o], slot[o + 1], slot[o + 2], slot[o + 3]]);
        let wire_len = u32_at(4) as usize;
        let snaplen = u32_at(8) as usize;
        let mac = u16_at(12) as usize;
        let pkttype = slot[TPACKET2_HDRLEN + 10];
        let end = (mac + snaplen).min(FRAME_SIZE);
        let data = &slot[mac.min(end)..end];
        Some(RxFrame {
            slot: status_word,
            status,
            data,
            wire_len,
            vlan_tci: u16_at(24),
            vlan_tpid: u16_at(26),
            pkttype,
        })
    }

    /// Frames the kernel dropped for want of a free slot since the last call.
    pub fn take_drops(&self) -> u64 {
        let mut st = TpacketStats::default();
        let mut len = std::mem::size_of::<TpacketStats>() as libc::socklen_t;
        // SAFETY: st is a live tpacket_stats and len its size.
        let r = unsafe {
            libc::getsockopt(
                self.fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                &mut st as *mut TpacketStats as *mut libc::c_void,
                &mut len,
            )
        };
        if r < 0 {
            0
        } else {
            st.tp_drops as u64
        }
    }

    /// Reads and clears the socket's pending error (SO_ERROR).
    pub fn take_error(&self) -> Option<io::Error> {
        let mut err: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: err is a live c_int and len its size.
        let r = unsafe {
            libc::getsockopt(
                self.fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                &mut err as *mut libc::c_int as *mut libc::c_void,
                &mut len,
            )
        };
        if r < 0 {
            Some(io::Error::last_os_error())
        } else if err != 0 {
            Some(io::Error::from_raw_os_error(err))
        } else {
            None
        }
    }

    /// The ifindex the socket is bound to; the kernel resets it when the device
    /// is unregistered, which is how the datapath notices a vanished interface.
    pub fn bound_ifindex(&self) -> io::Result<i32> {
        // SAFETY: as in sockaddr_ll(): zeroed POD, then filled by the kernel.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: sa has room for len bytes.
        cvt(unsafe {
            libc::getsockname(
                self.fd(),
                &mut sa as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                &mut len,
            )
        })?;
        Ok(sa.sll_ifindex)
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping; the fd closes after.
        unsafe { libc::munmap(self.map as *mut libc::c_void, self.map_len) };
    }
}

/// A send-only AF_PACKET socket (protocol 0: it receives nothing).
pub struct TxSocket {
    fd: OwnedFd,
}

impl TxSocket {
    pub fn open() -> Result<TxSocket, SetupError> {
        Ok(TxSocket {
            fd: step("socket(AF_PACKET, SOCK_RAW)", packet_socket())?,
        })
    }

    /// Sends a whole Ethernet frame out of `ifindex`.
    pub fn send(&self, ifindex: u32, frame: &[u8]) -> io::Result<()> {
        if frame.len() < 14 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // sll_protocol becomes skb->protocol: the frame's own EtherType.
        let sa = sockaddr_ll(ifindex, u16::from_ne_bytes([frame[12], frame[13]]));
        // SAFETY: frame and sa are valid for the lengths given.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &sa as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != frame.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short send"));
        }
        Ok(())
    }
}

/// An eventfd the datapath thread polls beside its ring, so detach wakes it at once.
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: plain eventfd(2); the fd is owned right away.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: fresh descriptor.
        Ok(EventFd {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a live u64. A full counter only means the
        // thread is already signalled.
        unsafe { libc::write(self.fd(), &one as *const u64 as *const libc::c_void, 8) };
    }
}

/// Readiness of the ring socket after [`wait`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    pub frames: bool,
    pub error: bool,
    pub woken: bool,
}

/// Waits up to `timeout_ms` for frames on `ring` or a signal on `wake`.
pub fn wait(ring: &RxRing, wake: &EventFd, timeout_ms: i32) -> io::Result<Ready> {
    let mut fds = [
        libc::pollfd {
            fd: ring.fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake.fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: fds is a live array of two pollfds.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(Ready::default());
        }
        return Err(e);
    }
    Ok(Ready {
        frames: fds[0].revents & libc::POLLIN != 0,
        error: fds[0].revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0,
        woken: fds[1].revents & libc::POLLIN != 0,
    })
}
