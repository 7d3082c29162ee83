# Turns the kernel captures into the committed test data files. Scratch tool.
import json, re, struct, os
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
os.makedirs(OUT, exist_ok=True)
REL = open("/proc/sys/kernel/osrelease").read().strip()

def esc(b):
    return "".join(chr(c) if 32 <= c < 127 and c != 0x5c else "\\x%02x" % c for c in b)

def arg_tok(a):
    if isinstance(a, int): return "0x%x" % a
    return "@" + a

# --- bpf_trace_printk cases
d = json.load(open("printk_results.json"))
L = [f"# bpf_trace_printk cases as Linux {REL} handled them (x86-64, XDP program run by",
     "# BPF_PROG_TEST_RUN, kptr_restrict=0). Captured with capture/gen_printk.py and",
     "# capture/collect_printk.py; see README.md.",
     "# 'mem NAME HEX': a memory object; '@NAME' in args is its address; '@null' is 0;",
     "# '@fault' is an address that cannot be read (0x10 on the kernel).",
     "# 'fmt HEX': exactly the fmt_size bytes passed. 'ret': the helper's return value.",
     "# 'msg HEX': the event's text, without the newline the trace adds; '-' when none.",
     "# 'note hashed': the kernel printed a hashed pointer (compare the shape only);",
     "# 'note kernel-oob': the kernel read past its argument buffer (not modelled).", ""]
for k, v in d["mem"].items():
    L.append(f"mem {k} {v}")
L.append("")
for i, c in enumerate(d["cases"]):
    f = bytes.fromhex(c["fmt"])
    full = f + b"\0"
    size = c["size"]
    fb = full if size is None else (f if size == "nonul" else full[:size])
    L.append(f"case {i}")
    L.append(f"# {esc(fb)}")
    L.append(f"fmt {fb.hex()}")
    L.append("args " + " ".join(arg_tok(a) for a in c["args"]))
    L.append(f"ret {c['ret']}")
    ev = c["event"]
    if ev is None:
        L.append("msg -")
    else:
        e = bytes.fromhex(ev)
        assert e.endswith(b"\n")
        L.append(f"msg {e[:-1].hex()}")
    if i in (100, 101):
        L.append("note hashed")
    if i == 129:
        L.append("note kernel-oob")
    L.append("")
open(f"{OUT}/trace_printk_cases.txt", "w").write("\n".join(L))

# --- bpf_snprintf and bpf_trace_vprintk
run = open("snprintf_run.txt").read()
bss = bytes.fromhex(re.search(r"map p_snprin\.bss ([0-9a-f]+)", run).group(1))
rets = struct.unpack("<32q", bss[:256]); bufs = [bss[256 + 80 * k:256 + 80 * (k + 1)] for k in range(16)]
A = [str(x) for x in range(1, 14)]
hello = "68656c6c6f00"
S = [f"# bpf_snprintf and bpf_trace_vprintk cases as Linux {REL} handled them; captured",
     "# with capture/p_snprintf.c (see README.md). 'buf HEX' is the 80-byte destination",
     "# after the call; it was filled with 'Z' before. 'data_len' is the helper argument;",
     "# 'args' the u64 values behind it. 'msg' as in trace_printk_cases.txt.", "",
     f"mem hello {hello}", ""]
def sn(k, fmt, args, data_len, size):
    S.extend([f"case s{k}", "helper snprintf", f"# {esc(fmt)}", f"fmt {fmt.hex()}", "args " + " ".join(args),
              f"data_len {data_len}", f"str_size {size}", f"ret {rets[k]}", f"buf {bufs[k].hex()}", ""])
f1 = b"n=%d s=%s\0"
for k, size in [(0, 80), (1, 5), (2, 1), (3, 0), (4, 10)]:
    sn(k, f1, ["0x2a", "@hello"], 16, size)
sn(5, b"%d %d %d %d %d %d %d %d %d %d %d %d\0", ["0x%x" % x for x in range(1, 13)], 96, 80)
sn(6, b"no args\0", [], 0, 80)
sn(7, b"no args\0", ["0x1"], 8, 80)
sn(8, b"[%c]after\0", ["0x0"], 8, 80)
sn(9, b"%d\0", ["0x%x" % x for x in range(1, 14)], 104, 80)
sn(10, b"[%5s|%-6d|%pI4]\0", ["@hello", "0x7", "@hello"], 24, 80)
tr = open("snprintf_trace.txt", "rb").read()
pre = re.compile(rb"^ *\S+-\d+ +\[\d{3}\] \S{5} +\d+\.\d{6}: bpf_trace_printk: ", re.M)
starts = list(pre.finditer(tr))
events = [tr[m.end():(starts[j + 1].start() if j + 1 < len(starts) else len(tr))] for j, m in enumerate(starts)]
msgs = {}; pending = []
for e in events:
    m = re.fullmatch(rb"@@(\d+)\n", e)
    if m: msgs[int(m.group(1))] = pending; pending = []
    else: pending.append(e)
def vp(k, fmt, args, data_len):
    ev = msgs[k]
    S.extend([f"case v{k}", "helper vprintk", f"# {esc(fmt)}", f"fmt {fmt.hex()}", "args " + " ".join(args),
              f"data_len {data_len}", f"ret {rets[k]}", "msg " + (ev[0][:-1].hex() if ev else "-"), ""])
f12 = b"v %d %d %d %d %d %d %d %d %d %d %d %d\0"
vp(16, f12, ["0x%x" % x for x in range(1, 13)], 96)
vp(17, f12, ["0x%x" % x for x in range(1, 14)], 104)
vp(18, f12, ["0x%x" % x for x in range(1, 12)], 88)
vp(19, b"v no args\0", [], 0)
vp(20, b"v %d\0", [], 0)
vp(21, b"v %d\0", ["0x1", "0x2"], 12)
vp(22, b"v %d\0", ["0x1"], 8)
open(f"{OUT}/snprintf_cases.txt", "w").write("\n".join(S))

# --- trace_pipe lines
T = [f"# trace lines of bpf_trace_printk events from Linux {REL} (/sys/kernel/tracing/trace,",
     "# which lays lines out as trace_pipe does). 'raw PID CPU TS_NS' is the same event",
     "# read with options/raw=1 (exact nanoseconds); 'comm', 'flags' and 'msg' are the",
     "# event's fields; 'text' is the exact output for the event, trailing newline(s)",
     "# included, as hex. The first events come from BPF_PROG_TEST_RUN (flags b..11), the",
     "# last from an XDP program attached to a veth device, run in softirq (..s2.).", ""]
for nf, rf in [("lines_norm.txt", "lines_raw.txt"), ("attach_norm.txt", "attach_raw.txt")]:
    norm = [l for l in open(nf, "rb").read().split(b"\n")]
    raw = [l for l in open(rf).read().split("\n") if l and not l.startswith("#")]
    body = b"\n".join(l for l in norm if not l.startswith(b"#"))
    starts = list(pre.finditer(body))
    for j, m in enumerate(starts):
        endp = starts[j + 1].start() if j + 1 < len(starts) else len(body)
        text = body[m.start():endp]
        if j + 1 == len(starts): text = text.rstrip(b"\n") + b"\n"
        hm = re.match(rb"^ *(\S+)-(\d+) +\[(\d{3})\] (\S{5}) +(\d+)\.(\d{6}): bpf_trace_printk: ", text)
        pid, cpu, ts = raw[j].split()[:3]
        assert pid.encode() == hm.group(2) and int(cpu) == int(hm.group(3)), (raw[j], text)
        msg = text[hm.end():]
        assert msg.endswith(b"\n"); msg = msg[:-1]
        shown = esc(text.rstrip(b"\n"))
        T.extend([f"# {shown}", f"event comm={hm.group(1).decode()} flags={hm.group(4).decode()} msg={msg.hex() or '-'}",
                  f"raw {pid} {cpu} {ts}", f"text {text.hex()}", ""])
open(f"{OUT}/trace_lines.txt", "w").write("\n".join(T))
print("ok", len(d["cases"]), len(T))
