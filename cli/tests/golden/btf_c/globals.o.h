#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)
#endif

typedef unsigned int __u32;

struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};

typedef unsigned long long __u64;

struct stats {
	__u64 packets;
	__u64 bytes;
	__u32 min_len;
	__u32 max_len;
};

typedef unsigned short __u16;

enum color {
	RED = 1,
	GREEN = 2,
	BLUE = 4,
};

typedef unsigned char __u8;

struct flags {
	unsigned int seen: 1;
	unsigned int big: 1;
	unsigned int parity: 1;
	unsigned int kind: 5;
	unsigned int rest: 24;
};

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute pop
#endif

#endif /* __VMLINUX_H__ */
