// Runs the "ids" program of p_misc.o from a second thread and prints getpid(),
// gettid(), getuid(), getgid() and what the program saw. Scratch tool.
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
static int fd;
static void *runner(void *x) {
    unsigned char data[16] = {0};
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = data, .data_size_in = sizeof data);
    bpf_prog_test_run_opts(fd, &o);
    printf("tid %ld\n", (long)syscall(SYS_gettid));
    return 0;
}
int main(void) {
    libbpf_set_print(NULL);
    struct bpf_object *obj = bpf_object__open_file("p_misc.o", NULL);
    if (!obj || bpf_object__load(obj)) return 1;
    fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "ids"));
    pthread_t t; pthread_create(&t, 0, runner, 0); pthread_join(t, 0);
    printf("pid %d uid %d gid %d\n", getpid(), getuid(), getgid());
    struct bpf_map *m = bpf_object__find_map_by_name(obj, "p_misc.bss");
    unsigned long long v[2]; __u32 k = 0; unsigned char buf[256];
    bpf_map_lookup_elem(bpf_map__fd(m), &k, buf); memcpy(v, buf, 16);
    printf("pid_tgid 0x%llx uid_gid 0x%llx\n", v[0], v[1]);
    return 0;
}
