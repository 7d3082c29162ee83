# quirks.s: raw instruction words (.quad, so no assembler syntax is involved)
# for what C programs rarely give llvm-objdump: aliases and a data symbol in
# code, a section without a symbol at 0, runs of zero bytes, undecodable
# words, jumps out of their function, gotol, ld_pseudo, callx, trailing bytes.
	.section xdp,"ax",@progbits
	.quad 0x0000000000000095         # exit (no symbol at 0: <xdp>)
	.globl zz
	.type zz,@object
zz:
	.globl aa
	.type aa,@function
aa:
	.globl bb
bb:
	.quad 0x00000000fffd0005         # goto -3 (before the section)
	.quad 0x0000000000ff0005         # goto +0xff (past the end)
	.quad 0x0000000100000006         # gotol +1
	.quad 0x0000000000000000
	.quad 0x0000000000000000
	.quad 0x00000002fffe0118         # off != 0 in lddw: <unknown>
	.quad 0x0000000000000000
	.quad 0x0000000000002118         # ld_pseudo r1, 2
	.quad 0x0000000700000000
	.quad 0x000000000000028d         # callx r2
	.quad 0x00000000000000ff         # unknown opcode
	.quad 0x0000000000031195         # exit with regs and off: LLVM ignores them
	.quad 0x00000006000fa185         # call with dst/src/off set
	.quad 0x0000000300000b07         # r11 += 3 (LLVM knows r11)
	.quad 0x000000050000c107         # src 12 in an ALU-K: ignored
	.quad 0x00000005fff821db         # atomic imm 5: plain lock add
	.quad 0x00000041fff821db         # fetch_or
	.quad 0x00000042fff821c3         # 32-bit or: <unknown> without +alu32
	.quad 0x0000000500000118         # lddw with a sloppy second slot
	.quad 0x0000000904030201
	.globl tbl
	.type tbl,@object
tbl:
	.quad 0x3736353433323130
	.byte 0x41, 0x00, 0x42
	.globl after
	.type after,@function
after:
	.quad 0x0000000000000095
	.byte 0x95, 0x00, 0x00
	.quad 0x0000000500000118         # lddw cut short by the section end

	.section .text,"ax",@progbits
local_only:
	.quad 0x00000001000012db         # atomic_fetch_add
	.quad 0x0000000000000000
	.quad 0x0000000000000000
	.quad 0x0000000000000000
	.quad 0x00000000fffb0005         # goto -5
	.quad 0x0000000000000095
