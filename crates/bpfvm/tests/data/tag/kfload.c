// Loads an object with libbpf and prints, per program, the instructions libbpf
// submitted (after relocation) and the kernel's tag. Scratch tool, not project code.
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
int main(int argc, char **argv) {
    struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
    if (!obj) { fprintf(stderr, "open failed\n"); return 1; }
    if (bpf_object__load(obj)) { fprintf(stderr, "load failed\n"); return 1; }
    struct bpf_program *p;
    bpf_object__for_each_program(p, obj) {
        struct bpf_prog_info info; memset(&info, 0, sizeof(info));
        __u32 len = sizeof(info);
        int fd = bpf_program__fd(p);
        if (bpf_obj_get_info_by_fd(fd, &info, &len)) { fprintf(stderr, "info failed\n"); return 1; }
        printf("prog %s\ntag ", bpf_program__name(p));
        for (int i = 0; i < 8; i++) printf("%02x", info.tag[i]);
        printf("\ninsns");
        const struct bpf_insn *in = bpf_program__insns(p);
        size_t n = bpf_program__insn_cnt(p);
        const unsigned char *b = (const unsigned char *)in;
        for (size_t i = 0; i < n; i++) { printf("\n"); for (int j = 0; j < 8; j++) printf("%02x", b[i*8+j]); }
        printf("\nend\n");
    }
    return 0;
}
