/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_policy.c - configuration parser (daemon/policy.c): the DESIGN.md example, defaults and
 * relative paths, lexical file order, every validation error with its exact message and line,
 * regions.conf coverage (ISO 3166-1, M49 continents, EU), and policy_decide().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"

#define SRC TEST_SRCDIR
#define CONFIG_DIR SRC "/tests/data/config"
#define REGIONS SRC "/data/regions.conf"

/* ISO 3166-1 alpha-2: the 249 officially assigned codes (ISO 3166 Maintenance Agency, Online
 * Browsing Platform, https://www.iso.org/obp/ui/#search/code/), in code order. */
static const char *const iso3166[] = {
	"AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX",
	"AZ", "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ",
	"BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK",
	"CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM",
	"DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR",
	"GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS",
	"GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN",
	"IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN",
	"KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV",
	"LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ",
	"MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI",
	"NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM",
	"PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC",
	"SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV",
	"SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR",
	"TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
	"VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
};

/* EU member states (europa.eu, "EU countries"). */
static const char *const eu27[] = { "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI",
				    "FR", "DE", "GR", "IE", "IT", "LV", "LT", "LU", "MT",
				    "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "HU" };

static const char *const continents[] = { "AFRICA",	   "ANTARCTICA", "ASIA",	 "EUROPE",
					  "NORTH-AMERICA", "OCEANIA",	 "SOUTH-AMERICA" };

/* The id rule of include/egress_abi.h, written out independently of policy.c. */
static unsigned cid(const char *cc)
{
	return (unsigned)(cc[0] - 'A') * 26 + (unsigned)(cc[1] - 'A') + 1;
}

static int has(const uint64_t *set, unsigned id)
{
	return (int)((set[id / 64] >> (id % 64)) & 1);
}

static unsigned popcount(const uint64_t *set)
{
	unsigned n = 0;

	for (int i = 0; i < EGRESS_COUNTRY_WORDS; i++)
		n += (unsigned)__builtin_popcountll(set[i]);
	return n;
}

static void print_diag(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(stderr, "  diag[%zu] %s\n", i, d->msgs[i]);
}

/* ---- temporary configuration trees ----------------------------------------------------------- */

static char tmpdir[64];

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static int setup_tmp(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_policy.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return 0;
}

static int teardown_tmp(void **state)
{
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void write_file(const char *dir, const char *name, const char *content)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "we");
	assert_non_null(f);
	assert_int_equal(fputs(content, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* A fresh tree under tmpdir/NAME: egressd.conf (main, or a default that points Regions= at the
 * source tree's regions.conf, or at regions.conf beside it when regions is given), and
 * policies.d/FILE for each {file, content} pair. Returns the directory in dir. */
struct pfile {
	const char *name;
	const char *content;
};

static void make_tree(const char *name, const char *main, const char *regions,
		      const struct pfile *files, char *dir, size_t dirlen)
{
	char pd[512];

	snprintf(dir, dirlen, "%s/%s", tmpdir, name);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(pd, sizeof(pd), "%s/policies.d", dir);
	assert_int_equal(mkdir(pd, 0755), 0);
	if (!main)
		main = regions ? "[Daemon]\nRegions=regions.conf\n"
			       : "[Daemon]\nRegions=" REGIONS "\n";
	write_file(dir, "egressd.conf", main);
	if (regions)
		write_file(dir, "regions.conf", regions);
	for (; files && files->name; files++)
		write_file(pd, files->name, files->content);
}

/* Replace {D} (the tree), {P} (its policies.d) and {S} (the source tree) in pattern. */
static void expand(const char *pattern, const char *dir, char *out, size_t outlen)
{
	size_t o = 0;

	for (const char *s = pattern; *s && o + 1 < outlen;) {
		const char *rep = NULL;
		char pdir[600];

		if (strncmp(s, "{D}", 3) == 0)
			rep = dir;
		else if (strncmp(s, "{P}", 3) == 0) {
			snprintf(pdir, sizeof(pdir), "%s/policies.d", dir);
			rep = pdir;
		} else if (strncmp(s, "{S}", 3) == 0)
			rep = SRC;
		if (rep) {
			o += (size_t)snprintf(out + o, outlen - o, "%s", rep);
			s += 3;
		} else {
			out[o++] = *s++;
		}
	}
	out[o < outlen ? o : outlen - 1] = 0;
}

/* ---- the DESIGN.md example ------------------------------------------------------------------- */

static void test_design_example(void **state)
{
	struct config c = {};
	struct diag d = {};
	const struct policy *p;
	const struct region *eu, *eea;
	char buf[POLICY_CIDR_STRLEN];
	int r;

	r = config_load(CONFIG_DIR "/design/egressd.conf", &c, &d);
	print_diag(&d);
	assert_int_equal(r, 0);
	assert_int_equal(d.n, 0);

	assert_string_equal(c.path, CONFIG_DIR "/design/egressd.conf");
	assert_int_equal(c.ngeo, 1);
	assert_string_equal(c.geo_paths[0], "/usr/share/egressd/geo/country.csv.gz");
	assert_string_equal(c.socket, "/run/egressd/egressd.sock");
	assert_string_equal(c.reader_group, "egress-audit");
	assert_string_equal(c.admin_group, "");
	assert_string_equal(c.pin_path, "/sys/fs/bpf/egressd");
	assert_string_equal(c.state_dir, "/var/lib/egressd");
	assert_int_equal(c.on_exit_detach, 0);
	assert_string_equal(c.policy_dir, CONFIG_DIR "/design/policies.d");
	assert_string_equal(c.regions_path, CONFIG_DIR "/design/../../../../data/regions.conf");
	assert_int_equal(c.nregions, 10);

	assert_int_equal(c.npolicies, 1);
	p = config_find_policy(&c, "eu-residency");
	assert_ptr_equal(p, &c.policies[0]);
	assert_string_equal(p->name, "eu-residency");
	assert_int_equal(p->id, 0xa6191df6u);
	assert_string_equal(p->file, CONFIG_DIR "/design/policies.d/eu-residency.conf");
	assert_int_equal(p->line, 2);
	assert_int_equal(p->name_line, 3);
	assert_int_equal(p->ncgroups, 1);
	assert_string_equal(p->cgroups[0], "system.slice/payments.service");
	assert_int_equal(p->cgroup_lines[0], 5);
	assert_int_equal(p->nunits, 0);
	assert_int_equal(p->mode, EGRESS_MODE_ENFORCE);
	assert_int_equal(p->unknown, EGRESS_UNKNOWN_DENY);
	assert_int_equal(p->nallow_regions, 2);
	assert_string_equal(p->allow_regions[0], "EU");
	assert_string_equal(p->allow_regions[1], "EEA");

	/* allowed = EEA (EU 27 + IS LI NO) + CH GB */
	eu = config_find_region(&c, "EU");
	eea = config_find_region(&c, "eea");
	assert_non_null(eu);
	assert_non_null(eea);
	assert_string_equal(eea->name, "EEA");
	assert_int_equal(popcount(p->allowed), 32);
	for (size_t i = 0; i < 27; i++)
		assert_true(has(p->allowed, cid(eu27[i])));
	assert_true(has(p->allowed, cid("IS")));
	assert_true(has(p->allowed, cid("LI")));
	assert_true(has(p->allowed, cid("NO")));
	assert_true(has(p->allowed, cid("CH")));
	assert_true(has(p->allowed, cid("GB")));
	assert_false(has(p->allowed, cid("US")));
	assert_false(has(p->allowed, 0));

	assert_int_equal(p->ncidrs, 3);
	assert_string_equal(policy_cidr_format(&p->cidrs[0], buf), "10.0.0.0/8");
	assert_int_equal(p->cidrs[0].action, EGRESS_CIDR_ALLOW);
	assert_int_equal(p->cidrs[0].family, 4);
	assert_int_equal(p->cidrs[0].line, 13);
	assert_string_equal(policy_cidr_format(&p->cidrs[1], buf), "fd00::/8");
	assert_int_equal(p->cidrs[1].action, EGRESS_CIDR_ALLOW);
	assert_int_equal(p->cidrs[1].family, 6);
	assert_int_equal(p->cidrs[1].plen, 8);
	assert_int_equal(p->cidrs[1].addr[0], 0xfd);
	assert_string_equal(policy_cidr_format(&p->cidrs[2], buf), "203.0.113.0/24");
	assert_int_equal(p->cidrs[2].action, EGRESS_CIDR_DENY);
	assert_int_equal(p->cidrs[2].line, 14);

	assert_null(config_find_policy(&c, "nope"));
	assert_null(config_find_region(&c, "ATLANTIS"));
	config_free(&c);
	diag_free(&d);
}

/* The installed example policy and default config parse cleanly (regions from the source tree). */
static void test_shipped_files(void **state)
{
	struct config c = {};
	struct diag d = {};
	char dir[256], main[512];
	const struct policy *p;
	int r;

	make_tree("shipped", NULL, NULL, NULL, dir, sizeof(dir));
	snprintf(main, sizeof(main),
		 "[Daemon]\nPolicyDirectory=" SRC "/data/policies.d\nRegions=" REGIONS "\n");
	write_file(dir, "egressd.conf", main);
	snprintf(main, sizeof(main), "%s/egressd.conf", dir);
	r = config_load(main, &c, &d);
	print_diag(&d);
	assert_int_equal(r, 0);
	p = config_find_policy(&c, "example-eu-monitor");
	assert_non_null(p);
	assert_int_equal(p->id, 0x22bf91a1u);
	assert_int_equal(p->mode, EGRESS_MODE_MONITOR);
	assert_int_equal(p->unknown, EGRESS_UNKNOWN_DENY);
	assert_string_equal(p->cgroups[0], "system.slice/example.service");
	assert_int_equal(popcount(p->allowed), 30);
	config_free(&c);

	/* data/egressd.conf has every key commented out: defaults only, but Regions= is then the
	 * installed one; copy it beside a Regions= line to check it is syntactically clean. */
	{
		FILE *f = fopen(SRC "/data/egressd.conf", "re");
		char text[8192];
		size_t n;

		assert_non_null(f);
		n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
		text[n] = 0;
		strcat(text, "Regions=" REGIONS "\n");
		write_file(dir, "egressd.conf", text);
	}
	r = config_load(main, &c, &d);
	print_diag(&d);
	assert_int_equal(r, 0);
	assert_int_equal(c.ngeo, 1);
	assert_string_equal(c.geo_paths[0], EGRESSD_DATADIR "/geo/country.csv.gz");
	config_free(&c);
	diag_free(&d);
}

static void test_defaults(void **state)
{
	struct config c = {};
	struct diag d = {};
	char dir[256], path[512], pd[600];
	int r;

	make_tree("defaults", NULL, NULL, NULL, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/egressd.conf", dir);
	r = config_load(path, &c, &d);
	print_diag(&d);
	assert_int_equal(r, 0);
	assert_int_equal(c.ngeo, 1);
	assert_string_equal(c.geo_paths[0], EGRESSD_DATADIR "/geo/country.csv.gz");
	assert_string_equal(c.socket, "/run/egressd/egressd.sock");
	assert_string_equal(c.reader_group, "egress-audit");
	assert_string_equal(c.admin_group, "");
	assert_string_equal(c.pin_path, "/sys/fs/bpf/egressd");
	assert_string_equal(c.state_dir, "/var/lib/egressd");
	assert_int_equal(c.on_exit_detach, 0);
	snprintf(pd, sizeof(pd), "%s/policies.d", dir);
	assert_string_equal(c.policy_dir, pd);
	assert_string_equal(c.regions_path, REGIONS);
	assert_int_equal(c.npolicies, 0);
	config_free(&c);

	/* Regions= unset: the compiled-in DATADIR/regions.conf */
	write_file(dir, "egressd.conf", "[Daemon]\n");
	r = config_load(path, &c, &d);
	if (access(EGRESSD_DATADIR "/regions.conf", R_OK) == 0) {
		assert_int_equal(r, 0);
		assert_string_equal(c.regions_path, EGRESSD_DATADIR "/regions.conf");
		config_free(&c);
	} else {
		assert_int_equal(r, -ENOENT);
		assert_int_equal(d.n, 1);
		assert_string_equal(d.msgs[0], EGRESSD_DATADIR
				    "/regions.conf: cannot open: No such file or directory");
	}
	diag_free(&d);

	/* a main file without directory part: policies.d relative to "." */
	{
		char cwd[512];

		assert_non_null(getcwd(cwd, sizeof(cwd)));
		assert_int_equal(chdir(dir), 0);
		write_file(dir, "egressd.conf", "[Daemon]\nRegions=" REGIONS "\n");
		(void)mkdir("policies.d", 0755);
		r = config_load("egressd.conf", &c, &d);
		assert_int_equal(chdir(cwd), 0);
		assert_int_equal(r, 0);
		assert_string_equal(c.policy_dir, "./policies.d");
		config_free(&c);
	}
}

static void test_relative_paths_and_order(void **state)
{
	struct config c = {};
	struct diag d = {};
	int r;

	r = config_load(CONFIG_DIR "/order/egressd.conf", &c, &d);
	print_diag(&d);
	assert_int_equal(r, 0);
	assert_int_equal(c.ngeo, 3);
	assert_string_equal(c.geo_paths[0], CONFIG_DIR "/order/geo/a.csv.gz");
	assert_string_equal(c.geo_paths[1], CONFIG_DIR "/order/../b.mmdb");
	assert_string_equal(c.geo_paths[2], "/abs/c.csv");
	assert_string_equal(c.socket, CONFIG_DIR "/order/run/egressd.sock");
	assert_string_equal(c.reader_group, "");
	assert_string_equal(c.admin_group, "egress-admin");
	assert_string_equal(c.pin_path, "/sys/fs/bpf/egressd-test");
	assert_string_equal(c.state_dir, CONFIG_DIR "/order/state");
	assert_int_equal(c.on_exit_detach, 1);
	assert_string_equal(c.policy_dir, CONFIG_DIR "/order/policies.d");

	/* strcmp order of file names, then section order; README, *.bak and hidden files skipped */
	assert_int_equal(c.npolicies, 5);
	assert_string_equal(c.policies[0].name, "ten-b");
	assert_string_equal(c.policies[1].name, "two-a");
	assert_string_equal(c.policies[2].name, "upper-b");
	assert_string_equal(c.policies[3].name, "upper-b-second");
	assert_int_equal(c.policies[3].line, 6);
	assert_string_equal(c.policies[4].name, "lower-a");
	assert_int_equal(c.policies[1].nunits, 1);
	assert_string_equal(c.policies[1].units[0], "two.service");
	assert_int_equal(c.policies[1].ncgroups, 0);
	assert_string_equal(c.policies[4].file, CONFIG_DIR "/order/policies.d/a.conf");
	/* lower case country codes are accepted */
	assert_int_equal(popcount(c.policies[4].allowed), 2);
	assert_true(has(c.policies[4].allowed, cid("DE")));
	assert_true(has(c.policies[4].allowed, cid("FR")));
	config_free(&c);
	diag_free(&d);
}

/* ---- validation errors ----------------------------------------------------------------------- */

struct err_case {
	const char *name;
	const char *main; /* NULL: [Daemon] with Regions= */
	const char *regions; /* NULL: the source tree's regions.conf */
	struct pfile files[4];
	const char *expect[12]; /* exact messages in order; {D} {P} {S} expanded */
	int rc; /* expected return, 0 means -EINVAL */
};

#define POL "[Policy]\nName=p\nCgroup=a.slice\n" /* lines 1-3 of a valid policy */

static const struct err_case err_cases[] = {
	{ "unknown-section", .files = { { "a.conf", "[Polcy]\nName=x\nCgroup=a.slice\n" } },
	  .expect = { "{P}/a.conf:1: unknown section [Polcy]; expected [Policy]" } },
	{ "unknown-key",
	  .files = { { "a.conf", POL "AlowCountry=DE\nColour=red\nmode=enforce\n" } },
	  .expect = { "{P}/a.conf:4: unknown key 'AlowCountry' in [Policy]; did you mean AllowCountry=?",
		      "{P}/a.conf:5: unknown key 'Colour' in [Policy]",
		      "{P}/a.conf:6: unknown key 'mode' in [Policy]; did you mean Mode=?" } },
	{ "missing-name", .files = { { "a.conf", "# x\n[Policy]\nCgroup=a.slice\n" } },
	  .expect = { "{P}/a.conf:2: [Policy] section has no Name=" } },
	{ "missing-selector",
	  .files = { { "a.conf",
		       "[Policy]\nName=p\nMode=enforce\n[Policy]\nName=q\nUnit=q.service\n" } },
	  .expect = { "{P}/a.conf:1: policy 'p' has no Cgroup= or Unit=" } },
	{ "duplicate-name",
	  .files = { { "a.conf", POL }, { "b.conf", "# b\n[Policy]\nName=p\nCgroup=b.slice\n" } },
	  .expect = { "{P}/b.conf:3: duplicate policy name 'p' (first defined at {P}/a.conf:2)" } },
	{ "same-cgroup-two-policies",
	  .files = { { "a.conf", "[Policy]\nName=p\nCgroup=/system.slice/x.service/\n" },
		     { "b.conf",
		       "[Policy]\nName=q\nCgroup=b.slice\nCgroup=system.slice/x.service\n" } },
	  .expect = { "{P}/b.conf:4: Cgroup: system.slice/x.service is already used by policy 'p' at "
		      "{P}/a.conf:3; a cgroup can have only one policy" } },
	{ "same-cgroup-twice", .files = { { "a.conf", POL "Cgroup=b.slice a.slice\n" } },
	  .expect = { "{P}/a.conf:4: Cgroup: a.slice is listed twice (first at line 3)" } },
	{ "same-unit",
	  .files = { { "a.conf", "[Policy]\nName=p\nUnit=x.service\n" },
		     { "b.conf", "[Policy]\nName=q\nUnit=x.service\n" } },
	  .expect = { "{P}/b.conf:3: Unit: x.service is already used by policy 'p' at {P}/a.conf:3; "
		      "a unit can have only one policy" } },
	{ "id-collision",
	  .files = { { "a.conf", "[Policy]\nName=costarring\nCgroup=a.slice\n" },
		     { "b.conf", "[Policy]\nName=liquid\nCgroup=b.slice\n" } },
	  .expect = { "{P}/b.conf:2: policy id 0x5e4daa9d (FNV-1a 32) of 'liquid' collides with policy "
		      "'costarring' at {P}/a.conf:2; rename one of them" } },
	{ "regions", .files = { { "a.conf", POL "AllowRegion=EU ATLANTIS\nAllowRegion=DE\n" } },
	  .expect = { "{P}/a.conf:4: AllowRegion: unknown region 'ATLANTIS' (regions are defined in {S}/data/regions.conf)",
		      "{P}/a.conf:5: AllowRegion: DE is a country, not a region; use AllowCountry=DE" } },
	{ "countries",
	  .files = { { "a.conf", POL
		       "AllowCountry=EU\nAllowCountry=DE DEU A1 ZZ\nAllowCountry=UK QQ ap europe\n"
		       "AllowCountry=DE#x\n" } },
	  .expect = { "{P}/a.conf:4: AllowCountry: EU is a region group, not a country; use AllowRegion=EU",
		      "{P}/a.conf:5: AllowCountry: 'DEU' is not a two-letter ISO 3166-1 alpha-2 code",
		      "{P}/a.conf:5: AllowCountry: 'A1' is not a two-letter ISO 3166-1 alpha-2 code",
		      "{P}/a.conf:5: AllowCountry: ZZ is the pseudo-code for unknown, not a country; use Unknown=allow",
		      "{P}/a.conf:6: AllowCountry: UK is not an ISO 3166-1 code; the United Kingdom is GB",
		      "{P}/a.conf:6: AllowCountry: QQ is not an assigned ISO 3166-1 alpha-2 country code",
		      "{P}/a.conf:6: AllowCountry: AP is a pseudo-code (Asia/Pacific), not a country",
		      "{P}/a.conf:6: AllowCountry: europe is a region group, not a country; use AllowRegion=EUROPE",
		      "{P}/a.conf:7: AllowCountry: 'DE#x' is not a two-letter ISO 3166-1 alpha-2 code" } },
	{ "cidr",
	  .files = { { "a.conf",
		       POL "AllowCIDR=10.0.0.1/8\nAllowCIDR=10.0.0.0/33 10.0.0.0/08 300.1.1.1\n"
			   "DenyCIDR=fe80::1/64 ::ffff:10.0.0.0/104 /8\n"
			   "DenyCIDR=64:ff9b::c000:200/120 10.0.0.0/x 2001:db8::/129\n" } },
	  .expect = { "{P}/a.conf:4: AllowCIDR: 10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?",
		      "{P}/a.conf:5: AllowCIDR: '10.0.0.0/33': prefix length must be a number from 0 to 32",
		      "{P}/a.conf:5: AllowCIDR: '10.0.0.0/08': prefix length must be a number from 0 to 32",
		      "{P}/a.conf:5: AllowCIDR: '300.1.1.1': '300.1.1.1' is not a valid IPv4 address",
		      "{P}/a.conf:6: DenyCIDR: fe80::1/64 has host bits set; did you mean fe80::/64?",
		      "{P}/a.conf:6: DenyCIDR: ::ffff:10.0.0.0/104 is an IPv4-mapped prefix (::ffff:0:0/96), "
		      "which egressd looks up as IPv4; write it as 10.0.0.0/8",
		      "{P}/a.conf:6: DenyCIDR: '/8' is not an IP address or prefix",
		      "{P}/a.conf:7: DenyCIDR: 64:ff9b::c000:200/120 is inside the NAT64 prefix 64:ff9b::/96, "
		      "which egressd looks up as IPv4; write it as 192.0.2.0/24",
		      "{P}/a.conf:7: DenyCIDR: '10.0.0.0/x': prefix length must be a number from 0 to 32",
		      "{P}/a.conf:7: DenyCIDR: '2001:db8::/129': prefix length must be a number from 0 to 128" } },
	{ "cidr-both-lists",
	  .files = { { "a.conf",
		       POL "AllowCIDR=192.0.2.0/24 2001:db8::/32\n"
			   "DenyCIDR=198.51.100.0/24 192.0.2.0/24\nDenyCIDR=2001:db8:0::/32\n" } },
	  .expect = { "{P}/a.conf:5: DenyCIDR: 192.0.2.0/24 is also in AllowCIDR= at line 4; a prefix can be only one of them",
		      "{P}/a.conf:6: DenyCIDR: 2001:db8::/32 is also in AllowCIDR= at line 4; a prefix can be only one of them" } },
	{ "cgroup-paths",
	  .files = { { "a.conf",
		       "[Policy]\nName=p\nCgroup=/\nCgroup=\nCgroup=a/../b ./a\nCgroup=a//b\n"
		       "Cgroup=/sys/fs/cgroup/system.slice\nCgroup=//\n" } },
	  .expect = { "{P}/a.conf:3: Cgroup: '/' names the cgroup v2 root; a policy on the root cgroup is forbidden",
		      "{P}/a.conf:4: Cgroup: an empty path names the cgroup v2 root; a policy on the root cgroup is forbidden",
		      "{P}/a.conf:5: Cgroup: 'a/../b' has a '..' component; '.' and '..' are not allowed",
		      "{P}/a.conf:5: Cgroup: './a' has a '.' component; '.' and '..' are not allowed",
		      "{P}/a.conf:6: Cgroup: 'a//b' has an empty path component",
		      "{P}/a.conf:7: Cgroup: '/sys/fs/cgroup/system.slice' includes the cgroup v2 mount point; "
		      "write the path relative to that mount",
		      "{P}/a.conf:8: Cgroup: '//' names the cgroup v2 root; a policy on the root cgroup is forbidden" } },
	{ "cgroup-too-deep",
	  .files = { { "a.conf",
		       "[Policy]\nName=p\nCgroup=a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a\n" } },
	  .expect = { "{P}/a.conf:3: Cgroup: 'a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a' "
		      "is deeper than 32 levels" } },
	{ "units",
	  .files = { { "a.conf", "[Policy]\nName=p\nUnit=nginx\nUnit=a/b.service x.bogus\n" } },
	  .expect = { "{P}/a.conf:3: Unit: 'nginx' is not a valid unit name (e.g. nginx.service)",
		      "{P}/a.conf:4: Unit: 'a/b.service' is not a valid unit name (e.g. nginx.service)",
		      "{P}/a.conf:4: Unit: 'x.bogus' is not a valid unit name (e.g. nginx.service)" } },
	{ "bad-enums", .main = "[Daemon]\nRegions=" REGIONS "\nOnExit=never\n",
	  .files = { { "a.conf", POL "Mode=block\nUnknown=maybe\nName=q\n" } },
	  .expect = { "{D}/egressd.conf:3: OnExit: invalid value 'never'; expected keep or detach",
		      "{P}/a.conf:4: Mode: invalid value 'block'; expected monitor or enforce",
		      "{P}/a.conf:5: Unknown: invalid value 'maybe'; expected allow or deny",
		      "{P}/a.conf:6: Name= is given twice (first at line 2)" } },
	{ "inline-comments", .main = "[Daemon]\nRegions=" REGIONS "\nOnExit=keep ; stay\n",
	  .files = { { "a.conf", POL
		       "Mode=enforce # strict\nUnknown=allow;x\nAllowCIDR=10.0.0.0/8 #office\n" } },
	  .expect = { "{D}/egressd.conf:3: OnExit: value 'keep ; stay' contains an inline comment; comments must be on a line of their own",
		      "{P}/a.conf:4: Mode: value 'enforce # strict' contains an inline comment; comments must be on a line of their own",
		      "{P}/a.conf:5: Unknown: invalid value 'allow;x'; expected allow or deny",
		      "{P}/a.conf:6: AllowCIDR: value '10.0.0.0/8 #office' contains an inline comment; comments must be on a line of their own" } },
	{ "syntax",
	  .files = { { "a.conf",
		       "Name=x\n[Policy]\nName=p\nCgroup:a.slice\nCgroup=a.slice\n  b.slice\n[Policy\n"
		       "Name=ignored\n[Po licy]\n[Policy]\nName=q\nUnit=q.service\n\tMode = enforce \n"
		       "Allow-CIDR=10.0.0.0/8\n=x\n" } },
	  .expect = { "{P}/a.conf:1: Name= outside of a section",
		      "{P}/a.conf:4: expected Key=value, [Section] or a comment, got 'Cgroup:a.slice'",
		      "{P}/a.conf:6: expected Key=value, [Section] or a comment, got 'b.slice'",
		      "{P}/a.conf:7: invalid section header '[Policy' (expected [Name] with letters, digits, '-', '_', '.')",
		      "{P}/a.conf:9: invalid section header '[Po licy]' (expected [Name] with letters, digits, '-', '_', '.')",
		      "{P}/a.conf:14: invalid key name 'Allow-CIDR'",
		      "{P}/a.conf:15: invalid key name ''" } },
	{ "main-file",
	  .main = "Socket=/x\n[Daemon]\nSockett=/x\nRegions=" REGIONS
		  "\nReaderGroup=a b\nStateDirectory=\n"
		  "GeoDatabase=\n[Policy]\nName=p\n[Daemon]\nSocket=/a\nSocket=/b\n",
	  .expect = { "{D}/egressd.conf:1: Socket= outside of a section",
		      "{D}/egressd.conf:3: unknown key 'Sockett' in [Daemon]; did you mean Socket=?",
		      "{D}/egressd.conf:5: ReaderGroup: 'a b' is not a valid group name",
		      "{D}/egressd.conf:6: StateDirectory: empty value",
		      "{D}/egressd.conf:7: GeoDatabase: empty value",
		      "{D}/egressd.conf:8: unknown section [Policy]; expected [Daemon] (policies go in the policy directory)",
		      "{D}/egressd.conf:12: Socket= is given twice (first at line 11)" } },
	{ "policy-dir-missing", .main = "[Daemon]\nRegions=" REGIONS "\nPolicyDirectory=nodir\n",
	  .expect = { "{D}/egressd.conf:3: PolicyDirectory: cannot open {D}/nodir: No such file or directory" } },
	{ "name",
	  .files = { { "a.conf",
		       "[Policy]\nName=-bad\nCgroup=a.slice\n[Policy]\nName=with space\nCgroup=b.slice\n" } },
	  .expect = { "{P}/a.conf:2: Name: '-bad' is not a valid policy name (1..64 letters, digits, '-', '_', '.', "
		      "starting with a letter or digit)",
		      "{P}/a.conf:5: Name: 'with space' is not a valid policy name (1..64 letters, digits, '-', '_', '.', "
		      "starting with a letter or digit)" } },
	{ "regions-file",
	  .regions =
		  "[EU]\nSource=x\nAsOf=2024-02-30\nCountries=DE FR DE QQ\n[DE]\nSource=y\nAsOf=2024-01-01\n"
		  "Countries=DE\n[ASIA]\nDescription=x\n[EU]\nSource=z\n[Nordic_5]\nFoo=1\n[LEAP]\nSource=s\n"
		  "AsOf=2024-02-29\nCountries=FI\n",
	  .files = { { "a.conf", POL "AllowRegion=leap\nAllowRegion=DE\n" } },
	  .expect = { "{D}/regions.conf:3: AsOf: '2024-02-30' is not a date (YYYY-MM-DD)",
		      "{D}/regions.conf:4: Countries: DE is listed twice in [EU]",
		      "{D}/regions.conf:4: Countries: 'QQ' is not an ISO 3166-1 alpha-2 country code",
		      "{D}/regions.conf:1: region [EU] has no AsOf=",
		      "{D}/regions.conf:5: region name [DE] looks like a country code; region names other than EU must "
		      "be longer than two letters",
		      "{D}/regions.conf:9: region [ASIA] has no Source=",
		      "{D}/regions.conf:9: region [ASIA] has no AsOf=",
		      "{D}/regions.conf:9: region [ASIA] has no Countries=",
		      "{D}/regions.conf:11: region [EU] is defined twice (first at line 1)",
		      "{D}/regions.conf:13: region name [Nordic_5] may contain only letters, digits and '-'",
		      "{P}/a.conf:5: AllowRegion: DE is a country, not a region; use AllowCountry=DE" } },
	{ "regions-missing", .main = "[Daemon]\nRegions=gone.conf\n",
	  .files = { { "a.conf", POL "AllowRegion=EU\nAllowCountry=EU\n" } },
	  .expect = { "{D}/gone.conf: cannot open: No such file or directory",
		      "{P}/a.conf:5: AllowCountry: EU is a region group, not a country; use AllowRegion=EU" },
	  .rc = -ENOENT },
	{ "several-files",
	  .files = { { "a.conf", POL "Mode=on\n" },
		     { "b.conf", "[Policy]\nName=b\nCgroup=/\nUnknown=no\n" },
		     { "c.conf", "[Policy]\nName=c\nCgroup=a.slice\nAllowCountry=XX\n" } },
	  .expect = { "{P}/a.conf:4: Mode: invalid value 'on'; expected monitor or enforce",
		      "{P}/b.conf:3: Cgroup: '/' names the cgroup v2 root; a policy on the root cgroup is forbidden",
		      "{P}/b.conf:4: Unknown: invalid value 'no'; expected allow or deny",
		      "{P}/c.conf:4: AllowCountry: XX is not an assigned ISO 3166-1 alpha-2 country code",
		      "{P}/c.conf:3: Cgroup: a.slice is already used by policy 'p' at {P}/a.conf:3; a cgroup can have only one policy" } },
};

static void run_err_case(const struct err_case *tc)
{
	struct config c, sentinel;
	struct diag d = {};
	char dir[256], path[512], want[1024];
	size_t nexp = 0;
	int r;

	while (nexp < 12 && tc->expect[nexp])
		nexp++;
	make_tree(tc->name, tc->main, tc->regions, tc->files, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/egressd.conf", dir);
	memset(&c, 0xa5, sizeof(c));
	sentinel = c;
	r = config_load(path, &c, &d);
	if (r != (tc->rc ? tc->rc : -EINVAL) || d.n != nexp) {
		fprintf(stderr, "case %s: r=%d, %zu messages (want %zu):\n", tc->name, r, d.n,
			nexp);
		print_diag(&d);
	}
	assert_int_equal(r, tc->rc ? tc->rc : -EINVAL);
	assert_memory_equal(&c, &sentinel, sizeof(c)); /* untouched on failure */
	assert_int_equal(d.n, nexp);
	for (size_t i = 0; i < nexp; i++) {
		expand(tc->expect[i], dir, want, sizeof(want));
		if (strcmp(d.msgs[i], want) != 0)
			fprintf(stderr, "case %s, message %zu:\n  got  %s\n  want %s\n", tc->name,
				i, d.msgs[i], want);
		assert_string_equal(d.msgs[i], want);
	}
	diag_free(&d);
}

static void test_errors(void **state)
{
	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++)
		run_err_case(&err_cases[i]);
}

/* A line over CONFIG_MAX_LINE is reported with its length, and nothing of it is used. */
static void test_long_line(void **state)
{
	struct config c = {};
	struct diag d = {};
	char dir[256], path[512], want[512];
	size_t n = 5000;
	char *text = malloc(n + 200);
	int r;

	assert_non_null(text);
	strcpy(text, "[Policy]\nName=p\nCgroup=a.slice\nAllowCIDR=");
	for (size_t i = strlen(text); i < n; i++)
		text[i] = 'x';
	text[n] = 0;
	strcat(text, "\nAllowCountry=DE\n");
	make_tree("long", NULL, NULL, (const struct pfile[]){ { "a.conf", text }, {} }, dir,
		  sizeof(dir));
	snprintf(path, sizeof(path), "%s/egressd.conf", dir);
	r = config_load(path, &c, &d);
	assert_int_equal(r, -EINVAL);
	assert_int_equal(d.n, 1);
	snprintf(
		want, sizeof(want),
		"%s/policies.d/a.conf:4: line is %zu bytes long, more than the limit of %d; split the value "
		"over several lines of the same key",
		dir, n - strlen("[Policy]\nName=p\nCgroup=a.slice\n"), CONFIG_MAX_LINE);
	assert_string_equal(d.msgs[0], want);
	diag_free(&d);

	/* exactly CONFIG_MAX_LINE bytes (with CRLF) is accepted and reaches validation whole */
	strcpy(text, "[Policy]\r\nName=p\r\nCgroup=");
	{
		size_t start = strlen(text);

		for (size_t i = 0; i < CONFIG_MAX_LINE - strlen("Cgroup="); i++)
			text[start + i] = 'c';
		text[start + CONFIG_MAX_LINE - strlen("Cgroup=")] = 0;
	}
	strcat(text, "\r\n");
	write_file(dir, "policies.d/a.conf", text);
	r = config_load(path, &c, &d);
	print_diag(&d);
	assert_int_equal(r, 0);
	assert_int_equal(strlen(c.policies[0].cgroups[0]), CONFIG_MAX_LINE - strlen("Cgroup="));
	config_free(&c);
	free(text);
}

/* ---- limits (policy.h, egressd.conf(5) LIMITS) ------------------------------------------------ */

/* A growing text buffer for generated configurations. */
struct text {
	char *s;
	size_t n, cap;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int k;

	for (;;) {
		va_start(ap, fmt);
		k = vsnprintf(t->s ? t->s + t->n : NULL, t->s ? t->cap - t->n : 0, fmt, ap);
		va_end(ap);
		assert_true(k >= 0);
		if (t->s && t->n + (size_t)k < t->cap)
			break;
		t->cap = (t->cap + (size_t)k + 1) * 2;
		t->s = realloc(t->s, t->cap);
		assert_non_null(t->s);
	}
	t->n += (size_t)k;
}

/* Load the tree NAME made of main (NULL: default), regions (NULL: the source tree's) and one
 * policy file a.conf (NULL: none); expect rc and exactly the messages expect[] ({D}, {P}
 * expanded). */
static void expect_load(const char *name, const char *main, const char *regions,
			const char *policy, int rc, const char *const *expect, size_t nexp)
{
	struct config c = {};
	struct diag d = {};
	char dir[256], path[512], want[1024];
	struct pfile files[] = { { "a.conf", policy }, {} };
	int r;

	make_tree(name, main, regions, policy ? files : NULL, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/egressd.conf", dir);
	r = config_load(path, &c, &d);
	if (r != rc || d.n != nexp) {
		fprintf(stderr, "case %s: r=%d, %zu messages (want %d, %zu)\n", name, r, d.n, rc,
			nexp);
		print_diag(&d);
	}
	assert_int_equal(r, rc);
	assert_int_equal(d.n, nexp);
	for (size_t i = 0; i < nexp; i++) {
		expand(expect[i], dir, want, sizeof(want));
		assert_string_equal(d.msgs[i], want);
	}
	if (r == 0)
		config_free(&c);
	diag_free(&d);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 100,000 policies in one file: the 4097th section is refused (once), the load stays fast. */
static void test_limit_policies(void **state)
{
	struct text t = {};
	char want[200];
	const char *exp[] = { want };
	double t0;

	for (int i = 0; i < 100000; i++)
		text_add(&t, "[Policy]\nName=p%d\nCgroup=cg/%d\n", i, i);
	snprintf(want, sizeof(want),
		 "{P}/a.conf:%d: more than 4096 policies in the configuration (the size of the BPF map 'policies')",
		 4096 * 3 + 1);
	t0 = now_s();
	expect_load("limit-policies", NULL, NULL, t.s, -EINVAL, exp, 1);
	print_message("100000 policies refused in %.2f s\n", now_s() - t0);
	free(t.s);

	/* exactly 4096 policies with 16384 cgroups is accepted (pairwise checks included) */
	t = (struct text){};
	for (int i = 0; i < CONFIG_MAX_POLICIES; i++)
		text_add(&t, "[Policy]\nName=p%d\nCgroup=cg/%d cg/%d/a cg/%d/b cg/%d/c\n", i, i, i,
			 i, i);
	t0 = now_s();
	expect_load("limit-policies-ok", NULL, NULL, t.s, 0, NULL, 0);
	print_message("4096 policies with 16384 cgroups loaded in %.2f s\n", now_s() - t0);
	free(t.s);
}

/* Cgroup= and Unit= values share the cgroup_policy map: the 16385th is refused (once). */
static void test_limit_cgroups(void **state)
{
	struct text t = {};
	const char *exp[] = {
		"{P}/a.conf:16385: Unit: more than 16384 cgroups and units in the configuration (the size of the BPF map 'cgroup_policy')"
	};

	text_add(&t, "[Policy]\nName=p\n");
	for (int i = 0; i < 16382; i++) /* lines 3 .. 16384: 16382 cgroups */
		text_add(&t, "Cgroup=a.slice/c%d.scope\n", i);
	text_add(&t, "Unit=x.service y.service z.service\nCgroup=b.slice c.slice\n");
	expect_load("limit-cgroups", NULL, NULL, t.s, -EINVAL, exp, 1);
	free(t.s);
}

/* 65536 distinct prefixes fit (in one policy, in linear time); the 65537th is refused (once);
 * duplicates do not count and conflicts are still found. */
static void test_limit_cidrs(void **state)
{
	struct text t = {};
	const char *exp[] = {
		"{P}/a.conf:65539: DenyCIDR: more than 65536 CIDR prefixes in the configuration (the size of the BPF map 'cidr')",
		"{P}/a.conf:65541: AllowCIDR: 10.0.0.7/32 is also in DenyCIDR= at line 11; a prefix can be only one of them",
	};
	double t0;

	text_add(&t, "[Policy]\nName=p\nCgroup=a.slice\n");
	for (int i = 0; i < 65535; i++) /* lines 4 .. 65538 */
		text_add(&t, "DenyCIDR=10.%d.%d.%d/32\n", i >> 16, (i >> 8) & 255, i & 255);
	text_add(&t, "DenyCIDR=10.0.0.1 fd00::/8 fd01::/16\n"); /* a duplicate, 65536th, 65537th */
	text_add(&t, "DenyCIDR=10.0.0.2/32\n"); /* a duplicate: not counted, not refused */
	text_add(&t, "AllowCIDR=10.0.0.7/32\n");
	t0 = now_s();
	expect_load("limit-cidrs", NULL, NULL, t.s, -EINVAL, exp, 2);
	print_message("65537 CIDR prefixes in one policy checked in %.2f s\n", now_s() - t0);
	free(t.s);
}

/* More than 1024 region groups; more than 64 GeoDatabase= files. */
static void test_limit_regions_geo(void **state)
{
	struct text t = {}, m = {};
	const char *exp[] = { "{D}/regions.conf:4097: more than 1024 region groups" };
	const char *exp_geo[] = { "{D}/egressd.conf:3: GeoDatabase: more than 64 files" };

	for (int i = 0; i < 1100; i++)
		text_add(&t, "[Group%d]\nSource=s\nAsOf=2024-01-01\nCountries=DE\n", i);
	expect_load("limit-regions", "[Daemon]\nRegions=regions.conf\n", t.s, POL, -EINVAL, exp,
		    1);
	free(t.s);

	text_add(&m, "[Daemon]\nRegions=" REGIONS "\nGeoDatabase=");
	for (int i = 0; i < 65; i++)
		text_add(&m, " g%d.csv", i);
	text_add(&m, "\n");
	expect_load("limit-geo", m.s, NULL, POL, -EINVAL, exp_geo, 1);
	free(m.s);
}

/* All files together may not exceed 16 MiB: a huge main file, and Regions=/dev/zero (an endless
 * file without line ends: never held in memory, stopped at the limit). A 1 MiB line fails with
 * CONFIG_MAX_LINE. */
static void test_limit_total(void **state)
{
	struct text t = {};
	char *line;
	char big[300];
	const char *exp_big[] = { big };
	const char *exp_zero[] = {
		"/dev/zero:1: the configuration is larger than the limit of 16777216 bytes (all files together); not read further"
	};
	const char *exp_line[] = {
		"{P}/a.conf:4: line is 1048576 bytes long, more than the limit of 4096; split the value over several lines of the same key"
	};

	/* 63-byte comment lines + "\n" = 64 bytes after the 2 header lines: byte 16777217 is on
	 * line 2 + ceil((16777217 - header bytes) / 64) */
	text_add(&t, "[Daemon]\nRegions=" REGIONS "\n");
	snprintf(big, sizeof(big),
		 "{D}/egressd.conf:%zu: the configuration is larger than the limit of 16777216 bytes (all files together); not read further",
		 2 + (16777217 - t.n + 63) / 64);
	line = malloc(64);
	assert_non_null(line);
	memset(line, '#', 63);
	line[63] = 0;
	for (int i = 0; i < 262144; i++)
		text_add(&t, "%s\n", line);
	free(line);
	expect_load("limit-total", t.s, NULL, POL, -EINVAL, exp_big, 1);
	free(t.s);

	expect_load("limit-dev-zero", "[Daemon]\nRegions=/dev/zero\n", NULL, POL, -EINVAL,
		    exp_zero, 1);

	t = (struct text){};
	text_add(&t, POL "AllowCIDR=");
	line = malloc((1 << 20) + 1);
	assert_non_null(line);
	memset(line, '1', 1 << 20);
	line[(1 << 20) - strlen("AllowCIDR=")] = 0;
	text_add(&t, "%s\nAllowCountry=DE\n", line);
	free(line);
	expect_load("limit-line", NULL, NULL, t.s, -EINVAL, exp_line, 1);
	free(t.s);
}

/* More than 4096 policy files: reported once, none is read. */
static void test_limit_files(void **state)
{
	char dir[256], path[600], want[800];
	struct config c = {};
	struct diag d = {};
	int r;

	make_tree("limit-files", NULL, NULL, NULL, dir, sizeof(dir));
	for (int i = 0; i <= CONFIG_MAX_POLICY_FILES; i++) {
		char name[32], content[80];

		snprintf(name, sizeof(name), "p%05d.conf", i);
		snprintf(content, sizeof(content), "[Policy]\nName=p%d\nCgroup=c%d.slice\n", i, i);
		snprintf(path, sizeof(path), "%s/policies.d", dir);
		write_file(path, name, content);
	}
	snprintf(path, sizeof(path), "%s/egressd.conf", dir);
	r = config_load(path, &c, &d);
	print_diag(&d);
	assert_int_equal(r, -EINVAL);
	assert_int_equal(d.n, 1);
	snprintf(want, sizeof(want),
		 "%s/egressd.conf: PolicyDirectory: %s/policies.d has more than 4096 policy files (*.conf); none was read",
		 dir, dir);
	assert_string_equal(d.msgs[0], want);
	diag_free(&d);
}

/* Load a tree NAME whose main file sets one [Daemon] key (line 3) and has one policy; the tree's
 * directory in dir. Returns config_load()'s result. */
static int load_daemon_key(const char *name, const char *key, const char *value, struct config *c,
			   struct diag *d, char *dir, size_t dirsize)
{
	char main[256], path[512];

	snprintf(main, sizeof(main), "[Daemon]\nRegions=" REGIONS "\n%s=%s\n", key, value);
	make_tree(name, main, NULL, (const struct pfile[]){ { "a.conf", POL }, {} }, dir, dirsize);
	snprintf(path, sizeof(path), "%s/egressd.conf", dir);
	return config_load(path, c, d);
}

/* EventsRingBytes=: a power of two from 4096 to 256 MiB, K and M suffixes; unset = 0. */
static void test_events_ring_bytes(void **state)
{
	static const struct {
		const char *v;
		uint32_t want; /* 0: invalid */
	} cases[] = {
		{ "4096", 4096 },    { "64K", 65536 }, { "1M", 1 << 20 }, { "256M", 256U << 20 },
		{ "2048", 0 },	     { "65535", 0 },   { "512M", 0 },	  { "-4096", 0 },
		{ "4096 ", 4096 }, /* trailing white space is not part of a value */
		{ "4k", 0 },	     { "1MB", 0 },     { "0x1000", 0 },	  { "99999999999999999999", 0 },
		{ "18014398509481984M", 0 },
	};
	char want[700], name[64];
	struct config c = {};
	struct diag d = {};

	expect_load("ring-default", NULL, NULL, POL, 0, NULL, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char dir[256];
		int r;

		snprintf(name, sizeof(name), "ring-%zu", i);
		r = load_daemon_key(name, "EventsRingBytes", cases[i].v, &c, &d, dir, sizeof(dir));
		if (cases[i].want) {
			print_diag(&d);
			assert_int_equal(r, 0);
			assert_int_equal(c.events_ring_bytes, cases[i].want);
			config_free(&c);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_int_equal(d.n, 1);
			snprintf(want, sizeof(want),
				 "%s/egressd.conf:3: EventsRingBytes: '%s' is not a power of two from 4096 to 268435456 bytes (K and M suffixes allowed)",
				 dir, cases[i].v);
			assert_string_equal(d.msgs[0], want);
		}
		diag_free(&d);
	}
}

/* CounterEntries=: a number of rows from 1024 to 4194304; unset = 0 (the default size). */
static void test_counter_entries(void **state)
{
	static const struct {
		const char *v;
		uint32_t want; /* 0: invalid */
	} cases[] = {
		{ "1024", 1024 }, { "65536", 65536 }, { "4194304", 4194304 }, { "100000", 100000 },
		{ "1023", 0 },	  { "4194305", 0 },   { "0", 0 },	      { "-2048", 0 },
		{ "64K", 0 },	  { "0x10000", 0 },   { "", 0 },	      { "99999999999999999999", 0 },
	};
	char want[700], name[64];
	struct config c = {};
	struct diag d = {};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char dir[256];
		int r;

		snprintf(name, sizeof(name), "counters-%zu", i);
		r = load_daemon_key(name, "CounterEntries", cases[i].v, &c, &d, dir, sizeof(dir));
		if (cases[i].want) {
			print_diag(&d);
			assert_int_equal(r, 0);
			assert_int_equal(c.counter_entries, cases[i].want);
			config_free(&c);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_int_equal(d.n, 1);
			if (*cases[i].v)
				snprintf(want, sizeof(want),
					 "%s/egressd.conf:3: CounterEntries: '%s' is not a number of counter rows from 1024 to 4194304",
					 dir, cases[i].v);
			else
				snprintf(want, sizeof(want), "%s/egressd.conf:3: CounterEntries: empty value", dir);
			if (strcmp(d.msgs[0], want) != 0)
				print_diag(&d);
			assert_string_equal(d.msgs[0], want);
		}
		diag_free(&d);
	}
}

/* PinPath= empty switches pinning off (the daemon then pins nothing); other paths may not be empty. */
static void test_pinpath_empty(void **state)
{
	char dir[512], p[600];
	struct config c = {};
	struct diag d = {};

	make_tree("pin-empty", "[Daemon]\nRegions=" REGIONS "\nPinPath=\nOnExit=detach\n", NULL, NULL, dir,
		  sizeof(dir));
	snprintf(p, sizeof(p), "%s/egressd.conf", dir);
	assert_int_equal(config_load(p, &c, &d), 0);
	assert_int_equal(d.n, 0);
	assert_string_equal(c.pin_path, "");
	assert_int_equal(c.on_exit_detach, 1);
	assert_string_equal(c.metrics_listen, "");
	config_free(&c);

	make_tree("metrics", "[Daemon]\nRegions=" REGIONS "\nMetricsListen=[::1]:9489\n", NULL, NULL, dir,
		  sizeof(dir));
	snprintf(p, sizeof(p), "%s/egressd.conf", dir);
	assert_int_equal(config_load(p, &c, &d), 0);
	assert_string_equal(c.metrics_listen, "[::1]:9489");
	config_free(&c);

	for (int i = 0; i < 4; i++) {
		static const char *const bad[] = { "9489", "localhost:9489", "127.0.0.1:0", "[::1:9489" };
		char main[256], ex[700], name[32];

		snprintf(main, sizeof(main), "[Daemon]\nRegions=%s\nMetricsListen=%s\n", REGIONS, bad[i]);
		snprintf(name, sizeof(name), "metrics-bad-%d", i);
		make_tree(name, main, NULL, NULL, dir, sizeof(dir));
		snprintf(p, sizeof(p), "%s/egressd.conf", dir);
		assert_int_equal(config_load(p, &c, &d), -EINVAL);
		snprintf(ex, sizeof(ex),
			 "%s:3: MetricsListen: '%s' is not ADDRESS:PORT (e.g. 127.0.0.1:9489 or [::1]:9489)", p, bad[i]);
		assert_int_equal(d.n, 1);
		assert_string_equal(d.msgs[0], ex);
		diag_free(&d);
	}
}

static void test_main_missing(void **state)
{
	struct config c = {};
	struct diag d = {};
	char path[256], want[512];

	snprintf(path, sizeof(path), "%s/nope.conf", tmpdir);
	assert_int_equal(config_load(path, &c, &d), -ENOENT);
	assert_int_equal(d.n, 1);
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
	assert_string_equal(d.msgs[0], want);
	assert_null(c.path);
	diag_free(&d);
}

/* ---- regions.conf ---------------------------------------------------------------------------- */

static void test_regions_coverage(void **state)
{
	struct config c = {};
	struct diag d = {};
	const struct region *cont[7], *eu, *eea, *efta;
	uint64_t iso[EGRESS_COUNTRY_WORDS] = {};
	int r;

	assert_int_equal(sizeof(iso3166) / sizeof(iso3166[0]), 249);
	r = config_load(CONFIG_DIR "/design/egressd.conf", &c, &d);
	assert_int_equal(r, 0);

	for (int i = 0; i < 7; i++) {
		cont[i] = config_find_region(&c, continents[i]);
		assert_non_null(cont[i]);
		assert_non_null(cont[i]->source);
		assert_non_null(cont[i]->as_of);
	}
	/* each of the 249 codes in exactly one continent */
	for (size_t k = 0; k < 249; k++) {
		unsigned id = cid(iso3166[k]), n = 0;

		assert_int_equal(policy_country_id(iso3166[k]), (int)id);
		iso[id / 64] |= 1ULL << (id % 64);
		for (int i = 0; i < 7; i++)
			n += (unsigned)has(cont[i]->members, id);
		if (n != 1)
			fprintf(stderr, "%s is in %u continents\n", iso3166[k], n);
		assert_int_equal(n, 1);
	}
	assert_int_equal(popcount(iso), 249);
	/* the continents hold nothing else but XK and AN (GeoIP data codes, see regions.conf) */
	{
		unsigned total = 0;

		for (int i = 0; i < 7; i++)
			total += popcount(cont[i]->members);
		assert_int_equal(total, 251);
		assert_true(has(config_find_region(&c, "EUROPE")->members, cid("XK")));
		assert_true(has(config_find_region(&c, "NORTH-AMERICA")->members, cid("AN")));
	}
	/* spot checks of the M49 convention stated in regions.conf */
	assert_true(has(config_find_region(&c, "ANTARCTICA")->members, cid("AQ")));
	assert_true(has(config_find_region(&c, "ANTARCTICA")->members, cid("TF")));
	assert_true(has(config_find_region(&c, "ASIA")->members, cid("CY")));
	assert_true(has(config_find_region(&c, "OCEANIA")->members, cid("UM")));
	assert_true(has(config_find_region(&c, "NORTH-AMERICA")->members, cid("MX")));
	assert_true(has(config_find_region(&c, "SOUTH-AMERICA")->members, cid("FK")));
	assert_true(has(config_find_region(&c, "AFRICA")->members, cid("IO")));
	assert_int_equal(popcount(config_find_region(&c, "ANTARCTICA")->members), 5);

	eu = config_find_region(&c, "EU");
	eea = config_find_region(&c, "EEA");
	efta = config_find_region(&c, "EFTA");
	assert_int_equal(popcount(eu->members), 27);
	for (size_t i = 0; i < 27; i++)
		assert_true(has(eu->members, cid(eu27[i])));
	assert_int_equal(popcount(eea->members), 30);
	for (int w = 0; w < EGRESS_COUNTRY_WORDS; w++)
		assert_int_equal(eea->members[w] & eu->members[w], eu->members[w]);
	assert_true(has(eea->members, cid("IS")) && has(eea->members, cid("LI")) &&
		    has(eea->members, cid("NO")));
	assert_int_equal(popcount(efta->members), 4);
	assert_true(has(efta->members, cid("CH")) && has(efta->members, cid("IS")) &&
		    has(efta->members, cid("LI")) && has(efta->members, cid("NO")));
	assert_string_equal(eu->as_of, "2025-01-01");
	assert_non_null(strstr(eu->source, "europa.eu"));
	config_free(&c);
	diag_free(&d);
}

/* ---- helpers --------------------------------------------------------------------------------- */

static void test_helpers(void **state)
{
	struct policy_cidr pc;
	struct policy p = { .id = 0x01020304 };
	struct egress_cidr_key k;
	char err[256], buf[POLICY_CIDR_STRLEN];

	/* FNV-1a 32 test vectors (isthe.com FNV test suite) */
	assert_int_equal(policy_id_of(""), 0x811c9dc5u);
	assert_int_equal(policy_id_of("a"), 0xe40c292cu);
	assert_int_equal(policy_id_of("foobar"), 0xbf9cf968u);

	assert_string_equal(policy_mode_name(EGRESS_MODE_MONITOR), "monitor");
	assert_string_equal(policy_mode_name(EGRESS_MODE_ENFORCE), "enforce");
	assert_string_equal(policy_mode_name(7), "invalid");
	assert_string_equal(verdict_name(EGRESS_VERDICT_ALLOW), "allow");
	assert_string_equal(verdict_name(EGRESS_VERDICT_DENY), "deny");
	assert_string_equal(verdict_name(EGRESS_VERDICT_WOULD_DENY), "would_deny");
	assert_string_equal(verdict_name(EGRESS_VERDICT_LOCAL), "local");
	assert_string_equal(verdict_name(EGRESS_VERDICT_COUNT), "invalid");

	assert_int_equal(policy_country_id("DE"), (3 * 26) + 4 + 1);
	assert_int_equal(policy_country_id("de"), 83);
	assert_int_equal(policy_country_id("AD"), 4);
	assert_int_equal(policy_country_id("ZW"), 25 * 26 + 22 + 1);
	assert_int_equal(policy_country_id("XK"), 23 * 26 + 10 + 1);
	assert_int_equal(policy_country_id("EU"), -EINVAL);
	assert_int_equal(policy_country_id("ZZ"), -EINVAL);
	assert_int_equal(policy_country_id("UK"), -EINVAL);
	assert_int_equal(policy_country_id("D"), -EINVAL);
	assert_int_equal(policy_country_id("D1"), -EINVAL);
	assert_int_equal(policy_country_id(""), -EINVAL);

	assert_int_equal(policy_parse_cidr("192.0.2.0/24", &pc, err, sizeof(err)), 0);
	assert_int_equal(pc.family, 4);
	assert_int_equal(pc.plen, 24);
	assert_memory_equal(pc.addr, ((uint8_t[16]){ 192, 0, 2, 0 }), 16);
	policy_cidr_key(p.id, &pc, &k);
	assert_int_equal(k.prefixlen, 32 + 96 + 24);
	assert_int_equal(k.policy_id, 0x01020304);
	assert_memory_equal(
		k.addr, ((uint8_t[16]){ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 0 }),
		16);

	assert_int_equal(policy_parse_cidr("2001:db8::", &pc, err, sizeof(err)), 0);
	assert_int_equal(pc.family, 6);
	assert_int_equal(pc.plen, 128);
	policy_cidr_key(p.id, &pc, &k);
	assert_int_equal(k.prefixlen, 32 + 128);
	assert_memory_equal(k.addr, ((uint8_t[16]){ 0x20, 0x01, 0x0d, 0xb8 }), 16);
	assert_string_equal(policy_cidr_format(&pc, buf), "2001:db8::/128");

	assert_int_equal(policy_parse_cidr("0.0.0.0/0", &pc, err, sizeof(err)), 0);
	assert_int_equal(pc.plen, 0);
	assert_int_equal(policy_parse_cidr("::/0", &pc, err, sizeof(err)), 0);
	assert_int_equal(pc.family, 6);
	/* IPv4-mapped is fine below /96 (it covers more than the mapped block) */
	assert_int_equal(policy_parse_cidr("::/64", &pc, err, sizeof(err)), 0);
	assert_int_equal(policy_parse_cidr("::ffff:0:0/96", &pc, err, sizeof(err)), -EINVAL);
	assert_string_equal(
		err,
		"::ffff:0:0/96 is an IPv4-mapped prefix (::ffff:0:0/96), which egressd looks up as "
		"IPv4; write it as 0.0.0.0/0");
	assert_int_equal(policy_parse_cidr("10.0.0.0/8/8", &pc, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'10.0.0.0/8/8': prefix length must be a number from 0 to 32");
	assert_int_equal(policy_parse_cidr("1.2.3.4/31", &pc, err, sizeof(err)), 0);
	assert_int_equal(policy_parse_cidr("1.2.3.5/31", &pc, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "1.2.3.5/31 has host bits set; did you mean 1.2.3.4/31?");
	assert_int_equal(policy_parse_cidr("2001:db8::1:0/111", &pc, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
			    "2001:db8::1:0/111 has host bits set; did you mean 2001:db8::/111?");
}

/* ---- policy_decide --------------------------------------------------------------------------- */

struct decide_case {
	const char *addr;
	const char *country; /* NULL = unknown (0) */
	uint8_t enforce_unknown_deny; /* verdict for the enforce/Unknown=deny policy */
	uint8_t monitor_unknown_allow; /* the same policy with Mode=monitor, Unknown=allow */
	const char *match; /* expected matched prefix, or NULL */
	const char *why;
};

#define A EGRESS_VERDICT_ALLOW
#define D EGRESS_VERDICT_DENY
#define W EGRESS_VERDICT_WOULD_DENY
#define L EGRESS_VERDICT_LOCAL

static const struct decide_case decide_cases[] = {
	{ "127.0.0.1", NULL, L, L, NULL, "loopback" },
	{ "127.255.255.254", "US", L, L, NULL, "loopback, whole /8" },
	{ "0.0.0.0", NULL, L, L, NULL, "unspecified" },
	{ "0.0.0.1", NULL, D, A, NULL, "only 0.0.0.0/32 is local; unknown country" },
	{ "169.254.10.1", "US", L, L, NULL, "link-local wins over DenyCIDR=169.254.0.0/16" },
	{ "169.253.255.255", "US", D, W, NULL, "just below link-local" },
	{ "::1", NULL, L, L, NULL, "IPv6 loopback" },
	{ "::", NULL, L, L, NULL, "IPv6 unspecified" },
	{ "::2", NULL, D, A, NULL, "not local" },
	{ "fe80::1", "US", L, L, NULL, "IPv6 link-local" },
	{ "febf:ffff::1", "US", L, L, NULL, "end of fe80::/10" },
	{ "fec0::1", "US", D, W, NULL, "outside fe80::/10" },
	{ "255.255.255.255", NULL, L, L, NULL, "limited broadcast" },
	{ "255.255.255.254", NULL, D, A, NULL, "not the limited broadcast" },
	{ "224.0.0.251", NULL, L, L, NULL, "mDNS, Local Network Control Block" },
	{ "224.0.0.0", NULL, L, L, NULL, "start of 224.0.0.0/24" },
	{ "224.0.0.255", "US", L, L, NULL, "end of 224.0.0.0/24" },
	{ "224.0.1.1", NULL, D, A, NULL, "NTP multicast is routed" },
	{ "239.255.255.250", NULL, D, A, NULL, "SSDP, administratively scoped: may be routed" },
	{ "ff02::fb", NULL, L, L, NULL, "IPv6 mDNS, link-local scope" },
	{ "ff01::1", NULL, L, L, NULL, "interface-local scope" },
	{ "ff12::1:2", NULL, L, L, NULL, "transient flag, link-local scope" },
	{ "ff00::1", NULL, L, L, NULL, "reserved scope 0 is never forwarded" },
	{ "ff05::1:3", NULL, D, A, NULL, "site-local scope is routed" },
	{ "ff0e::1", "US", D, W, NULL, "global scope" },
	{ "10.2.3.4", "US", A, A, "10.0.0.0/8", "AllowCIDR beats a denied country" },
	{ "10.1.3.4", "DE", D, W, "10.1.0.0/16",
	  "longer DenyCIDR beats AllowCIDR /8 and the allowed country" },
	{ "10.1.2.3", "US", A, A, "10.1.2.0/24", "longest AllowCIDR /24 beats DenyCIDR /16" },
	{ "10.1.2.3", NULL, A, A, "10.1.2.0/24", "CIDR before Unknown=" },
	{ "8.8.8.8", "DE", A, A, NULL, "allowed country" },
	{ "8.8.8.8", "US", D, W, NULL, "country not allowed" },
	{ "8.8.8.8", NULL, D, A, NULL, "unknown country: Unknown=" },
	{ "2001:db8:2::1", "DE", D, W, "2001:db8::/32", "IPv6 DenyCIDR beats allowed country" },
	{ "2001:db8:1::1", "US", A, A, "2001:db8:1::/48", "longer IPv6 AllowCIDR" },
	{ "a00::1", "US", D, W, NULL, "IPv4 prefix 10/8 never matches an IPv6 address" },
	{ "2a00::1", "FR", A, A, NULL, "allowed country, IPv6" },
};

/* An exception that holds only local destinations has no effect (local comes first): a warning
 * (not an error: the configuration stays valid) naming the file, line and prefix. Prefixes that
 * only overlap a local range, or are not local at all, get none. */
static void test_local_cidr_warnings(void **state)
{
	static const char *pol =
		"[Policy]\nName=w\nCgroup=w.slice\n"
		"DenyCIDR=224.0.0.0/24 169.254.0.0/16 fe80::/64\n"
		"AllowCIDR=127.0.0.1/32 255.255.255.255/32 ff02::fb/128 ff12::/16\n"
		"DenyCIDR=0.0.0.0/0 224.0.0.0/4 ff00::/8 ff05::/16 169.254.0.0/15 ::/128 fe80::/9\n"
		"DenyCIDR=ff00::/15 ff02::/15 ff00::/14 ff10::/15 ff00::/12\n";
	static const char *const want[] = {
		"p.conf:4: DenyCIDR: 224.0.0.0/24 holds",
		"p.conf:4: DenyCIDR: 169.254.0.0/16 holds",
		"p.conf:4: DenyCIDR: fe80::/64 holds",
		"p.conf:5: AllowCIDR: 127.0.0.1/32 holds",
		"p.conf:5: AllowCIDR: 255.255.255.255/32 holds",
		"p.conf:5: AllowCIDR: ff02::fb/128 holds",
		"p.conf:5: AllowCIDR: ff12::/16 holds",
		"p.conf:6: DenyCIDR: ::/128 holds",
		"p.conf:7: DenyCIDR: ff00::/15 holds", /* scopes 0 and 1 */
		"p.conf:7: DenyCIDR: ff10::/15 holds", /* flag 1, scopes 0 and 1 */
	};
	struct config c = {};
	struct diag d = {};
	char dir[256], path[512];

	(void)state;
	make_tree("localcidr", NULL, NULL, (const struct pfile[]){ { "p.conf", pol }, {} }, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/egressd.conf", dir);
	assert_int_equal(config_load(path, &c, &d), 0);
	for (size_t i = 0; i < c.warnings.n; i++)
		fprintf(stderr, "warning: %s\n", c.warnings.msgs[i]);
	assert_int_equal(c.warnings.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < c.warnings.n; i++) {
		assert_non_null(strstr(c.warnings.msgs[i], want[i]));
		assert_non_null(strstr(c.warnings.msgs[i], "which are always allowed: this exception has no effect"));
	}
	config_free(&c);

	/* In a configuration that is invalid elsewhere the warning still comes, after the errors. */
	make_tree("localcidr-bad", NULL, NULL,
		  (const struct pfile[]){ { "p.conf", "[Policy]\nName=w\nCgroup=w.slice\nAllowCountry=UK\n"
						      "DenyCIDR=224.0.0.0/24\n" }, {} },
		  dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/egressd.conf", dir);
	assert_int_equal(config_load(path, &c, &d), -EINVAL);
	print_diag(&d);
	assert_int_equal(d.n, 2);
	assert_non_null(strstr(d.msgs[0], "p.conf:4: AllowCountry: "));
	assert_true(strncmp(d.msgs[1], "warning: ", 9) == 0);
	assert_non_null(strstr(d.msgs[1], "p.conf:5: DenyCIDR: 224.0.0.0/24 holds only local destinations"));
	diag_free(&d);
}

static void parse_addr(const char *s, int *family, uint8_t a[16])
{
	memset(a, 0, 16);
	if (strchr(s, ':')) {
		*family = 6;
		assert_int_equal(inet_pton(AF_INET6, s, a), 1);
	} else {
		*family = 4;
		assert_int_equal(inet_pton(AF_INET, s, a), 1);
	}
}

static void test_decide(void **state)
{
	static const char *pol =
		"[Policy]\nName=enf\nCgroup=enf.slice\nMode=enforce\nUnknown=deny\n"
		"AllowCountry=DE FR\nAllowCIDR=10.0.0.0/8 10.1.2.0/24 2001:db8:1::/48\n"
		"DenyCIDR=10.1.0.0/16 2001:db8::/32 169.254.0.0/16\n"
		"[Policy]\nName=mon\nCgroup=mon.slice\nMode=monitor\nUnknown=allow\n"
		"AllowCountry=DE FR\nAllowCIDR=10.0.0.0/8 10.1.2.0/24 2001:db8:1::/48\n"
		"DenyCIDR=10.1.0.0/16 2001:db8::/32 169.254.0.0/16\n";
	struct config c = {};
	struct diag d = {};
	char dir[256], path[512], buf[POLICY_CIDR_STRLEN];
	const struct policy *enf, *mon;
	int r;

	make_tree("decide", NULL, NULL, (const struct pfile[]){ { "p.conf", pol }, {} }, dir,
		  sizeof(dir));
	snprintf(path, sizeof(path), "%s/egressd.conf", dir);
	r = config_load(path, &c, &d);
	print_diag(&d);
	assert_int_equal(r, 0);
	enf = config_find_policy(&c, "enf");
	mon = config_find_policy(&c, "mon");
	assert_non_null(enf);
	assert_non_null(mon);

	for (size_t i = 0; i < sizeof(decide_cases) / sizeof(decide_cases[0]); i++) {
		const struct decide_case *tc = &decide_cases[i];
		uint16_t country = tc->country ? (uint16_t)cid(tc->country) : 0;
		const struct policy_cidr *m = (const void *)1;
		uint8_t a[16], v = 0xff;
		int family;

		parse_addr(tc->addr, &family, a);
		assert_int_equal(policy_decide(enf, family, a, country, &v, &m), 0);
		if (v != tc->enforce_unknown_deny)
			fprintf(stderr, "enforce %s %s (%s): got %s\n", tc->addr,
				tc->country ?: "-", tc->why, verdict_name(v));
		assert_int_equal(v, tc->enforce_unknown_deny);
		if (tc->match) {
			assert_non_null(m);
			assert_string_equal(policy_cidr_format(m, buf), tc->match);
		} else {
			assert_null(m);
		}
		assert_int_equal(
			policy_decide(mon, family == 4 ? AF_INET : AF_INET6, a, country, &v, NULL),
			0);
		if (v != tc->monitor_unknown_allow)
			fprintf(stderr, "monitor %s %s (%s): got %s\n", tc->addr,
				tc->country ?: "-", tc->why, verdict_name(v));
		assert_int_equal(v, tc->monitor_unknown_allow);
	}

	/* bad family: -EINVAL, outputs untouched */
	{
		uint8_t a[16] = { 8, 8, 8, 8 }, v = 0x77;
		const struct policy_cidr *m = (const void *)1;

		assert_int_equal(policy_decide(enf, 5, a, 0, &v, &m), -EINVAL);
		assert_int_equal(v, 0x77);
		assert_ptr_equal(m, (const void *)1);
	}
	/* out-of-range country ids are never allowed */
	assert_int_equal(policy_country_allowed(enf, EGRESS_COUNTRY_MAX), 0);
	assert_int_equal(policy_country_allowed(enf, 0), 0);
	assert_int_equal(policy_country_allowed(enf, (uint16_t)cid("DE")), 1);
	config_free(&c);
	diag_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_design_example),
		cmocka_unit_test(test_shipped_files),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_relative_paths_and_order),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_main_missing),
		cmocka_unit_test(test_pinpath_empty),
		cmocka_unit_test(test_regions_coverage),
		cmocka_unit_test(test_helpers),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_limit_policies),
		cmocka_unit_test(test_limit_cgroups),
		cmocka_unit_test(test_limit_cidrs),
		cmocka_unit_test(test_limit_regions_geo),
		cmocka_unit_test(test_limit_total),
		cmocka_unit_test(test_limit_files),
		cmocka_unit_test(test_events_ring_bytes),
		cmocka_unit_test(test_counter_entries),
		cmocka_unit_test(test_local_cidr_warnings),
	};

	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
