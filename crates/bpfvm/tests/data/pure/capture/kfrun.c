// Loads an object, runs one program with BPF_PROG_TEST_RUN on a packet given in hex,
// prints the return value and the first element of every array map as hex. Scratch tool.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
static int unhex(const char *s, unsigned char *out) {
    int n = 0; while (s[0] && s[1]) { unsigned v; sscanf(s, "%2x", &v); out[n++] = v; s += 2; } return n;
}
int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: kfrun OBJ PROG HEXDATA [repeat]\n"); return 2; }
    libbpf_set_print(NULL);
    struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
    if (!obj || bpf_object__load(obj)) { fprintf(stderr, "load failed\n"); return 1; }
    struct bpf_program *p = bpf_object__find_program_by_name(obj, argv[2]);
    if (!p) { fprintf(stderr, "no prog\n"); return 1; }
    unsigned char data[4096]; int n = unhex(argv[3], data);
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = data, .data_size_in = n, .repeat = argc > 4 ? atoi(argv[4]) : 1);
    if (bpf_prog_test_run_opts(bpf_program__fd(p), &o)) { perror("test_run"); return 1; }
    printf("retval %u\n", o.retval);
    struct bpf_map *m;
    bpf_object__for_each_map(m, obj) {
        if (bpf_map__type(m) != BPF_MAP_TYPE_ARRAY) continue;
        unsigned vs = bpf_map__value_size(m); unsigned char *v = calloc(1, vs); __u32 k = 0;
        if (bpf_map_lookup_elem(bpf_map__fd(m), &k, v)) continue;
        printf("map %s ", bpf_map__name(m)); for (unsigned i = 0; i < vs; i++) printf("%02x", v[i]); printf("\n");
    }
    return 0;
}
