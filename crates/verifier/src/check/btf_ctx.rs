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
    /// `btf_struct_walk`): what it gives, or the refusal (its message, and
    /// by its kind the kernel's errno: EACCES for a read no member allows,
    /// EINVAL for a hole or a type that is not a struct).
    fn struct_access(&self, type_id: u32, off: u32, size: u32) -> Result<FieldRead, VerifierError>;
    /// The struct's name (`task_struct`).
    fn name(&self, type_id: u32) -> String;
    /// The id of struct `name` (`tcp_request_sock`), for the kernel objects
    /// helpers and kfuncs hand out, which carry no type id of their own.
    fn struct_id(&self, name: &str) -> Option<u32>;
    /// Offset and size of member `name` of struct `type_id`, looking into
    /// its first member when that is a struct (`struct bpf_array` begins
    /// with its `struct bpf_map map`).
    fn member(&self, _type_id: u32, _name: &str) -> Option<(u32, u32)> {
        None
    }
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
        /// Read through a union of more than one member: `PTR_UNTRUSTED`.
        untrusted: bool,
        /// Tagged `__user` (`MEM_USER`): not to be dereferenced.
        user: bool,
        /// Tagged `__percpu` (`MEM_PERCPU`): not to be dereferenced.
        percpu: bool,
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
fn btf_ptr(types: &dyn KernelTypes, type_id: u32) -> Reg {
    let mut r = Reg::ptr(RegType::BtfId);
    r.btf_id = type_id;
    let name = types.name(type_id);
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
                let mut r = btf_ptr(c.types.as_ref(), *type_id);
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
        let Some(types) = self.kernel_types() else {
            return self.err(unsafe_(format!(
                "R{regno} is a BTF pointer without the kernel's types"
            )));
        };
        let name = types.name(reg.btf_id);
        let mem = |f: u16| reg.kf.flags & f != 0;
        if mem(crate::kfuncs::KFI_USER) || mem(crate::kfuncs::KFI_PERCPU) {
            let what = if mem(crate::kfuncs::KFI_USER) {
                "user"
            } else {
                "percpu"
            };
            return self.err(unsafe_(format!(
                "R{regno} is ptr_{name} access {what} memory: off={}",
                off + reg.off as i64
            )));
        }
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
        match types.struct_access(reg.btf_id, off32, size as u32) {
            Ok(FieldRead::Scalar) => Ok(Some(Reg::unknown().clone_low(size))),
            Ok(FieldRead::Ptr {
                type_id,
                rcu,
                rcu_tag,
                untrusted: walked_union,
                user,
                percpu,
            }) => {
                use crate::kfuncs::{KFI_PERCPU, KFI_RCU, KFI_UNTRUSTED, KFI_USER};
                let mut r = btf_ptr(types.as_ref(), type_id);
                // What the walk itself found: a union on the way, the
                // member's tag.
                let mut walk = 0;
                if walked_union {
                    walk |= KFI_UNTRUSTED;
                }
                if user {
                    walk |= KFI_USER;
                }
                if percpu {
                    walk |= KFI_PERCPU;
                }
                // check_ptr_to_btf_access: what a pointer member read through
                // `reg` may be trusted for.
                let untrusted = reg.kf.flags & KFI_UNTRUSTED != 0;
                let parent_ok =
                    crate::kfuncs::is_trusted(reg) || (!untrusted && reg.kf.flags & KFI_RCU != 0);
                r.kf.flags = if untrusted {
                    // Read through an untrusted pointer: untrusted too.
                    KFI_UNTRUSTED
                } else if parent_ok {
                    if in_rcu && !reg.maybe_null {
                        if rcu {
                            walk | KFI_RCU
                        } else if rcu_tag {
                            // An `__rcu` member may be NULL.
                            r.maybe_null = true;
                            r.id = self.new_id();
                            walk | KFI_RCU
                        } else {
                            walk
                        }
                    } else {
                        // Outside an RCU section (or through a pointer that
                        // may be NULL) the kernel marks it untrusted rather
                        // than leave a plain pointer helpers would take.
                        KFI_UNTRUSTED
                    }
                } else {
                    // A plain (legacy) pointer gives plain pointers, keeping
                    // what the walk found.
                    walk
                };
                Ok(Some(r))
            }
            Err(e) => self.err(e),
        }
    }

    /// The target kernel's types: the load's, else the attach target's.
    pub(super) fn kernel_types(&self) -> Option<Arc<dyn KernelTypes>> {
        self.opts
            .kernel_types
            .clone()
            .or_else(|| self.opts.btf_ctx.as_ref().map(|c| c.types.clone()))
    }

    fn btf_ctx_log(&mut self, line: String) {
        if self.opts.log_level > 0 {
            self.log.push_str(&line);
            self.log.push('\n');
        }
    }
}
