/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * policy.c - configuration parser: egressd.conf ([Daemon]), policies.d/ *.conf ([Policy]) and
 * regions.conf (one section per region group).
 *
 * inih dispatches sections and keys, but the line syntax is ours: Debian 12's libinih (r55) is
 * built with INI_MAX_LINE 200, INI_ALLOW_MULTILINE 1 (indented lines continue the previous key),
 * INI_ALLOW_INLINE_COMMENTS 1 (" ;..." is cut from values), "name:value" accepted, MAX_SECTION 50
 * (longer section names truncated), and no line numbers in the handler. None of that matches
 * systemd-style files, so our reader (read_line) reads each whole line (bounded: CONFIG_MAX_LINE,
 * CONFIG_MAX_TOTAL_BYTES), checks it,
 * counts it, keeps the raw value, and hands inih only a normalised "[Section]" or "Key=" line (or
 * a blank line for comments and broken lines). The handler takes the value from the raw line.
 */
#include "policy.h"
#include "geo.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef EGRESSD_DATADIR
#error "EGRESSD_DATADIR must be defined (the Makefile passes -DEGRESSD_DATADIR=...)"
#endif

#define DEFAULT_SOCKET "/run/egressd/egressd.sock"
#define DEFAULT_READER_GROUP "egress-audit"
#define DEFAULT_PIN_PATH "/sys/fs/bpf/egressd"
#define DEFAULT_STATE_DIR "/var/lib/egressd"
#define DEFAULT_REGIONS EGRESSD_DATADIR "/regions.conf"
#define DEFAULT_GEO EGRESSD_DATADIR "/geo/country.csv.gz"

/* ---- ISO 3166-1 ------------------------------------------------------------------------------ */

static bool is_two_letters(const char *s)
{
	return strlen(s) == 2 && ((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z') &&
	       ((s[1] | 0x20) >= 'a' && (s[1] | 0x20) <= 'z');
}

int policy_country_id(const char *code)
{
	int id;

	if (!code || !is_two_letters(code))
		return -EINVAL;
	id = ((code[0] & ~0x20) - 'A') * 26 + ((code[1] & ~0x20) - 'A') + 1;
	return geo_country_assigned((uint16_t)id) ? id : -EINVAL;
}

static void bit_set(uint64_t *set, unsigned id)
{
	set[id / 64] |= 1ULL << (id % 64);
}

static bool bit_test(const uint64_t *set, unsigned id)
{
	return (set[id / 64] >> (id % 64)) & 1;
}

/* ---- small helpers --------------------------------------------------------------------------- */

uint32_t policy_id_of(const char *name)
{
	uint32_t h = 0x811c9dc5u;

	for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
		h ^= *s;
		h *= 0x01000193u;
	}
	return h;
}

const char *policy_mode_name(uint8_t mode)
{
	switch (mode) {
	case EGRESS_MODE_MONITOR:
		return "monitor";
	case EGRESS_MODE_ENFORCE:
		return "enforce";
	}
	return "invalid";
}

const char *verdict_name(uint8_t verdict)
{
	switch (verdict) {
	case EGRESS_VERDICT_ALLOW:
		return "allow";
	case EGRESS_VERDICT_DENY:
		return "deny";
	case EGRESS_VERDICT_WOULD_DENY:
		return "would_deny";
	case EGRESS_VERDICT_LOCAL:
		return "local";
	}
	return "invalid";
}

const struct policy *config_find_policy(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->npolicies; i++)
		if (strcmp(c->policies[i].name, name) == 0)
			return &c->policies[i];
	return NULL;
}

const struct region *config_find_region(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->nregions; i++)
		if (strcasecmp(c->regions[i].name, name) == 0)
			return &c->regions[i];
	return NULL;
}

int policy_country_allowed(const struct policy *p, uint16_t country)
{
	if (country == EGRESS_COUNTRY_UNKNOWN || country >= EGRESS_COUNTRY_MAX)
		return 0;
	return bit_test(p->allowed, country);
}

/* ---- CIDR ------------------------------------------------------------------------------------ */

static unsigned family_bits(uint8_t family)
{
	return family == 4 ? 32 : 128;
}

/* 1 if the first plen bits of a and b are equal. */
static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned plen)
{
	unsigned bytes = plen / 8, rem = plen % 8;

	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rem == 0)
		return true;
	return ((a[bytes] ^ b[bytes]) & (uint8_t)(0xff << (8 - rem))) == 0;
}

static void mask_addr(uint8_t *addr, unsigned plen, unsigned bits)
{
	for (unsigned i = plen; i < bits; i++)
		addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
}

const char *policy_cidr_format(const struct policy_cidr *c, char buf[POLICY_CIDR_STRLEN])
{
	char a[INET6_ADDRSTRLEN];

	if (!inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(buf, POLICY_CIDR_STRLEN, "%s/%u", a, c->plen);
	return buf;
}

int policy_parse_cidr(const char *s, struct policy_cidr *ret, char *err, size_t errlen)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b };
	struct policy_cidr c = {};
	char a[INET6_ADDRSTRLEN], v4[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned bits, plen;

	if (alen == 0 || alen >= sizeof(a)) {
		snprintf(err, errlen, "'%s' is not an IP address or prefix", s);
		return -EINVAL;
	}
	memcpy(a, s, alen);
	a[alen] = 0;
	c.family = strchr(a, ':') ? 6 : 4;
	if (inet_pton(c.family == 4 ? AF_INET : AF_INET6, a, c.addr) != 1) {
		snprintf(err, errlen, "'%s': '%s' is not a valid IPv%u address", s, a, c.family);
		return -EINVAL;
	}
	bits = family_bits(c.family);
	if (slash) {
		const char *l = slash + 1;
		size_t n = strlen(l);

		plen = 0;
		if (n == 0 || n > 3 || (n > 1 && l[0] == '0'))
			goto bad_len;
		for (size_t i = 0; i < n; i++) {
			if (l[i] < '0' || l[i] > '9')
				goto bad_len;
			plen = plen * 10 + (unsigned)(l[i] - '0');
		}
		if (plen > bits)
			goto bad_len;
	} else {
		plen = bits;
	}
	c.plen = (uint8_t)plen;
	{
		struct policy_cidr m = c;

		mask_addr(m.addr, plen, bits);
		if (memcmp(m.addr, c.addr, 16) != 0) {
			char fixed[POLICY_CIDR_STRLEN];

			snprintf(err, errlen, "%s has host bits set; did you mean %s?", s,
				 policy_cidr_format(&m, fixed));
			return -EINVAL;
		}
	}
	if (c.family == 6 && plen >= 96 &&
	    (memcmp(c.addr, mapped, 12) == 0 || memcmp(c.addr, nat64, 12) == 0)) {
		bool is_mapped = memcmp(c.addr, mapped, 12) == 0;

		inet_ntop(AF_INET, c.addr + 12, v4, sizeof(v4));
		snprintf(err, errlen, "%s is %s, which egressd looks up as IPv4; write it as %s/%u",
			 s,
			 is_mapped ? "an IPv4-mapped prefix (::ffff:0:0/96)"
				   : "inside the NAT64 prefix 64:ff9b::/96",
			 v4, plen - 96);
		return -EINVAL;
	}
	*ret = c;
	return 0;

bad_len:
	snprintf(err, errlen, "'%s': prefix length must be a number from 0 to %u", s, bits);
	return -EINVAL;
}

void policy_cidr_key(uint32_t policy_id, const struct policy_cidr *c, struct egress_cidr_key *ret)
{
	struct egress_cidr_key k = { .policy_id = policy_id };
	unsigned plen;

	if (c->family == 4) {
		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
		memcpy(k.addr + 12, c->addr, 4);
		plen = 96 + c->plen;
	} else {
		memcpy(k.addr, c->addr, 16);
		plen = c->plen;
	}
	for (unsigned b = plen; b < 128; b++)
		k.addr[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
	k.prefixlen = 32 + plen;
	*ret = k;
}

/* The programs' is_local4/is_local6 (bpf/egress.bpf.c, which cites the RFCs): loopback,
 * unspecified, link-local unicast, limited broadcast, 224.0.0.0/24, IPv6 multicast of scope <= 2. */
static bool is_local(int family, const uint8_t *a)
{
	static const uint8_t zero[16], ones[4] = { 0xff, 0xff, 0xff, 0xff };

	if (family == 4)
		return a[0] == 127 || (a[0] == 169 && a[1] == 254) || memcmp(a, zero, 4) == 0 ||
		       memcmp(a, ones, 4) == 0 || (a[0] == 224 && a[1] == 0 && a[2] == 0);
	if (memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1))
		return true; /* :: and ::1 */
	if (a[0] == 0xff && (a[1] & 0x0f) <= 2)
		return true; /* multicast, scope reserved, interface-local or link-local */
	return a[0] == 0xfe && (a[1] & 0xc0) == 0x80; /* fe80::/10 */
}

int policy_decide(const struct policy *p, int family, const uint8_t addr[16], uint16_t country,
		  uint8_t *ret_verdict, const struct policy_cidr **ret_match)
{
	const struct policy_cidr *best = NULL;
	uint8_t deny =
		p->mode == EGRESS_MODE_ENFORCE ? EGRESS_VERDICT_DENY : EGRESS_VERDICT_WOULD_DENY;
	uint8_t v;

	if (family == AF_INET)
		family = 4;
	else if (family == AF_INET6)
		family = 6;
	if (family != 4 && family != 6)
		return -EINVAL;

	if (is_local(family, addr)) {
		v = EGRESS_VERDICT_LOCAL;
	} else {
		for (size_t i = 0; i < p->ncidrs; i++) {
			const struct policy_cidr *c = &p->cidrs[i];

			if (c->family != family || !prefix_match(c->addr, addr, c->plen))
				continue;
			if (!best || c->plen > best->plen)
				best = c;
		}
		if (best)
			v = best->action == EGRESS_CIDR_ALLOW ? EGRESS_VERDICT_ALLOW : deny;
		else if (policy_country_allowed(p, country))
			v = EGRESS_VERDICT_ALLOW;
		else if (country == EGRESS_COUNTRY_UNKNOWN)
			v = p->unknown == EGRESS_UNKNOWN_ALLOW ? EGRESS_VERDICT_ALLOW : deny;
		else
			v = deny;
	}
	*ret_verdict = v;
	if (ret_match)
		*ret_match = best;
	return 0;
}

/* ---- freeing --------------------------------------------------------------------------------- */

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void policy_done(struct policy *p)
{
	free(p->name);
	free(p->file);
	strv_free(p->cgroups, p->ncgroups);
	free(p->cgroup_lines);
	strv_free(p->units, p->nunits);
	free(p->unit_lines);
	strv_free(p->allow_regions, p->nallow_regions);
	free(p->cidrs);
	memset(p, 0, sizeof(*p));
}

static void region_done(struct region *r)
{
	free(r->name);
	free(r->description);
	free(r->source);
	free(r->as_of);
	free(r->file);
	memset(r, 0, sizeof(*r));
}

void config_free(struct config *c)
{
	if (!c)
		return;
	free(c->path);
	strv_free(c->geo_paths, c->ngeo);
	free(c->socket);
	free(c->reader_group);
	free(c->admin_group);
	free(c->pin_path);
	free(c->state_dir);
	free(c->policy_dir);
	free(c->regions_path);
	free(c->metrics_listen);
	for (size_t i = 0; i < c->nregions; i++)
		region_done(&c->regions[i]);
	free(c->regions);
	for (size_t i = 0; i < c->npolicies; i++)
		policy_done(&c->policies[i]);
	free(c->policies);
	diag_free(&c->warnings);
	memset(c, 0, sizeof(*c));
}

/* ---- the loader ------------------------------------------------------------------------------ */

enum file_kind { KIND_MAIN, KIND_REGIONS, KIND_POLICY };

enum key_id {
	/* [Daemon] */
	K_GEO,
	K_SOCKET,
	K_READER,
	K_ADMIN,
	K_PIN,
	K_STATE,
	K_ONEXIT,
	K_POLDIR,
	K_REGIONS,
	K_METRICS,
	K_EVENTS,
	K_COUNTERS,
	/* regions */
	K_DESCRIPTION,
	K_SOURCE,
	K_ASOF,
	K_COUNTRIES,
	/* [Policy] */
	K_NAME,
	K_CGROUP,
	K_UNIT,
	K_MODE,
	K_ALLOWREGION,
	K_ALLOWCOUNTRY,
	K_ALLOWCIDR,
	K_DENYCIDR,
	K_UNKNOWN,
	K_MAX
};

struct key_def {
	const char *name;
	enum key_id id;
	bool list; /* repeatable, space-separated values */
	bool empty_ok;
};

static const struct key_def daemon_keys[] = {
	{ "GeoDatabase", K_GEO, true, false },	  { "Socket", K_SOCKET, false, false },
	{ "ReaderGroup", K_READER, false, true }, { "AdminGroup", K_ADMIN, false, true },
	{ "PinPath", K_PIN, false, true },	  { "StateDirectory", K_STATE, false, false },
	{ "OnExit", K_ONEXIT, false, false },	  { "PolicyDirectory", K_POLDIR, false, false },
	{ "Regions", K_REGIONS, false, false },	  { "MetricsListen", K_METRICS, false, true },
	{ "EventsRingBytes", K_EVENTS, false, false },
	{ "CounterEntries", K_COUNTERS, false, false },
	{},
};
static const struct key_def region_keys[] = {
	{ "Description", K_DESCRIPTION, false, false },
	{ "Source", K_SOURCE, false, false },
	{ "AsOf", K_ASOF, false, false },
	{ "Countries", K_COUNTRIES, true, false },
	{},
};
static const struct key_def policy_keys[] = {
	{ "Name", K_NAME, false, false },
	{ "Cgroup", K_CGROUP, true, false },
	{ "Unit", K_UNIT, true, false },
	{ "Mode", K_MODE, false, false },
	{ "AllowRegion", K_ALLOWREGION, true, false },
	{ "AllowCountry", K_ALLOWCOUNTRY, true, false },
	{ "AllowCIDR", K_ALLOWCIDR, true, false },
	{ "DenyCIDR", K_DENYCIDR, true, false },
	{ "Unknown", K_UNKNOWN, false, false },
	{},
};

struct loader {
	struct config c;
	struct diag errors;
	size_t nerr; /* errors found (diag_add may drop a message on ENOMEM) */
	int hard; /* first errno other than EINVAL (a file could not be read, ENOMEM) */
	const char *dir; /* directory of the main file */
	bool geo_given, poldir_given, regions_ok;
	unsigned daemon_lines[K_MAX]; /* [Daemon] keys seen (line), across [Daemon] sections */

	/* per file */
	enum file_kind kind;
	const char *file;
	FILE *f;
	unsigned line;
	char *buf;
	size_t cap;
	const char *value; /* raw value of the current key line */

	/* current section */
	enum { SEC_NONE, SEC_BAD, SEC_DAEMON, SEC_REGION, SEC_POLICY } sec;
	unsigned sec_line;
	unsigned key_lines[K_MAX]; /* keys seen in the current section (line) */
	bool had_selector; /* a Cgroup= or Unit= line was seen */
	uint32_t *cidr_slots; /* hash set of the current policy's CIDRs: index + 1, 0 = empty */
	size_t cidr_nslots; /* a power of two, or 0 */

	/* limits (policy.h), over all files */
	size_t total_bytes;
	size_t ncgroups_total; /* Cgroup= and Unit= values */
	size_t ncidrs_total;
	bool over_total, over_policies, over_cgroups, over_cidrs, over_regions, over_files;
};

static void lerr(struct loader *l, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void lerr(struct loader *l, unsigned line, const char *fmt, ...)
{
	va_list ap;
	char *m = NULL;

	l->nerr++;
	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	if (!m) {
		l->hard = l->hard ?: -ENOMEM;
		return;
	}
	if (line)
		diag_add(&l->errors, "%s:%u: %s", l->file, line, m);
	else
		diag_add(&l->errors, "%s: %s", l->file, m);
	free(m);
}

static void oom(struct loader *l)
{
	if (!l->hard)
		l->hard = -ENOMEM;
}

static char *xstrdup(struct loader *l, const char *s)
{
	char *d = strdup(s);

	if (!d)
		oom(l);
	return d;
}

static void set_str(struct loader *l, char **dst, const char *s)
{
	char *d = xstrdup(l, s);

	if (!d)
		return;
	free(*dst);
	*dst = d;
}

/* Path relative to the main file's directory, unless absolute. */
static char *resolve(struct loader *l, const char *p)
{
	char *r = NULL;

	if (p[0] == '/')
		return xstrdup(l, p);
	if (asprintf(&r, "%s/%s", l->dir, p) < 0) {
		oom(l);
		return NULL;
	}
	return r;
}

static int strv_push(char ***v, unsigned **lines, size_t *n, char *s, unsigned line)
{
	char **nv;
	unsigned *nl = NULL;

	nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	if (lines) {
		nl = realloc(*lines, (*n + 1) * sizeof(**lines));
		if (!nl)
			return -ENOMEM;
		*lines = nl;
		nl[*n] = line;
	}
	nv[(*n)++] = s;
	return 0;
}

/* Levenshtein distance, for "did you mean" (names are at most CONFIG_MAX_NAME bytes). */
static unsigned edit_distance(const char *a, const char *b)
{
	unsigned row[CONFIG_MAX_NAME + 1];
	size_t la = strlen(a), lb = strlen(b);

	if (la > CONFIG_MAX_NAME || lb > CONFIG_MAX_NAME)
		return 1000;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned prev = row[0];

		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned cur = row[j];
			unsigned sub = prev + ((a[i - 1] | 0x20) != (b[j - 1] | 0x20));
			unsigned best = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;

			row[j] = sub < best ? sub : best;
			prev = cur;
		}
	}
	return row[lb];
}

static const struct key_def *keys_of(struct loader *l)
{
	switch (l->sec) {
	case SEC_DAEMON:
		return daemon_keys;
	case SEC_REGION:
		return region_keys;
	case SEC_POLICY:
		return policy_keys;
	default:
		return NULL;
	}
}

static const char *section_label(struct loader *l)
{
	switch (l->sec) {
	case SEC_DAEMON:
		return "[Daemon]";
	case SEC_REGION:
		return "a region section";
	case SEC_POLICY:
		return "[Policy]";
	default:
		return "this section";
	}
}

/* ---- [Daemon] -------------------------------------------------------------------------------- */

static bool valid_group(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32 ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

/* "1.2.3.4:PORT" or "[v6]:PORT", port 1..65535. */
static bool valid_listen(const char *v)
{
	const char *colon = strrchr(v, ':');
	char host[64];
	unsigned char buf[16];
	char *end;
	unsigned long port;
	size_t hl;

	if (!colon || colon == v)
		return false;
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || port == 0 || port > 65535)
		return false;
	hl = (size_t)(colon - v);
	if (v[0] == '[') {
		if (hl < 3 || v[hl - 1] != ']' || hl - 2 >= sizeof(host))
			return false;
		memcpy(host, v + 1, hl - 2);
		host[hl - 2] = '\0';
		return inet_pton(AF_INET6, host, buf) == 1;
	}
	if (hl >= sizeof(host))
		return false;
	memcpy(host, v, hl);
	host[hl] = '\0';
	return inet_pton(AF_INET, host, buf) == 1;
}

static void daemon_key(struct loader *l, const struct key_def *k, const char *v, char *tokens)
{
	char **dst = NULL;

	switch (k->id) {
	case K_GEO:
		if (!l->geo_given) {
			strv_free(l->c.geo_paths, l->c.ngeo);
			l->c.geo_paths = NULL;
			l->c.ngeo = 0;
			l->geo_given = true;
		}
		l->c.geo_line = l->line;
		for (char *save = NULL, *t = strtok_r(tokens, " \t", &save); t;
		     t = strtok_r(NULL, " \t", &save)) {
			char *p;

			if (l->c.ngeo >= CONFIG_MAX_GEO_FILES) {
				lerr(l, l->line, "GeoDatabase: more than %d files", CONFIG_MAX_GEO_FILES);
				break;
			}
			p = resolve(l, t);

			if (p && strv_push(&l->c.geo_paths, NULL, &l->c.ngeo, p, 0) < 0) {
				free(p);
				oom(l);
			}
		}
		return;
	case K_SOCKET:
		dst = &l->c.socket;
		break;
	case K_PIN:
		if (!v[0]) {
			set_str(l, &l->c.pin_path, ""); /* no pinning */
			return;
		}
		dst = &l->c.pin_path;
		break;
	case K_STATE:
		dst = &l->c.state_dir;
		break;
	case K_POLDIR:
		dst = &l->c.policy_dir;
		l->poldir_given = true;
		break;
	case K_REGIONS:
		dst = &l->c.regions_path;
		break;
	case K_METRICS:
		if (v[0] && !valid_listen(v)) {
			lerr(l, l->line,
			     "MetricsListen: '%s' is not ADDRESS:PORT (e.g. 127.0.0.1:9489 or [::1]:9489)", v);
			return;
		}
		set_str(l, &l->c.metrics_listen, v);
		return;
	case K_READER:
	case K_ADMIN:
		if (v[0] && !valid_group(v)) {
			lerr(l, l->line, "%s: '%s' is not a valid group name", k->name, v);
			return;
		}
		set_str(l, k->id == K_READER ? &l->c.reader_group : &l->c.admin_group, v);
		return;
	case K_EVENTS: {
		unsigned long long n;
		char *end;

		errno = 0;
		n = strtoull(v, &end, 10);
		if (end != v && (*end == 'K' || *end == 'M') && end[1] == 0) {
			n = n > ULLONG_MAX >> 20 ? ULLONG_MAX : n << (*end == 'K' ? 10 : 20);
			end++;
		}
		if (errno || end == v || *end || v[0] < '0' || v[0] > '9' ||
		    n < CONFIG_EVENTS_RING_MIN || n > CONFIG_EVENTS_RING_MAX || (n & (n - 1))) {
			lerr(l, l->line,
			     "EventsRingBytes: '%s' is not a power of two from %d to %u bytes (K and M suffixes allowed)",
			     v, CONFIG_EVENTS_RING_MIN, CONFIG_EVENTS_RING_MAX);
			return;
		}
		l->c.events_ring_bytes = (uint32_t)n;
		return;
	}
	case K_COUNTERS: {
		unsigned long long n;
		char *end;

		errno = 0;
		n = strtoull(v, &end, 10);
		if (errno || end == v || *end || v[0] < '0' || v[0] > '9' || n < CONFIG_COUNTERS_MIN ||
		    n > CONFIG_COUNTERS_MAX) {
			lerr(l, l->line, "CounterEntries: '%s' is not a number of counter rows from %d to %d", v,
			     CONFIG_COUNTERS_MIN, CONFIG_COUNTERS_MAX);
			return;
		}
		l->c.counter_entries = (uint32_t)n;
		return;
	}
	case K_ONEXIT:
		if (strcmp(v, "keep") == 0)
			l->c.on_exit_detach = 0;
		else if (strcmp(v, "detach") == 0)
			l->c.on_exit_detach = 1;
		else
			lerr(l, l->line, "OnExit: invalid value '%s'; expected keep or detach", v);
		return;
	default:
		return;
	}
	{
		char *p = resolve(l, v);

		if (p) {
			free(*dst);
			*dst = p;
		}
	}
}

/* ---- regions --------------------------------------------------------------------------------- */

static bool valid_date(const char *s)
{
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, m, d;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return false;
	y = (unsigned)atoi(s);
	m = (unsigned)atoi(s + 5);
	d = (unsigned)atoi(s + 8);
	if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return false;
	if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	return true;
}

static struct region *cur_region(struct loader *l)
{
	return &l->c.regions[l->c.nregions - 1];
}

static void region_key(struct loader *l, const struct key_def *k, const char *v, char *tokens)
{
	struct region *r = cur_region(l);

	switch (k->id) {
	case K_DESCRIPTION:
		set_str(l, &r->description, v);
		return;
	case K_SOURCE:
		set_str(l, &r->source, v);
		return;
	case K_ASOF:
		if (!valid_date(v)) {
			lerr(l, l->line, "AsOf: '%s' is not a date (YYYY-MM-DD)", v);
			return;
		}
		set_str(l, &r->as_of, v);
		return;
	case K_COUNTRIES:
		for (char *save = NULL, *t = strtok_r(tokens, " \t", &save); t;
		     t = strtok_r(NULL, " \t", &save)) {
			int id = policy_country_id(t);

			if (id < 0) {
				lerr(l, l->line,
				     "Countries: '%s' is not an ISO 3166-1 alpha-2 country code",
				     t);
				continue;
			}
			if (bit_test(r->members, (unsigned)id)) {
				lerr(l, l->line, "Countries: %s is listed twice in [%s]", t,
				     r->name);
				continue;
			}
			bit_set(r->members, (unsigned)id);
		}
		return;
	default:
		return;
	}
}

static void region_finish(struct loader *l)
{
	struct region *r = cur_region(l);
	bool any = false;

	if (!r->source)
		lerr(l, r->line, "region [%s] has no Source=", r->name);
	if (!r->as_of)
		lerr(l, r->line, "region [%s] has no AsOf=", r->name);
	for (int i = 0; i < EGRESS_COUNTRY_WORDS; i++)
		any |= r->members[i] != 0;
	if (!any && !l->key_lines[K_COUNTRIES])
		lerr(l, r->line, "region [%s] has no Countries=", r->name);
}

static void region_start(struct loader *l, const char *name)
{
	struct region *nr;
	size_t n = strlen(name);

	if (!((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z'))) {
		lerr(l, l->line, "region name [%s] must start with a letter", name);
		l->sec = SEC_BAD;
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (name[i] == '_' || name[i] == '.') {
			lerr(l, l->line,
			     "region name [%s] may contain only letters, digits and '-'", name);
			l->sec = SEC_BAD;
			return;
		}
	if (n < 2 || (n == 2 && strcasecmp(name, "EU") != 0)) {
		lerr(l, l->line,
		     "region name [%s] looks like a country code; region names other than EU must be longer than two letters",
		     name);
		l->sec = SEC_BAD;
		return;
	}
	for (size_t i = 0; i < l->c.nregions; i++)
		if (strcasecmp(l->c.regions[i].name, name) == 0) {
			lerr(l, l->line, "region [%s] is defined twice (first at line %u)", name,
			     l->c.regions[i].line);
			l->sec = SEC_BAD;
			return;
		}
	if (l->c.nregions >= CONFIG_MAX_REGIONS) {
		if (!l->over_regions)
			lerr(l, l->line, "more than %d region groups", CONFIG_MAX_REGIONS);
		l->over_regions = true;
		l->sec = SEC_BAD;
		return;
	}
	nr = realloc(l->c.regions, (l->c.nregions + 1) * sizeof(*nr));
	if (!nr) {
		oom(l);
		l->sec = SEC_BAD;
		return;
	}
	l->c.regions = nr;
	nr = &nr[l->c.nregions];
	memset(nr, 0, sizeof(*nr));
	nr->name = strdup(name);
	nr->file = strdup(l->file);
	nr->line = l->line;
	l->c.nregions++;
	if (!nr->name || !nr->file)
		oom(l);
	l->sec = SEC_REGION;
}

/* ---- [Policy] -------------------------------------------------------------------------------- */

static struct policy *cur_policy(struct loader *l)
{
	return &l->c.policies[l->c.npolicies - 1];
}

static bool valid_policy_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONFIG_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9');

		if (!alnum && (i == 0 || (ch != '-' && ch != '_' && ch != '.')))
			return false;
	}
	return true;
}

/* Normalise a Cgroup= path. Returns a heap string or NULL with err filled. */
static char *cgroup_normalize(const char *in, char *err, size_t errlen, bool *ret_oom)
{
	const char *s = in;
	char *p;
	size_t n;
	unsigned depth = 0;
	char *copy;

	while (*s == '/')
		s++;
	p = strdup(s);
	if (!p) {
		*ret_oom = true;
		return NULL;
	}
	n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		p[--n] = 0;
	if (n == 0) {
		snprintf(err, errlen,
			 "'%s' names the cgroup v2 root; a policy on the root cgroup is forbidden",
			 in);
		goto fail;
	}
	if (strncmp(p, "sys/fs/cgroup/", 14) == 0 || strcmp(p, "sys/fs/cgroup") == 0) {
		snprintf(
			err, errlen,
			"'%s' includes the cgroup v2 mount point; write the path relative to that mount",
			in);
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
			snprintf(err, errlen, "'%s' contains a control character", in);
			goto fail;
		}
	copy = strdup(p);
	if (!copy) {
		*ret_oom = true;
		free(p);
		return NULL;
	}
	/* strtok_r would merge "a//b"; walk by hand. */
	for (char *c = copy, *next; c; c = next) {
		next = strchr(c, '/');
		if (next)
			*next++ = 0;
		depth++;
		if (*c == 0) {
			snprintf(err, errlen, "'%s' has an empty path component", in);
			goto fail_copy;
		}
		if (strcmp(c, ".") == 0 || strcmp(c, "..") == 0) {
			snprintf(err, errlen,
				 "'%s' has a '%s' component; '.' and '..' are not allowed", in, c);
			goto fail_copy;
		}
	}
	free(copy);
	if (depth > EGRESS_MAX_CGROUP_LEVEL) {
		snprintf(err, errlen, "'%s' is deeper than %d levels", in, EGRESS_MAX_CGROUP_LEVEL);
		goto fail;
	}
	return p;

fail_copy:
	free(copy);
fail:
	free(p);
	return NULL;
}

static bool valid_unit(const char *s)
{
	static const char *const suffixes[] = { "service", "socket",	"target", "device",
						"mount",   "automount", "swap",	  "timer",
						"path",	   "slice",	"scope" };
	size_t n = strlen(s);
	const char *dot = strrchr(s, '.');

	if (n == 0 || n > 255 || !dot || dot == s)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr(":_.\\@-", ch)))
			return false;
	}
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
		if (strcmp(dot + 1, suffixes[i]) == 0)
			return true;
	return false;
}

/* false (reported once per configuration) when CONFIG_MAX_CGROUPS values are taken. */
static bool cgroup_slot(struct loader *l, const char *key)
{
	if (l->ncgroups_total < CONFIG_MAX_CGROUPS)
		return true;
	if (!l->over_cgroups)
		lerr(l, l->line,
		     "%s: more than %d cgroups and units in the configuration (the size of the BPF map 'cgroup_policy')",
		     key, CONFIG_MAX_CGROUPS);
	l->over_cgroups = true;
	return false;
}

static uint32_t cidr_hash(const struct policy_cidr *c)
{
	uint32_t h = 0x811c9dc5u;

	h = (h ^ c->family) * 0x01000193u;
	h = (h ^ c->plen) * 0x01000193u;
	for (int i = 0; i < 16; i++)
		h = (h ^ c->addr[i]) * 0x01000193u;
	return h;
}

static bool cidr_same(const struct policy_cidr *a, const struct policy_cidr *b)
{
	return a->family == b->family && a->plen == b->plen && memcmp(a->addr, b->addr, 16) == 0;
}

/* The CIDR of p equal to c (same family, length, address), via the loader's hash set of the
 * current policy (so that 65536 prefixes in one policy cost O(n), not O(n^2)); NULL if none. */
static struct policy_cidr *cidr_find(struct loader *l, struct policy *p,
				     const struct policy_cidr *c)
{
	size_t mask = l->cidr_nslots - 1;

	if (!l->cidr_nslots)
		return NULL;
	for (size_t i = cidr_hash(c) & mask; l->cidr_slots[i]; i = (i + 1) & mask)
		if (cidr_same(&p->cidrs[l->cidr_slots[i] - 1], c))
			return &p->cidrs[l->cidr_slots[i] - 1];
	return NULL;
}

/* Add p->cidrs[idx] to the hash set (kept at most half full). */
static int cidr_index(struct loader *l, struct policy *p, size_t idx)
{
	if ((idx + 1) * 2 > l->cidr_nslots) {
		size_t n = l->cidr_nslots ? l->cidr_nslots * 2 : 64;
		uint32_t *v = calloc(n, sizeof(*v));

		if (!v)
			return -ENOMEM;
		free(l->cidr_slots);
		l->cidr_slots = v;
		l->cidr_nslots = n;
		for (size_t k = 0; k < idx; k++) {
			size_t i = cidr_hash(&p->cidrs[k]) & (n - 1);

			while (v[i])
				i = (i + 1) & (n - 1);
			v[i] = (uint32_t)k + 1;
		}
	}
	{
		size_t mask = l->cidr_nslots - 1, i = cidr_hash(&p->cidrs[idx]) & mask;

		while (l->cidr_slots[i])
			i = (i + 1) & mask;
		l->cidr_slots[i] = (uint32_t)idx + 1;
	}
	return 0;
}

/* Whether every address of c is a local destination (is_local(): the verdict is local whatever
 * the exceptions say), so an exception for it has no effect. */
static bool cidr_all_local(const struct policy_cidr *c)
{
	static const struct {
		uint8_t family, plen, addr[4];
	} v4[] = {
		{ 4, 8, { 127 } }, { 4, 32, { 0 } }, { 4, 16, { 169, 254 } }, { 4, 32, { 255, 255, 255, 255 } },
		{ 4, 24, { 224, 0, 0 } },
	};

	if (c->family == 4) {
		for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++)
			if (c->plen >= v4[i].plen && prefix_match(v4[i].addr, c->addr, v4[i].plen))
				return true;
		return false;
	}
	if (c->plen == 128 && is_local(6, c->addr))
		return true; /* :: and ::1 */
	if (c->plen >= 10 && c->addr[0] == 0xfe && (c->addr[1] & 0xc0) == 0x80)
		return true; /* inside fe80::/10 */
	/* Multicast of scope <= 2 (the low nibble of the second byte): a prefix of 12 to 16 bits
	 * leaves the low 16 - plen bits of that nibble free; all its scopes must be <= 2 (ff00::/15
	 * is scopes 0 and 1). */
	if (c->addr[0] == 0xff && c->plen >= 12) {
		unsigned free_bits = c->plen >= 16 ? 0 : 16u - c->plen;

		return ((c->addr[1] & 0x0fu) | ((1u << free_bits) - 1u)) <= 2;
	}
	return false;
}

static void lwarn(struct loader *l, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void lwarn(struct loader *l, unsigned line, const char *fmt, ...)
{
	va_list ap;
	char *m = NULL;

	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	if (m)
		diag_add(&l->c.warnings, "%s:%u: %s", l->file, line, m);
	free(m);
}

static void add_cidr(struct loader *l, struct policy *p, const char *key, uint8_t action,
		     const char *t)
{
	struct policy_cidr c, *nc;
	char err[256], buf[POLICY_CIDR_STRLEN];

	if (policy_parse_cidr(t, &c, err, sizeof(err)) < 0) {
		lerr(l, l->line, "%s: %s", key, err);
		return;
	}
	c.action = action;
	c.line = l->line;
	if (cidr_all_local(&c))
		lwarn(l, l->line, "%s: %s holds only local destinations (loopback, link-local, unspecified, "
		      "broadcast or link-scope multicast), which are always allowed: this exception has no effect",
		      key, policy_cidr_format(&c, buf));
	{
		struct policy_cidr *o = cidr_find(l, p, &c);

		if (o && o->action == action)
			return; /* the same prefix twice in one list: nothing changes */
		if (o) {
			lerr(l, l->line,
			     "%s: %s is also in %s at line %u; a prefix can be only one of them",
			     key, policy_cidr_format(&c, buf),
			     o->action == EGRESS_CIDR_ALLOW ? "AllowCIDR=" : "DenyCIDR=", o->line);
			return;
		}
	}
	if (l->ncidrs_total >= CONFIG_MAX_CIDRS) {
		if (!l->over_cidrs)
			lerr(l, l->line,
			     "%s: more than %d CIDR prefixes in the configuration (the size of the BPF map 'cidr')",
			     key, CONFIG_MAX_CIDRS);
		l->over_cidrs = true;
		return;
	}
	if (p->ncidrs % 64 == 0) {
		nc = realloc(p->cidrs, (p->ncidrs + 64) * sizeof(*nc));
		if (!nc) {
			oom(l);
			return;
		}
		p->cidrs = nc;
	}
	p->cidrs[p->ncidrs] = c;
	if (cidr_index(l, p, p->ncidrs) < 0) {
		oom(l);
		return;
	}
	p->ncidrs++;
	l->ncidrs_total++;
}

static void add_country(struct loader *l, struct policy *p, const char *t)
{
	const struct region *r = config_find_region(&l->c, t);
	char up[3];
	int id;

	if (r) {
		lerr(l, l->line,
		     "AllowCountry: %s is a region group, not a country; use AllowRegion=%s", t,
		     r->name);
		return;
	}
	if (!is_two_letters(t)) {
		lerr(l, l->line, "AllowCountry: '%s' is not a two-letter ISO 3166-1 alpha-2 code",
		     t);
		return;
	}
	up[0] = (char)(t[0] & ~0x20);
	up[1] = (char)(t[1] & ~0x20);
	up[2] = 0;
	if (strcmp(up, "EU") == 0) {
		/* also when regions.conf could not be read or has no EU */
		lerr(l, l->line,
		     "AllowCountry: EU is a region group, not a country; use AllowRegion=EU");
		return;
	}
	if (strcmp(up, "ZZ") == 0) {
		lerr(l, l->line,
		     "AllowCountry: ZZ is the pseudo-code for unknown, not a country; use Unknown=allow");
		return;
	}
	if (strcmp(up, "AP") == 0) {
		lerr(l, l->line, "AllowCountry: AP is a pseudo-code (Asia/Pacific), not a country");
		return;
	}
	if (strcmp(up, "UK") == 0) {
		lerr(l, l->line,
		     "AllowCountry: UK is not an ISO 3166-1 code; the United Kingdom is GB");
		return;
	}
	id = policy_country_id(up);
	if (id < 0) {
		lerr(l, l->line,
		     "AllowCountry: %s is not an assigned ISO 3166-1 alpha-2 country code", t);
		return;
	}
	bit_set(p->allowed, (unsigned)id);
}

static void add_region(struct loader *l, struct policy *p, const char *t)
{
	const struct region *r = config_find_region(&l->c, t);
	char *s;

	if (!r) {
		if (!l->regions_ok)
			return; /* the regions file's own error was reported */
		if (policy_country_id(t) >= 0)
			lerr(l, l->line,
			     "AllowRegion: %s is a country, not a region; use AllowCountry=%s", t,
			     t);
		else
			lerr(l, l->line,
			     "AllowRegion: unknown region '%s' (regions are defined in %s)", t,
			     l->c.regions_path);
		return;
	}
	for (int i = 0; i < EGRESS_COUNTRY_WORDS; i++)
		p->allowed[i] |= r->members[i];
	for (size_t i = 0; i < p->nallow_regions; i++)
		if (strcmp(p->allow_regions[i], r->name) == 0)
			return;
	s = xstrdup(l, r->name);
	if (s && strv_push(&p->allow_regions, NULL, &p->nallow_regions, s, 0) < 0) {
		free(s);
		oom(l);
	}
}

static void policy_key(struct loader *l, const struct key_def *k, const char *v, char *tokens)
{
	struct policy *p = cur_policy(l);
	char err[320];

	switch (k->id) {
	case K_NAME:
		if (!valid_policy_name(v)) {
			lerr(l, l->line,
			     "Name: '%s' is not a valid policy name (1..%d letters, digits, '-', '_', '.', starting with a letter or digit)",
			     v, CONFIG_MAX_NAME);
			return;
		}
		set_str(l, &p->name, v);
		p->id = policy_id_of(v);
		p->name_line = l->line;
		return;
	case K_MODE:
		if (strcmp(v, "monitor") == 0)
			p->mode = EGRESS_MODE_MONITOR;
		else if (strcmp(v, "enforce") == 0)
			p->mode = EGRESS_MODE_ENFORCE;
		else
			lerr(l, l->line, "Mode: invalid value '%s'; expected monitor or enforce",
			     v);
		return;
	case K_UNKNOWN:
		if (strcmp(v, "allow") == 0)
			p->unknown = EGRESS_UNKNOWN_ALLOW;
		else if (strcmp(v, "deny") == 0)
			p->unknown = EGRESS_UNKNOWN_DENY;
		else
			lerr(l, l->line, "Unknown: invalid value '%s'; expected allow or deny", v);
		return;
	default:
		break;
	}

	if (k->id == K_CGROUP || k->id == K_UNIT)
		l->had_selector = true;
	for (char *save = NULL, *t = strtok_r(tokens, " \t", &save); t;
	     t = strtok_r(NULL, " \t", &save)) {
		switch (k->id) {
		case K_CGROUP: {
			bool is_oom = false;
			char *c;

			if (!cgroup_slot(l, "Cgroup"))
				break;
			c = cgroup_normalize(t, err, sizeof(err), &is_oom);
			if (!c) {
				if (is_oom)
					oom(l);
				else
					lerr(l, l->line, "Cgroup: %s", err);
				break;
			}
			if (strv_push(&p->cgroups, &p->cgroup_lines, &p->ncgroups, c, l->line) <
			    0) {
				free(c);
				oom(l);
				break;
			}
			l->ncgroups_total++;
			break;
		}
		case K_UNIT: {
			char *u;

			if (!cgroup_slot(l, "Unit"))
				break;
			if (!valid_unit(t)) {
				lerr(l, l->line,
				     "Unit: '%s' is not a valid unit name (e.g. nginx.service)", t);
				break;
			}
			u = xstrdup(l, t);
			if (u && strv_push(&p->units, &p->unit_lines, &p->nunits, u, l->line) < 0) {
				free(u);
				oom(l);
				break;
			}
			if (u)
				l->ncgroups_total++;
			break;
		}
		case K_ALLOWREGION:
			add_region(l, p, t);
			break;
		case K_ALLOWCOUNTRY:
			add_country(l, p, t);
			break;
		case K_ALLOWCIDR:
			add_cidr(l, p, "AllowCIDR", EGRESS_CIDR_ALLOW, t);
			break;
		case K_DENYCIDR:
			add_cidr(l, p, "DenyCIDR", EGRESS_CIDR_DENY, t);
			break;
		default:
			break;
		}
	}
}

static void policy_finish(struct loader *l)
{
	struct policy *p = cur_policy(l);

	if (!p->name) {
		if (!l->key_lines[K_NAME])
			lerr(l, p->line, "[Policy] section has no Name=");
		policy_done(p);
		l->c.npolicies--;
		return;
	}
	if (!l->had_selector)
		lerr(l, p->line, "policy '%s' has no Cgroup= or Unit=", p->name);
}

static void policy_start(struct loader *l)
{
	struct policy *np;

	free(l->cidr_slots);
	l->cidr_slots = NULL;
	l->cidr_nslots = 0;
	if (l->c.npolicies >= CONFIG_MAX_POLICIES) {
		if (!l->over_policies)
			lerr(l, l->line,
			     "more than %d policies in the configuration (the size of the BPF map 'policies')",
			     CONFIG_MAX_POLICIES);
		l->over_policies = true;
		l->sec = SEC_BAD;
		return;
	}
	np = realloc(l->c.policies, (l->c.npolicies + 1) * sizeof(*np));
	if (!np) {
		oom(l);
		l->sec = SEC_BAD;
		return;
	}
	l->c.policies = np;
	np = &np[l->c.npolicies];
	memset(np, 0, sizeof(*np));
	np->file = strdup(l->file);
	np->line = l->line;
	np->mode = EGRESS_MODE_MONITOR;
	np->unknown = EGRESS_UNKNOWN_DENY;
	l->c.npolicies++;
	if (!np->file)
		oom(l);
	l->sec = SEC_POLICY;
}

/* ---- sections and keys ----------------------------------------------------------------------- */

static void section_finish(struct loader *l)
{
	if (l->sec == SEC_REGION)
		region_finish(l);
	else if (l->sec == SEC_POLICY)
		policy_finish(l);
	l->sec = SEC_NONE;
}

static void section_start(struct loader *l, const char *name)
{
	section_finish(l);
	memset(l->key_lines, 0, sizeof(l->key_lines));
	l->had_selector = false;
	l->sec_line = l->line;
	switch (l->kind) {
	case KIND_MAIN:
		if (strcmp(name, "Daemon") == 0) {
			l->sec = SEC_DAEMON;
			return;
		}
		lerr(l, l->line, "unknown section [%s]; expected [Daemon]%s", name,
		     strcmp(name, "Policy") == 0 ? " (policies go in the policy directory)" : "");
		break;
	case KIND_REGIONS:
		region_start(l, name);
		return;
	case KIND_POLICY:
		if (strcmp(name, "Policy") == 0) {
			policy_start(l);
			return;
		}
		lerr(l, l->line, "unknown section [%s]; expected [Policy]", name);
		break;
	}
	l->sec = SEC_BAD;
}

/* '#' or ';' at the start of the value or after white space: an inline comment. */
static bool has_inline_comment(const char *v)
{
	for (size_t i = 0; v[i]; i++)
		if ((v[i] == '#' || v[i] == ';') && (i == 0 || v[i - 1] == ' ' || v[i - 1] == '\t'))
			return true;
	return false;
}

static void key_line(struct loader *l, const char *name)
{
	const struct key_def *keys = keys_of(l), *k = NULL;
	const char *v = l->value;
	unsigned *seen;
	char *tokens;

	if (l->sec == SEC_BAD)
		return; /* the section header was reported */
	if (l->sec == SEC_NONE) {
		lerr(l, l->line, "%s= outside of a section", name);
		return;
	}
	for (const struct key_def *i = keys; i->name; i++)
		if (strcmp(i->name, name) == 0)
			k = i;
	if (!k) {
		const struct key_def *best = NULL;
		unsigned bd = 3;

		for (const struct key_def *i = keys; i->name; i++) {
			unsigned d = edit_distance(name, i->name);

			if (d < bd) {
				bd = d;
				best = i;
			}
		}
		if (best)
			lerr(l, l->line, "unknown key '%s' in %s; did you mean %s=?", name,
			     section_label(l), best->name);
		else
			lerr(l, l->line, "unknown key '%s' in %s", name, section_label(l));
		return;
	}
	seen = l->sec == SEC_DAEMON ? l->daemon_lines : l->key_lines;
	if (!k->list && seen[k->id]) {
		lerr(l, l->line, "%s= is given twice (first at line %u)", k->name, seen[k->id]);
		return;
	}
	if (!seen[k->id])
		seen[k->id] = l->line;
	if (has_inline_comment(v)) {
		lerr(l, l->line,
		     "%s: value '%s' contains an inline comment; comments must be on a line of their own",
		     k->name, v);
		return;
	}
	if (!v[0] && !k->empty_ok) {
		if (k->id == K_CGROUP)
			lerr(l, l->line,
			     "Cgroup: an empty path names the cgroup v2 root; a policy on the root cgroup is forbidden");
		else
			lerr(l, l->line, "%s: empty value", k->name);
		return;
	}
	tokens = xstrdup(l, v);
	if (!tokens)
		return;
	switch (l->sec) {
	case SEC_DAEMON:
		daemon_key(l, k, v, tokens);
		break;
	case SEC_REGION:
		region_key(l, k, v, tokens);
		break;
	case SEC_POLICY:
		policy_key(l, k, v, tokens);
		break;
	default:
		break;
	}
	free(tokens);
}

/* ---- the line reader and inih glue ----------------------------------------------------------- */

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static bool valid_name_char(char c, bool section)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (section && (c == '-' || c == '_' || c == '.'));
}

/* ini_reader: one raw line in, one normalised line (or "\n") out. */
static char *read_line(char *str, int num, void *stream)
{
	struct loader *l = stream;
	size_t len = 0;
	bool got = false, has_nul = false;
	int last = 0;
	char *s, *e, *eq;

	if (num < CONFIG_MAX_NAME + 4) {
		/* inih's buffer cannot hold our normalised lines: never the case (200 bytes). */
		l->hard = l->hard ?: -ENOBUFS;
		return NULL;
	}
	if (l->over_total)
		return NULL;
	if (!l->buf) {
		l->cap = CONFIG_MAX_LINE + 2; /* the longest line allowed, its '\r' */
		l->buf = malloc(l->cap);
		if (!l->buf) {
			oom(l);
			return NULL;
		}
	}
	/* Read one line byte by byte, keeping at most cap bytes of it but counting all of them, so
	 * that neither a huge line nor an endless file (Regions=/dev/zero) is ever held in memory. */
	errno = 0;
	for (;;) {
		int ch = getc_unlocked(l->f);

		if (ch == EOF)
			break;
		got = true;
		if (++l->total_bytes > CONFIG_MAX_TOTAL_BYTES) {
			lerr(l, l->line + 1,
			     "the configuration is larger than the limit of %d bytes (all files together); not read further",
			     CONFIG_MAX_TOTAL_BYTES);
			l->over_total = true;
			return NULL;
		}
		if (ch == '\n')
			break;
		if (ch == 0)
			has_nul = true;
		if (len < l->cap)
			l->buf[len] = (char)ch;
		len++;
		last = ch;
	}
	if (!got) {
		if (ferror(l->f)) {
			int r = errno ? -errno : -EIO;

			lerr(l, 0, "read error: %s", strerror(-r));
			l->hard = l->hard ?: r;
		}
		return NULL;
	}
	l->line++;
	l->value = NULL;
	str[0] = '\n';
	str[1] = 0;

	if (last == '\r')
		len--;
	if (has_nul) {
		lerr(l, l->line, "line contains a NUL byte");
		return str;
	}
	if (len > CONFIG_MAX_LINE) {
		lerr(l, l->line,
		     "line is %zu bytes long, more than the limit of %d; split the value over several lines of the same key",
		     len, CONFIG_MAX_LINE);
		return str;
	}
	l->buf[len] = 0;
	s = l->buf;
	if (l->line == 1 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3; /* UTF-8 byte order mark */
	while (is_ws(*s))
		s++;
	e = s + strlen(s);
	while (e > s && is_ws(e[-1]))
		*--e = 0;
	if (*s == 0 || *s == '#' || *s == ';')
		return str;

	if (*s == '[') {
		size_t nl = (size_t)(e - s);
		bool ok = nl >= 3 && e[-1] == ']' && nl - 2 <= CONFIG_MAX_NAME;

		for (size_t i = 1; ok && i + 1 < nl; i++)
			ok = valid_name_char(s[i], true);
		if (!ok) {
			lerr(l, l->line,
			     "invalid section header '%s' (expected [Name] with letters, digits, '-', '_', '.')",
			     s);
			section_finish(l);
			l->sec = SEC_BAD;
			return str;
		}
		e[-1] = 0;
		section_start(l, s + 1);
		snprintf(str, (size_t)num, "[%s]\n", s + 1);
		return str;
	}

	eq = strchr(s, '=');
	if (!eq) {
		lerr(l, l->line, "expected Key=value, [Section] or a comment, got '%.60s'", s);
		return str;
	}
	for (e = eq; e > s && is_ws(e[-1]); e--)
		;
	*e = 0;
	{
		size_t kl = (size_t)(e - s);
		bool ok = kl >= 1 && kl <= CONFIG_MAX_NAME &&
			  ((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z');

		for (size_t i = 0; ok && i < kl; i++)
			ok = valid_name_char(s[i], false);
		if (!ok) {
			lerr(l, l->line, "invalid key name '%.60s'", s);
			return str;
		}
	}
	eq++;
	while (is_ws(*eq))
		eq++;
	l->value = eq;
	snprintf(str, (size_t)num, "%s=\n", s);
	return str;
}

static int on_ini_key(void *user, const char *section, const char *name, const char *value)
{
	struct loader *l = user;

	/* The section comes from our own tracking (inih truncates long names); the value from the
	 * raw line (inih has cut nothing from it because it only saw "Key="). */
	if (l->value)
		key_line(l, name);
	return 1;
}

/* Parse one file. Returns 0, or a negative errno when it cannot be opened (reported). */
static int parse_file(struct loader *l, const char *path, enum file_kind kind)
{
	int r;

	l->file = path;
	l->kind = kind;
	l->line = 0;
	l->sec = SEC_NONE;
	l->value = NULL;
	l->f = fopen(path, "re");
	if (!l->f) {
		r = -errno;
		lerr(l, 0, "cannot open: %s", strerror(-r));
		return r;
	}
	r = ini_parse_stream(read_line, l, on_ini_key, l);
	if (r == -2)
		oom(l);
	else if (r > 0)
		lerr(l, (unsigned)r, "the INI parser rejected this line");
	section_finish(l);
	fclose(l->f);
	l->f = NULL;
	return 0;
}

/* ---- cross-file checks ----------------------------------------------------------------------- */

static void check_policies(struct loader *l)
{
	struct config *c = &l->c;

	for (size_t j = 0; j < c->npolicies; j++) {
		struct policy *pj = &c->policies[j];

		l->file = pj->file;
		for (size_t i = 0; i < j; i++) {
			struct policy *pi = &c->policies[i];

			if (strcmp(pi->name, pj->name) == 0) {
				lerr(l, pj->name_line,
				     "duplicate policy name '%s' (first defined at %s:%u)",
				     pj->name, pi->file, pi->name_line);
				break;
			}
			if (pi->id == pj->id) {
				lerr(l, pj->name_line,
				     "policy id 0x%08x (FNV-1a 32) of '%s' collides with policy '%s' at %s:%u; rename one of them",
				     pj->id, pj->name, pi->name, pi->file, pi->name_line);
				break;
			}
		}
		for (size_t a = 0; a < pj->ncgroups; a++) {
			bool found = false;

			for (size_t i = 0; i <= j && !found; i++) {
				struct policy *pi = &c->policies[i];
				size_t lim = i == j ? a : pi->ncgroups;

				for (size_t b = 0; b < lim && !found; b++) {
					if (strcmp(pi->cgroups[b], pj->cgroups[a]) != 0)
						continue;
					found = true;
					if (i == j)
						lerr(l, pj->cgroup_lines[a],
						     "Cgroup: %s is listed twice (first at line %u)",
						     pj->cgroups[a], pi->cgroup_lines[b]);
					else
						lerr(l, pj->cgroup_lines[a],
						     "Cgroup: %s is already used by policy '%s' at %s:%u; a cgroup can have only one policy",
						     pj->cgroups[a], pi->name, pi->file,
						     pi->cgroup_lines[b]);
				}
			}
		}
		for (size_t a = 0; a < pj->nunits; a++) {
			bool found = false;

			for (size_t i = 0; i <= j && !found; i++) {
				struct policy *pi = &c->policies[i];
				size_t lim = i == j ? a : pi->nunits;

				for (size_t b = 0; b < lim && !found; b++) {
					if (strcmp(pi->units[b], pj->units[a]) != 0)
						continue;
					found = true;
					if (i == j)
						lerr(l, pj->unit_lines[a],
						     "Unit: %s is listed twice (first at line %u)",
						     pj->units[a], pi->unit_lines[b]);
					else
						lerr(l, pj->unit_lines[a],
						     "Unit: %s is already used by policy '%s' at %s:%u; a unit can have only one policy",
						     pj->units[a], pi->name, pi->file,
						     pi->unit_lines[b]);
				}
			}
		}
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_policy_dir(struct loader *l, const char *main_path)
{
	char **names = NULL;
	size_t n = 0;
	DIR *d;
	struct dirent *de;

	d = opendir(l->c.policy_dir);
	if (!d) {
		int r = -errno;

		/* A missing policy directory is an error even when it is the default: a directory lost
		 * by mistake must not turn a reload into "no policies", which ends enforcement. */
		l->file = main_path;
		lerr(l, l->poldir_given ? l->daemon_lines[K_POLDIR] : 0,
		     "PolicyDirectory: cannot open %s: %s", l->c.policy_dir, strerror(-r));
		if (r != -ENOENT && r != -ENOTDIR)
			l->hard = l->hard ?: r;
		return;
	}
	while ((de = readdir(d))) {
		size_t nl = strlen(de->d_name);
		struct stat st;
		char *p = NULL;

		if (de->d_name[0] == '.' || nl <= 5 || strcmp(de->d_name + nl - 5, ".conf") != 0)
			continue;
		if (asprintf(&p, "%s/%s", l->c.policy_dir, de->d_name) < 0) {
			oom(l);
			break;
		}
		if (stat(p, &st) < 0 || !S_ISREG(st.st_mode)) {
			free(p);
			continue;
		}
		if (n >= CONFIG_MAX_POLICY_FILES) {
			free(p);
			l->file = main_path;
			lerr(l, l->poldir_given ? l->daemon_lines[K_POLDIR] : 0,
			     "PolicyDirectory: %s has more than %d policy files (*.conf); none was read",
			     l->c.policy_dir, CONFIG_MAX_POLICY_FILES);
			l->over_files = true;
			break;
		}
		if (strv_push(&names, NULL, &n, p, 0) < 0) {
			free(p);
			oom(l);
			break;
		}
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n && !l->over_files; i++) {
		int r = parse_file(l, names[i], KIND_POLICY);

		if (r < 0 && !l->hard)
			l->hard = r;
	}
	/* policies keep their own copy of the file name */
	strv_free(names, n);
}

static int set_defaults(struct loader *l, const char *path)
{
	struct config *c = &l->c;
	char *geo;

	c->path = strdup(path);
	c->socket = strdup(DEFAULT_SOCKET);
	c->reader_group = strdup(DEFAULT_READER_GROUP);
	c->admin_group = strdup("");
	c->pin_path = strdup(DEFAULT_PIN_PATH);
	c->state_dir = strdup(DEFAULT_STATE_DIR);
	c->regions_path = strdup(DEFAULT_REGIONS);
	c->metrics_listen = strdup("");
	c->policy_dir = resolve(l, "policies.d");
	geo = strdup(DEFAULT_GEO);
	if (!geo || strv_push(&c->geo_paths, NULL, &c->ngeo, geo, 0) < 0) {
		free(geo);
		return -ENOMEM;
	}
	if (!c->path || !c->socket || !c->reader_group || !c->admin_group || !c->pin_path ||
	    !c->state_dir || !c->regions_path || !c->policy_dir || !c->metrics_listen)
		return -ENOMEM;
	return 0;
}

int config_load(const char *path, struct config *ret, struct diag *errors)
{
	struct loader l = {};
	char *dir;
	const char *slash;
	int r;

	if (!path || !ret || !errors)
		return -EINVAL;
	slash = strrchr(path, '/');
	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return -ENOMEM;
	l.dir = dir;
	r = set_defaults(&l, path);
	if (r < 0)
		goto out;

	r = parse_file(&l, path, KIND_MAIN);
	if (r < 0)
		goto out; /* reported */
	/* Go on after a file that cannot be read, to report everything; stop only on ENOMEM. */
	if (l.hard != -ENOMEM) {
		r = parse_file(&l, l.c.regions_path, KIND_REGIONS);
		l.regions_ok = r == 0;
		if (r < 0 && !l.hard)
			l.hard = r;
	}
	if (l.hard != -ENOMEM)
		load_policy_dir(&l, path);
	/* The pairwise checks only within the limits (their cost grows with the square). */
	if (l.hard != -ENOMEM && !l.over_total && !l.over_policies && !l.over_cgroups &&
	    !l.over_files)
		check_policies(&l);

	if (l.hard)
		r = l.hard;
	else if (l.nerr)
		r = -EINVAL;
	else
		r = 0;
out:
	if (r == 0) {
		*ret = l.c;
		memset(&l.c, 0, sizeof(l.c));
	}
	/* An invalid configuration has no *ret to carry its warnings: they follow the errors. */
	for (size_t i = 0; i < l.c.warnings.n; i++)
		diag_add(&l.errors, "warning: %s", l.c.warnings.msgs[i]);
	diag_move(errors, &l.errors);
	config_free(&l.c);
	free(l.buf);
	free(l.cidr_slots);
	free(dir);
	return r;
}
