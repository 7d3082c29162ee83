# Generates p_printk.c: one bpf_trace_printk call per case, each followed by a marker
# line, so that the trace can be split back into per-case messages. Scratch tool.
import json
LONG = "".join(chr(ord('a') + i % 26) for i in range(600))
S300A = "A" * 300
S300B = "B" * 300
S300C = "C" * 300
MEM = {  # name -> bytes (NUL-terminated strings include their NUL)
    "hello": b"hello\0", "empty": b"\0", "world": b"World!\0", "long": LONG.encode() + b"\0",
    "s300a": S300A.encode() + b"\0", "s300b": S300B.encode() + b"\0", "s300c": S300C.encode() + b"\0",
    "ip4": bytes([192, 168, 1, 254]), "ip4b": bytes([10, 0, 0, 1]),
    "ip6": bytes.fromhex("20010db8000000000000ff0000428329"),
    "ip6lo": bytes.fromhex("00000000000000000000000000000001"),
    "ip6v4": bytes.fromhex("00000000000000000000ffffc0a80001"),
    "utf8": "héllo".encode() + b"\0", "tabnl": b"a\tb\nc\0", "ctl": b"\x01\x7f\x80\xff\0", "s490": b"x" * 490 + b"\0", "s510": b"y" * 510 + b"\0",
}
cases = []
def c(fmt, *args, size=None):
    a = list(args) + [0] * (3 - len(args))
    cases.append({"fmt": fmt, "args": a, "size": size})
# plain and %%
c(b"Hello World %d", 0); c(b""); c(b"no args"); c(b"100%% sure"); c(b"%%d %d", 5); c(b"%%%%"); c(b"tab\there\nnewline\n")
# integers
c(b"%d %i %u", 0xffffffff, 0x80000000, 0xffffffff)
c(b"%d", 0x100000005); c(b"%u", (1 << 64) - 1); c(b"%x %X", 0xdeadbeef, 0xdeadbeef)
c(b"%ld %li %lu", (1 << 64) - 1, 1 << 63, (1 << 64) - 1); c(b"%lld %lli %llu", (1 << 64) - 2, 42, 1 << 63)
c(b"%lx %llx %lX", 0x1122334455667788, 0xffffffffffffffff, 0xabcdef0123)
c(b"[%5d] [%-5d] [%05d]", 42, 42, 42); c(b"[%+d] [% d] [%+05d]", 42, 42, 42); c(b"[%-05d] [%+ d] [% 05d]", 42, 42, 42)
c(b"[%5d] [%05d] [%-6d]", 0xffffffd6, 0xffffffd6, 0xffffffd6); c(b"[%+u] [% u] [%+x]", 7, 7, 255); c(b"[%08x] [%-8X] [%8lx]", 0xbeef, 0xbeef, 0xbeef)
c(b"[%1d] [%012lld] [%+lld]", 123456, (1 << 64) - 1, 9); c(b"[%0-5d] [%  d] [%++d]", 3, 3, 3)
c(b"%d %d %d", 1, 2, 3); c(b"%d", 1, 2, 3)
# chars
c(b"[%c%c%c]", 0x41, 0x42, 0x143); c(b"[%3c] [%-3c]", 0x78, 0x79); c(b"nul[%c]after", 0); c(b"[%03c]", 0x7a)
# strings
c(b"[%s]", "hello"); c(b"[%s] [%s]", "empty", "world"); c(b"[%10s] [%-10s] [%010s]", "hello", "hello", "hello")
c(b"[%2s]", "world"); c(b"[%s]", "null"); c(b"[%s]", "fault"); c(b"[%s]|%d", "fault", 7)
c(b"%s", "long"); c(b"%s%s", "s300a", "s300b"); c(b"%s%s%s", "s300a", "s300b", "s300c"); c(b"%s.", "utf8")
c(b"[%s]", "tabnl"); c(b"[%pks] [%pus]", "hello", "hello"); c(b"[%8pks]", "hello")
c(b"%s%d", "long", 5); c(b"%d%s", 5, "long"); c(b"%s%c", "long", 0x51)
# pointers
c(b"[%p] [%p]", 0, (1 << 64) - 1); c(b"[%px] [%px]", 0x1234, 0xffff888012345678); c(b"[%20px] [%-20px|", 0x1234, 0x1234)
c(b"[%pS] [%ps] [%pB]", 0x1234, 0x1234, 0x1234); c(b"[%pK]", 0); c(b"[%pS]", 0)
c(b"[%pI4] [%pi4]", "ip4", "ip4"); c(b"[%pI4] [%pI4]", "ip4b", "null"); c(b"[%pI6]", "ip6"); c(b"[%pi6]", "ip6")
c(b"[%pI6] [%pI6]", "ip6lo", "ip6v4"); c(b"[%pI6c]", "ip6"); c(b"[%pI4abc]", "ip4"); c(b"[%20pI4]", "ip4")
c(b"[%pI4] [%pI6]", "fault", "fault"); c(b"[%pxyz]", 0x10); c(b"[%pK1]", 0); c(b"[%p.]", 0)
# long output (beyond the 1024-byte buffer)
c(b"%1000d%100d", 1, 2); c(b"%1020d%d", 1, 23456)
# invalid formats
c(b"%d %d %d %d", 1, 2, 3); c(b"%hd", 1); c(b"%.2d", 1); c(b"%#x", 1); c(b"%*d", 1, 2); c(b"%n", 0); c(b"%f", 0)
c(b"%z", 0); c(b"%zu", 0); c(b"%llld", 1); c(b"%lc", 65); c(b"%Ld", 1); c(b"%5%", 1); c(b"% %", 1)
c(b"trailing %", 1); c(b"%sx", "hello"); c(b"%pZ", 0); c(b"%pI5", 0); c(b"%pe", 0); c(b"%pkx", 0)
c(b"bad\x01char"); c("é".encode()); c(b"%d%%%d%d%d", 1, 2, 3); c(b"%5", 1)
c(b"%px", 1, size="nonul"); c(b"abc%dxyz", 7, size=4); c(b"%u %s", 1, "s300a")

# second round
c(b"hi\x80"); c(b"hi\x9f"); c(b"hi\xa0"); c(b"hi\xff"); c(b"hi\x7f"); c(b"v\vf\fr\r.")
c(b"ab\0cd %d", 1, size=6); c(b"ab\0cd %d", 1, size=3)
c(b"[%p]", 0x1234); c(b"[%pK]", 0x1234); c(b"[%pB]", 0); c(b"%pksx", "hello"); c(b"%ls", "hello"); c(b"%lp", 0); c(b"%l", 0)
c(b"[%-s] [%-+5d]", "hello", 9); c(b"%%%c%%", 0x25); c(b"[%pI4 %pi4]", "ip4", "ip4")
c(b"[%c]", 0x0a); c(b"[%c]", 0xff); c(b"[%c]", 0x01); c(b"[%s]", "ctl")
c(b"[%5pS] [%-8ps]", 0x1234, 0x1234); c(b"[%020px]", 0x1234); c(b"[%4px]", 0xffff888012345678)
c(b"[%d]", 0x7fffffff); c(b"[%x]", 0x1ffffffff); c(b"[%lx]", 0); c(b"[%08d]", 0)

# third round: Latin-1 ctype edges and buffer overshoot
c(b"[%pK\xc3\xa9x]", 0); c(b"[%p\xa0]", 0); c(b"[%p\xc3]", 0); c(b"[%s\xa9]", "hello"); c(b"[%s\xc3]", "hello")
c(b"[%px\xd7z]", 1); c(b"[%pB\xe9z]", 1)
c(b"%s%pI6", "s490", "ip6"); c(b"%s%pI6%d", "s490", "ip6", 5); c(b"%s%pB", "s510", 0x1234); c(b"%s%pI4", "s510", "ip4")
c(b"%-p|%-px|%+px", 0, 0x10, 0x10); c(b"[%-3c%c]", 0x41, 0x42)

# fourth round: random formats from a grammar (seeded), numbers and strings only
import random as _r
_r.seed(2026)
_convs = ["d", "i", "u", "x", "X", "ld", "lu", "lx", "lld", "llu", "llx", "lli", "lX", "c", "s", "px", "pS", "pI4", "pi6", "%"]
for _k in range(150):
    parts = []; args = []
    for _j in range(_r.randint(1, 4)):
        parts.append(_r.choice(["", "a", "[", "] ", "|", " x=", ".."]))
        conv = _r.choice(_convs)
        if conv == "%":
            parts.append("%%"); continue
        fl = "".join(_r.choice("0+- ") for _ in range(_r.choice([0, 0, 1, 2])))
        w = _r.choice(["", "", "1", "3", "8", "12", "20"])
        parts.append("%" + fl + w + conv)
        if conv == "s": args.append(_r.choice(["hello", "empty", "world", "utf8", "null"]))
        elif conv == "pI4": args.append("ip4")
        elif conv == "pi6": args.append("ip6")
        else: args.append(_r.choice([0, 1, 7, 42, 0xff, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000, (1 << 63), (1 << 64) - 1, _r.getrandbits(64)]))
    if len(args) > 3: args = args[:3]
    c("".join(parts).encode(), *args)
json.dump({"mem": {k: v.hex() for k, v in MEM.items()}, "cases": [{"fmt": x["fmt"].hex(), "args": x["args"], "size": x["size"]} for x in cases]}, open("printk_cases.json", "w"))
def cstr(b):
    return '"' + "".join(chr(ch) if 32 <= ch < 127 and chr(ch) not in '"\\?' else "\\%03o" % ch for ch in b) + '"'
out = ["#include <linux/bpf.h>", "#include <bpf/bpf_helpers.h>",
       "static long (*tp)(const char *, __u32, __u64, __u64, __u64) = (void *)6;",
       f"long ret[{len(cases)}];"]
for k, v in MEM.items():
    out.append(f"static const unsigned char m_{k}[{len(v)}] = {{{','.join(str(x) for x in v)}}};")
out.append('static const char marker[] = "@@%d";')
out.append('SEC("xdp")\nint printk_cases(struct xdp_md *ctx) {')
for i, x in enumerate(cases):
    f = x["fmt"]
    out.append(f"  {{ static const char f[] = {cstr(f)};")
    args = []
    for a in x["args"]:
        if isinstance(a, int): args.append(f"{a:#x}ULL")
        elif a == "null": args.append("0")
        elif a == "fault": args.append("0x10")
        else: args.append(f"(__u64)(long)m_{a}")
    size = "sizeof(f)" if x["size"] is None else ("sizeof(f) - 1" if x["size"] == "nonul" else str(x["size"]))
    out.append(f"    ret[{i}] = tp(f, {size}, {', '.join(args)});")
    out.append(f"    tp(marker, sizeof(marker), {i}, 0, 0); }}")
out.append("  return XDP_PASS;\n}\nchar LICENSE[] SEC(\"license\") = \"GPL\";")
open("p_printk.c", "w").write("\n".join(out) + "\n")
print(len(cases), "cases")
