#!/usr/bin/env python3
"""Kernel oracle capture for bpfvm: load every fixture object with the host
kernel through bpftool and record what the kernel says.

Run by capture.sh (as root, bpffs mounted at /sys/fs/bpf); cwd must be
tests/fixtures so object paths read obj/X.o. Writes, under tests/golden/kernel/:

  <obj>.json        per object: load command and outcome, per program the
                    verdict (accepted / refused with the verifier log /
                    not_loaded because another program of the object was
                    refused), tag, type, bytes_xlated, `prog show --json`,
                    `prog dump xlated` (plain, opcodes, linum); per pinned map
                    `map show --json` and `map dump --json` right after load;
                    btf_loaded: `bpftool btf dump id` of the object's BTF as
                    loaded (after libbpf filled in DATASEC sizes/offsets).
  verifier/<obj>.log  stderr of `bpftool -d prog loadall ...` (libbpf debug
                    output and the verifier log at level 1|2|4), for objects
                    whose log is small enough to be useful.
  xdp_runs.json     every XDP program x every packet (packets/index.json
                    order): retval, output frame, all pinned maps afterwards.
  skb_runs.json     the same for socket filter and tc (sched_cls) programs.
  host.json         kernel version, bpftool version, CPU count.

Every pin goes under /sys/fs/bpf/fx_<name> and /sys/fs/bpf/fx_<name>_maps and
is removed again (also on error).
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

BPFFS = "/sys/fs/bpf"
GOLDEN = os.path.dirname(os.path.abspath(__file__))
KDIR = os.path.join(GOLDEN, "kernel")
PACKETS = os.path.join(GOLDEN, "packets")
# Programs whose xlated image is bigger than this keep only the plain
# xlated text (the opcodes and linum variants would add megabytes).
BIG_XLATED = 64 * 1024
MAX_DEBUG_LOG = 512 * 1024
# prog run is pinned to one CPU so per-CPU map values land in a known slot.
RUN_CPU = "0"


def run(args, check=False):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(args), p.stderr))
    return p


def bpftool_json(args):
    p = run(["bpftool", "-j"] + args)
    if p.returncode != 0:
        return None, (p.stderr + p.stdout).strip()
    try:
        return json.loads(p.stdout), None
    except json.JSONDecodeError as e:
        return None, "bad json: %s: %r" % (e, p.stdout[:200])


def pin_name(obj_stem):
    # bpffs refuses '.' in names (reserved for its own files); keep it readable
    return "fx_" + re.sub(r"[^A-Za-z0-9_]", "_", obj_stem)


def rm_pins(*paths):
    for p in paths:
        if os.path.lexists(p):
            shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)


def elf_programs(obj):
    """Program names as libbpf sees them: global functions in executable
    sections other than .text, with their section names."""
    out = run(["llvm-objdump-19", "-t", obj], check=True).stdout
    progs = []
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ g\s+F (\S+)\s+[0-9a-f]+ (\S+)$", line)
        if m and m.group(1) != ".text":
            progs.append({"name": m.group(2), "section": m.group(1)})
    return progs


def strip_noise(text):
    """Drop bpftool's generic strict-mode warning; keep everything else."""
    keep = []
    for line in text.splitlines():
        if line.startswith("Warning: bpftool is now running in libbpf strict mode") or \
           line.startswith("If it used to work for this object file but now doesn't"):
            continue
        keep.append(line)
    return "\n".join(keep).strip("\n")


def parse_refusal(stderr):
    """Per-program kernel refusals in libbpf's output:
    prog 'X': BPF program load failed: ERR, then the log between BEGIN/END."""
    refused = {}
    for m in re.finditer(r"libbpf: prog '([^']+)': BPF program load failed: ([^\n]*)\n"
                         r"libbpf: prog '[^']+': -- BEGIN PROG LOAD LOG --\n(.*?)-- END PROG LOAD LOG --",
                         stderr, re.S):
        refused[m.group(1)] = {"error": m.group(2), "log": m.group(3)}
    return refused


def pinned_maps(mapdir):
    if not os.path.isdir(mapdir):
        return []
    return sorted(os.listdir(mapdir))


def map_state(path, mtype=None):
    """`map dump -j` of one pinned map. bpftool exits non-zero for maps
    without keys (queue, stack, ringbuf) after printing []: the exit code is
    kept next to the output. Queues and stacks also get a `map peek -j`."""
    p = run(["bpftool", "-j", "map", "dump", "pinned", path])
    st = {}
    try:
        st["dump"] = json.loads(p.stdout)
    except json.JSONDecodeError:
        st["dump"] = None
        st["dump_stdout"] = p.stdout
    if p.returncode != 0:
        st["dump_exit_code"] = p.returncode
        if p.stderr.strip():
            st["dump_stderr"] = p.stderr.strip()
    if mtype in ("queue", "stack"):
        peek, err = bpftool_json(["map", "peek", "pinned", path])
        st["peek"] = peek if err is None else {"error": err}
    return st


def dump_maps(mapdir):
    maps = {}
    for name in pinned_maps(mapdir):
        path = os.path.join(mapdir, name)
        show, _ = bpftool_json(["map", "show", "pinned", path])
        maps[name] = map_state(path, show.get("type") if show else None)
    return maps


def load(obj, pindir, mapdir, debug=False):
    cmd = ["bpftool"] + (["-d"] if debug else []) + \
          ["prog", "loadall", obj, pindir, "pinmaps", mapdir]
    return cmd, run(cmd)


def capture_object(obj, host):
    stem = os.path.basename(obj)[:-2]
    pname = pin_name(stem)
    pindir, mapdir = os.path.join(BPFFS, pname), os.path.join(BPFFS, pname + "_maps")
    rm_pins(pindir, mapdir)
    rec = {
        "object": obj,
        "kernel": host["kernel"],
        "cwd": "tests/fixtures",
    }
    cmd, p = load(obj, pindir, mapdir)
    rec["load_command"] = " ".join(cmd)
    rec["load_exit_code"] = p.returncode
    rec["load_stderr"] = strip_noise(p.stderr)
    elf_progs = elf_programs(obj)
    progs = {}
    try:
        if p.returncode == 0:
            rec["loaded"] = True
            for ep in elf_progs:
                name = ep["name"]
                path = os.path.join(pindir, name)
                show, err = bpftool_json(["prog", "show", "pinned", path])
                if err:
                    progs[name] = {"section": ep["section"], "verdict": "unknown", "error": err}
                    continue
                entry = {
                    "section": ep["section"],
                    "verdict": "accepted",
                    "type": show.get("type"),
                    "tag": show.get("tag"),
                    "bytes_xlated": show.get("bytes_xlated"),
                    "show": show,
                    "xlated": run(["bpftool", "prog", "dump", "xlated", "pinned", path]).stdout,
                }
                if show.get("bytes_xlated", 0) <= BIG_XLATED:
                    entry["xlated_opcodes"] = run(["bpftool", "prog", "dump", "xlated", "pinned",
                                                   path, "opcodes"]).stdout
                    entry["xlated_linum"] = run(["bpftool", "prog", "dump", "xlated", "pinned",
                                                 path, "linum"]).stdout
                else:
                    entry["omitted"] = "xlated_opcodes and xlated_linum: image larger than %d bytes" \
                        % BIG_XLATED
                progs[name] = entry
            maps = {}
            for name in pinned_maps(mapdir):
                path = os.path.join(mapdir, name)
                show, err = bpftool_json(["map", "show", "pinned", path])
                m = {"show": show} if err is None else {"show_error": err}
                m.update(map_state(path, show.get("type") if show else None))
                maps[name] = m
            rec["maps"] = maps
            # The object's BTF as the kernel holds it after libbpf's fix-ups
            # (DATASEC sizes and VAR offsets filled in, sanitised kinds).
            btf_ids = sorted({e["show"]["btf_id"] for e in progs.values()
                              if "show" in e and "btf_id" in e["show"]} |
                             {m["show"]["btf_id"] for m in maps.values()
                              if m.get("show") and "btf_id" in m["show"]})
            if btf_ids:
                rec["btf_loaded_command"] = "bpftool btf dump id BTF_ID"
                rec["btf_loaded"] = run(["bpftool", "btf", "dump", "id", str(btf_ids[0])]).stdout
        else:
            rec["loaded"] = False
            rm_pins(pindir, mapdir)
            refused = parse_refusal(p.stderr)
            if "failed to open object file" in p.stderr:
                rec["stage"] = "open"  # libbpf refused the ELF, nothing reached the kernel
            else:
                rec["stage"] = "load"
            dcmd, dp = load(obj, pindir, mapdir, debug=True)
            rec["debug_command"] = " ".join(dcmd)
            rec["debug_stderr"] = strip_noise(dp.stderr)
            for ep in elf_progs:
                name = ep["name"]
                if name in refused:
                    progs[name] = {"section": ep["section"], "verdict": "refused",
                                   "error": refused[name]["error"], "log": refused[name]["log"]}
                elif rec["stage"] == "open":
                    progs[name] = {"section": ep["section"], "verdict": "refused",
                                   "error": "libbpf could not open the object", "log": rec["load_stderr"]}
                else:
                    progs[name] = {"section": ep["section"], "verdict": "not_loaded",
                                   "reason": "the object load stopped at another program's refusal"}
        rec["programs"] = progs
    finally:
        rm_pins(pindir, mapdir)

    # Full debug log (verifier log level 1|2|4) for loaded objects: kept
    # apart from the json and only when reasonably small.
    if rec["loaded"]:
        dcmd, dp = load(obj, pindir, mapdir, debug=True)
        rm_pins(pindir, mapdir)
        log = strip_noise(dp.stderr)
        os.makedirs(os.path.join(KDIR, "verifier"), exist_ok=True)
        if len(log) <= MAX_DEBUG_LOG:
            with open(os.path.join(KDIR, "verifier", stem + ".log"), "w") as f:
                f.write("# " + " ".join(dcmd) + "\n" + log + "\n")
            rec["debug_log_file"] = "verifier/%s.log" % stem
        else:
            rec["debug_log_file"] = None
            rec["debug_log_omitted"] = "%d bytes" % len(log)
    return rec


def packets():
    with open(os.path.join(PACKETS, "index.json")) as f:
        return json.load(f)


def capture_runs(records, types, host):
    """For each program of a type in `types` (accepted, in an object that
    loaded): a fresh loadall, then every packet in index order on that one
    program, dumping all pinned maps after each run."""
    runs = []
    pkts = packets()
    for rec in records:
        if not rec["loaded"]:
            continue
        for name, prog in sorted(rec["programs"].items()):
            if prog.get("verdict") != "accepted" or prog.get("type") not in types:
                continue
            obj = rec["object"]
            stem = os.path.basename(obj)[:-2]
            pname = pin_name(stem)
            pindir, mapdir = os.path.join(BPFFS, pname), os.path.join(BPFFS, pname + "_maps")
            rm_pins(pindir, mapdir)
            _, p = load(obj, pindir, mapdir)
            entry = {"object": obj, "program": name, "type": prog["type"], "runs": []}
            try:
                if p.returncode != 0:
                    entry["load_error"] = strip_noise(p.stderr)
                    runs.append(entry)
                    continue
                entry["maps_after_load"] = dump_maps(mapdir)
                for pk in pkts:
                    out = "/tmp/bpfvm-golden-out.bin"
                    if os.path.exists(out):
                        os.unlink(out)
                    cmd = ["taskset", "-c", RUN_CPU, "bpftool", "-j", "prog", "run", "pinned",
                           os.path.join(pindir, name), "data_in",
                           os.path.join("../golden/packets", pk["file"]),
                           "data_out", out, "data_size_out", "4096", "repeat", "1"]
                    r = run(cmd)
                    one = {"packet": pk["name"]}
                    if r.returncode == 0:
                        res = json.loads(r.stdout)
                        one["retval"] = res.get("retval")
                        one["duration_ns"] = res.get("duration")
                        with open(out, "rb") as f:
                            data = f.read()
                        one["data_out_len"] = len(data)
                        one["data_out_hex"] = data.hex()
                    else:
                        one["error"] = (r.stderr + r.stdout).strip()
                    one["maps"] = dump_maps(mapdir)
                    entry["runs"].append(one)
                runs.append(entry)
            finally:
                rm_pins(pindir, mapdir)
    return {
        "kernel": host["kernel"],
        "cwd": "tests/fixtures",
        "command": "taskset -c %s bpftool -j prog run pinned PIN/PROG data_in "
                   "../golden/packets/P.bin data_out OUT data_size_out 4096 repeat 1" % RUN_CPU,
        "order": "per program: fresh `bpftool prog loadall OBJ PIN pinmaps PIN_maps`, "
                 "then the packets in packets/index.json order, maps dumped after each run "
                 "(state accumulates across the packets of one program), then the pins are removed",
        "programs": runs,
    }


def main():
    if os.geteuid() != 0:
        sys.exit("capture_kernel.py: needs root (loads programs into the host kernel)")
    if not os.path.isdir(BPFFS):
        sys.exit("capture_kernel.py: no bpffs at %s" % BPFFS)
    os.makedirs(KDIR, exist_ok=True)
    bv = run(["bpftool", "version"]).stdout.strip().splitlines()
    host = {
        "kernel": os.uname().release,
        "bpftool": bv,
        "nproc": os.cpu_count(),
        "run_cpu": int(RUN_CPU),
    }
    with open(os.path.join(KDIR, "host.json"), "w") as f:
        json.dump(host, f, indent=2)
        f.write("\n")
    objs = sys.argv[1:] or sorted(glob.glob("obj/*.o"))
    records = []
    for obj in objs:
        rec = capture_object(obj, host)
        stem = os.path.basename(obj)[:-2]
        with open(os.path.join(KDIR, stem + ".json"), "w") as f:
            json.dump(rec, f, indent=2, sort_keys=False)
            f.write("\n")
        verdicts = ", ".join("%s=%s" % (n, p["verdict"]) for n, p in rec["programs"].items())
        print("  %-28s %s" % (obj, verdicts))
        records.append(rec)
    if len(sys.argv) > 1:
        return  # partial capture: leave the run tables alone
    for fname, types in (("xdp_runs.json", {"xdp"}),
                         ("skb_runs.json", {"socket_filter", "sched_cls"})):
        table = capture_runs(records, types, host)
        with open(os.path.join(KDIR, fname), "w") as f:
            json.dump(table, f, indent=2)
            f.write("\n")
        print("  %s: %d programs x %d packets" % (fname, len(table["programs"]), len(packets())))


if __name__ == "__main__":
    main()
