# Joins the case list, the return values (.bss) and the trace into one table. Scratch tool.
import json, re, struct, sys
spec = json.load(open("printk_cases.json"))
run = open("printk_run.txt").read()
bss = bytes.fromhex(re.search(r"map p_printk\.bss ([0-9a-f]+)", run).group(1))
rets = struct.unpack("<%dq" % (len(bss) // 8), bss)
raw = open("/sys/kernel/tracing/trace", "rb").read()
body = b"".join(l for l in raw.splitlines(keepends=True) if not l.startswith(b"#"))
pre = re.compile(rb"^ *\S+-\d+ +\[\d{3}\] \S{5} +\d+\.\d{6}: bpf_trace_printk: ", re.M)
starts = [m for m in pre.finditer(body)]
events = [body[m.end():(starts[i + 1].start() if i + 1 < len(starts) else len(body))] for i, m in enumerate(starts)]
msgs = {}; pending = []
for e in events:
    m = re.fullmatch(rb"@@(\d+)\n", e)
    if m:
        msgs[int(m.group(1))] = pending; pending = []
    else:
        pending.append(e)
out = []
for i, c in enumerate(spec["cases"]):
    ev = msgs.get(i)
    assert ev is not None and len(ev) <= 1, (i, ev)
    out.append({"fmt": c["fmt"], "size": c["size"], "args": c["args"], "ret": rets[i],
                "event": ev[0].hex() if ev else None})
json.dump({"mem": spec["mem"], "cases": out}, open("printk_results.json", "w"), indent=0)
for i, o in enumerate(out):
    print(i, bytes.fromhex(o["fmt"]), o["args"], o["ret"], bytes.fromhex(o["event"])[:120] if o["event"] else None)
