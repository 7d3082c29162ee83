//! End to end on live interfaces: two network namespaces joined by a veth pair
//! (veth0 in `-a`, veth1 in `-b`, addresses from 198.18.0.0/15, the RFC 2544
//! benchmarking range, inside the namespaces only). Programs attach to veth0; the
//! peer side sends from veth1. The namespaces are deleted by a guard, also when
//! the test fails. Needs root and iproute2; skips with a message otherwise.

use bpfvm::isa::Insn;
use bpfvm::{BpfCmd, BpfReply, Object, ProgLoadAttr, Runtime};
use bpfvm_net::frame::complete_l4_checksum;
use bpfvm_net::packet::{RxRing, TxSocket};
use bpfvm_net::{ifindex_of, Datapath, NetError, ATTACH_MODE};
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADDR_A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const ADDR_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Deletes the namespaces (and with them the veth pair) however the test ends.
struct Netns {
    names: Vec<String>,
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.names {
            if let Err(e) = ip(&["netns", "del", n]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some(
            "not root (network namespaces and AF_PACKET need CAP_SYS_ADMIN and CAP_NET_RAW)".into(),
        );
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("the `ip` command (iproute2) is missing".into());
    }
    None
}

fn sh_in(ns: &str, script: &str) -> Result<(), String> {
    ip(&["netns", "exec", ns, "sh", "-c", script]).map(drop)
}

fn setup(tag: &str) -> Result<Netns, String> {
    let pid = std::process::id();
    let a = format!("bpfvm-test-{pid}-{tag}a");
    let b = format!("bpfvm-test-{pid}-{tag}b");
    let mut g = Netns { names: Vec::new() };
    for n in [&a, &b] {
        ip(&["netns", "add", n])?;
        g.names.push(n.clone());
        // No IPv6: no router solicitations or MLD reports, so the only frames on the
        // link are the test's own.
        sh_in(
            n,
            "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6",
        )?;
    }
    ip(&[
        "-n", &a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", &b,
    ])?;
    ip(&["-n", &a, "addr", "add", "198.18.0.1/24", "dev", "veth0"])?;
    ip(&["-n", &b, "addr", "add", "198.18.0.2/24", "dev", "veth1"])?;
    ip(&["-n", &a, "link", "set", "veth0", "up"])?;
    ip(&["-n", &b, "link", "set", "veth1", "up"])?;
    // A second pair, the target of redirects: veth2 (a) -> veth3 (b).
    ip(&[
        "-n", &a, "link", "add", "veth2", "type", "veth", "peer", "name", "veth3", "netns", &b,
    ])?;
    ip(&["-n", &a, "link", "set", "veth2", "up"])?;
    ip(&["-n", &b, "link", "set", "veth3", "up"])?;
    Ok(g)
}

/// Moves the calling thread into a named network namespace.
fn enter(ns: &str) {
    let f =
        File::open(format!("/run/netns/{ns}")).unwrap_or_else(|e| panic!("/run/netns/{ns}: {e}"));
    // SAFETY: setns on an open namespace fd; affects only this thread.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}

fn mac_of(ns: &str, dev: &str) -> [u8; 6] {
    let out = ip(&["-n", ns, "-j", "link", "show", "dev", dev]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let s = v[0]["address"].as_str().unwrap();
    let mut m = [0u8; 6];
    for (i, p) in s.split(':').enumerate() {
        m[i] = u8::from_str_radix(p, 16).unwrap();
    }
    m
}

fn load(rt: &Runtime, obj: &str, prog: &str) -> bpfvm::ProgFd {
    let o = Object::open(root().join("tests/fixtures/obj").join(obj)).unwrap();
    rt.load_object(&o, None)
        .unwrap()
        .prog(prog)
        .unwrap()
        .clone()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An Ethernet/IPv4/UDP frame with valid checksums.
fn udp_frame(
    dst: [u8; 6],
    src: [u8; 6],
    sip: Ipv4Addr,
    dip: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let tot = (20 + 8 + payload.len()) as u16;
    let mut iph = [0u8; 20];
    iph[0] = 0x45;
    iph[2..4].copy_from_slice(&tot.to_be_bytes());
    iph[6] = 0x40;
    iph[8] = 64;
    iph[9] = 17;
    iph[12..16].copy_from_slice(&sip.octets());
    iph[16..20].copy_from_slice(&dip.octets());
    let mut sum: u32 = iph
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    iph[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&iph);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    assert!(complete_l4_checksum(&mut f));
    f
}

/// Runs `body` on a fresh thread (so namespace switches stay there); the guard in
/// the caller outlives it and cleans up even if it panics.
fn in_thread(body: impl FnOnce() + Send + 'static) {
    if let Err(p) = std::thread::spawn(body).join() {
        std::panic::resume_unwind(p);
    }
}

#[test]
fn xdp_on_veth_pair() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP xdp_on_veth_pair: {why}");
        return;
    }
    let g = setup("").unwrap_or_else(|e| panic!("setting up the namespaces: {e}"));
    let (a, b) = (g.names[0].clone(), g.names[1].clone());
    in_thread(move || run_veth(&a, &b));
    drop(g);
}

fn run_veth(a: &str, b: &str) {
    let mac0 = mac_of(a, "veth0");
    let mac1 = mac_of(b, "veth1");

    // The peer side's sockets, made in namespace b (sockets keep their namespace).
    enter(b);
    let peer_if = ifindex_of("veth1").unwrap();
    let peer_tx = TxSocket::open().unwrap();
    let mut peer_rx = RxRing::open(peer_if).unwrap();
    let mut redirect_rx = RxRing::open(ifindex_of("veth3").unwrap()).unwrap();
    let udp = UdpSocket::bind(SocketAddrV4::new(ADDR_B, 40007)).unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

    enter(a);
    let rt = Runtime::new();
    let dp = Arc::new(Datapath::new(rt.clone()));

    // Errors name the interface and why.
    let hello = load(&rt, "hello.o", "hello");
    let e = dp.attach("nosuchdev0", hello.clone(), false).unwrap_err();
    assert!(matches!(e, NetError::NoDevice { .. }), "{e:?}");
    assert_eq!(e.to_string(), "interface 'nosuchdev0': no such device");
    let e = dp.detach("veth0").unwrap_err();
    assert!(e.to_string().contains("'veth0'"), "{e}");

    // 1. hello: three frames, three trace lines, three XDP_PASS.
    let refs_before = Arc::strong_count(hello.obj());
    let info = dp.attach("veth0", hello.clone(), false).unwrap();
    assert_eq!(
        (info.ifname.as_str(), info.mode, info.replaced),
        ("veth0", ATTACH_MODE, None)
    );
    assert_eq!(info.ifindex, ifindex_of("veth0").unwrap());
    let list = dp.list();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].prog_id, list[0].mode), (hello.id(), "generic"));
    // Frames of the local experimental EtherType 0x88b5: namespace a's stack ignores
    // them, so it sends nothing (no ICMP error, no ARP) that would come back.
    for i in 0..3u8 {
        let mut f = Vec::new();
        f.extend_from_slice(&mac0);
        f.extend_from_slice(&mac1);
        f.extend_from_slice(&[0x88, 0xb5, b'h', i]);
        f.resize(60, 0);
        peer_tx.send(peer_if, &f).unwrap();
    }
    wait_until("three frames through hello", Duration::from_secs(5), || {
        dp.get("veth0").unwrap().stats.rx_frames >= 3
    });
    std::thread::sleep(Duration::from_millis(100));
    let st = dp.get("veth0").unwrap().stats;
    assert_eq!(
        (st.rx_frames, st.pass, st.drop, st.aborted, st.run_errors),
        (3, 3, 0, 0, 0),
        "{st:?}"
    );
    let trace = rt.trace_pipe().snapshot();
    assert_eq!(trace.len(), 3, "{trace:?}");
    for (i, line) in trace.iter().enumerate() {
        assert!(
            line.contains(&format!("bpf_trace_printk: Hello World {i}")),
            "{line}"
        );
        // Attached programs run in softirq context in the kernel; the trace line's
        // context flags say so (a test run shows `b..11`).
        assert!(line.contains("] ..s2. "), "{line}");
    }

    // 2. xdp_parse: a busy hook refuses a second program unless overwrite.
    let parse = load(&rt, "xdp_parse.o", "xdp_parse");
    let e = dp.attach("veth0", parse.clone(), false).unwrap_err();
    assert!(
        matches!(e, NetError::Busy { prog_id, .. } if prog_id == hello.id()),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("interface 'veth0' already has xdp program id"),
        "{e}"
    );
    let info = dp.attach("veth0", parse.clone(), true).unwrap();
    assert_eq!(info.replaced, Some(hello.id()));
    assert_eq!(dp.get("veth0").unwrap().prog_id, parse.id());
    // The replaced program is no longer held by the datapath.
    assert_eq!(Arc::strong_count(hello.obj()), refs_before);

    // A real UDP datagram from namespace b's stack to port 7 (after ARP, which
    // xdp_parse passes to namespace a's stack, which answers). XDP_TX echoes it.
    while peer_rx.next_frame().is_some() {}
    udp.send_to(b"ping", SocketAddrV4::new(ADDR_A, 7)).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = udp
        .recv_from(&mut buf)
        .expect("no echo from XDP_TX within 5 s");
    assert_eq!(&buf[..n], b"ping");
    assert_eq!(from, std::net::SocketAddr::V4(SocketAddrV4::new(ADDR_A, 7)));
    // The frame itself, as namespace b received it: MACs, IPs and ports swapped.
    let mut echoed = None;
    wait_until("the echoed frame on veth1", Duration::from_secs(2), || {
        while let Some(f) = peer_rx.next_frame() {
            let d = f.data;
            if d.len() >= 42
                && d[12..14] == [0x08, 0x00]
                && d[23] == 17
                && d[34..36] == 7u16.to_be_bytes()
            {
                echoed = Some(d.to_vec());
            }
        }
        echoed.is_some()
    });
    let e = echoed.unwrap();
    assert_eq!(&e[0..6], &mac1, "destination MAC is the sender's");
    assert_eq!(&e[6..12], &mac0, "source MAC is veth0's");
    assert_eq!(&e[26..30], &ADDR_A.octets());
    assert_eq!(&e[30..34], &ADDR_B.octets());
    assert_eq!(&e[34..38], &[0, 7, 0x9c, 0x47], "ports 7 -> 40007");
    // The UDP checksum namespace b's stack offloaded was completed before the run,
    // so the echo carries a valid one.
    let mut check = e.clone();
    assert!(complete_l4_checksum(&mut check));
    assert_eq!(check[40..42], e[40..42]);

    let st = dp.get("veth0").unwrap().stats;
    assert_eq!(st.tx, 1, "{st:?}");
    assert!(st.pass >= 1, "the ARP request passes: {st:?}");
    assert_eq!((st.tx_errors, st.run_errors), (0, 0), "{st:?}");

    // 3. Throughput: echo requests as fast as the datapath keeps up (bursts within
    // the ring), every one answered by XDP_TX.
    let n = 3000u64;
    let base_tx = st.tx;
    let t0 = Instant::now();
    for i in 0..n {
        let f = udp_frame(
            mac0,
            mac1,
            ADDR_B,
            ADDR_A,
            41000 + (i % 1000) as u16,
            7,
            b"bench",
        );
        peer_tx.send(peer_if, &f).unwrap();
        if i % 256 == 255 {
            wait_until("a burst to drain", Duration::from_secs(20), || {
                dp.get("veth0").unwrap().stats.tx > base_tx + i
            });
        }
    }
    wait_until("the last burst", Duration::from_secs(20), || {
        dp.get("veth0").unwrap().stats.tx >= base_tx + n
    });
    let el = t0.elapsed();
    let st = dp.get("veth0").unwrap().stats;
    eprintln!(
        "veth datapath: {n} echo frames in {:.1} ms = {:.0} frames/s end to end; mean run {} ns/frame, of which {} ns in the program; ring drops {}",
        el.as_secs_f64() * 1e3,
        n as f64 / el.as_secs_f64(),
        st.run_ns / st.runs().max(1),
        st.prog_ns / st.runs().max(1),
        st.ring_drops
    );
    assert_eq!(
        (st.tx_errors, st.run_errors, st.ring_drops),
        (0, 0, 0),
        "{st:?}"
    );

    // The program's own echo counter agrees with the datapath's.
    let stats_map = rt
        .progs()
        .into_iter()
        .find(|p| p.id == parse.id())
        .unwrap()
        .used_maps
        .iter()
        .find(|m| m.name == "proto_stats")
        .unwrap()
        .id;
    let BpfReply::Bytes(v) = rt
        .bpf(BpfCmd::MapLookupElem {
            map_id: stats_map,
            key: 8u32.to_le_bytes().to_vec(),
            flags: 0,
        })
        .unwrap()
    else {
        panic!("lookup reply")
    };
    assert_eq!(u64::from_le_bytes(v[..8].try_into().unwrap()), st.tx);

    // 4. XDP_REDIRECT, through a devmap slot and through bpf_redirect: the frame
    // leaves by veth2 and arrives on veth3.
    let veth2 = ifindex_of("veth2").unwrap();
    let maps_obj = Object::open(root().join("tests/fixtures/obj/maps.o")).unwrap();
    let maps = rt.load_object(&maps_obj, None).unwrap();
    let devmap = maps.map("m_devmap").unwrap();
    rt.bpf(BpfCmd::MapUpdateElem {
        map_id: devmap.id(),
        key: 0u32.to_le_bytes().to_vec(),
        value: veth2.to_le_bytes().to_vec(),
        flags: 0,
    })
    .unwrap();
    let by_ifindex = rt
        .load_program(ProgLoadAttr {
            prog_type: bpfvm::ProgType::Xdp,
            insns: vec![
                // r1 = ifindex of veth2; r2 = 0; r0 = bpf_redirect(r1, r2); exit
                Insn {
                    code: 0xb7,
                    dst_reg: 1,
                    src_reg: 0,
                    off: 0,
                    imm: veth2 as i32,
                },
                Insn {
                    code: 0xb7,
                    dst_reg: 2,
                    src_reg: 0,
                    off: 0,
                    imm: 0,
                },
                Insn {
                    code: 0x85,
                    dst_reg: 0,
                    src_reg: 0,
                    off: 0,
                    imm: 23,
                },
                Insn {
                    code: 0x95,
                    dst_reg: 0,
                    src_reg: 0,
                    off: 0,
                    imm: 0,
                },
            ],
            license: "GPL".into(),
            name: "redir_ifindex".into(),
            ..ProgLoadAttr::default()
        })
        .unwrap();
    for (prog, marker) in [
        (maps.prog("redirect_dev").unwrap().clone(), b'm'),
        (by_ifindex, b'i'),
    ] {
        let before = dp.get("veth0").map_or(0, |a| {
            if a.prog_id == prog.id() {
                a.stats.redirect
            } else {
                0
            }
        });
        assert_eq!(before, 0);
        dp.attach("veth0", prog.clone(), true).unwrap();
        while redirect_rx.next_frame().is_some() {}
        let mut f = Vec::new();
        f.extend_from_slice(&mac0);
        f.extend_from_slice(&mac1);
        f.extend_from_slice(&[0x88, 0xb5, b'r', marker]);
        f.resize(60, 0);
        peer_tx.send(peer_if, &f).unwrap();
        let mut got = None;
        wait_until(
            "the redirected frame on veth3",
            Duration::from_secs(5),
            || {
                while let Some(r) = redirect_rx.next_frame() {
                    if r.data.get(12..16) == Some(&[0x88, 0xb5, b'r', marker][..]) {
                        got = Some(r.data.to_vec());
                    }
                }
                got.is_some()
            },
        );
        assert_eq!(got.unwrap(), f);
        let st = dp.get("veth0").unwrap().stats;
        assert_eq!((st.redirect, st.redirect_errors), (1, 0), "{st:?}");
    }
    dp.attach("veth0", parse.clone(), true).unwrap();

    // 4. Detach: the thread stops promptly and the program reference goes.
    let parse_refs = Arc::strong_count(parse.obj());
    let t0 = Instant::now();
    let last = dp.detach("veth0").unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "detach took {:?}",
        t0.elapsed()
    );
    assert_eq!(
        (last.prog_id, last.stats.rx_frames),
        (parse.id(), 0),
        "fresh counters after the overwrite"
    );
    assert!(dp.list().is_empty());
    assert_eq!(Arc::strong_count(parse.obj()), parse_refs - 1);
    // Nothing runs any more: an echo request from the UDP socket's own port gets no
    // answer now (while attached, the same request was answered above).
    peer_tx
        .send(
            peer_if,
            &udp_frame(mac0, mac1, ADDR_B, ADDR_A, 40007, 7, b"late"),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(udp
        .set_read_timeout(Some(Duration::from_millis(200)))
        .is_ok());
    assert!(
        udp.recv_from(&mut buf).is_err(),
        "an echo arrived after detach"
    );

    // 5. An interface that goes away stops its datapath thread; list() reports why
    // once, then forgets it.
    dp.attach("veth2", parse.clone(), false).unwrap();
    ip(&["-n", a, "link", "del", "veth2"]).unwrap();
    let mut gone = None;
    wait_until("the veth2 thread to stop", Duration::from_secs(5), || {
        gone = dp
            .list()
            .into_iter()
            .find(|x| x.ifname == "veth2" && x.stopped.is_some());
        gone.is_some()
    });
    let why = gone.unwrap().stopped.unwrap();
    assert!(why.starts_with("interface 'veth2' went away"), "{why}");
    assert!(dp.list().is_empty());
    assert_eq!(Arc::strong_count(parse.obj()), parse_refs - 1);
}

/// CAP_NET_RAW is a per-thread capability: drop it in one thread and attach there.
#[test]
fn attach_without_cap_net_raw_says_so() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIP attach_without_cap_net_raw_says_so: {why}");
        return;
    }
    in_thread(|| {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        const CAP_NET_RAW: u32 = 13;
        let mut h = Header {
            version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
            pid: 0,
        };
        let mut d = [Data::default(); 2];
        // SAFETY: capget/capset with a v3 header and two data words, for this thread.
        unsafe {
            assert_eq!(
                libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()),
                0
            );
            d[0].effective &= !(1 << CAP_NET_RAW);
            assert_eq!(
                libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr()),
                0
            );
        }
        let rt = Runtime::new();
        let dp = Datapath::new(rt.clone());
        let e = dp
            .attach("lo", load(&rt, "hello.o", "hello"), false)
            .unwrap_err();
        assert!(matches!(e, NetError::Permission { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with(
                "interface 'lo': permission denied: AF_PACKET sockets need CAP_NET_RAW"
            ),
            "{e}"
        );
    });
}

/// Programs for devmap and cpumap entries (`BPF_XDP_DEVMAP`, `BPF_XDP_CPUMAP`)
/// are refused on a device, as the kernel refuses them. The check comes
/// before any socket, so it needs no privileges (and attaches nothing).
#[test]
fn entry_programs_are_refused_on_a_device() {
    use bpfvm::AttachType;
    let rt = Runtime::new();
    let dp = Datapath::new(rt.clone());
    let load = |attach: AttachType| {
        rt.load_program(ProgLoadAttr {
            prog_type: bpfvm::ProgType::Xdp,
            expected_attach_type: attach,
            insns: vec![
                Insn::new(0xb7, 0, 0, 0, 2), // r0 = XDP_PASS
                Insn::new(0x95, 0, 0, 0, 0),
            ],
            license: "GPL".into(),
            name: "entry".into(),
            ..ProgLoadAttr::default()
        })
        .unwrap()
    };
    for attach in [AttachType::XdpDevmap, AttachType::XdpCpumap] {
        let e = dp.attach("lo", load(attach), false).unwrap_err();
        assert!(
            matches!(e, NetError::WrongAttachType { attach_type, .. } if attach_type == attach.as_u32()),
            "{attach}: {e:?}"
        );
    }
}
