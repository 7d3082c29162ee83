// Loads hand-made programs using BPF_PSEUDO_MAP_IDX / _IDX_VALUE through fd_array and
// prints their kernel tags. Scratch tool.
#include <stdio.h>
#include <string.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
static void show(const char *name, struct bpf_insn *in, int n, int *fds) {
    LIBBPF_OPTS(bpf_prog_load_opts, o, .fd_array = fds);
    char log[4096]; o.log_buf = log; o.log_size = sizeof log; o.log_level = 1;
    int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, name, "GPL", in, n, &o);
    if (fd < 0) { printf("prog %s load failed: %s\n", name, log); return; }
    struct bpf_prog_info info; memset(&info, 0, sizeof info); __u32 len = sizeof info;
    bpf_obj_get_info_by_fd(fd, &info, &len);
    printf("prog %s\ntag ", name);
    for (int i = 0; i < 8; i++) printf("%02x", info.tag[i]);
    printf("\ninsns");
    unsigned char *b = (unsigned char *)in;
    for (int i = 0; i < n; i++) { printf("\n"); for (int j = 0; j < 8; j++) printf("%02x", b[i*8+j]); }
    printf("\nend\n");
}
int main(void) {
    int m0 = bpf_map_create(BPF_MAP_TYPE_ARRAY, "a0", 4, 8, 4, NULL);
    int m1 = bpf_map_create(BPF_MAP_TYPE_ARRAY, "a1", 4, 16, 1, NULL);
    int fds[2] = { m0, m1 };
    /* r1 = map_idx[1]; r0 = 2; exit */
    struct bpf_insn p1[] = {
        { .code = BPF_LD|BPF_IMM|BPF_DW, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_IDX, .imm = 1 },
        { .imm = 0 },
        { .code = BPF_ALU64|BPF_MOV|BPF_K, .dst_reg = 0, .imm = 2 },
        { .code = BPF_JMP|BPF_EXIT },
    };
    /* r1 = map_idx_value[1] + 8; r0 = *(u64*)(r1+0); r0 = 2; exit */
    struct bpf_insn p2[] = {
        { .code = BPF_LD|BPF_IMM|BPF_DW, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_IDX_VALUE, .imm = 1 },
        { .imm = 8 },
        { .code = BPF_LDX|BPF_MEM|BPF_DW, .dst_reg = 0, .src_reg = 1, .off = 0 },
        { .code = BPF_ALU64|BPF_MOV|BPF_K, .dst_reg = 0, .imm = 2 },
        { .code = BPF_JMP|BPF_EXIT },
    };
    /* the same through real fds, to compare: r1 = map_fd m1; r1 = map_value m1 + 8 */
    struct bpf_insn p3[] = {
        { .code = BPF_LD|BPF_IMM|BPF_DW, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = m1 },
        { .imm = 0 },
        { .code = BPF_LD|BPF_IMM|BPF_DW, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_VALUE, .imm = m1 },
        { .imm = 8 },
        { .code = BPF_LDX|BPF_MEM|BPF_DW, .dst_reg = 0, .src_reg = 1, .off = 0 },
        { .code = BPF_ALU64|BPF_MOV|BPF_K, .dst_reg = 0, .imm = 2 },
        { .code = BPF_JMP|BPF_EXIT },
    };
    /* plain 64-bit constant: never zeroed */
    struct bpf_insn p4[] = {
        { .code = BPF_LD|BPF_IMM|BPF_DW, .dst_reg = 0, .src_reg = 0, .imm = 0x55667788 },
        { .imm = 0x11223344 },
        { .code = BPF_ALU64|BPF_MOV|BPF_K, .dst_reg = 0, .imm = 2 },
        { .code = BPF_JMP|BPF_EXIT },
    };
    show("idx", p1, 4, fds);
    show("idx_value", p2, 5, fds);
    show("fd_and_value", p3, 7, fds);
    show("const64", p4, 4, fds);
    return 0;
}
