/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * policy.h - the configuration: egressd.conf ([Daemon]), policies.d/NAME.conf ([Policy]) and the
 * region groups of regions.conf, parsed with inih. Errors are "FILE:LINE: message".
 */
#ifndef EGRESSD_POLICY_H
#define EGRESSD_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "egress_abi.h"

#define EGRESSD_DEFAULT_CONFIG "/etc/egressd/egressd.conf"

struct region {
	char *name; /* "EU" */
	char *description;
	char *source; /* where the member list comes from */
	char *as_of; /* date of that source, YYYY-MM-DD */
	uint64_t members[EGRESS_COUNTRY_WORDS]; /* country bitset */
	char *file;
	unsigned line;
};

struct policy_cidr {
	uint8_t family; /* 4 or 6 */
	uint8_t plen; /* 0..32 or 0..128 */
	uint8_t action; /* EGRESS_CIDR_ALLOW or EGRESS_CIDR_DENY */
	uint8_t addr[16]; /* network order, host bits zero; IPv4 in addr[0..3] */
	unsigned line; /* line of the AllowCIDR=/DenyCIDR= that gave it (in the policy's file) */
};

struct policy {
	char *name;
	uint32_t id; /* FNV-1a 32 of name (egress_abi.h) */
	char *file; /* file and line of the [Policy] section, for messages */
	unsigned line;
	unsigned name_line; /* line of Name= */
	char **cgroups; /* paths relative to the cgroup v2 mount, no leading or trailing '/' */
	unsigned *cgroup_lines; /* line of the Cgroup= that gave cgroups[i] */
	size_t ncgroups;
	char **units; /* Unit= values, resolved to cgroups by the daemon (cgroup.h) */
	unsigned *unit_lines; /* line of the Unit= that gave units[i] */
	size_t nunits;
	uint8_t mode; /* EGRESS_MODE_* */
	uint8_t unknown; /* EGRESS_UNKNOWN_* */
	uint64_t allowed[EGRESS_COUNTRY_WORDS]; /* AllowRegion= members and AllowCountry= */
	char **allow_regions; /* region names as spelled in regions.conf, for display */
	size_t nallow_regions;
	struct policy_cidr *cidrs;
	size_t ncidrs;
};

struct config {
	char *path; /* the main file */
	char **geo_paths; /* GeoDatabase=, split on spaces */
	unsigned geo_line; /* line of the last GeoDatabase= in path, 0 if the default applies */
	size_t ngeo;
	char *socket; /* Socket= */
	char *reader_group; /* ReaderGroup=, may be "" */
	char *admin_group; /* AdminGroup=, may be "" */
	char *pin_path; /* PinPath= */
	char *state_dir; /* StateDirectory= */
	char *policy_dir; /* PolicyDirectory= (default: policies.d beside path) */
	char *regions_path; /* Regions= (default: DATADIR/regions.conf) */
	char *metrics_listen; /* MetricsListen= "ADDR:PORT" for a TCP /metrics listener, "" = off */
	int on_exit_detach; /* OnExit=detach -> 1, keep -> 0 */
	uint32_t events_ring_bytes; /* EventsRingBytes= (bytes, power of two), 0 = default */
	uint32_t counter_entries; /* CounterEntries= (rows of map "counters"), 0 = default */
	struct region *regions;
	size_t nregions;
	struct policy *policies; /* in file order (lexical file order, then section order) */
	size_t npolicies;
	struct diag warnings; /* "FILE:LINE: message": valid settings that do not do what they seem
			       * to (an exception for a local destination) */
};

/* Parse path, its policy directory and the regions file. Returns 0 and fills *ret (free with
 * config_free), or -EINVAL with every problem appended to errors as "FILE:LINE: message" (all
 * files are read to the end so all errors are reported at once), or another negative errno when a
 * file cannot be read (also appended to errors as "FILE: message"). *ret is untouched on failure.
 * Warnings (valid settings without effect) are in ret->warnings on success; on failure they follow
 * the errors, as "warning: FILE:LINE: message".
 *
 * Syntax (systemd-style, enforced by our own line reader whatever inih's build options are):
 * "[Name]" section lines, "Key=value" lines, comment lines starting with '#' or ';', blank lines;
 * leading and trailing white space is ignored. No inline comments: a value containing '#' or ';'
 * at its start or after white space is rejected. No continuation lines. Lines longer than
 * CONFIG_MAX_LINE bytes are reported, never truncated. Unknown sections and keys are errors;
 * single-valued keys may appear once per section; list keys (Cgroup=, Unit=, AllowRegion=,
 * AllowCountry=, AllowCIDR=, DenyCIDR=, GeoDatabase=, Countries=) may repeat and take
 * space-separated values. Relative paths in the main file are relative to its directory (as
 * given, not canonicalised). Policy files: PolicyDirectory/NAME.conf, regular files not starting
 * with '.', in strcmp order; a missing policy directory (also the default) is an error. A cgroup or unit may
 * belong to one policy only; policy names and their ids (FNV-1a 32) must be unique. */
int config_load(const char *path, struct config *ret, struct diag *errors);
#define CONFIG_MAX_LINE 4096 /* bytes per line, without the line end */
#define CONFIG_MAX_NAME 64 /* bytes in a policy, region, key or section name */
/* Limits of one configuration (all files together), each reported once as "FILE:LINE: ..." at
 * the line that exceeds it; documented in egressd.conf(5), LIMITS. The first three are the sizes
 * of the BPF maps that hold them (bpf/egress.bpf.c). */
#define CONFIG_MAX_POLICIES 4096 /* [Policy] sections: map "policies" */
#define CONFIG_MAX_CGROUPS 16384 /* Cgroup= and Unit= values of all policies: map "cgroup_policy" */
#define CONFIG_MAX_CIDRS 65536 /* distinct AllowCIDR=/DenyCIDR= prefixes of all policies: map "cidr" */
#define CONFIG_MAX_REGIONS 1024 /* region groups in the regions file */
#define CONFIG_MAX_POLICY_FILES 4096 /* *.conf files in the policy directory */
#define CONFIG_MAX_GEO_FILES 64 /* GeoDatabase= files */
#define CONFIG_MAX_TOTAL_BYTES (16 << 20) /* bytes of all files read (main, regions, policies) */
/* EventsRingBytes= (the ring buffer of deny events): a power of two in this range; 0 (unset) =
 * the default of bpf/egress.bpf.c (1 MiB). */
#define CONFIG_EVENTS_RING_MIN 4096
#define CONFIG_EVENTS_RING_MAX (256U << 20)
/* CounterEntries= (rows of the per-CPU counter map, allocated at start): in this range; 0 (unset) =
 * the default of bpf/egress.bpf.c (65536). */
#define CONFIG_COUNTERS_MIN 1024
#define CONFIG_COUNTERS_MAX 4194304

/* Free everything c owns and zero it; c may be zeroed or partly filled. */
void config_free(struct config *c);

/* 32-bit FNV-1a of a NUL-terminated string (Fowler/Noll/Vo,
 * http://www.isthe.com/chongo/tech/comp/fnv/): h = 0x811c9dc5; for each byte: h ^= byte,
 * h *= 0x01000193 (mod 2^32). */
uint32_t policy_id_of(const char *name);

/* Lookups by exact policy name / case-insensitive region name; NULL when absent. */
const struct policy *config_find_policy(const struct config *c, const char *name);
const struct region *config_find_region(const struct config *c, const char *name);

/* Text names: "monitor"/"enforce", "allow"/"deny"/"would_deny"/"local"; "invalid" for values out
 * of range (never NULL). */
const char *policy_mode_name(uint8_t mode);
const char *verdict_name(uint8_t verdict);

/* 1 if country id (egress_abi.h) is in the policy's allowed set, else 0 (also for id 0 and ids
 * >= EGRESS_COUNTRY_MAX). */
int policy_country_allowed(const struct policy *p, uint16_t country);

/* Decide in userspace exactly as the BPF programs do (for /v1/lookup). family: 4 or 6 (AF_INET and
 * AF_INET6 are accepted too); addr: network order, IPv4 in addr[0..3]. The caller canonicalises
 * IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::/96) addresses to IPv4 first. country: the id
 * the GeoIP table gives addr (0 = unknown). Order:
 *   1. 127.0.0.0/8, 0.0.0.0/32, 169.254.0.0/16, ::1, ::, fe80::/10 -> EGRESS_VERDICT_LOCAL;
 *   2. the longest matching AllowCIDR=/DenyCIDR= prefix: allow -> ALLOW, deny -> DENY (WOULD_DENY
 *      in monitor mode); *ret_match is that prefix;
 *   3. country allowed -> ALLOW; 4. country 0 -> Unknown= (ALLOW, or DENY/WOULD_DENY);
 *   5. otherwise DENY (WOULD_DENY in monitor mode).
 * Writes *ret_verdict (EGRESS_VERDICT_*) and, if ret_match is not NULL, *ret_match (the matched
 * CIDR or NULL). Returns 0, or -EINVAL for another family (outputs untouched). */
int policy_decide(const struct policy *p, int family, const uint8_t addr[16], uint16_t country,
		  uint8_t *ret_verdict, const struct policy_cidr **ret_match);

/* The LPM trie key of CIDR exception c of policy policy_id, as egress_abi.h defines it: IPv4
 * prefixes IPv4-mapped (::ffff:a.b.c.d), prefixlen = 32 + 96 + len for IPv4, 32 + len for IPv6,
 * host bits cleared (so the key equals what the trie hands back from get_next_key). c must be
 * valid (family 4/6, plen in range). */
void policy_cidr_key(uint32_t policy_id, const struct policy_cidr *c, struct egress_cidr_key *ret);

/* "10.0.0.0/8", "fd00::/8". buf must hold POLICY_CIDR_STRLEN bytes; returns buf. */
#define POLICY_CIDR_STRLEN 50 /* INET6_ADDRSTRLEN (46) + "/128" */
const char *policy_cidr_format(const struct policy_cidr *c, char buf[POLICY_CIDR_STRLEN]);

/* Parse "ADDR[/LEN]" (a bare address is a host prefix) into *ret (action and line left 0).
 * Returns 0, or -EINVAL with a one-line reason in err (at least 160 bytes; e.g. "10.0.0.1/8 has
 * host bits set; did you mean 10.0.0.0/8?"). IPv4-mapped and NAT64 IPv6 prefixes of length >= 96
 * are rejected, because the programs look such destinations up as IPv4. */
int policy_parse_cidr(const char *s, struct policy_cidr *ret, char *err, size_t errlen);

/* Country id of an assigned ISO 3166-1 alpha-2 code (case-insensitive; also XK and AN, which
 * GeoIP data uses), or -EINVAL for anything else, including the pseudo-codes EU, ZZ, AP. */
int policy_country_id(const char *code);

#endif
