/* SPDX-License-Identifier: (LGPL-2.1-or-later OR BSD-2-Clause) */
/*
 * egress_abi.h - the ABI between the BPF programs (bpf/egress.bpf.c) and the daemon.
 *
 * Fixed-width fields only. Every multi-byte field states its byte order and unit.
 * Changing anything here changes the layout of pinned maps: do it deliberately.
 */
#ifndef EGRESS_ABI_H
#define EGRESS_ABI_H

#include <linux/types.h>

/* ---- Countries ------------------------------------------------------------------------------
 * Country id (__u16): 0 = unknown (no data, empty code, pseudo-codes ZZ/EU/AP/A1/A2/O1).
 * An ISO 3166-1 alpha-2 code "XY" (upper case A-Z) has id (X-'A')*26 + (Y-'A') + 1, i.e. 1..676,
 * so the id is derived from the code alone and is stable across data sets and restarts.
 */
#define EGRESS_COUNTRY_UNKNOWN 0
#define EGRESS_COUNTRY_MAX 677 /* number of ids, 0..676 */
#define EGRESS_COUNTRY_WORDS 11 /* __u64 words in a country bitset: ceil(677 / 64) */

/* ---- Verdicts, modes, protocols ----------------------------------------------------------- */
#define EGRESS_VERDICT_ALLOW 0
#define EGRESS_VERDICT_DENY 1
#define EGRESS_VERDICT_WOULD_DENY 2 /* monitor mode: would have been denied */
#define EGRESS_VERDICT_LOCAL 3 /* loopback, link-local, unspecified: always allowed */
#define EGRESS_VERDICT_COUNT 4

#define EGRESS_MODE_MONITOR 0
#define EGRESS_MODE_ENFORCE 1

#define EGRESS_UNKNOWN_ALLOW 0
#define EGRESS_UNKNOWN_DENY 1

#define EGRESS_CIDR_ALLOW 1
#define EGRESS_CIDR_DENY 2

/* Hook that produced an event. */
#define EGRESS_HOOK_CONNECT4 1
#define EGRESS_HOOK_CONNECT6 2
#define EGRESS_HOOK_SENDMSG4 3
#define EGRESS_HOOK_SENDMSG6 4
#define EGRESS_HOOK_SKB_EGRESS 5 /* cgroup_skb/egress: a packet no sock_addr hook decided */

/* ---- Policies ------------------------------------------------------------------------------
 * Map "policies": BPF_MAP_TYPE_HASH, key __u32 policy id, value struct egress_policy.
 * The policy id is the 32-bit FNV-1a hash of the policy name (stable across reloads and
 * restarts); the compiler rejects a configuration in which two names collide.
 */
struct egress_policy {
	__u32 policy_id; /* host order */
	__u8 mode; /* EGRESS_MODE_* */
	__u8 unknown; /* EGRESS_UNKNOWN_*: verdict for country 0 */
	__u8 has_cidr; /* 1 if the policy has CIDR exceptions (skip the trie when 0) */
	__u8 pad;
	__u64 allowed[EGRESS_COUNTRY_WORDS]; /* bit (id % 64) of word (id / 64) set = id allowed */
};

/* Map "cgroup_policy": BPF_MAP_TYPE_HASH, key __u64 cgroup id (cgroup v2 inode number, host
 * order), value __u32 policy id. The programs walk the current task's cgroup ancestors and the
 * deepest configured one wins. */

/* Map "cidr": BPF_MAP_TYPE_LPM_TRIE, key struct egress_cidr_key, value __u32 EGRESS_CIDR_*.
 * IPv4 prefixes are stored IPv4-mapped (::ffff:a.b.c.d), so one trie serves both families.
 * prefixlen = 32 (policy id, always matched whole) + 96 + len for IPv4, 32 + len for IPv6. */
struct egress_cidr_key {
	__u32 prefixlen; /* bits, including the 32 bits of policy_id */
	__u32 policy_id; /* host order */
	__u8 addr[16]; /* network order */
};

/* ---- Config --------------------------------------------------------------------------------
 * Map "config": BPF_MAP_TYPE_ARRAY, one element. */
struct egress_config {
	__u32 max_level; /* deepest cgroup level (root = 0) that has a policy; the ancestor walk stops here */
	__u32 flags; /* reserved, 0 */
};
#define EGRESS_MAX_CGROUP_LEVEL 32 /* deeper cgroups cannot carry a policy */

/* ---- Counters ------------------------------------------------------------------------------
 * Map "counters": BPF_MAP_TYPE_PERCPU_HASH, key struct egress_counter_key, value
 * struct egress_counter_val (one per CPU; userspace sums). When an insert fails because the map is
 * full, the count goes to map "overflow" (BPF_MAP_TYPE_PERCPU_ARRAY indexed by verdict), which the
 * daemon exports as country "other": nothing is lost.
 */
struct egress_counter_key {
	__u64 cgroup_id; /* cgroup v2 id (host order): the deciding task's own cgroup for sock_addr
			  * decisions, the socket's cgroup for packet hook decisions */
	__u32 policy_id; /* host order */
	__u16 country; /* country id */
	__u8 proto; /* IP protocol number (IPPROTO_TCP = 6, IPPROTO_UDP = 17, ...) */
	__u8 verdict; /* EGRESS_VERDICT_* */
};

struct egress_counter_val {
	__u64 connections; /* decisions: one per connect(), one per sendmsg()/sendto() with an address */
	__u64 packets; /* IP packets seen by the egress packet hook; a GSO/TSO packet counts as its
			* gso_segs segments */
	__u64 bytes; /* IP bytes (headers included) of those packets: skb->len at cgroup egress, plus
		      * the IP + TCP/UDP headers each further GSO segment will carry */
};

/* ---- Upgrades -----------------------------------------------------------------------------
 * Maps are pinned as PinPath/NAME and a new version adopts a pinned map whose layout (type, key
 * and value size, max_entries, flags) is unchanged. Until the new version's programs replace the
 * old ones on their links, the old programs keep running and read the same adopted maps, so:
 *   - a change in the meaning of a map's contents that keeps its layout (a new table image format,
 *     a policy field used differently) must give the map a new NAME (NAME_v2, as Cilium does):
 *     the new version then fills a fresh map the old programs never see, and once the links are
 *     switched the daemon unpins the maps no map of the new version owns (kern_carry_over);
 *   - a layout change of a counting map (counters, overflow, stats, events) makes a new map and
 *     the counts of the old one are carried over (kern_carry_over, program "carry" below);
 *   - indices of "overflow" (verdicts) and "stats" (EGRESS_STAT_*) keep their meaning: new ones
 *     are appended.
 */

/* ---- Carrying counts over -----------------------------------------------------------------
 * Program "carry" (BPF_PROG_TYPE_SYSCALL, run with BPF_PROG_TEST_RUN, never attached) adds counts
 * into the live per-CPU maps with the same atomic adds the hooks use, so the daemon can add the
 * counts of a replaced map (an upgrade changed its layout) while the hooks keep counting. Its
 * context is one struct egress_carry (ctx_size_in = sizeof); it returns an EGRESS_CARRY_* code. */
#define EGRESS_CARRY_COUNTERS 0 /* key, val -> "counters" (or "overflow" when it is full) */
#define EGRESS_CARRY_OVERFLOW 1 /* val -> "overflow"[index] */
#define EGRESS_CARRY_STATS 2 /* val.connections -> "stats"[index] */
#define EGRESS_CARRY_KEY_MAX 64 /* bytes of a replaced map's key a mark can hold */
/* Map "carry_marks": BPF_MAP_TYPE_HASH, key struct egress_carry_mark, value __u8 (1): entries of a
 * replaced map whose counts are added but which are not yet removed from that map. The program
 * adds the counts and the mark in one run (a process cannot die in between), so a daemon killed
 * before it removed the entry skips it on the next start instead of adding it twice. */
#define EGRESS_CARRY_MARKS_MAX 256
struct egress_carry_mark {
	__u32 src_map_id; /* kernel id of the replaced map */
	__u32 src_key_size; /* bytes of src_key in use */
	__u8 src_key[EGRESS_CARRY_KEY_MAX]; /* the entry's key in the replaced map, zero-padded */
};
struct egress_carry {
	__u32 map; /* EGRESS_CARRY_* */
	__u32 index; /* array index for OVERFLOW and STATS */
	struct egress_counter_key key;
	struct egress_counter_val val;
	struct egress_carry_mark mark; /* set in "carry_marks" in the same run */
};
/* Return values of program "carry". */
#define EGRESS_CARRY_OK 0
#define EGRESS_CARRY_RANGE 1 /* unknown map, index or verdict: nothing done */
#define EGRESS_CARRY_OVERFLOWED 2 /* added, to the overflow slot: "counters" is full */
#define EGRESS_CARRY_MARKED 3 /* the mark exists already (or the marks map is full): nothing done */

/* ---- Socket decisions ----------------------------------------------------------------------
 * Map "sk_decision": BPF_MAP_TYPE_SK_STORAGE (socket local storage), value struct
 * egress_sk_decision: the last allow / would_deny / local decision taken for a socket, by a
 * sock_addr hook (connect, sendmsg with an address) or by the packet hook for a socket no sock_addr
 * hook saw (ICMP ping sockets, raw sockets, accepted sockets). The packet hook (cgroup_skb/egress)
 * counts every packet whose canonical destination equals addr under key, with no policy or GeoIP
 * lookup; any other destination is decided again. Deny decisions are never stored, so a denied
 * destination is judged by the current policy on every packet.
 */
struct egress_sk_decision {
	struct egress_counter_key key; /* where packets and bytes of this destination are counted */
	__u32 addr[4]; /* canonical destination (IPv4-mapped, NAT64 -> IPv4), network order; IPv4 in
			* addr[0], addr[1..3] = 0 */
	__u8 family; /* AF_INET (2) or AF_INET6 (10) after canonicalisation */
	__u8 hook; /* EGRESS_HOOK_* that took the decision */
	__u8 pad[6];
};

/* ---- Statistics ----------------------------------------------------------------------------
 * Map "stats": BPF_MAP_TYPE_PERCPU_ARRAY of __u64, indexed by: */
#define EGRESS_STAT_EVENTS_LOST 0 /* ring buffer reservation failures */
#define EGRESS_STAT_COUNTER_OVERFLOW 1 /* counter updates sent to the overflow slot: one per
					* decision or packet-hook run; a row carried over from a
					* replaced map adds its connections (at least 1) */
#define EGRESS_STAT_NO_TABLE 2 /* lookups while no GeoIP generation was installed */
#define EGRESS_STAT_NO_POLICY 3 /* hook ran for a task with no policy on its cgroup path */
#define EGRESS_STAT_COUNT 8

/* ---- Events --------------------------------------------------------------------------------
 * Map "events": BPF_MAP_TYPE_RINGBUF of struct egress_event, one per deny / would_deny decision. */
struct egress_event {
	__u64 ts_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC, nanoseconds */
	__u64 cgroup_id; /* the task's cgroup v2 id */
	__u32 pid; /* thread group id (what userspace calls the pid) */
	__u32 tid; /* thread id */
	__u32 uid;
	__u32 gid;
	__u32 policy_id;
	__u16 country; /* country id */
	__u16 dport; /* destination port, host order */
	__u8 family; /* AF_INET (2) or AF_INET6 (10): family of addr after canonicalisation */
	__u8 proto; /* IP protocol number */
	__u8 verdict; /* EGRESS_VERDICT_DENY or EGRESS_VERDICT_WOULD_DENY */
	__u8 hook; /* EGRESS_HOOK_* */
	__u8 addr[16]; /* destination, network order; IPv4 in addr[0..3] */
	char comm[16]; /* task comm, NUL-terminated */
};

/* ---- GeoIP table image ---------------------------------------------------------------------
 * One generation of the country table is one BPF_MAP_TYPE_ARRAY (BPF_F_MMAPABLE |
 * BPF_F_INNER_MAP) of __u64 words, installed in slot 0 of the BPF_MAP_TYPE_ARRAY_OF_MAPS
 * "geo_gen". The daemon builds a new generation completely, then replaces slot 0 in one map update;
 * a program holds one generation for its whole run (RCU), so a reload never shows a half-built table.
 *
 * All words are host order. The address space of each family is partitioned into sorted ranges
 * (gaps included, country 0), so a lookup is "the last range whose start <= address".
 *
 *  word  0              EGRESS_TABLE_MAGIC
 *  word  1              generation number
 *  word  2              n4: number of IPv4 ranges (>= 1; range 0 starts at 0.0.0.0)
 *  word  3              n6: number of IPv6 ranges (>= 1; range 0 starts at ::)
 *  word  4              off_v6_idx (word offset of the IPv6 index)
 *  word  5              off_v6_rng (word offset of the IPv6 ranges)
 *  word  6              off_v6_cc  (word offset of the IPv6 country ids)
 *  word  7              v4_blocks: number of IPv4 second-level blocks
 *  word  8..15          reserved, 0
 *  EGRESS_TABLE_V4_DIR  IPv4 direct index: 65536 __u32 entries packed two per word (entry 2k in the
 *                       low half of word k), entry h for the /16 h << 16 .. (h << 16) | 0xffff:
 *                       EGRESS_TABLE_DIR_BLOCK | word offset of the /16's second-level block;
 *                       EGRESS_TABLE_DIR_DIRECT | country id, when the whole /16 lies in one range;
 *                       0: search the ranges idx[h] .. idx[h + 1] (so an all-zero direct index is
 *                       valid for the lookup: it only makes it slower).
 *  EGRESS_TABLE_V4_IDX  IPv4 index: 65537 __u32 entries packed two per word (entry 2k in the low
 *                       half of word k, 2k+1 in the high half). Entry h (h < 65536) is the number of
 *                       the range that contains address h << 16; entry 65536 is n4 - 1.
 *  EGRESS_TABLE_V4_RNG  n4 words: (start << 32) | country id, sorted by start.
 *  off_v6_idx           IPv6 index: 65537 __u32 entries packed as for IPv4, over the top 16 bits.
 *  off_v6_rng           2 * n6 words: start bits 127..64, start bits 63..0, sorted.
 *  off_v6_cc            ceil(n6 / 4) words: country id of range i in bits 16*(i%4) of word i/4.
 *  off_v6_cc + ceil(n6 / 4)
 *                       v4_blocks IPv4 second-level blocks of EGRESS_TABLE_BLK_WORDS words, in the
 *                       order of their /16s: 257 __u32 entries packed as the index (the 258th is 0).
 *                       Entry j < 256, for the /24 a = (h << 16) | (j << 8): (r << 10) | c, where r
 *                       is the number of the range containing a and c its country id when the whole
 *                       /24 lies in range r, else EGRESS_TABLE_MULTI; entry 256: (idx[h + 1] << 10)
 *                       | EGRESS_TABLE_MULTI. Which /16s get a block is the compiler's choice
 *                       (daemon/table.c: those met by at least 4 ranges); table_verify recomputes it.
 *
 * Lookup, IPv4: one read of the direct index; a one-range /16 answers there. Else one read of the
 * block entry; a one-range /24 answers there. Else search ranges [r, r'] (entries j and j + 1 of
 * the block, or idx[h] .. idx[h + 1] without a block) for the last start <= address.
 * IPv6: h = top 16 bits; search ranges [idx[h], idx[h + 1]] for the last start <= address.
 * Both: bounded binary search, at most EGRESS_TABLE_MAX_STEPS steps.
 */
/* A new image format gets a new magic, and the outer map a new name (geo_gen_v3 ...; see
 * "Upgrades" above), so programs of the earlier version never read an image they cannot parse. */
#define EGRESS_TABLE_MAGIC 0x3230424c54524745ULL /* "EGRTBL02" little-endian */
#define EGRESS_TABLE_HDR_WORDS 16
#define EGRESS_TABLE_IDX_ENTRIES 65537
#define EGRESS_TABLE_IDX_WORDS 32769 /* ceil(65537 / 2) */
#define EGRESS_TABLE_DIR_WORDS 32768 /* 65536 / 2 */
#define EGRESS_TABLE_BLK_WORDS 129 /* ceil(257 / 2) */
#define EGRESS_TABLE_MULTI 0x3ff /* "several ranges" in a block entry (bits 9..0) */
#define EGRESS_TABLE_DIR_BLOCK 0x80000000U /* direct-index entry: bits 30..0 = block offset */
#define EGRESS_TABLE_DIR_DIRECT 0x40000000U /* direct-index entry: bits 9..0 = country id */
#define EGRESS_TABLE_V4_DIR EGRESS_TABLE_HDR_WORDS
#define EGRESS_TABLE_V4_IDX (EGRESS_TABLE_V4_DIR + EGRESS_TABLE_DIR_WORDS)
#define EGRESS_TABLE_V4_RNG (EGRESS_TABLE_V4_IDX + EGRESS_TABLE_IDX_WORDS)
#define EGRESS_TABLE_MAX_STEPS 22 /* binary search steps: buckets of up to 2^22 ranges */
#define EGRESS_TABLE_MAX_RANGES (1U << 22) /* per family */

#endif /* EGRESS_ABI_H */
