#!/usr/bin/env python3
"""Record the host kernel's answers on the corpus of real BPF objects.

Usage (root, bpffs not needed: nothing is pinned):
    python3 scripts/corpus/capture.py --corpus DIR [--libbpf SO] [--out DIR] [OBJ...]

DIR holds MANIFEST.tsv and obj/ (built outside the repository, see
tests/corpus/README.md). The loader is libbpf, called through ctypes (the
same calls `bpftool prog loadall` makes): the newest libbpf given with
--libbpf / $CORPUS_LIBBPF, else the system's libbpf.so.1. For every object:

  whole     bpf_object__load of every program (what `bpftool prog loadall`
            does): loaded or refused, errno, libbpf's messages and the last
            lines of the verifier log.
  programs  per program: verdict, type, tag, xlated size. When the whole
            object was refused, each program is loaded again ALONE (libbpf
            autoload off for the others), so one refused program does not
            hide the verdict of the rest ("alone": true).
  maps_loaded  contents of the object's maps right after the load.
  runs      for every accepted program of a type BPF_PROG_TEST_RUN takes a
            packet for (xdp, sched_cls, sched_act, socket_filter,
            cgroup_skb, lwt_*, flow_dissector): a fresh load, every packet of
            packets/index.json in order (repeat 1, data_size_out 4096, on
            CPU 0), retval and output frame ("out": null when it equals the
            input), then the maps after all packets. Done twice on two
            fresh loads: results or maps that differ between the two are
            marked "volatile" (time stamps, random numbers) and are not
            compared by the test; where only the output bytes differ
            ("volatile": "out") the retval and output length still are.

Map contents are normalised as the test reads them: hex key/value pairs;
arrays list only entries whose value is not all zero; per-CPU maps give
CPU 0's value (runs are pinned to CPU 0; a map with a non-zero slot on
another CPU is marked volatile); maps whose values are ids or file
descriptors or that have no keys (prog/perf/sock/dev/cpu/xsk maps, maps of
maps, ringbuf, queue, stack, storage maps, bloom filters) are listed with
"skipped" and the reason. Writes OUT/kernel/<object path>.json and
OUT/kernel/host.json.
"""
import argparse
import ctypes as C
import hashlib
import json
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

PROG_TYPES = ["unspec", "socket_filter", "kprobe", "sched_cls", "sched_act", "tracepoint", "xdp",
              "perf_event", "cgroup_skb", "cgroup_sock", "lwt_in", "lwt_out", "lwt_xmit", "sock_ops",
              "sk_skb", "cgroup_device", "sk_msg", "raw_tracepoint", "cgroup_sock_addr",
              "lwt_seg6local", "lirc_mode2", "sk_reuseport", "flow_dissector", "cgroup_sysctl",
              "raw_tracepoint_writable", "cgroup_sockopt", "tracing", "struct_ops", "ext", "lsm",
              "sk_lookup", "syscall", "netfilter"]
MAP_TYPES = ["unspec", "hash", "array", "prog_array", "perf_event_array", "percpu_hash",
             "percpu_array", "stack_trace", "cgroup_array", "lru_hash", "lru_percpu_hash", "lpm_trie",
             "array_of_maps", "hash_of_maps", "devmap", "sockmap", "cpumap", "xskmap", "sockhash",
             "cgroup_storage", "reuseport_sockarray", "percpu_cgroup_storage", "queue", "stack",
             "sk_storage", "devmap_hash", "struct_ops", "ringbuf", "inode_storage", "task_storage",
             "bloom_filter", "user_ringbuf", "cgrp_storage", "arena"]
PACKET_TYPES = {"xdp", "sched_cls", "sched_act", "socket_filter", "cgroup_skb", "lwt_in", "lwt_out",
                "lwt_xmit", "lwt_seg6local", "flow_dissector"}
DUMPED_MAPS = {"hash", "array", "percpu_hash", "percpu_array", "lru_hash", "lru_percpu_hash", "lpm_trie"}
PERCPU_MAPS = {"percpu_hash", "percpu_array", "lru_percpu_hash"}
ARRAY_MAPS = {"array", "percpu_array"}
MAX_ARRAY_ENTRIES = 1 << 18
RUN_CPU = 0
LOG_TAIL = 8
# Loader setup the projects' own loaders do and bpftool does not, applied the same
# way by the test: a program whose section names no type gets the one its
# section's prefix says (as `bpftool prog loadall OBJ DIR type T` or
# `xdp-loader --progsec` would give it), and a map declared with max_entries 0
# (sized at run time by the project's loader, e.g. to the CPU count) gets 16.
# Nothing is pinned: maps declared for pinning by name get fresh, unpinned maps.
# (sk_lookup is not guessed: it also needs an expected attach type.)
SECTION_PREFIX_TYPES = [("xdp", "xdp"), ("socket", "socket_filter"), ("classifier", "sched_cls"),
                        ("tc", "sched_cls"), ("action", "sched_act")]
ZERO_MAX_ENTRIES = 16


class TestRunOpts(C.Structure):
    _fields_ = [("sz", C.c_size_t), ("data_in", C.c_void_p), ("data_out", C.c_void_p),
                ("data_size_in", C.c_uint32), ("data_size_out", C.c_uint32),
                ("ctx_in", C.c_void_p), ("ctx_out", C.c_void_p),
                ("ctx_size_in", C.c_uint32), ("ctx_size_out", C.c_uint32),
                ("retval", C.c_uint32), ("repeat", C.c_int), ("duration", C.c_uint32),
                ("flags", C.c_uint32), ("cpu", C.c_uint32), ("batch_size", C.c_uint32)]


class Libbpf:
    """The few libbpf calls bpftool's loadall uses, with libbpf's messages kept."""

    def __init__(self, path):
        self.lib = lib = C.CDLL(path, use_errno=True)
        self.libc = C.CDLL(None)
        self.messages = []
        self._buf = C.create_string_buffer(32 << 20)
        vp, cp, i = C.c_void_p, C.c_char_p, C.c_int
        for name, res, args in [
            ("bpf_object__open_file", vp, [cp, vp]), ("bpf_object__load", i, [vp]),
            ("bpf_object__close", None, [vp]), ("bpf_object__next_program", vp, [vp, vp]),
            ("bpf_object__next_map", vp, [vp, vp]), ("bpf_program__name", cp, [vp]),
            ("bpf_program__section_name", cp, [vp]), ("bpf_program__type", i, [vp]),
            ("bpf_program__set_autoload", i, [vp, C.c_bool]), ("bpf_program__fd", i, [vp]),
            ("bpf_map__name", cp, [vp]), ("bpf_map__fd", i, [vp]), ("bpf_map__type", i, [vp]),
            ("bpf_map__key_size", C.c_uint32, [vp]), ("bpf_map__value_size", C.c_uint32, [vp]),
            ("bpf_map__max_entries", C.c_uint32, [vp]), ("bpf_obj_get_info_by_fd", i, [i, vp, vp]),
            ("bpf_map_get_next_key", i, [i, vp, vp]), ("bpf_map_lookup_elem", i, [i, vp, vp]),
            ("bpf_prog_test_run_opts", i, [i, vp]), ("libbpf_num_possible_cpus", i, []),
            ("bpf_program__set_type", i, [vp, i]), ("bpf_map__set_pin_path", i, [vp, cp]), ("bpf_map__set_max_entries", i, [vp, C.c_uint32]),
            ("libbpf_major_version", C.c_uint32, []), ("libbpf_minor_version", C.c_uint32, []),
        ]:
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args
        self.libc.vsnprintf.argtypes = [C.c_char_p, C.c_size_t, C.c_char_p, C.c_void_p]
        proto = C.CFUNCTYPE(C.c_int, C.c_int, C.c_char_p, C.c_void_p)
        self._printer = proto(self._print)  # kept alive as long as libbpf may call it
        lib.libbpf_set_print.restype = C.c_void_p
        lib.libbpf_set_print.argtypes = [proto]
        lib.libbpf_set_print(self._printer)
        self.ncpus = lib.libbpf_num_possible_cpus()
        self.version = "%d.%d" % (lib.libbpf_major_version(), lib.libbpf_minor_version())

    def _print(self, level, fmt, args):
        # x86-64's va_list is passed as a pointer: hand it straight to vsnprintf
        if level <= 1:  # LIBBPF_WARN, LIBBPF_INFO
            self.libc.vsnprintf(self._buf, len(self._buf), fmt, args)
            self.messages.append(self._buf.value.decode("utf-8", "replace"))
        return 0

    def take_messages(self):
        m, self.messages = self.messages, []
        return "".join(m)


def hx(b):
    return bytes(b).hex()


def log_parts(text):
    """Splits libbpf's output into its own lines and per-program verifier logs."""
    logs = {}
    for m in re.finditer(r"libbpf: prog '([^']+)': -- BEGIN PROG LOAD LOG --\n(.*?)-- END PROG LOAD LOG --",
                         text, re.S):
        logs[m.group(1)] = m.group(2).rstrip("\n").splitlines()
    own = re.sub(r"libbpf: prog '[^']+': -- BEGIN PROG LOAD LOG --\n.*?-- END PROG LOAD LOG --\n?", "",
                 text, flags=re.S)
    return [l for l in own.splitlines() if l.strip()][:40], logs


class Obj:
    def __init__(self, lb, path):
        self.lb, self.path = lb, path
        C.set_errno(0)
        self.ptr = lb.lib.bpf_object__open_file(path.encode(), None)
        self.open_errno = C.get_errno() if not self.ptr else 0

    def progs(self):
        out, p = [], None
        while True:
            p = self.lb.lib.bpf_object__next_program(self.ptr, p)
            if not p:
                return out
            out.append(p)

    def maps(self):
        out, m = [], None
        while True:
            m = self.lb.lib.bpf_object__next_map(self.ptr, m)
            if not m:
                return out
            out.append(m)

    def prog(self, name):
        for p in self.progs():
            if self.lb.lib.bpf_program__name(p).decode() == name:
                return p
        return None

    def close(self):
        if self.ptr:
            self.lb.lib.bpf_object__close(self.ptr)
            self.ptr = None


def prog_info(lb, fd):
    info = (C.c_uint8 * 512)()
    ln = C.c_uint32(len(info))
    if lb.lib.bpf_obj_get_info_by_fd(fd, info, C.byref(ln)) != 0:
        return None
    raw = bytes(info)
    typ = int.from_bytes(raw[0:4], "little")
    return {"type": PROG_TYPES[typ] if typ < len(PROG_TYPES) else str(typ),
            "tag": raw[8:16].hex(), "xlated_bytes": int.from_bytes(raw[20:24], "little")}


def dump_map(lb, m):
    lib = lb.lib
    mt = lib.bpf_map__type(m)
    tname = MAP_TYPES[mt] if mt < len(MAP_TYPES) else str(mt)
    ks, vs, maxe = lib.bpf_map__key_size(m), lib.bpf_map__value_size(m), lib.bpf_map__max_entries(m)
    rec = {"type": tname, "key_size": ks, "value_size": vs, "max_entries": maxe}
    fd = lib.bpf_map__fd(m)
    if fd < 0:
        rec["skipped"] = "not created"
        return rec
    if tname not in DUMPED_MAPS:
        rec["skipped"] = "values are ids or fds, or the map has no keys"
        return rec
    if tname in ARRAY_MAPS and maxe > MAX_ARRAY_ENTRIES:
        rec["skipped"] = "array larger than %d entries" % MAX_ARRAY_ENTRIES
        return rec
    percpu = tname in PERCPU_MAPS
    stride = (vs + 7) // 8 * 8
    val = (C.c_uint8 * (stride * lb.ncpus if percpu else max(vs, 1)))()
    key, nxt = (C.c_uint8 * max(ks, 1))(), (C.c_uint8 * max(ks, 1))()
    entries, first, other_cpus = [], True, False
    while True:
        if lib.bpf_map_get_next_key(fd, None if first else key, nxt) != 0:
            break
        first = False
        C.memmove(key, nxt, ks)
        if lib.bpf_map_lookup_elem(fd, key, val) != 0:
            continue
        raw = bytes(val)
        v = raw[RUN_CPU * stride:RUN_CPU * stride + vs] if percpu else raw[:vs]
        if percpu and any(raw[c * stride:c * stride + vs].strip(b"\0") for c in range(lb.ncpus) if c != RUN_CPU):
            other_cpus = True
        if tname in ARRAY_MAPS and not v.strip(b"\0"):
            continue
        entries.append([hx(bytes(key)[:ks]), v.hex()])
    entries.sort()
    rec["entries"] = entries
    if other_cpus:
        rec["volatile"] = "values on CPUs other than %d" % RUN_CPU
    return rec


def dump_maps(lb, obj):
    return {lb.lib.bpf_map__name(m).decode(): dump_map(lb, m) for m in obj.maps()}


def setup(lb, obj):
    """The loader setup above; returns what it changed."""
    done = {}
    for p in obj.progs():
        if lb.lib.bpf_program__type(p) == 0:
            sec = lb.lib.bpf_program__section_name(p).decode()
            t = next((t for pre, t in SECTION_PREFIX_TYPES if sec.startswith(pre)), None)
            if t:
                lb.lib.bpf_program__set_type(p, PROG_TYPES.index(t))
                done.setdefault("prog_types", {})[lb.lib.bpf_program__name(p).decode()] = t
    for m in obj.maps():
        # maps declared with LIBBPF_PIN_BY_NAME would be pinned under /sys/fs/bpf and
        # reused by the next load: every load here starts from fresh maps instead
        lb.lib.bpf_map__set_pin_path(m, None)
        if lb.lib.bpf_map__max_entries(m) == 0 and lb.lib.bpf_map__type(m) != MAP_TYPES.index("perf_event_array"):
            lb.lib.bpf_map__set_max_entries(m, ZERO_MAX_ENTRIES)
            done.setdefault("max_entries", {})[lb.lib.bpf_map__name(m).decode()] = ZERO_MAX_ENTRIES
    return done


def load(lb, path, only=None):
    """Opens, applies the setup and loads; with `only`, every other program's
    autoload is off."""
    obj = Obj(lb, path)
    if not obj.ptr:
        return obj, -obj.open_errno, lb.take_messages()
    obj.setup = setup(lb, obj)
    if only is not None:
        for p in obj.progs():
            lb.lib.bpf_program__set_autoload(p, lb.lib.bpf_program__name(p).decode() == only)
    err = lb.lib.bpf_object__load(obj.ptr)
    return obj, err, lb.take_messages()


def test_runs(lb, obj, name, packets, pkt_dir):
    fd = lb.lib.bpf_program__fd(obj.prog(name))
    out = []
    for pk in packets:
        with open(os.path.join(pkt_dir, pk["file"]), "rb") as f:
            data = f.read()
        din = C.create_string_buffer(data, len(data))
        dout = C.create_string_buffer(4096)
        o = TestRunOpts(sz=C.sizeof(TestRunOpts), data_in=C.cast(din, C.c_void_p),
                        data_out=C.cast(dout, C.c_void_p), data_size_in=len(data),
                        data_size_out=4096, repeat=1)
        err = lb.lib.bpf_prog_test_run_opts(fd, C.byref(o))
        r = {"packet": pk["name"]}
        if err:
            r["errno"] = -err
        else:
            r["retval"] = o.retval
            got = dout.raw[:o.data_size_out]
            r["out"] = None if got == data else got.hex()
        out.append(r)
    lb.take_messages()
    return out


def capture_object(lb, corpus, rel, packets, pkt_dir):
    path = os.path.join(corpus, rel)
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    rec = {"object": rel, "sha256": sha}
    obj, err, msgs = load(lb, path)
    own, logs = log_parts(msgs)
    if not obj.ptr:
        rec["open"] = {"ok": False, "errno": -err, "libbpf": own}
        rec["whole"] = {"loaded": False, "errno": -err, "stage": "open"}
        rec["programs"] = []
        return rec
    rec["open"] = {"ok": True}
    if obj.setup:
        rec["setup"] = obj.setup
    progs = [(lb.lib.bpf_program__name(p).decode(), lb.lib.bpf_program__section_name(p).decode(),
              lb.lib.bpf_program__type(p)) for p in obj.progs()]
    whole = {"loaded": err == 0}
    if err:
        whole.update({"errno": -err, "libbpf": own,
                      "refused": sorted(logs), "log_tail": {n: l[-LOG_TAIL:] for n, l in logs.items()}})
    rec["whole"] = whole
    entries = []
    if err == 0:
        for name, sec, _ in progs:
            e = {"name": name, "section": sec, "verdict": "accepted", "alone": False}
            info = prog_info(lb, lb.lib.bpf_program__fd(obj.prog(name)))
            e.update(info or {})
            entries.append(e)
        rec["maps_loaded"] = dump_maps(lb, obj)
        obj.close()
    else:
        obj.close()
        for name, sec, ptype in progs:
            e = {"name": name, "section": sec, "alone": True}
            o2, err2, msgs2 = load(lb, path, only=name)
            own2, logs2 = log_parts(msgs2)
            if err2 == 0:
                e["verdict"] = "accepted"
                e.update(prog_info(lb, lb.lib.bpf_program__fd(o2.prog(name))) or {})
            else:
                e.update({"verdict": "refused", "type": PROG_TYPES[ptype] if 0 <= ptype < len(PROG_TYPES) else str(ptype),
                          "errno": -err2, "libbpf": own2, "log_tail": logs2.get(name, [])[-LOG_TAIL:]})
                if logs2.get(name):
                    e["log_first"] = next((l for l in logs2[name] if l and not l[0].isdigit()), logs2[name][0])
            o2.close()
            entries.append(e)
    rec["programs"] = entries

    runs = {}
    for e in entries:
        if e["verdict"] != "accepted" or e.get("type") not in PACKET_TYPES:
            continue
        passes = []
        for _ in range(2):
            o, err3, _ = load(lb, path, only=e["name"] if e["alone"] else None)
            if err3:
                passes.append(None)
                o.close()
                continue
            res = test_runs(lb, o, e["name"], packets, pkt_dir)
            passes.append((res, dump_maps(lb, o)))
            o.close()
        if not passes[0]:
            runs[e["name"]] = {"load": "alone" if e["alone"] else "whole", "error": "reload failed"}
            continue
        (res_a, maps_a), second = passes[0], passes[1]
        if second:
            res_b, maps_b = second
            for a, b in zip(res_a, res_b):
                if a != b:
                    if a.get("retval") == b.get("retval") and "errno" not in a and "errno" not in b:
                        # only the output bytes move (time stamps written into the
                        # frame): keep the retval and the length, drop the bytes
                        out = a.pop("out")
                        a["out_len"] = len(out) // 2 if out is not None else None
                        a["volatile"] = "out"
                    else:
                        a["volatile"] = True
            for name, m in maps_a.items():
                if "entries" in m and maps_b.get(name, {}).get("entries") != m["entries"]:
                    m["volatile"] = "differs between two runs of the same packets"
        runs[e["name"]] = {"load": "alone" if e["alone"] else "whole", "results": res_a, "maps_after": maps_a}
    if runs:
        rec["runs"] = runs
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=os.environ.get("BPFVM_CORPUS_DIR", os.path.join(ROOT, "..", "corpus")))
    ap.add_argument("--libbpf", default=os.environ.get("CORPUS_LIBBPF"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "corpus"))
    ap.add_argument("objects", nargs="*", help="object paths as in MANIFEST.tsv (default: all)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("capture.py: needs root (loads programs into the host kernel)")
    corpus = os.path.abspath(a.corpus)
    libbpf_path = a.libbpf or os.path.join(os.path.dirname(corpus), "corpus-src", "libbpf-build", "libbpf.so.1")
    if not os.path.exists(libbpf_path):
        libbpf_path = "libbpf.so.1"
    lb = Libbpf(libbpf_path)
    os.sched_setaffinity(0, {RUN_CPU})
    pkt_dir = os.path.join(a.out, "packets")
    with open(os.path.join(pkt_dir, "index.json")) as f:
        packets = json.load(f)
    with open(os.path.join(corpus, "MANIFEST.tsv")) as f:
        rows = [l.rstrip("\n").split("\t") for l in f][1:]
    objs = a.objects or [r[0] for r in rows]
    kdir = os.path.join(a.out, "kernel")
    host = {"kernel": os.uname().release, "libbpf": lb.version, "libbpf_path": os.path.basename(libbpf_path),
            "possible_cpus": lb.ncpus, "run_cpu": RUN_CPU, "packets": len(packets)}
    os.makedirs(kdir, exist_ok=True)
    with open(os.path.join(kdir, "host.json"), "w") as f:
        json.dump(host, f, indent=1)
        f.write("\n")
    for i, rel in enumerate(objs, 1):
        rec = capture_object(lb, corpus, rel, packets, pkt_dir)
        dst = os.path.join(kdir, re.sub(r"^obj/", "", rel)[:-2] + ".json")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "w") as f:
            json.dump(rec, f, indent=1)
            f.write("\n")
        acc = sum(p["verdict"] == "accepted" for p in rec["programs"])
        print("[%3d/%d] %-60s %s, %d/%d programs accepted, %d run" % (
            i, len(objs), rel, "loaded" if rec["whole"]["loaded"] else "refused", acc,
            len(rec["programs"]), len(rec.get("runs", {}))), flush=True)


if __name__ == "__main__":
    main()
