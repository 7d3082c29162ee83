//! Code memory shared by small programs: arenas mapped twice from one memfd,
//! once read-write (where the code is written) and once read-execute (where it
//! runs), so a compile costs no mmap, mprotect or munmap (with its TLB
//! shootdown) and no fresh page faults once an arena's pages were used: that
//! was over half the compile time of a 36-instruction program (~7 of ~11 µs).
//!
//! No page is ever writable and executable at one address. Blocks are
//! cache-line multiples, first fit, merged again when freed; arenas stay
//! mapped for the life of the process. A process forked from the one that made
//! the arenas shares their pages (MAP_SHARED), so it never uses the pool: its
//! own compiles, and the freeing of blocks it inherited, leave them alone.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// One arena's size.
const ARENA: usize = 1 << 20;
/// Larger code gets its own mapping.
pub(super) const MAX_BLOCK: usize = ARENA / 4;
const ALIGN: usize = 64;

struct Arena {
    rw: usize,
    rx: usize,
    /// Free blocks: offset -> length.
    free: BTreeMap<usize, usize>,
}

struct Pool {
    pid: u32,
    arenas: Vec<Arena>,
    /// Making an arena failed once (no memfd, say): the caller maps per program.
    broken: bool,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    pid: 0,
    arenas: Vec::new(),
    broken: false,
});

/// A block of pool memory holding one program's code.
pub(super) struct Block {
    /// Where the code runs.
    pub(super) rx: *mut u8,
    arena: usize,
    off: usize,
    len: usize,
    pid: u32,
}

/// Copies `code` into a pool block; None when the pool cannot serve it (too
/// large, a forked process, no arena could be made).
pub(super) fn alloc(code: &[u8]) -> Option<Block> {
    if code.is_empty() || code.len() > MAX_BLOCK {
        return None;
    }
    let len = code.len().div_ceil(ALIGN) * ALIGN;
    let pid = std::process::id();
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if pool.broken {
        return None;
    }
    if pool.arenas.is_empty() {
        pool.pid = pid;
    } else if pool.pid != pid {
        return None;
    }
    let found = pool.arenas.iter().enumerate().find_map(|(a, ar)| {
        ar.free
            .iter()
            .find(|&(_, &l)| l >= len)
            .map(|(&off, &l)| (a, off, l))
    });
    let (arena, off, free_len) = match found {
        Some(f) => f,
        None => match new_arena() {
            Some(ar) => {
                pool.arenas.push(ar);
                (pool.arenas.len() - 1, 0, ARENA)
            }
            None => {
                pool.broken = true;
                return None;
            }
        },
    };
    let ar = &mut pool.arenas[arena];
    ar.free.remove(&off);
    if free_len > len {
        ar.free.insert(off + len, free_len - len);
    }
    // SAFETY: [off, off + len) is inside the arena's read-write view and now
    // belongs to this block alone; code.len() <= len.
    unsafe {
        std::ptr::copy_nonoverlapping(code.as_ptr(), (ar.rw + off) as *mut u8, code.len());
    }
    Some(Block {
        rx: (ar.rx + off) as *mut u8,
        arena,
        off,
        len,
        pid,
    })
}

/// Gives a block back (in the process that allocated it; see the module docs).
pub(super) fn free(b: &Block) {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if pool.pid != b.pid || std::process::id() != b.pid {
        return;
    }
    let Some(ar) = pool.arenas.get_mut(b.arena) else {
        return;
    };
    let (mut off, mut len) = (b.off, b.len);
    // Merge with the free neighbours.
    if let Some((&p, &pl)) = ar.free.range(..off).next_back() {
        if p + pl == off {
            ar.free.remove(&p);
            off = p;
            len += pl;
        }
    }
    if let Some(nl) = ar.free.remove(&(off + len)) {
        len += nl;
    }
    ar.free.insert(off, len);
}

fn new_arena() -> Option<Arena> {
    // SAFETY: plain syscalls; every result is checked and the descriptor closed.
    unsafe {
        let fd = libc::memfd_create(c"bpfvm-jit".as_ptr(), libc::MFD_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let map = |prot| libc::mmap(std::ptr::null_mut(), ARENA, prot, libc::MAP_SHARED, fd, 0);
        let ok = libc::ftruncate(fd, ARENA as libc::off_t) == 0;
        let rw = if ok {
            map(libc::PROT_READ | libc::PROT_WRITE)
        } else {
            libc::MAP_FAILED
        };
        let rx = if rw != libc::MAP_FAILED {
            map(libc::PROT_READ | libc::PROT_EXEC)
        } else {
            libc::MAP_FAILED
        };
        libc::close(fd);
        if rx == libc::MAP_FAILED {
            if rw != libc::MAP_FAILED {
                libc::munmap(rw, ARENA);
            }
            return None;
        }
        let mut free = BTreeMap::new();
        free.insert(0, ARENA);
        Some(Arena {
            rw: rw as usize,
            rx: rx as usize,
            free,
        })
    }
}
