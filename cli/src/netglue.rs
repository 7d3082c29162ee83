//! The daemon's side of `net attach|detach|list`: the XDP datapath of live
//! interfaces (bpfvm-net), rendered in `bpftool net list`'s layout.

use crate::proto::{Format, Listing, NetAttachment, Response};
use crate::render;
use bpfvm::{BpfCmd, BpfReply, ProgObj, Runtime};
use bpfvm_net::{Datapath, NetError};
use serde_json::json;
use std::sync::{Mutex, OnceLock};

/// Printed on every attach: what differs from the kernel's hook.
pub const HOST_COPY_NOTE: &str =
    "Note: bpfvm runs XDP in generic mode over AF_PACKET: the host stack still \
receives its own copy of every frame, whatever the program's verdict.";

/// Attachments of the daemon's runtime. The datapath is created on first use.
#[derive(Default)]
pub struct NetState {
    dp: OnceLock<Datapath>,
    /// Serialises attach/detach so list() sees whole changes.
    ops: Mutex<()>,
}

fn net_err(e: &NetError) -> String {
    render::error_chain(e)
}

impl NetState {
    fn dp(&self, rt: &Runtime) -> &Datapath {
        self.dp.get_or_init(|| Datapath::new(rt.clone()))
    }

    /// Ids of attached programs (they keep their object records alive).
    pub fn attached_prog_ids(&self) -> Vec<u32> {
        match self.dp.get() {
            Some(dp) => dp
                .list()
                .iter()
                .filter(|a| a.stopped.is_none())
                .map(|a| a.prog_id)
                .collect(),
            None => Vec::new(),
        }
    }

    /// (interface, program id) of each live attachment.
    pub fn attachments(&self) -> Vec<(String, u32)> {
        match self.dp.get() {
            Some(dp) => dp
                .list()
                .into_iter()
                .filter(|a| a.stopped.is_none())
                .map(|a| (a.ifname, a.prog_id))
                .collect(),
            None => Vec::new(),
        }
    }

    pub fn attach(
        &self,
        rt: &Runtime,
        p: &ProgObj,
        dev: &str,
        overwrite: bool,
        f: Format,
    ) -> Result<Response, String> {
        let _g = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        let fd = match rt.bpf(BpfCmd::ProgGetFdById { id: p.id }) {
            Ok(BpfReply::Prog(fd)) => fd,
            _ => return Err(format!("get by id ({}): No such file or directory", p.id)),
        };
        self.dp(rt)
            .attach(dev, fd, overwrite)
            .map_err(|e| format!("interface xdp attach failed: {}", net_err(&e)))?;
        let mut r = Response::out(if f.is_json() {
            "null\n".into()
        } else {
            String::new()
        });
        r.data = Some(json!({ "note": HOST_COPY_NOTE }));
        Ok(r)
    }

    pub fn detach(&self, dev: &str, f: Format) -> Result<Response, String> {
        let _g = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(dp) = self.dp.get() {
            match dp.detach(dev) {
                Ok(_) | Err(NetError::NotAttached { .. }) => {}
                Err(e) => return Err(format!("interface xdp detach failed: {}", net_err(&e))),
            }
        } else {
            // Nothing was ever attached; still check the name as bpftool would.
            bpfvm_net::ifindex_of(dev)
                .map_err(|e| format!("invalid devname {dev}: {}", net_err(&e)))?;
        }
        Ok(Response::out(if f.is_json() {
            "null\n".into()
        } else {
            String::new()
        }))
    }

    /// The live attachments (on `dev` only, if given), for the client to render.
    pub fn list(&self, dev: Option<&str>) -> Listing {
        let all = self.dp.get().map(|dp| dp.list()).unwrap_or_default();
        let items = all
            .into_iter()
            .filter(|a| a.stopped.is_none() && dev.is_none_or(|d| d == a.ifname))
            .map(|a| NetAttachment {
                devname: a.ifname,
                ifindex: a.ifindex,
                mode: a.mode.to_string(),
                id: a.prog_id,
            })
            .collect();
        Listing::Net { items }
    }
}
