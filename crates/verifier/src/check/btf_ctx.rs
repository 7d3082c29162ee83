//! Contexts typed by BTF: tracing programs (tp_btf, fentry, fexit, fmod_ret,
//! iter) and LSM programs see their context as an array of u64 arguments of
//! the target's prototype (the kernel's `btf_ctx_access`), and pointer
//! arguments as `PTR_TO_BTF_ID`, through which loads are checked against the
//! pointed-to struct's layout (`btf_struct_access`).
//!
//! The loader resolves the attach target in the target BTF and hands the
//! verifier a [`BtfCtx`]: one [`BtfCtxArg`] per u64 slot, and
//! [`KernelTypes`] to walk the structs pointers lead to. The verifier does not
//! read BTF itself.

use super::*;
use std::sync::Arc;

/// `MAX_BPF_FUNC_ARGS`: the context holds at most this many u64 slots.
pub const MAX_BPF_FUNC_ARGS: i32 = 12;

/// What the verifier asks of the kernel's types.
pub trait KernelTypes: Send + Sync + std::fmt::Debug {
    /// A read of `size` bytes at `off` into struct `type_id` (the kernel's
    /// `btf_struct_walk`): what it gives, or the verifier's message.
    fn struct_access(&self, type_id: u32, off: u32, size: u32) -> Result<FieldRead, String>;
    /// The struct's name (`task_struct`).
    fn name(&self, type_id: u32) -> String;
    /// The id of struct `name` (`tcp_request_sock`), for the kernel objects
    /// helpers and kfuncs hand out, which carry no type id of their own.
    fn struct_id(&self, name: &str) -> Option<u32>;
}

/// What a read through a BTF pointer gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldRead {
    Scalar,
    /// A pointer member to struct `type_id`; `rcu`: the member is one the
    /// kernel lists as RCU-protected (`BTF_TYPE_SAFE_RCU`: a task's
    /// `cpus_ptr`, `real_parent`, ...).
    Ptr {
        type_id: u32,
        rcu: bool,
        /// The member's pointer is tagged `__rcu` (`btf_type_tag("rcu")`):
        /// it may be NULL.
        rcu_tag: bool,
    },
}

/// One u64 slot of the context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BtfCtxArg {
    /// An integer, enum or struct passed by value, a `void *` or an integer
    /// pointer: a scalar of the access size.
    Scalar,
    /// A `void *` or integer pointer: a scalar, read whole (8 bytes).
    ScalarPtr,
    /// A pointer to struct `type_id`: `PTR_TO_BTF_ID` (8-byte reads only).
    Ptr {
        type_id: u32,
        name: String,
        /// `PTR_MAYBE_NULL` (iterator elements, `__nullable` parameters).
        nullable: bool,
        /// `PTR_TRUSTED` (tp_btf, iter, some LSM hooks).
        trusted: bool,
    },
    /// Not readable: the kernel's log line saying why.
    Refused(String),
}

/// The context of a BTF-typed program.
#[derive(Clone, Debug)]
pub struct BtfCtx {
    /// The target as the kernel's messages name it (`func '%s'`).
    pub func: String,
    /// Slots 0.. of the context; a slot past the end "doesn't have" an argument.
    pub args: Vec<BtfCtxArg>,
    pub types: Arc<dyn KernelTypes>,
    /// The return values the attach target allows (an LSM hook's:
    /// `bpf_lsm_get_retval_range`), checked on R0's 32-bit value; `None`:
    /// any.
    pub ret_range: Option<(i32, i32)>,
}

/// A `PTR_TO_BTF_ID` to kernel struct `type_id`; a struct the kfunc and
/// helper prototypes know by name (`task_struct`, `cgroup`, `sk_buff`, ...)
/// is also that object for them.
fn btf_ptr(c: &BtfCtx, type_id: u32) -> Reg {
    let mut r = Reg::ptr(RegType::BtfId);
    r.btf_id = type_id;
    let name = c.types.name(type_id);
    if let Some((o, _)) = crate::kfuncs::OBJS.iter().find(|(_, n)| *n == name) {
        r.kf.obj = o.as_u8();
    }
    r
}

impl Verifier<'_> {
    /// `tracing_prog_is_valid_access` / `btf_ctx_access`: a read of the
    /// context of a BTF-typed program.
    pub(super) fn check_btf_ctx(
        &mut self,
        c: &BtfCtx,
        off: i32,
        size: i32,
        write: bool,
    ) -> Result<Option<Reg>, Fail> {
        let invalid_access = |v: &Self| {
            v.err::<Option<Reg>>(unsafe_(format!(
                "invalid bpf_context access off={off} size={size}"
            )))
        };
        if !(0..8 * MAX_BPF_FUNC_ARGS).contains(&off) || write || size <= 0 || off % size != 0 {
            return invalid_access(self);
        }
        if off % 8 != 0 {
            self.btf_ctx_log(format!(
                "func '{}' offset {off} is not multiple of 8",
                c.func
            ));
            return invalid_access(self);
        }
        let arg = (off / 8) as usize;
        let Some(a) = c.args.get(arg) else {
            self.btf_ctx_log(format!("func '{}' doesn't have {arg}-th argument", c.func));
            return invalid_access(self);
        };
        match a {
            BtfCtxArg::Scalar => Ok(None),
            BtfCtxArg::ScalarPtr if size != 8 => {
                self.btf_ctx_log(format!("func '{}' size {size} must be 8", c.func));
                invalid_access(self)
            }
            BtfCtxArg::ScalarPtr => Ok(None),
            BtfCtxArg::Refused(why) => {
                self.btf_ctx_log(why.clone());
                invalid_access(self)
            }
            BtfCtxArg::Ptr {
                type_id,
                name,
                nullable,
                trusted,
            } => {
                if size != 8 {
                    self.btf_ctx_log(format!("func '{}' size {size} must be 8", c.func));
                    return invalid_access(self);
                }
                self.btf_ctx_log(format!(
                    "func '{}' arg{arg} has btf_id {type_id} type STRUCT '{name}'",
                    c.func
                ));
                let mut r = btf_ptr(c, *type_id);
                if *trusted {
                    r.kf.flags |= crate::kfuncs::KFI_TRUSTED;
                }
                if *nullable {
                    r.maybe_null = true;
                    r.id = self.new_id();
                }
                Ok(Some(r))
            }
        }
    }

    /// A load through a `PTR_TO_BTF_ID` of a kernel type (`btf_struct_access`).
    pub(super) fn check_btf_struct_load(
        &mut self,
        regno: u8,
        reg: &Reg,
        off: i64,
        size: i32,
        write: bool,
        in_rcu: bool,
    ) -> Result<Option<Reg>, Fail> {
        let Some(c) = self.opts.btf_ctx.clone() else {
            return self.err(unsafe_(format!(
                "R{regno} is a BTF pointer without the kernel's types"
            )));
        };
        let name = c.types.name(reg.btf_id);
        if write {
            return self.err(unsafe_("only read is supported".to_string()));
        }
        if !reg.is_const() {
            return self.err(unsafe_(format!(
                "R{regno} is ptr_{name} invalid variable offset: off={}, var_off={}",
                reg.off,
                reg.var_off.text()
            )));
        }
        let off = off + reg.var_off.value as i64;
        if off < 0 {
            return self.err(unsafe_(format!(
                "R{regno} is ptr_{name} invalid negative access: off={off}"
            )));
        }
        let Ok(off32) = u32::try_from(off) else {
            return self.err(unsafe_(format!(
                "access beyond struct {name} at off {off} size {size}"
            )));
        };
        match c.types.struct_access(reg.btf_id, off32, size as u32) {
            Ok(FieldRead::Scalar) => Ok(Some(Reg::unknown().clone_low(size))),
            Ok(FieldRead::Ptr {
                type_id,
                rcu,
                rcu_tag,
            }) => {
                use crate::kfuncs::{KFI_RCU, KFI_UNTRUSTED};
                let mut r = btf_ptr(&c, type_id);
                // check_ptr_to_btf_access: what a pointer member read through
                // `reg` may be trusted for.
                let untrusted = reg.kf.flags & KFI_UNTRUSTED != 0;
                let parent_ok =
                    crate::kfuncs::is_trusted(reg) || (!untrusted && reg.kf.flags & KFI_RCU != 0);
                if untrusted {
                    // Read through an untrusted pointer: untrusted too.
                    r.kf.flags |= KFI_UNTRUSTED;
                } else if parent_ok {
                    if in_rcu && !reg.maybe_null {
                        if rcu {
                            r.kf.flags |= KFI_RCU;
                        } else if rcu_tag {
                            // An `__rcu` member may be NULL.
                            r.kf.flags |= KFI_RCU;
                            r.maybe_null = true;
                            r.id = self.new_id();
                        }
                    } else {
                        // Outside an RCU section (or through a pointer that
                        // may be NULL) the kernel marks it untrusted rather
                        // than leave a plain pointer helpers would take.
                        r.kf.flags |= KFI_UNTRUSTED;
                    }
                }
                Ok(Some(r))
            }
            Err(msg) => self.err(unsafe_(msg)),
        }
    }

    fn btf_ctx_log(&mut self, line: String) {
        if self.opts.log_level > 0 {
            self.log.push_str(&line);
            self.log.push('\n');
        }
    }
}
