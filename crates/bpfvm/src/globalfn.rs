//! Global functions: the subprograms whose BTF `FUNC` has global linkage,
//! with their arguments typed from the `FUNC_PROTO` and `arg:` decl tags as
//! the kernel types them (`btf_prepare_func_args`): an integer or enum is a
//! scalar; a pointer tagged `arg:ctx`, or to the program type's context
//! struct, is the context; another pointer is memory of its target's size,
//! NULL allowed unless tagged `arg:nonnull`. The verifier checks each call
//! against these and verifies the function once on its own.

use bpfvm_obj::btf::{Btf, BtfKind, BtfTypeData};
use bpfvm_obj::FuncInfo;
use bpfvm_verifier::{GlobalArg, GlobalFunc};

/// `BTF_FUNC_GLOBAL`
const BTF_FUNC_GLOBAL: u16 = 1;

/// The context struct names of a program type (`btf_is_prog_ctx_type`).
fn ctx_names(prog_type: u32) -> &'static [&'static str] {
    match prog_type {
        1 | 3 | 4 | 8 | 10..=12 | 14 | 19 => &["__sk_buff"],
        6 => &["xdp_md"],
        2 => &["pt_regs", "user_pt_regs", "bpf_user_pt_regs_t"],
        7 => &["bpf_perf_event_data"],
        9 => &["bpf_sock"],
        13 => &["bpf_sock_ops"],
        16 => &["sk_msg_md"],
        17 | 24 => &["bpf_raw_tracepoint_args"],
        18 => &["bpf_sock_addr"],
        21 => &["sk_reuseport_md"],
        22 => &["__sk_buff"],
        23 => &["bpf_sysctl"],
        25 => &["bpf_sockopt"],
        30 => &["bpf_sk_lookup"],
        32 => &["bpf_nf_ctx"],
        _ => &[],
    }
}

/// The global functions among `func_info` (the first record is the program
/// itself and is skipped).
pub(crate) fn global_funcs(btf: &Btf, func_info: &[FuncInfo], prog_type: u32) -> Vec<GlobalFunc> {
    let mut out = Vec::new();
    for fi in func_info.iter().skip(1) {
        let Ok(f) = btf.type_by_id(fi.type_id) else {
            continue;
        };
        if f.kind() != BtfKind::Func || f.func_linkage != BTF_FUNC_GLOBAL {
            continue;
        }
        let name = btf.name(fi.type_id).to_string();
        let Ok(proto) = btf.type_by_id(f.size_or_type) else {
            continue;
        };
        let BtfTypeData::FuncProto(params) = &proto.data else {
            continue;
        };
        // The kernel supports global functions that return an integer or an
        // enum only (btf_prepare_func_args); a call of any other is refused.
        let ret_scalar = return_type(btf, fi.type_id)
            .is_some_and(|t| matches!(t.kind(), BtfKind::Int | BtfKind::Enum | BtfKind::Enum64));
        let args = if ret_scalar {
            params
                .iter()
                .enumerate()
                .map(|(i, p)| arg(btf, fi.type_id, i, p.type_id, prog_type, &name))
                .collect::<Result<Vec<_>, String>>()
        } else {
            Err(format!(
                "Global function {name}() doesn't return scalar. Only those are supported."
            ))
        };
        out.push(GlobalFunc {
            insn_idx: fi.insn_idx,
            name,
            args,
        });
    }
    out
}

/// The type function `func` returns, modifiers and typedefs skipped; `None`
/// for `void` or a malformed prototype.
pub(crate) fn return_type(btf: &Btf, func: u32) -> Option<&bpfvm_obj::btf::BtfType> {
    let proto = btf
        .type_by_id(btf.type_by_id(func).ok()?.size_or_type)
        .ok()?;
    let ret = btf.skip_modifiers(proto.size_or_type).ok()?;
    if ret == 0 {
        return None;
    }
    btf.type_by_id(ret).ok()
}

/// The `arg:` decl tags on parameter `i` of function `func`.
fn tags(btf: &Btf, func: u32, i: usize) -> Vec<String> {
    btf.iter()
        .filter(|(_, t)| {
            matches!(t.data, BtfTypeData::DeclTag { component_idx } if component_idx == i as i32)
                && t.size_or_type == func
        })
        .filter_map(|(_, t)| {
            btf.str_at(t.name_off)
                .strip_prefix("arg:")
                .map(String::from)
        })
        .collect()
}

fn arg(
    btf: &Btf,
    func: u32,
    i: usize,
    type_id: u32,
    prog_type: u32,
    fname: &str,
) -> Result<GlobalArg, String> {
    let tags = tags(btf, func, i);
    if let Some(t) = tags
        .iter()
        .find(|t| !matches!(t.as_str(), "ctx" | "nonnull" | "nullable" | "trusted"))
    {
        return Err(format!("arg#{i} has unsupported set of tags ({t})"));
    }
    let tid = btf.skip_modifiers(type_id).map_err(|e| e.to_string())?;
    let t = btf.type_by_id(tid).map_err(|e| e.to_string())?;
    if t.kind() != BtfKind::Ptr {
        if !tags.is_empty() {
            return Err(format!(
                "arg#{i} has pointer tag, but is not a pointer type"
            ));
        }
        return match t.kind() {
            BtfKind::Int | BtfKind::Enum | BtfKind::Enum64 => Ok(GlobalArg::Scalar),
            k => Err(format!(
                "Arg#{i} type {} in {fname}() is not supported yet.",
                k.name()
            )),
        };
    }
    let target = btf
        .skip_modifiers(t.size_or_type)
        .map_err(|e| e.to_string())?;
    let target_name = if target == 0 { "" } else { btf.name(target) };
    if tags.iter().any(|t| t == "ctx") || ctx_names(prog_type).contains(&target_name) {
        if tags.iter().any(|t| t != "ctx") {
            return Err(format!("arg#{i} has invalid combination of tags"));
        }
        return Ok(GlobalArg::Ctx);
    }
    if tags.iter().any(|t| t == "trusted") {
        // A CO-RE flavour (`task_struct___local`) names the kernel's type.
        let essential = match target_name.rfind("___") {
            Some(i) if i > 0 => &target_name[..i],
            _ => target_name,
        };
        let obj = bpfvm_verifier::kfuncs::OBJS
            .iter()
            .position(|(_, n)| *n == essential)
            .ok_or_else(|| {
                format!(
                    "arg#{i} is a trusted pointer to '{target_name}', which bpfvm does not model"
                )
            })?;
        return Ok(GlobalArg::Trusted {
            obj: obj as u8 + 1,
            nullable: tags.iter().any(|t| t == "nullable"),
        });
    }
    let size = if target == 0 {
        Err("void".to_string())
    } else {
        btf.resolve_size(target).map_err(|e| e.to_string())
    };
    let size = size.map_err(|e| {
        format!("arg#{i} reference type('{target_name}') size cannot be determined: {e}")
    })?;
    Ok(GlobalArg::Mem {
        size,
        nullable: !tags.iter().any(|t| t == "nonnull"),
    })
}
