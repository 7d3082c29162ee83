//! The chapter's walkthrough end to end, on a live veth pair: load, list, show
//! (by id, name, tag, pin), dump xlated, attach to XDP, send three frames from the
//! peer, read the trace pipe, read the globals through BTF, detach, unload with
//! `rm`. Runs in two fresh network namespaces made by the test (the daemon is
//! started inside the first); skips with a message when not root or when
//! `ip netns` is unavailable.

mod common;

use common::{Env, Out};
use std::os::fd::AsRawFd;
use std::process::Command;

struct Netns {
    a: String,
    b: String,
}

impl Netns {
    fn create() -> Result<Netns, String> {
        let id = std::process::id();
        let ns = Netns {
            a: format!("bpfvm-wt-a-{id}"),
            b: format!("bpfvm-wt-b-{id}"),
        };
        let ip = |args: &[&str]| -> Result<(), String> {
            let o = Command::new("ip")
                .args(args)
                .output()
                .map_err(|e| format!("ip: {e}"))?;
            if !o.status.success() {
                return Err(format!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            Ok(())
        };
        ip(&["netns", "add", &ns.a])?;
        ip(&["netns", "add", &ns.b])?;
        for n in [&ns.a, &ns.b] {
            // No IPv6 neighbour discovery: the only frames are the test's.
            for k in ["all", "default"] {
                let _ = Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        n,
                        "sysctl",
                        "-qw",
                        &format!("net.ipv6.conf.{k}.disable_ipv6=1"),
                    ])
                    .output();
            }
        }
        ip(&[
            "link", "add", "veth0", "netns", &ns.a, "type", "veth", "peer", "name", "veth1",
            "netns", &ns.b,
        ])?;
        ip(&["-n", &ns.a, "link", "set", "veth0", "up"])?;
        ip(&["-n", &ns.b, "link", "set", "veth1", "up"])?;
        Ok(ns)
    }

    /// Sends `n` broadcast frames out of veth1 (in namespace b), from a thread that
    /// enters the namespace (setns affects only the calling thread).
    fn send_frames(&self, n: usize) {
        let path = format!("/var/run/netns/{}", self.b);
        std::thread::spawn(move || {
            let f = std::fs::File::open(&path).expect("netns file");
            // SAFETY: setns on an open namespace fd, for this thread only.
            assert_eq!(
                unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) },
                0,
                "setns"
            );
            let proto = (0x0003u16).to_be() as i32; // ETH_P_ALL
                                                    // SAFETY: plain socket(2) call.
            let s = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto) };
            assert!(s >= 0, "AF_PACKET socket");
            let name = std::ffi::CString::new("veth1").unwrap();
            // SAFETY: valid C string.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            assert!(ifindex > 0);
            // SAFETY: zeroed sockaddr_ll is valid; fields set below.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto as u16;
            sll.sll_ifindex = ifindex as i32;
            sll.sll_halen = 6;
            let mut frame = vec![0xffu8; 6];
            frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5]);
            frame.extend_from_slice(b"bpfvm walkthrough frame");
            frame.resize(60, 0);
            for _ in 0..n {
                // SAFETY: buffer and address are valid for the call.
                let r = unsafe {
                    libc::sendto(
                        s,
                        frame.as_ptr().cast(),
                        frame.len(),
                        0,
                        (&sll as *const libc::sockaddr_ll).cast(),
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    )
                };
                assert_eq!(r, frame.len() as isize, "sendto");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            // SAFETY: closing our socket.
            unsafe { libc::close(s) };
        })
        .join()
        .expect("sender thread");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

/// `bpfvm ARGS` inside namespace `ns` (the daemon it may start stays there).
fn run_in(env: &Env, ns: &str, args: &[&str]) -> Out {
    let o = Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_bpfvm")])
        .args(args)
        .env("BPFVM_STATE_DIR", env.state())
        .current_dir(common::fixtures())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("ip netns exec");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn walkthrough_on_a_veth_pair() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping walkthrough: needs root (network namespaces, AF_PACKET)");
        return;
    }
    let ns = match Netns::create() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("skipping walkthrough: cannot make network namespaces: {e}");
            return;
        }
    };
    let env = Env::new();
    let b = |args: &[&str]| run_in(&env, &ns.a, args);

    b(&["prog", "load", "obj/hello.o", "/sys/fs/bpf/hello"]).ok();
    let list = b(&["prog", "list"]).ok().stdout;
    let id: String = list.split(':').next().unwrap().to_string();
    assert!(
        list.contains(&format!("{id}: xdp  name hello  tag eb25a4958caccc29  gpl")),
        "{list}"
    );
    let pretty = b(&["prog", "show", "id", &id, "--pretty"]).ok().stdout;
    assert!(pretty.contains("\"name\": \"hello\""), "{pretty}");
    let by_id = b(&["prog", "show", "id", &id]).ok().stdout;
    for t in [
        ["name", "hello"],
        ["tag", "eb25a4958caccc29"],
        ["pinned", "/sys/fs/bpf/hello"],
    ] {
        assert_eq!(b(&["prog", "show", t[0], t[1]]).ok().stdout, by_id, "{t:?}");
    }
    let xl = b(&["prog", "dump", "xlated", "name", "hello"]).ok().stdout;
    assert!(
        xl.starts_with(
            "int hello(struct xdp_md * ctx):\n; bpf_printk(\"Hello World %d\", counter);\n"
        ),
        "{xl}"
    );
    let maps = b(&["map", "list"]).ok().stdout;
    assert!(
        maps.contains("name hello.bss") && maps.contains("name hello.rodata"),
        "{maps}"
    );

    let att = b(&["net", "attach", "xdp", "id", &id, "dev", "veth0"]).ok();
    assert!(
        att.stderr
            .contains("host stack still receives its own copy"),
        "{}",
        att.stderr
    );
    let nl = b(&["net", "list"]).ok().stdout;
    assert!(nl.starts_with("xdp:\nveth0("), "{nl}");
    assert!(nl.contains(&format!(") generic id {id}\n")), "{nl}");

    ns.send_frames(3);
    let trace = b(&["prog", "tracelog", "--max-lines", "3", "--timeout", "10"])
        .ok()
        .stdout;
    for i in 0..3 {
        assert!(
            trace.contains(&format!("bpf_trace_printk: Hello World {i}\n")),
            "{trace}"
        );
    }
    let bss = b(&["map", "dump", "name", "hello.bss"]).ok().stdout;
    assert!(bss.contains("\"counter\": 3"), "{bss}");
    let ro = b(&["map", "dump", "name", "hello.rodata"]).ok().stdout;
    assert!(ro.contains("\"hello.____fmt\": \"Hello World %d\""), "{ro}");

    b(&["net", "detach", "xdp", "dev", "veth0"]).ok();
    let nl = b(&["net", "list"]).ok().stdout;
    assert_eq!(nl, "xdp:\n\ntc:\n\nflow_dissector:\n\n");
    b(&["prog", "show", "id", &id]).ok();

    std::fs::remove_file(env.state().join("fs/sys/fs/bpf/hello")).unwrap();
    let gone = b(&["prog", "show", "id", &id]);
    assert_eq!(gone.code, 255, "{}", gone.stdout);
    assert!(b(&["prog", "list"]).ok().stdout.is_empty());
}
