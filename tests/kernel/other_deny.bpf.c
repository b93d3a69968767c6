// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Another tool's cgroup program, standing in for systemd's IPAddressDeny=: denies connect() to
 * 192.0.2.10 and allows everything else. Used by tests/kernel/e2e.py (coexistence). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("cgroup/connect4")
int other_deny(struct bpf_sock_addr *ctx)
{
	return ctx->user_ip4 == bpf_htonl(0xc000020a) ? 0 : 1; /* 192.0.2.10 */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
