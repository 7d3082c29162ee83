#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
#endif

struct xdp_md;

typedef int pid_t;

typedef unsigned long long __u64;

typedef long long __s64;

struct sched_entity {
	__u64 exec_start;
	__s64 vlag;
	__u64 vruntime;
};

struct task_struct {
	char comm[16];
	pid_t pid;
	unsigned int flags;
	int prio;
	struct sched_entity se;
	unsigned int in_execve: 1;
	unsigned int sched_reset_on_fork: 1;
	unsigned int sched_contributes_to_load: 1;
};

struct task_struct___v2 {
	int pid;
	int no_such_field;
};

struct no_such_type___x {
	int a;
};

struct list_head {
	struct list_head *next;
	struct list_head *prev;
};

struct list_head___bad {
	int next;
};

enum bpf_func_id___l {
	BPF_FUNC_map_lookup_elem___l = 100,
	BPF_FUNC_ktime_get_ns___l = 200,
	BPF_FUNC_no_such_helper___l = 300,
};

typedef unsigned int __u32;

struct xdp_md___l {
	__u32 ingress_ifindex;
	__u32 data;
	__u64 rx_queue_index;
};

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute pop
#endif

#endif /* __VMLINUX_H__ */
