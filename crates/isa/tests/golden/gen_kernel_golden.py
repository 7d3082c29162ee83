#!/usr/bin/env python3
"""Regenerates the kernel-disassembler golden files from the running kernel.

Loads small hand-assembled programs with bpf(BPF_PROG_LOAD) at log_level 2, keeps
the verifier's "Live regs before insn" listing (one line per original instruction,
printed by kernel/bpf/disasm.c), pins each program and keeps
`bpftool prog dump xlated ... opcodes` (the rewritten instructions with their bytes,
printed by the same disassembler with bpftool's callbacks). Each golden line is
`pc<TAB>hex bytes<TAB>text as printed`. Needs root, bpffs at /sys/fs/bpf, bpftool.

Usage: gen_kernel_golden.py OUTDIR
"""
import ctypes, os, re, struct, subprocess, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR_BPF = 321  # x86_64


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, 256)
    r = libc.syscall(NR_BPF, ctypes.c_int(cmd), buf, ctypes.c_uint(256))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def I(code, dst=0, src=0, off=0, imm=0):
    return [struct.pack('<BBhi', code, (src << 4) | dst, off, imm)]


def LD64(dst, v, src=0):
    v &= (1 << 64) - 1
    lo, hi = v & 0xffffffff, v >> 32
    return [struct.pack('<BBhI', 0x18, (src << 4) | dst, 0, lo), struct.pack('<BBhI', 0, 0, 0, hi)]


def map_create(mtype=2, ks=4, vs=8, n=1):
    return bpf(0, struct.pack('<IIIII', mtype, ks, vs, n, 0))


def prog_load(slots, ptype, refused=False):
    """Loads twice: once at BPF_LOG_LEVEL2 | BPF_LOG_FIXED for the listing at the head
    of the log (the rest may overflow, ENOSPC is fine), once without a log for the fd."""
    prog = b''.join(slots)
    pbuf = ctypes.create_string_buffer(prog, len(prog))
    lic = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(1 << 20)

    def load(level, size):
        attr = struct.pack('<IIQQIIQII16s', ptype, len(prog) // 8, ctypes.addressof(pbuf),
                           ctypes.addressof(lic), level, size, ctypes.addressof(log) if size else 0,
                           0, 0, b"isatext")
        return bpf(5, attr)
    try:
        os.close(load(2 | 8, len(log)))
    except OSError as e:
        if e.errno != 28 and not refused:
            sys.exit("load failed: %s\n%s" % (e, log.value.decode(errors='replace')))
    text = log.value.decode(errors='replace')
    if refused:
        return None, text
    try:
        fd = load(0, 0)
    except OSError as e:
        sys.exit("load failed: %s\n%s" % (e, text[-4000:]))
    return fd, text


def pin(fd, path):
    p = ctypes.create_string_buffer(path.encode())
    bpf(6, struct.pack('<QII', ctypes.addressof(p), fd, 0))


SOCKET_FILTER = 1

# ---- programs -------------------------------------------------------------------

def p_alu():
    p = I(0xbf, 6, 1)                      # r6 = r1
    p += I(0x61, 2, 6, 0)                  # r2 = skb->len (unknown)
    p += I(0x61, 3, 6, 4)                  # r3 = skb->pkt_type (unknown)
    for cls in (0x07, 0x04):               # ALU64, ALU
        for op, imm in ((0x00, 5), (0x00, -8), (0x10, 3), (0x20, 7), (0x30, 3), (0x40, 0x10),
                        (0x50, 0xff), (0x60, 3), (0x70, 2), (0x90, 5), (0xa0, -1), (0xc0, 4)):
            p += I(cls | op, 2, 0, 0, imm)
        p += I(cls | 0x30, 2, 0, 1, -3)    # sdiv K
        p += I(cls | 0x90, 2, 0, 1, 7)     # smod K
        for op in (0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0, 0xc0):
            p += I(cls | 0x08 | op, 2, 3)
        p += I(cls | 0x38, 2, 3, 1)        # sdiv X
        p += I(cls | 0x98, 2, 3, 1)        # smod X
        p += I(cls | 0x80, 2)              # neg
        p += I(cls | 0xb0, 4, 0, 0, 1)     # mov K
        p += I(cls | 0xb0, 4, 0, 0, -1)
        p += I(cls | 0xb8, 4, 2)           # mov X
        for w in (8, 16) + ((32,) if cls == 0x07 else ()):
            p += I(cls | 0xb8, 5, 2, w)    # movsx
    for code in (0xd4, 0xdc, 0xd7):        # le, be, bswap
        for w in (16, 32, 64):
            p += I(code, 2, 0, 0, w)
    p += I(0xb7, 0, 0, 0, 0)
    p += I(0x95)
    return p


def p_jmp():
    p = I(0x61, 2, 1, 0)                   # r2 = skb->len
    p += I(0x61, 3, 1, 4)                  # r3 = skb->pkt_type
    p += I(0xb7, 0, 0, 0, 0)
    for cls in (0x05, 0x06):
        for op in (0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0):
            p += I(cls | op, 2, 0, 1, 5)
            p += I(0xb7, 0, 0, 0, 1)
            p += I(cls | 0x08 | op, 2, 3, 1)
            p += I(0xb7, 0, 0, 0, 2)
        p += I(cls | 0x10, 2, 0, 1, -1)    # imm printed unsigned
        p += I(0xb7, 0, 0, 0, 3)
        p += I(cls | 0x50, 3, 0, 0, 0x7fffffff)
    p += I(0x25, 2, 0, 1, 6)               # the skipped insns stay reachable
    p += I(0x05, 0, 0, 1)                  # goto pc+1
    p += I(0xb7, 0, 0, 0, 4)
    p += I(0x25, 2, 0, 1, 7)
    p += I(0x06, 0, 0, 0, 1)               # gotol pc+1
    p += I(0xb7, 0, 0, 0, 5)
    p += I(0xb7, 4, 0, 0, 0)               # bounded loop: backward jump
    p += I(0x07, 4, 0, 0, 1)
    p += I(0xa5, 4, 0, -2, 3)              # if r4 < 0x3 goto pc-2
    p += I(0x95)
    return p


def p_mem():
    p = I(0xb7, 1, 0, 0, 0x11)
    p += I(0xb7, 0, 0, 0, 0)
    for code, off, imm in ((0x7a, -8, 1), (0x62, -12, -2), (0x6a, -14, 0x1234), (0x72, -15, -1),
                           (0x7a, -24, 0x7fffffff), (0x7a, -32, 0)):
        p += I(code, 10, 0, off, imm)      # st
    for code, off in ((0x7b, -8), (0x63, -12), (0x6b, -14), (0x73, -15), (0x7b, -16)):
        p += I(code, 10, 1, off)           # stx
    for code, off in ((0x79, -8), (0x61, -12), (0x69, -14), (0x71, -15),
                      (0x81, -12), (0x89, -14), (0x91, -15)):
        p += I(code, 2, 10, off)           # ldx, ldsx
    for code, off in ((0xdb, -8), (0xc3, -12)):
        for imm in (0x00, 0x40, 0x50, 0xa0, 0x01, 0x41, 0x51, 0xa1, 0xe1, 0xf1):
            p += I(code, 10, 1, off, imm)
    p += I(0xb7, 0, 0, 0, 0)
    p += I(0x95)
    return p


def p_ld():
    p = I(0xbf, 6, 1)
    p += I(0xb7, 7, 0, 0, 2)
    p += I(0x30, 0, 0, 0, 12)              # ld_abs b/h/w
    p += I(0x28, 0, 0, 0, 12)
    p += I(0x20, 0, 0, 0, 0)
    p += I(0x50, 0, 7, 0, 1)               # ld_ind b/h/w
    p += I(0x48, 0, 7, 0, 2)
    p += I(0x40, 0, 7, 0, -4)
    p += LD64(1, 0x1122334455667788)
    p += LD64(1, 0)
    p += LD64(1, 7)
    p += LD64(1, -1)
    p += I(0xb7, 0, 0, 0, 0)
    p += I(0x95)
    return p


def p_calls(mfd, kfunc_id):
    p = I(0xbf, 6, 1)
    p += I(0x85, 0, 0, 0, 5)               # bpf_ktime_get_ns
    p += I(0x85, 0, 0, 0, 7)               # bpf_get_prandom_u32
    p += I(0x85, 0, 0, 0, 8)               # bpf_get_smp_processor_id
    p += I(0x62, 10, 0, -4, 0)             # key = 0
    p += I(0xbf, 2, 10)
    p += I(0x07, 2, 0, 0, -4)
    p += LD64(1, mfd, src=1)               # r1 = map (BPF_PSEUDO_MAP_FD)
    p += I(0x85, 0, 0, 0, 1)               # bpf_map_lookup_elem
    p += LD64(3, mfd | (4 << 32), src=2)   # r3 = &map value + 4 (BPF_PSEUDO_MAP_VALUE)
    p += I(0xbf, 1, 6)
    if kfunc_id:
        p += I(0x85, 0, 2, 0, kfunc_id)    # bpf_cast_to_kern_ctx (kfunc)
    call_local = len(p)
    p += I(0x85, 0, 1, 0, 0)               # call local sub, patched below
    p += I(0xb7, 0, 0, 0, 0)
    p += I(0x95)
    sub = len(p)
    p += I(0xb7, 0, 0, 0, 1)
    p += I(0x95)
    p[call_local] = struct.pack('<BBhi', 0x85, 1 << 4, 0, sub - call_local - 1)
    return p


def p_v618():
    """What Linux 6.18 adds to the ISA: may_goto, load-acquire/store-release."""
    p = I(0xb7, 1, 0, 0, 5)
    p += I(0x7b, 10, 1, -8)                # *(u64 *)(r10 -8) = r1
    for code in (0xd3, 0xcb, 0xc3, 0xdb):  # load_acquire b/h/w/dw
        p += I(code, 2, 10, -8, 0x100)
    for code, off in ((0xd3, -9), (0xcb, -10), (0xc3, -12), (0xdb, -16)):
        p += I(code, 10, 1, off, 0x110)    # store_release b/h/w/dw
    p += I(0xb7, 0, 0, 0, 0)
    p += I(0xe5, 0, 0, 1)                  # may_goto pc+1
    p += I(0x07, 0, 0, 0, 1)
    p += I(0x07, 0, 0, 0, 2)               # loop: r0 += 2; may_goto pc+1; goto pc-3
    p += I(0xe5, 0, 0, 1)
    p += I(0x05, 0, 0, -3)
    p += I(0x95)
    return p


def p_as_cast():
    """addr_space_cast, refused without an arena map (which the host may not be
    able to create): only the verifier's listing is kept."""
    p = I(0xb7, 2, 0, 0, 5)
    p += I(0xbf, 4, 2, 1, 1)               # r4 = addr_space_cast(r2, 0, 1)
    p += I(0xbf, 5, 2, 1, 1 << 16)         # r5 = addr_space_cast(r2, 1, 0)
    p += I(0xb7, 0, 0, 0, 0)
    p += I(0x95)
    return p


def kfunc_btf_id(name):
    out = subprocess.run(['bpftool', 'btf', 'dump', 'file', '/sys/kernel/btf/vmlinux', 'format', 'raw'],
                         capture_output=True, text=True).stdout
    m = re.search(r"^\[(\d+)\] FUNC '%s'" % re.escape(name), out, re.M)
    return int(m.group(1)) if m else 0


LIVE = re.compile(r'^\s*(?:\d+\s+)?(\d+): [.0-9]{10} (\(\w\w\) .*)$')
XL = re.compile(r'^\s*(\d+): (\(\w\w\) .*)$')


def run(name, slots, out, refused=False):
    """`refused`: the kernel refuses the program; its listing is kept, no xlated."""
    fd, log = prog_load(slots, SOCKET_FILTER, refused)
    lines = ['# observed by gen_kernel_golden.py; kernel pointers masked as 0xffffxxxxxxxxxxxx',
             '# kernel %s, %s' % (os.uname().release, subprocess.run(['bpftool', 'version'], capture_output=True,
                                                                     text=True).stdout.splitlines()[0]),
             '[verifier]']
    in_live = False
    for l in log.splitlines():
        if l.startswith('Live regs before insn'):
            in_live = True
            continue
        m = LIVE.match(l)
        if in_live and m:
            pc = int(m.group(1))
            n = 2 if slots[pc][0] == 0x18 else 1
            # Map pointers the root verifier log prints are masked: they are
            # environment (the test feeds them back), and need not be published.
            text = m.group(2)
            if slots[pc][0] == 0x18 and slots[pc][1] >> 4 in (1, 2, 5, 6):
                text = re.sub(r'= 0xffff[0-9a-f]{12}$', '= 0xffffxxxxxxxxxxxx', text)
            lines.append('%d\t%s\t%s' % (pc, b''.join(slots[pc:pc + n]).hex(), text))
        elif in_live and not l.startswith('func#'):
            in_live = False
    if refused:
        with open(os.path.join(out, 'kernel_%s.txt' % name), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        return
    path = '/sys/fs/bpf/isatext_%s' % name
    pin(fd, path)
    try:
        xl = subprocess.run(['bpftool', 'prog', 'dump', 'xlated', 'pinned', path, 'opcodes'],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    finally:
        os.unlink(path)
        os.close(fd)
    lines.append('[xlated]')
    i = 0
    while i < len(xl):
        m = XL.match(xl[i])
        if m:
            hexb = xl[i + 1].split() if i + 1 < len(xl) else []
            lines.append('%s\t%s\t%s' % (m.group(1), ''.join(hexb), m.group(2)))
            i += 2
        else:
            i += 1
    with open(os.path.join(out, 'kernel_%s.txt' % name), 'w') as f:
        f.write('\n'.join(lines) + '\n')


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    # Optional names after OUTDIR: regenerate only those goldens.
    only = set(sys.argv[2:])
    want = lambda name: not only or name in only
    mfd = map_create()
    try:
        if want('alu'):
            run('alu', p_alu(), out)
        if want('jmp'):
            run('jmp', p_jmp(), out)
        if want('mem'):
            run('mem', p_mem(), out)
        if want('ld'):
            run('ld', p_ld(), out)
        if want('calls'):
            run('calls', p_calls(mfd, kfunc_btf_id('bpf_cast_to_kern_ctx')), out)
        if want('v618'):
            run('v618', p_v618(), out)
        if want('as_cast'):
            run('as_cast', p_as_cast(), out, refused=True)
    finally:
        os.close(mfd)


if __name__ == '__main__':
    main()
