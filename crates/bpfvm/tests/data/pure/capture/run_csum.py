# Runs bpf_csum_diff in the host kernel on generated inputs and writes
# ../csum_diff_cases.txt. Needs root, clang-19 and libbpf-dev. Run from a scratch
# directory where kfrun (gcc -O1 -o kfrun kfrun.c -lbpf) and p_csum.o
# (clang-19 -target bpf -O2 -g -c p_csum.c) were built.
import os, random, re, struct, subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def run(fs, ts, seed, frm, to):
    pkt = struct.pack("<III", fs, ts, seed) + frm.ljust(512, b"\0") + to.ljust(512, b"\0")
    out = subprocess.run(["./kfrun", "p_csum.o", "csum_case", pkt.hex()], capture_output=True, text=True).stdout
    m = re.search(r"map p_csum\.bss ([0-9a-f]+)", out)
    return struct.unpack("<q", bytes.fromhex(m.group(1))[:8])[0]


def rb(n):
    return bytes(random.getrandbits(8) for _ in range(n))


cases = []
# Batch 1: chosen sizes (odd ones included) with random, all-ones and all-zero data.
random.seed(7)
specs = [(0, 0, 0), (0, 0, 0x12345678), (4, 0, 0), (0, 4, 0), (4, 4, 0), (8, 8, 0xffffffff), (20, 20, 0),
         (0, 20, 0xdeadbeef), (20, 0, 0xdeadbeef), (3, 0, 0), (0, 6, 0), (4, 5, 0), (512, 0, 0), (0, 512, 0),
         (256, 256, 0), (256, 260, 0), (512, 512, 1), (12, 16, 0xabcd), (40, 40, 0), (64, 0, 0xffff0000),
         (0, 64, 0xffffffff)]
for fs, ts, seed in specs:
    for kind in ("rand", "ones", "zero"):
        if kind == "rand":
            frm, to = rb(fs), rb(ts)
        elif kind == "ones":
            frm, to = b"\xff" * fs, b"\xff" * ts
        else:
            frm, to = b"\0" * fs, b"\0" * ts
        cases.append((frm, to, seed, run(fs, ts, seed, frm, to)))
# Batch 2: random sizes and seeds.
random.seed(11)
for _ in range(60):
    fs = random.choice([0, random.randint(1, 64), 4 * random.randint(1, 16), random.randint(65, 512)])
    ts = random.choice([0, random.randint(1, 64), 4 * random.randint(1, 16), random.randint(65, 512)])
    seed = random.choice([0, 0xffffffff, random.getrandbits(32), random.getrandbits(16)])
    frm, to = rb(fs), rb(ts)
    cases.append((frm, to, seed, run(fs, ts, seed, frm, to)))

rel = open("/proc/sys/kernel/osrelease").read().strip()
lines = [f"# bpf_csum_diff(from, from_size, to, to_size, seed) on Linux {rel} (x86-64):",
         "# 'FROM_HEX TO_HEX SEED RET', '-' for an empty (NULL, size 0) buffer. Run from an XDP",
         "# program on bytes copied out of the packet (capture/p_csum.c, capture/run_csum.py)."]
for frm, to, seed, ret in cases:
    lines.append(f"{frm.hex() or '-'} {to.hex() or '-'} 0x{seed:08x} {ret}")
open(os.path.join(HERE, "..", "csum_diff_cases.txt"), "w").write("\n".join(lines) + "\n")
