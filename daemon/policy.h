/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * policy.h - the configuration: egressd.conf ([Daemon]), policies.d/*.conf ([Policy]) and the
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
};

struct policy {
	char *name;
	uint32_t id; /* FNV-1a 32 of name (egress_abi.h) */
	char *file; /* file and line of the [Policy] section, for messages */
	unsigned line;
	char **cgroups; /* paths relative to the cgroup v2 mount, no leading or trailing '/' */
	size_t ncgroups;
	char **units; /* Unit= values, resolved to cgroups by the daemon (cgroup.h) */
	size_t nunits;
	uint8_t mode; /* EGRESS_MODE_* */
	uint8_t unknown; /* EGRESS_UNKNOWN_* */
	uint64_t allowed[EGRESS_COUNTRY_WORDS]; /* union of AllowRegion= members and AllowCountry= */
	char **allow_regions; /* as written, for display */
	size_t nallow_regions;
	struct policy_cidr *cidrs;
	size_t ncidrs;
};

struct config {
	char *path; /* the main file */
	char **geo_paths; /* GeoDatabase=, split on spaces */
	size_t ngeo;
	char *socket; /* Socket= */
	char *reader_group; /* ReaderGroup=, may be "" */
	char *admin_group; /* AdminGroup=, may be "" */
	char *pin_path; /* PinPath= */
	char *state_dir; /* StateDirectory= */
	char *policy_dir; /* PolicyDirectory= (default: policies.d beside path) */
	char *regions_path; /* Regions= (default: DATADIR/regions.conf) */
	int on_exit_detach; /* OnExit=detach -> 1, keep -> 0 */
	struct region *regions;
	size_t nregions;
	struct policy *policies; /* in file order (lexical file order, then section order) */
	size_t npolicies;
};

/* Parse path, its policy directory and the regions file. Returns 0 and fills *ret (free with
 * config_free), or -EINVAL with every problem appended to errors as "FILE:LINE: message" (all
 * files are read to the end so all errors are reported at once), or another negative errno when a
 * file cannot be read. *ret is untouched on failure. */
int config_load(const char *path, struct config *ret, struct diag *errors);
void config_free(struct config *c);

/* 32-bit FNV-1a of a NUL-terminated string (Fowler/Noll/Vo, http://www.isthe.com/chongo/tech/comp/fnv/). */
uint32_t policy_id_of(const char *name);

const struct policy *config_find_policy(const struct config *c, const char *name);
const struct region *config_find_region(const struct config *c, const char *name);

/* Text names: "monitor"/"enforce", "allow"/"deny"/"would_deny"/"local". */
const char *policy_mode_name(uint8_t mode);
const char *verdict_name(uint8_t verdict);

#endif
