#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
#endif

typedef int pid_t;

typedef unsigned long long __u64;

typedef long long __s64;

struct sched_entity {
	__u64 pad[4];
	__u64 exec_start;
	union {
		__s64 vlag;
		__u64 vprot;
	};
	__u64 vruntime;
};

struct list_head {
	struct list_head *next;
	struct list_head *prev;
};

struct task_struct {
	long state;
	unsigned int flags;
	int prio;
	pid_t pid;
	int tgid;
	char comm[16];
	struct sched_entity se;
	unsigned int in_execve: 1;
	unsigned int pad_bits: 3;
	unsigned int sched_reset_on_fork: 1;
	unsigned int sched_contributes_to_load: 1;
	struct list_head tasks;
};

typedef unsigned int __u32;

struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};

enum bpf_func_id {
	BPF_FUNC_unspec = 0,
	BPF_FUNC_map_lookup_elem = 1,
	BPF_FUNC_map_update_elem = 2,
	BPF_FUNC_map_delete_elem = 3,
	BPF_FUNC_probe_read = 4,
	BPF_FUNC_ktime_get_ns = 5,
};

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute pop
#endif

#endif /* __VMLINUX_H__ */
