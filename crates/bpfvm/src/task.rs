//! The current task as programs see it: what `bpf_get_current_task` and
//! `bpf_get_current_task_btf` return. In the kernel both give the same
//! `task_struct`; here both give one stand-in task per run, memory bpfvm owns,
//! read-only to the program (its loads through the BTF pointer and its
//! `bpf_probe_read_kernel`s read it), zeroed but for what bpfvm knows of the
//! caller: `pid` (the thread id `bpf_get_current_pid_tgid` gives in its low
//! half), `tgid` (the high half) and `comm` (what `bpf_get_current_comm`
//! gives). Those fields sit where the BTF the program was checked against
//! puts them: its CO-RE target when the loader relocated or typed the
//! program against one, else the program's own `struct task_struct`, else
//! the host kernel's. Pointer members (`real_parent`, `mm`, ...) are NULL, so
//! walks through them read zeroes (`bpf_probe_read_kernel` faults).

use crate::env::RunEnv;
use bpfvm_obj::btf::{BtfKind, BtfTypeData};
use bpfvm_obj::Btf;
use bpfvm_vm::{HelperCtx, HelperError, HelperOutcome, Region, RegionKind};

/// Bytes of the stand-in when no BTF describes `task_struct` (a 6.18 one
/// is about 10 KiB).
const DEFAULT_TASK_SIZE: u32 = 16 << 10;
/// Largest `task_struct` bpfvm lays out (a BTF claiming more is not believed).
const MAX_TASK_SIZE: u32 = 1 << 20;

/// Where `task_struct`'s fields bpfvm fills lie, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskLayout {
    /// `sizeof(struct task_struct)`.
    pub size: u32,
    /// `pid_t pid`.
    pub pid: Option<u32>,
    /// `pid_t tgid`.
    pub tgid: Option<u32>,
    /// `char comm[16]`: offset and length.
    pub comm: Option<(u32, u32)>,
}

impl TaskLayout {
    /// The layout of `struct task_struct` in `btf`, if it has the struct
    /// (not a forward declaration).
    pub fn from_btf(btf: &Btf) -> Option<TaskLayout> {
        let id = btf.find_by_name_kind("task_struct", BtfKind::Struct)?;
        let t = btf.type_by_id(id).ok()?;
        let size = t.size()?.min(MAX_TASK_SIZE);
        let BtfTypeData::Struct(members) = &t.data else {
            return None;
        };
        let mut out = TaskLayout {
            size,
            ..TaskLayout::default()
        };
        for m in members {
            // Whole bytes only; a bitfield is never one of these.
            if m.bitfield_size != 0 || !m.bits_offset.is_multiple_of(8) {
                continue;
            }
            let off = m.bits_offset / 8;
            let len = btf.resolve_size(m.type_id).unwrap_or(0);
            if u64::from(off) + u64::from(len) > u64::from(size) {
                continue;
            }
            match btf.str_at(m.name_off) {
                "pid" if len == 4 => out.pid = Some(off),
                "tgid" if len == 4 => out.tgid = Some(off),
                "comm" if len > 0 => out.comm = Some((off, len)),
                _ => {}
            }
        }
        Some(out)
    }

    /// The stand-in task's bytes for a caller with these ids and comm.
    fn fill(&self, pid: u32, tgid: u32, comm: &[u8; 16]) -> Box<[u64]> {
        let size = if self.size == 0 {
            DEFAULT_TASK_SIZE
        } else {
            self.size
        };
        let mut words = vec![0u64; (size as usize).div_ceil(8)].into_boxed_slice();
        // SAFETY: the u64 buffer viewed as its bytes, for as long as `words`.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 8)
        };
        let mut put = |off: u32, v: &[u8]| {
            let off = off as usize;
            if let Some(dst) = bytes.get_mut(off..off + v.len()) {
                dst.copy_from_slice(v);
            }
        };
        if let Some(off) = self.pid {
            put(off, &pid.to_le_bytes());
        }
        if let Some(off) = self.tgid {
            put(off, &tgid.to_le_bytes());
        }
        if let Some((off, len)) = self.comm {
            // The kernel's comm is NUL-terminated within its 16 bytes.
            let n = (len as usize).min(16);
            let mut c = comm[..n].to_vec();
            if let Some(last) = c.last_mut() {
                *last = 0;
            }
            put(off, &c);
        }
        words
    }
}

/// Helpers 35 and 158 call [`TaskLayout::from_btf`] only for programs that
/// call one of them: whether `insns` has such a call.
pub(crate) fn calls_task_helper(insns: &[bpfvm_isa::Insn]) -> bool {
    insns.iter().any(|i| {
        i.code == 0x85
            && i.src_reg == 0
            && matches!(i.imm, 35 | 158 /* get_current_task(_btf) */)
    })
}

/// The address of the run's stand-in task, made on first use and open to
/// the program (read only) for the rest of the run.
fn current_task(ctx: &mut HelperCtx<'_, '_>) -> Result<u64, HelperError> {
    let e = ctx.env::<RunEnv>()?;
    if e.task.is_none() {
        let layout = e.task_layout.unwrap_or_default();
        e.task = Some(layout.fill(e.pid, e.tgid, &e.comm));
    }
    let (addr, len) = match &e.task {
        Some(t) => (t.as_ptr() as u64, (t.len() * 8) as u64),
        None => return Ok(0),
    };
    // A repeated run may have been set up afresh since the last call.
    if !ctx.regions().iter().any(|r| r.start == addr) {
        ctx.register_region(Region::new(addr, len, false, RegionKind::Mem));
    }
    Ok(addr)
}

/// `bpf_get_current_task()` and `bpf_get_current_task_btf()`.
pub(crate) fn get_current_task(
    ctx: &mut HelperCtx<'_, '_>,
    _a: [u64; 5],
) -> Result<HelperOutcome, HelperError> {
    Ok(HelperOutcome::Return(current_task(ctx)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_puts_the_ids_and_comm_where_the_layout_says() {
        let l = TaskLayout {
            size: 64,
            pid: Some(8),
            tgid: Some(12),
            comm: Some((40, 16)),
        };
        let mut comm = [b'x'; 16];
        comm[..4].copy_from_slice(b"bpfv");
        let w = l.fill(0x1234, 0x5678, &comm);
        let b: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(b.len(), 64);
        assert_eq!(&b[8..12], &0x1234u32.to_le_bytes());
        assert_eq!(&b[12..16], &0x5678u32.to_le_bytes());
        assert_eq!(&b[40..44], b"bpfv");
        assert_eq!(b[55], 0, "comm ends with a NUL");
        assert!(b[..8].iter().all(|&x| x == 0));
    }
}
