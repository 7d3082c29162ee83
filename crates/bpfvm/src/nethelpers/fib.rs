//! `bpf_fib_lookup` over routing tables the embedder gives the runtime
//! ([`crate::Runtime::set_fib`]): devices with their addresses, MAC, MTU and
//! forwarding switches, routes by table, and neighbours. The lookup follows
//! Linux 6.18's: the forwarding check on the given interface, the main table
//! merged with the local one (as the kernel keeps them while there are no
//! policy rules) then the default one, or the one table `BPF_FIB_LOOKUP_DIRECT`
//! names, longest prefix then lowest metric, the route types' verdicts, the MTU check, the
//! gateway, the source address (`BPF_FIB_LOOKUP_SRC`) and the neighbour's
//! MAC. Policy rules (`BPF_FIB_LOOKUP_MARK`, tos), multipath and lwt
//! encapsulation are not modelled. A runtime nobody gave tables has no
//! devices: every lookup is -ENODEV.

use std::net::IpAddr;

/// `RT_TABLE_MAIN`, `RT_TABLE_LOCAL`.
pub const RT_TABLE_MAIN: u32 = 254;
/// `RT_TABLE_LOCAL`.
pub const RT_TABLE_LOCAL: u32 = 255;

/// A network device as the lookup sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FibDevice {
    /// Its interface index.
    pub ifindex: u32,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// Its MTU.
    pub mtu: u32,
    /// `net.ipv4.conf.DEV.forwarding`.
    pub forwarding: bool,
    /// `net.ipv6.conf.DEV.forwarding`.
    pub forwarding6: bool,
    /// Addresses with their prefix lengths.
    pub addrs: Vec<(IpAddr, u8)>,
}

/// `RTN_*` route types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteType {
    /// `RTN_UNICAST`: through a gateway or directly attached.
    Unicast,
    /// `RTN_LOCAL`: an address of this host.
    Local,
    /// `RTN_BROADCAST`.
    Broadcast,
    /// `RTN_BLACKHOLE`: dropped silently.
    Blackhole,
    /// `RTN_UNREACHABLE`: refused as unreachable.
    Unreachable,
    /// `RTN_PROHIBIT`: refused by policy.
    Prohibit,
}

/// A route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FibRoute {
    /// Its routing table (`RT_TABLE_MAIN`, ...).
    pub table: u32,
    /// Destination prefix.
    pub dst: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Route type.
    pub kind: RouteType,
    /// The nexthop's gateway, when it has one.
    pub gateway: Option<IpAddr>,
    /// The nexthop's device (0: none, for the error types).
    pub ifindex: u32,
    /// Route metric (lower wins among equal prefixes).
    pub metric: u32,
    /// Preferred source address.
    pub prefsrc: Option<IpAddr>,
    /// The route's MTU as forwarding uses it: a locked MTU metric (`ip route
    /// ... mtu lock N`; an unlocked one counts only with
    /// `net.ipv4.ip_forward_use_pmtu`). 0: the device's.
    pub mtu: u32,
}

/// A neighbour in a valid (reachable, permanent, ...) state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FibNeighbor {
    /// The interface the neighbour is on.
    pub ifindex: u32,
    /// Its address.
    pub addr: IpAddr,
    /// Its MAC address.
    pub mac: [u8; 6],
}

/// The routing tables `bpf_fib_lookup` reads: devices, routes, neighbours.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fib {
    /// The devices.
    pub devices: Vec<FibDevice>,
    /// The routes.
    pub routes: Vec<FibRoute>,
    /// The neighbours.
    pub neighbors: Vec<FibNeighbor>,
}

fn prefix_match(net: IpAddr, len: u8, a: IpAddr) -> bool {
    match (net, a) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - len.min(32))
            };
            u32::from(n) & m == u32::from(a) & m
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len.min(128) as u32)
            };
            u128::from(n) & m == u128::from(a) & m
        }
        _ => false,
    }
}

impl Fib {
    /// Adds the routes the kernel makes for the devices' addresses: the
    /// connected prefix in the main table, the address itself (and for IPv4
    /// the prefix's broadcast address) in the local table.
    pub fn with_device_routes(mut self) -> Fib {
        let mut add = Vec::new();
        for d in &self.devices {
            for &(a, len) in &d.addrs {
                let v6 = a.is_ipv6();
                let route = |table, dst, prefix_len, kind, metric| FibRoute {
                    table,
                    dst,
                    prefix_len,
                    kind,
                    gateway: None,
                    ifindex: d.ifindex,
                    metric,
                    prefsrc: (!v6).then_some(a),
                    mtu: 0,
                };
                add.push(route(
                    RT_TABLE_LOCAL,
                    a,
                    if v6 { 128 } else { 32 },
                    RouteType::Local,
                    0,
                ));
                if let IpAddr::V4(a4) = a {
                    if len < 32 {
                        let host = u32::MAX >> len;
                        let net = IpAddr::V4((u32::from(a4) & !host).into());
                        add.push(route(RT_TABLE_MAIN, net, len, RouteType::Unicast, 0));
                        let bcast = IpAddr::V4((u32::from(a4) | host).into());
                        add.push(route(RT_TABLE_LOCAL, bcast, 32, RouteType::Broadcast, 0));
                    }
                } else if len < 128 {
                    let m = u128::MAX << (128 - len as u32);
                    let net = IpAddr::V6(
                        (u128::from(match a {
                            IpAddr::V6(x) => x,
                            IpAddr::V4(_) => continue,
                        }) & m)
                            .into(),
                    );
                    add.push(route(RT_TABLE_MAIN, net, len, RouteType::Unicast, 256));
                }
            }
        }
        self.routes.extend(add);
        self
    }

    fn device(&self, ifindex: u32) -> Option<&FibDevice> {
        self.devices.iter().find(|d| d.ifindex == ifindex)
    }

    /// Without policy rules the kernel keeps the local and main tables as one
    /// trie: a lookup in the main table sees the local routes too.
    fn in_table(r: &FibRoute, table: u32) -> bool {
        r.table == table || (table == RT_TABLE_MAIN && r.table == RT_TABLE_LOCAL)
    }

    fn table_exists(&self, table: u32) -> bool {
        table == RT_TABLE_MAIN
            || table == RT_TABLE_LOCAL
            || self.routes.iter().any(|r| r.table == table)
    }

    /// The route of `table` for `dst`: the longest prefix, then the lowest
    /// metric; with `oif`, unicast and local routes must leave through it
    /// (the error types match first, as in the kernel).
    fn lookup_table(&self, table: u32, dst: IpAddr, oif: u32) -> Option<&FibRoute> {
        let mut c: Vec<&FibRoute> = self
            .routes
            .iter()
            .filter(|r| Self::in_table(r, table) && prefix_match(r.dst, r.prefix_len, dst))
            .collect();
        c.sort_by_key(|r| (std::cmp::Reverse(r.prefix_len), r.metric));
        c.into_iter().find(|r| {
            matches!(
                r.kind,
                RouteType::Blackhole | RouteType::Unreachable | RouteType::Prohibit
            ) || oif == 0
                || r.ifindex == oif
        })
    }

    fn neighbor(&self, ifindex: u32, addr: IpAddr) -> Option<[u8; 6]> {
        self.neighbors
            .iter()
            .find(|n| n.ifindex == ifindex && n.addr == addr)
            .map(|n| n.mac)
    }
}

/// `BPF_FIB_LOOKUP_*` flags.
pub const BPF_FIB_LOOKUP_DIRECT: u32 = 1 << 0;
/// `BPF_FIB_LOOKUP_OUTPUT`.
pub const BPF_FIB_LOOKUP_OUTPUT: u32 = 1 << 1;
/// `BPF_FIB_LOOKUP_SKIP_NEIGH`.
pub const BPF_FIB_LOOKUP_SKIP_NEIGH: u32 = 1 << 2;
/// `BPF_FIB_LOOKUP_TBID`.
pub const BPF_FIB_LOOKUP_TBID: u32 = 1 << 3;
/// `BPF_FIB_LOOKUP_SRC`.
pub const BPF_FIB_LOOKUP_SRC: u32 = 1 << 4;
/// `BPF_FIB_LOOKUP_MARK`.
pub const BPF_FIB_LOOKUP_MARK: u32 = 1 << 5;
const FLAGS: u32 = BPF_FIB_LOOKUP_DIRECT
    | BPF_FIB_LOOKUP_OUTPUT
    | BPF_FIB_LOOKUP_SKIP_NEIGH
    | BPF_FIB_LOOKUP_TBID
    | BPF_FIB_LOOKUP_SRC
    | BPF_FIB_LOOKUP_MARK;

// `BPF_FIB_LKUP_RET_*`
const RET_BLACKHOLE: i64 = 1;
const RET_UNREACHABLE: i64 = 2;
const RET_PROHIBIT: i64 = 3;
const RET_NOT_FWDED: i64 = 4;
const RET_FWD_DISABLED: i64 = 5;
const RET_NO_NEIGH: i64 = 7;
const RET_FRAG_NEEDED: i64 = 8;
const RET_NO_SRC_ADDR: i64 = 9;

/// The size of `struct bpf_fib_lookup`.
pub const PARAMS_SIZE: usize = 64;

/// Field offsets of `struct bpf_fib_lookup`.
mod f {
    pub const FAMILY: usize = 0;
    pub const TOT_LEN: usize = 6;
    pub const IFINDEX: usize = 8;
    pub const RT_METRIC: usize = 12;
    pub const SRC: usize = 16;
    pub const DST: usize = 32;
    pub const VLAN: usize = 48;
    pub const SMAC: usize = 52;
    pub const DMAC: usize = 58;
}

fn get16(p: &[u8], o: usize) -> u16 {
    u16::from_ne_bytes([p[o], p[o + 1]])
}

fn get32(p: &[u8], o: usize) -> u32 {
    u32::from_ne_bytes([p[o], p[o + 1], p[o + 2], p[o + 3]])
}

fn put32(p: &mut [u8], o: usize, v: u32) {
    p[o..o + 4].copy_from_slice(&v.to_ne_bytes());
}

fn addr_at(p: &[u8], o: usize, v6: bool) -> IpAddr {
    if v6 {
        let mut b = [0u8; 16];
        b.copy_from_slice(&p[o..o + 16]);
        IpAddr::from(b)
    } else {
        IpAddr::from([p[o], p[o + 1], p[o + 2], p[o + 3]])
    }
}

fn put_addr(p: &mut [u8], o: usize, a: IpAddr) {
    match a {
        IpAddr::V4(a) => p[o..o + 4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => p[o..o + 16].copy_from_slice(&a.octets()),
    }
}

/// What the caller checks after a successful lookup without an MTU check
/// (tc programs: the packet against the output device's MTU).
pub struct Lookup {
    /// The helper's return value (`BPF_FIB_LKUP_RET_*`).
    pub ret: i64,
    /// The output device's MTU, for the skb check.
    pub dev_mtu: Option<u32>,
}

/// `bpf_fib_lookup` on `params` (the program's `struct bpf_fib_lookup`,
/// updated in place). `check_mtu`: XDP always, tc when `tot_len` is set.
pub fn lookup(fib: &Fib, params: &mut [u8], plen: u32, flags: u32, xdp: bool) -> Lookup {
    let done = |ret| Lookup { ret, dev_mtu: None };
    if (plen as usize) < PARAMS_SIZE || params.len() < PARAMS_SIZE {
        return done(-(libc::EINVAL as i64));
    }
    if flags & !FLAGS != 0 {
        return done(-(libc::EINVAL as i64));
    }
    let check_mtu = xdp || get16(params, f::TOT_LEN) != 0;
    let v6 = match params[f::FAMILY] as i32 {
        libc::AF_INET => false,
        libc::AF_INET6 => true,
        _ => return done(-(libc::EAFNOSUPPORT as i64)),
    };
    let r = route(fib, params, flags, check_mtu, v6);
    let mut out = done(r);
    if r == 0 && !check_mtu {
        out.dev_mtu = fib.device(get32(params, f::IFINDEX)).map(|d| d.mtu);
    }
    out
}

fn route(fib: &Fib, p: &mut [u8], flags: u32, check_mtu: bool, v6: bool) -> i64 {
    let dst = addr_at(p, f::DST, v6);
    let src = addr_at(p, f::SRC, v6);
    if v6 {
        // Link-local and multicast addresses are never forwarded.
        let strict = |a: IpAddr| match a {
            IpAddr::V6(a) => a.is_multicast() || a.segments()[0] & 0xffc0 == 0xfe80,
            IpAddr::V4(_) => false,
        };
        if strict(dst) || strict(src) {
            return RET_NOT_FWDED;
        }
    }
    let ifindex = get32(p, f::IFINDEX);
    let Some(dev) = fib.device(ifindex) else {
        return -(libc::ENODEV as i64);
    };
    if !(if v6 { dev.forwarding6 } else { dev.forwarding }) {
        return RET_FWD_DISABLED;
    }
    let oif = if flags & BPF_FIB_LOOKUP_OUTPUT != 0 {
        ifindex
    } else {
        0
    };
    let tables: Vec<u32> = if flags & BPF_FIB_LOOKUP_DIRECT != 0 {
        let mut t = RT_TABLE_MAIN;
        if flags & BPF_FIB_LOOKUP_TBID != 0 {
            t = get32(p, f::VLAN);
            put32(p, f::VLAN, 0);
        }
        if !fib.table_exists(t) {
            return RET_NOT_FWDED;
        }
        vec![t]
    } else {
        vec![RT_TABLE_MAIN, 253]
    };
    let Some(r) = tables.iter().find_map(|&t| fib.lookup_table(t, dst, oif)) else {
        return RET_NOT_FWDED;
    };
    match r.kind {
        RouteType::Unicast => {}
        RouteType::Blackhole => return RET_BLACKHOLE,
        RouteType::Unreachable => return RET_UNREACHABLE,
        RouteType::Prohibit => return RET_PROHIBIT,
        RouteType::Local | RouteType::Broadcast => return RET_NOT_FWDED,
    }
    let Some(out) = fib.device(r.ifindex) else {
        return RET_NOT_FWDED;
    };
    let mut mtu = 0;
    if check_mtu {
        mtu = if r.mtu != 0 { r.mtu } else { out.mtu };
        if get16(p, f::TOT_LEN) as u32 > mtu {
            p[f::TOT_LEN..f::TOT_LEN + 2].copy_from_slice(&(mtu as u16).to_ne_bytes());
            return RET_FRAG_NEEDED;
        }
    }
    put32(p, f::RT_METRIC, r.metric);
    put32(p, f::IFINDEX, out.ifindex);
    if flags & BPF_FIB_LOOKUP_SRC != 0 {
        let chosen = r
            .prefsrc
            .or_else(|| source_addr(out, r.gateway.unwrap_or(dst)));
        match chosen {
            Some(a) => put_addr(p, f::SRC, a),
            None if v6 => return RET_NO_SRC_ADDR,
            None => put_addr(p, f::SRC, IpAddr::from([0, 0, 0, 0])),
        }
    }
    let next = r.gateway.unwrap_or(dst);
    if let Some(gw) = r.gateway {
        put_addr(p, f::DST, gw);
    }
    if flags & BPF_FIB_LOOKUP_SKIP_NEIGH == 0 {
        let Some(mac) = fib.neighbor(out.ifindex, next) else {
            return RET_NO_NEIGH;
        };
        p[f::DMAC..f::DMAC + 6].copy_from_slice(&mac);
        p[f::SMAC..f::SMAC + 6].copy_from_slice(&out.mac);
    }
    // bpf_fib_set_fwd_params
    p[f::VLAN..f::VLAN + 4].fill(0);
    if mtu != 0 {
        p[f::TOT_LEN..f::TOT_LEN + 2].copy_from_slice(&(mtu as u16).to_ne_bytes());
    }
    0
}

/// A source address of `dev` for reaching `to`: one of its addresses on the
/// same prefix, else its first of the same family (IPv6: not link-local
/// unless `to` is).
fn source_addr(dev: &FibDevice, to: IpAddr) -> Option<IpAddr> {
    let same_family = |a: &IpAddr| a.is_ipv4() == to.is_ipv4();
    dev.addrs
        .iter()
        .find(|(a, len)| same_family(a) && prefix_match(*a, *len, to))
        .or_else(|| {
            dev.addrs.iter().find(|(a, _)| {
                same_family(a)
                    && match a {
                        IpAddr::V6(x) => x.segments()[0] & 0xffc0 != 0xfe80,
                        IpAddr::V4(_) => true,
                    }
            })
        })
        .map(|(a, _)| *a)
}
