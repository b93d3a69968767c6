// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_policy.c - libFuzzer target for the configuration parser (daemon/policy.c).
 * The first input byte picks which file the rest becomes: 0 the main file, 1 a policy file,
 * 2 the regions file (the other two are small valid files).
 *
 * Seeds (tests/fuzz/mkcorpus.sh): the configurations of tests/data/config and data, data/regions.conf,
 * each with its selector byte. Built and run by `make fuzz` (tests/fuzz/fuzz.mk).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"

static char dir[64];

static void cleanup(void)
{
	static const char *const names[] = { "egressd.conf", "policies.d/a.conf", "regions.conf",
					     "policies.d" };
	char p[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		remove(p);
	}
	rmdir(dir);
}

static void put(const char *name, const uint8_t *data, size_t len)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "we");
	if (!f)
		abort();
	if (len && fwrite(data, 1, len, f) != len)
		abort();
	fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char main_ok[] = "[Daemon]\nRegions=regions.conf\n";
	static const char pol_ok[] = "[Policy]\nName=p\nCgroup=a.slice\nAllowRegion=EUROPE\n";
	static const char reg_ok[] = "[EUROPE]\nSource=s\nAsOf=2024-01-01\nCountries=DE FR\n";
	struct config c = {};
	struct diag d = {};
	char path[128];
	int which;

	if (!dir[0]) {
		char pd[128];

		snprintf(dir, sizeof(dir), "/tmp/fuzz_policy.XXXXXX");
		if (!mkdtemp(dir))
			abort();
		snprintf(pd, sizeof(pd), "%s/policies.d", dir);
		if (mkdir(pd, 0755) < 0)
			abort();
		atexit(cleanup);
	}
	if (size < 1)
		return 0;
	which = data[0] % 3;
	data++;
	size--;
	put("egressd.conf", which == 0 ? data : (const uint8_t *)main_ok,
	    which == 0 ? size : strlen(main_ok));
	put("policies.d/a.conf", which == 1 ? data : (const uint8_t *)pol_ok,
	    which == 1 ? size : strlen(pol_ok));
	put("regions.conf", which == 2 ? data : (const uint8_t *)reg_ok,
	    which == 2 ? size : strlen(reg_ok));
	snprintf(path, sizeof(path), "%s/egressd.conf", dir);
	if (config_load(path, &c, &d) == 0) {
		for (size_t i = 0; i < c.npolicies; i++) {
			uint8_t a[16] = { 8, 8, 8, 8 }, v;

			if (policy_decide(&c.policies[i], 4, a, 83, &v, NULL) < 0 ||
			    v >= EGRESS_VERDICT_COUNT)
				abort();
		}
		config_free(&c);
	}
	diag_free(&d);
	return 0;
}
