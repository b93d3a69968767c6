/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * egressd.c - the daemon core. One sd-event loop owns:
 *   - the configuration (policy.h), the GeoIP data (geo.h) and its table image (table.h),
 *   - the BPF programs and maps (kern.h), the attachments to the configured cgroups,
 *   - the API on the Unix socket (api.h), whose callbacks (struct api_ops) are implemented here.
 * A reload parses and compiles everything first and touches the kernel only when all of it is
 * valid; a failed reload keeps the running generation and counters.
 */
#include "egressd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "api.h"
#include "cgroup.h"
#include "diag.h"
#include "events.h"
#include "geo.h"
#include "kern.h"
#include "log.h"
#include "model.h"
#include "policy.h"
#include "state.h"
#include "table.h"

#define RESCAN_USEC (1000 * 1000ULL) /* how often cgroup paths are re-resolved */
#define DRAIN_USEC (100 * 1000ULL) /* the programs wake us only when the ring is 1/8 full */
#define SNAPSHOT_USEC (60 * 1000000ULL) /* counter snapshots to StateDirectory= */

struct id_name {
	uint64_t id;
	char *name;
};

/* Identity of a GeoIP file, to skip re-parsing unchanged data on reload. */
struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

/* A configured cgroup resolved to its current id (0 if it does not exist now). */
struct resolved {
	char *rel; /* path relative to the cgroup v2 mount */
	uint64_t id;
	uint32_t policy_id;
	size_t policy; /* index in cfg.policies */
};

struct egressd {
	sd_event *event;
	const char *config_path;
	char *cgmount;
	uint64_t start_usec;

	struct config cfg;
	int have_cfg;
	struct geo_db geo;
	struct file_id *geo_ids;
	size_t ngeo_ids;
	struct table_image img;
	uint64_t generation;
	uint64_t reload_failures;
	struct diag last_errors; /* of the last failed reload; empty after a good one */
	int last_reload_ok;
	struct diag last_warnings; /* warnings of the last reload attempt (also logged) */

	struct resolved *res;
	size_t nres;
	int attached; /* number of cgroups the programs are attached to */
	int matching_off; /* the kernel stopped matching sockets to cgroup v2 (net_cls/net_prio) */
	unsigned rescans;

	struct kern *kern;
	struct api *api;
	sd_event_source *rescan;
	sd_event_source *drain;
	sd_event_source *snapshot;
	char *state_dir; /* StateDirectory= at start; NULL = no snapshots */
	sd_event_source *events_src;

	struct id_name *cgnames; /* cgroup id -> path (kept after the cgroup is gone) */
	size_t ncgnames;
	struct id_name *polnames; /* policy id -> name (kept after the policy is removed) */
	size_t npolnames;

	struct events *events; /* deny events -> journal, rate-limited */
	uint64_t events_seen;
	int event_walked;
};

/* ---- small helpers -------------------------------------------------------------------------- */

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

static const char *id_name_get(const struct id_name *v, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].id == id)
			return v[i].name;
	return NULL;
}

static int id_name_set(struct id_name **v, size_t *n, uint64_t id, const char *name)
{
	struct id_name *nv;
	char *s;

	for (size_t i = 0; i < *n; i++)
		if ((*v)[i].id == id) {
			if (strcmp((*v)[i].name, name) == 0)
				return 0;
			s = strdup(name);
			if (!s)
				return -ENOMEM;
			free((*v)[i].name);
			(*v)[i].name = s;
			return 0;
		}
	s = strdup(name);
	if (!s)
		return -ENOMEM;
	nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv) {
		free(s);
		return -ENOMEM;
	}
	*v = nv;
	(*v)[*n].id = id;
	(*v)[*n].name = s;
	(*n)++;
	return 0;
}

static void id_names_free(struct id_name **v, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free((*v)[i].name);
	free(*v);
	*v = NULL;
	*n = 0;
}

static void resolved_free(struct resolved *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(r[i].rel);
	free(r);
}

static int file_ids_of(char *const *paths, size_t n, struct file_id **ret)
{
	struct file_id *ids = calloc(n ? n : 1, sizeof(*ids));
	struct stat st;

	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (stat(paths[i], &st) < 0) {
			free(ids);
			return -errno;
		}
		ids[i] = (struct file_id){ st.st_dev, st.st_ino, st.st_size, st.st_mtim };
	}
	*ret = ids;
	return 0;
}

static int same_geo_files(const struct egressd *d, const struct config *cfg, const struct file_id *ids)
{
	if (!d->have_cfg || d->cfg.ngeo != cfg->ngeo || d->ngeo_ids != cfg->ngeo)
		return 0;
	for (size_t i = 0; i < cfg->ngeo; i++) {
		if (strcmp(d->cfg.geo_paths[i], cfg->geo_paths[i]) != 0)
			return 0;
		if (memcmp(&d->geo_ids[i], &ids[i], sizeof(ids[i])) != 0)
			return 0;
	}
	return 1;
}

/* Each GeoDatabase= file must be readable; the message names the line that configured it. */
static int check_geo_paths(const struct config *cfg, struct diag *errors)
{
	int r = 0;

	for (size_t i = 0; i < cfg->ngeo; i++)
		if (access(cfg->geo_paths[i], R_OK) < 0) {
			r = -errno;
			if (cfg->geo_line)
				diag_add(errors, "%s:%u: GeoDatabase: %s: %s", cfg->path, cfg->geo_line, cfg->geo_paths[i],
					 strerror(-r));
			else
				diag_add(errors, "%s: GeoDatabase (default): %s: %s", cfg->path, cfg->geo_paths[i],
					 strerror(-r));
		}
	return r;
}

/* The configured cgroup paths of cfg (Cgroup= and resolved Unit=), each with its current id. */
static int resolve_cgroups(const char *cgmount, const struct config *cfg, struct resolved **ret,
			   size_t *ret_n, struct diag *errors)
{
	struct resolved *v = NULL;
	size_t n = 0;
	int r = 0;

	for (size_t p = 0; p < cfg->npolicies; p++) {
		const struct policy *pol = &cfg->policies[p];

		for (size_t k = 0; k < pol->ncgroups + pol->nunits; k++) {
			char *rel = NULL, *abs = NULL;
			struct resolved *nv;
			uint64_t id = 0;

			if (k < pol->ncgroups) {
				rel = strdup(pol->cgroups[k]);
				if (!rel)
					r = -ENOMEM;
			} else {
				r = cgroup_unit_path(pol->units[k - pol->ncgroups], &rel);
				if (r < 0)
					diag_add(errors, "%s:%u: Unit=%s: cannot resolve its cgroup: %s", pol->file,
						 pol->line, pol->units[k - pol->ncgroups], strerror(-r));
			}
			if (r < 0)
				goto fail;
			if (asprintf(&abs, "%s/%s", cgmount, rel) < 0) {
				free(rel);
				r = -ENOMEM;
				goto fail;
			}
			r = cgroup_id_of(abs, &id);
			if (r == -ENOENT) {
				id = 0; /* not there (yet): the rescan timer attaches when it appears */
				r = 0;
			} else if (r < 0) {
				diag_add(errors, "%s:%u: policy %s: %s is not a cgroup v2 directory: %s", pol->file,
					 pol->line, pol->name, abs, strerror(-r));
				free(abs);
				free(rel);
				goto fail;
			}
			free(abs);
			nv = realloc(v, (n + 1) * sizeof(*v));
			if (!nv) {
				free(rel);
				r = -ENOMEM;
				goto fail;
			}
			v = nv;
			v[n++] = (struct resolved){ .rel = rel, .id = id, .policy_id = pol->id, .policy = p };
		}
	}
	/* Cgroup= paths are unique across policies (config_load checks that); a Unit= can still
	 * resolve to a cgroup another policy names. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (v[i].policy != v[j].policy && strcmp(v[i].rel, v[j].rel) == 0) {
				const struct policy *a = &cfg->policies[v[i].policy], *b = &cfg->policies[v[j].policy];

				diag_add(errors, "%s:%u: policy %s: cgroup %s is also selected by policy %s (%s:%u)",
					 b->file, b->line, b->name, v[j].rel, a->name, a->file, a->line);
				r = -EINVAL;
			}
	if (r < 0)
		goto fail;
	*ret = v;
	*ret_n = n;
	return 0;
fail:
	resolved_free(v, n);
	return r;
}

static int resolved_equal(const struct resolved *a, size_t na, const struct resolved *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (a[i].id != b[i].id || a[i].policy_id != b[i].policy_id || strcmp(a[i].rel, b[i].rel) != 0)
			return 0;
	return 1;
}

/* Push policies (with the ids their cgroups have now) and attachments into the kernel. */
static int sync_kernel(struct egressd *d, const struct config *cfg, const struct resolved *res, size_t nres,
		       struct diag *errors)
{
	struct kern_policy *kp = calloc(cfg->npolicies ? cfg->npolicies : 1, sizeof(*kp));
	uint64_t *ids = calloc(nres ? nres : 1, sizeof(*ids));
	const char **paths = calloc(nres ? nres : 1, sizeof(*paths));
	size_t nids = 0;
	int r;

	if (!kp || !ids || !paths) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t p = 0; p < cfg->npolicies; p++) {
		const struct policy *pol = &cfg->policies[p];
		struct kern_policy *k = &kp[p];
		size_t first = nids;

		k->bpf.policy_id = pol->id;
		k->bpf.mode = pol->mode;
		k->bpf.unknown = pol->unknown;
		k->bpf.has_cidr = pol->ncidrs > 0;
		memcpy(k->bpf.allowed, pol->allowed, sizeof(k->bpf.allowed));
		k->cidrs = pol->cidrs;
		k->ncidrs = pol->ncidrs;
		for (size_t i = 0; i < nres; i++) {
			if (res[i].policy != p || res[i].id == 0)
				continue;
			ids[nids++] = res[i].id;
			if ((uint32_t)cgroup_level_of(res[i].rel) > k->max_level)
				k->max_level = (uint32_t)cgroup_level_of(res[i].rel);
		}
		k->cgroup_ids = ids + first;
		k->ncgroup_ids = nids - first;
	}
	r = kern_sync_policies(d->kern, kp, cfg->npolicies);
	if (r < 0) {
		diag_add(errors, "kernel: updating the policy maps failed: %s", strerror(-r));
		goto out;
	}
	for (size_t i = 0; i < nres; i++)
		paths[i] = res[i].rel;
	r = kern_sync_attachments(d->kern, d->cgmount, paths, nres, errors);
	if (r >= 0)
		d->attached = r;
out:
	free(kp);
	free(ids);
	free(paths);
	return r < 0 ? r : 0;
}

static int any_enforce(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->npolicies; i++)
		if (cfg->policies[i].mode == EGRESS_MODE_ENFORCE)
			return 1;
	return 0;
}

static void notify_status(struct egressd *d)
{
	size_t enforce = 0;
	char failed[512] = "";

	if (!d->last_reload_ok)
		snprintf(failed, sizeof(failed), "; last reload FAILED, previous generation kept: %s%s",
			 d->last_errors.n ? d->last_errors.msgs[0] : "?",
			 d->last_errors.n > 1 ? " (and more: egressctl status)" : "");

	if (!d->have_cfg)
		return;
	for (size_t i = 0; i < d->cfg.npolicies; i++)
		enforce += d->cfg.policies[i].mode == EGRESS_MODE_ENFORCE;
	sd_notifyf(0,
		   "STATUS=generation %" PRIu64 ": %zu policies (%zu enforce, %zu monitor), %d cgroups attached, "
		   "%" PRIu64 " IPv4 + %" PRIu64 " IPv6 prefixes%s%s",
		   d->generation, d->cfg.npolicies, enforce, d->cfg.npolicies - enforce, d->attached,
		   d->geo.prefixes4, d->geo.prefixes6,
		   d->last_reload_ok ? "" : failed,
		   d->matching_off ? "; NOT ENFORCING: the kernel turned off cgroup v2 socket matching" : "");
}

/* Load the GeoIP files of cfg and compile them into a verified table image. On failure nothing
 * is returned (ret_* untouched) and errors say why. Pure: safe to run on another thread. */
static int compile_geo(const struct config *cfg, uint64_t generation, struct geo_db *ret_geo,
		       struct table_image *ret_img, struct diag *errors, struct diag *warnings)
{
	struct geo_db geo = {};
	struct table_image img = {};
	int r;

	r = geo_load((const char *const *)cfg->geo_paths, cfg->ngeo, &geo, errors, warnings);
	if (r < 0)
		return r;
	r = table_build(&geo, generation, &img);
	if (r < 0) {
		diag_add(errors, "GeoIP table: cannot build the range table: %s", strerror(-r));
		geo_db_free(&geo);
		return r;
	}
	/* The BPF search trusts the image's invariants: check them before the kernel sees it. */
	r = table_verify(&img, errors);
	if (r < 0) {
		table_image_free(&img);
		geo_db_free(&geo);
		return r;
	}
	*ret_geo = geo;
	*ret_img = img;
	return 0;
}

struct geo_job {
	const struct config *cfg;
	uint64_t generation;
	struct geo_db geo;
	struct table_image img;
	struct diag errors, warnings;
	int r;
};

static void *geo_job_run(void *p)
{
	struct geo_job *j = p;

	j->r = compile_geo(j->cfg, j->generation, &j->geo, &j->img, &j->errors, &j->warnings);
	return NULL;
}

/* compile_geo on a worker thread while this thread keeps the systemd watchdog fed (the event
 * loop is not running during a reload); without a watchdog, the same on this thread. */
static int compile_geo_watched(const struct config *cfg, uint64_t generation, struct geo_db *ret_geo,
			       struct table_image *ret_img, struct diag *errors, struct diag *warnings)
{
	struct geo_job j = { .cfg = cfg, .generation = generation };
	uint64_t wd_usec = 0;
	pthread_t t;
	int r;

	if (sd_watchdog_enabled(0, &wd_usec) <= 0 || wd_usec == 0 ||
	    pthread_create(&t, NULL, geo_job_run, &j) != 0)
		return compile_geo(cfg, generation, ret_geo, ret_img, errors, warnings);
	for (;;) {
		struct timespec ts;
		uint64_t ns;

		clock_gettime(CLOCK_REALTIME, &ts); /* pthread_timedjoin_np takes CLOCK_REALTIME */
		ns = (uint64_t)ts.tv_nsec + wd_usec / 4 * 1000;
		ts.tv_sec += (time_t)(ns / 1000000000ULL);
		ts.tv_nsec = (long)(ns % 1000000000ULL);
		r = pthread_timedjoin_np(t, NULL, &ts);
		if (r != ETIMEDOUT)
			break;
		sd_notify(0, "WATCHDOG=1");
	}
	sd_notify(0, "WATCHDOG=1");
	diag_move(errors, &j.errors);
	diag_move(warnings, &j.warnings);
	if (j.r < 0)
		return j.r;
	*ret_geo = j.geo;
	*ret_img = j.img;
	return 0;
}

/* A warning of the reload in progress: logged, and kept for the reply and /v1/status. */
static void reload_warn(struct egressd *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reload_warn(struct egressd *d, const char *fmt, ...)
{
	size_t n = d->last_warnings.n;
	va_list ap;

	va_start(ap, fmt);
	diag_addv(&d->last_warnings, fmt, ap);
	va_end(ap);
	if (d->last_warnings.n > n)
		log_warning("%s", d->last_warnings.msgs[n]);
}

/* Parse and compile everything, then switch the kernel to it. On failure nothing running changes
 * (unless the kernel itself refuses an update, reported in errors). */
static int reload(struct egressd *d, struct diag *errors)
{
	struct config cfg = {};
	struct geo_db geo = {};
	struct table_image img = {};
	struct file_id *ids = NULL;
	struct resolved *res = NULL;
	struct diag warnings = {};
	size_t nres = 0;
	int geo_new = 0, r;

	diag_free(&d->last_warnings);
	{
		struct diag all = {};

		r = config_load(d->config_path, &cfg, &all);
		/* an invalid configuration's warnings follow its errors, prefixed "warning: " */
		for (size_t i = 0; i < all.n; i++) {
			if (strncmp(all.msgs[i], "warning: ", 9) == 0)
				reload_warn(d, "%s", all.msgs[i] + 9);
			else
				diag_add(errors, "%s", all.msgs[i]);
		}
		diag_free(&all);
	}
	if (r < 0)
		return r;
	for (size_t i = 0; i < cfg.warnings.n; i++)
		reload_warn(d, "%s", cfg.warnings.msgs[i]);
	r = check_geo_paths(&cfg, errors);
	if (r < 0)
		goto fail;
	r = file_ids_of(cfg.geo_paths, cfg.ngeo, &ids);
	if (r < 0) {
		/* geo_load names the file and the reason */
		free(ids);
		ids = NULL;
	}
	if (ids && same_geo_files(d, &cfg, ids)) {
		geo = d->geo; /* unchanged: keep the running data and image */
	} else {
		r = compile_geo_watched(&cfg, d->generation + 1, &geo, &img, errors, &warnings);
		for (size_t i = 0; i < warnings.n; i++)
			reload_warn(d, "%s", warnings.msgs[i]);
		diag_free(&warnings);
		if (r < 0)
			goto fail;
		geo_new = 1;
	}
	r = resolve_cgroups(d->cgmount, &cfg, &res, &nres, errors);
	if (r < 0)
		goto fail;

	/* Everything is valid: switch the kernel. The table first (one map update), then policies. */
	if (geo_new) {
		r = kern_install_table(d->kern, &img);
		if (r < 0) {
			diag_add(errors, "kernel: installing the GeoIP table failed: %s", strerror(-r));
			goto fail;
		}
	}
	r = sync_kernel(d, &cfg, res, nres, errors);
	if (r < 0) {
		/* Put the running generation back as far as the kernel lets us. */
		struct diag ignored = {};

		if (geo_new && d->img.words)
			(void)kern_install_table(d->kern, &d->img);
		if (d->have_cfg)
			(void)sync_kernel(d, &d->cfg, d->res, d->nres, &ignored);
		diag_free(&ignored);
		goto fail;
	}

	/* Commit. [Daemon] settings that shape the process, not the policy, apply at the next start. */
	if (d->have_cfg) {
		static const struct {
			const char *key;
			size_t off;
		} start_only[] = {
			{ "Socket", offsetof(struct config, socket) },
			{ "PinPath", offsetof(struct config, pin_path) },
			{ "StateDirectory", offsetof(struct config, state_dir) },
			{ "ReaderGroup", offsetof(struct config, reader_group) },
			{ "AdminGroup", offsetof(struct config, admin_group) },
			{ "MetricsListen", offsetof(struct config, metrics_listen) },
		};

		/* d->cfg keeps the values in force since the start, so the reminder comes with every
		 * reload until the file and the running process agree again (or the next start). */
		for (size_t i = 0; i < sizeof(start_only) / sizeof(start_only[0]); i++) {
			char **a = (char **)((char *)&d->cfg + start_only[i].off);
			char **b = (char **)((char *)&cfg + start_only[i].off);
			char *in_force = *a;

			if (strcmp(*a ? *a : "", *b ? *b : "") != 0)
				reload_warn(d, "%s: %s= differs from the value in force (%s); it takes effect at the next "
					    "start", cfg.path, start_only[i].key, *a && **a ? *a : "empty");
			*a = *b; /* freed with the old configuration below */
			*b = in_force;
		}
		struct kern_sizes now = {};

		kern_sizes_get(d->kern, &now);
		if (d->cfg.events_ring_bytes != cfg.events_ring_bytes)
			reload_warn(d, "%s: EventsRingBytes= differs from the value in force (%u); it takes effect at "
				    "the next start", cfg.path, now.events);
		if (d->cfg.counter_entries != cfg.counter_entries)
			reload_warn(d, "%s: CounterEntries= differs from the value in force (%u); it takes effect at "
				    "the next start", cfg.path, now.counters);
		cfg.events_ring_bytes = d->cfg.events_ring_bytes;
		cfg.counter_entries = d->cfg.counter_entries;
	}
	for (size_t i = 0; i < cfg.npolicies; i++)
		(void)id_name_set(&d->polnames, &d->npolnames, cfg.policies[i].id, cfg.policies[i].name);
	for (size_t i = 0; i < nres; i++)
		if (res[i].id)
			(void)id_name_set(&d->cgnames, &d->ncgnames, res[i].id, res[i].rel);
	if (geo_new) {
		if (d->have_cfg)
			geo_db_free(&d->geo);
		table_image_free(&d->img);
		d->geo = geo;
		d->img = img;
	}
	if (d->have_cfg)
		config_free(&d->cfg);
	d->cfg = cfg;
	d->have_cfg = 1;
	free(d->geo_ids);
	d->geo_ids = ids;
	d->ngeo_ids = ids ? cfg.ngeo : 0;
	resolved_free(d->res, d->nres);
	d->res = res;
	d->nres = nres;
	d->generation++;
	d->last_reload_ok = 1;
	diag_free(&d->last_errors);
	return 0;

fail:
	if (geo_new) {
		geo_db_free(&geo);
		table_image_free(&img);
	}
	resolved_free(res, nres);
	free(ids);
	config_free(&cfg);
	return r < 0 ? r : -EINVAL;
}

/* Reload from a signal or the API: logs, counts failures, keeps the running generation. */
static int do_reload(struct egressd *d, struct diag *errors)
{
	uint64_t t0 = now_usec();
	int r;

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, t0);
	r = reload(d, errors);
	if (r < 0) {
		d->reload_failures++;
		d->last_reload_ok = 0;
		diag_free(&d->last_errors);
		for (size_t i = 0; i < errors->n; i++) {
			log_error("reload failed: %s", errors->msgs[i]);
			diag_add(&d->last_errors, "%s", errors->msgs[i]);
		}
		log_error("reload failed (%s); generation %" PRIu64 " stays in force", strerror(-r), d->generation);
	} else {
		log_info("reloaded: generation %" PRIu64 ", %zu policies, %d cgroups attached (%.3f s)", d->generation,
			 d->cfg.npolicies, d->attached, (now_usec() - t0) / 1e6);
	}
	sd_notify(0, "READY=1");
	notify_status(d);
	/* A reload frees a whole GeoIP generation (~100 MiB of parse state); give it back to the
	 * system instead of keeping it in glibc's heap (measured: 57 -> 167 MiB after 5 reloads). */
	malloc_trim(0);
	return r;
}

/* ---- cgroup names --------------------------------------------------------------------------- */

static struct egressd *walk_d; /* nftw has no context pointer */

static int walk_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	size_t ml = strlen(walk_d->cgmount);

	if (type != FTW_D)
		return 0;
	if (strncmp(path, walk_d->cgmount, ml) == 0)
		(void)id_name_set(&walk_d->cgnames, &walk_d->ncgnames, (uint64_t)st->st_ino,
				  path[ml] == '/' ? path + ml + 1 : path + ml);
	return 0;
}

/* Path of a cgroup id; walks the hierarchy once when the id is new. "" for the root. */
static const char *cgroup_name(struct egressd *d, uint64_t id, int *walked)
{
	const char *s = id_name_get(d->cgnames, d->ncgnames, id);

	if (!s && !*walked) {
		*walked = 1;
		walk_d = d;
		(void)nftw(d->cgmount, walk_cb, 32, FTW_PHYS | FTW_MOUNT);
		s = id_name_get(d->cgnames, d->ncgnames, id);
	}
	return s;
}

/* ---- API callbacks -------------------------------------------------------------------------- */

static json_object *json_str_array(char *const *v, size_t n)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

static int policy_enforcing(const struct egressd *d, size_t p)
{
	if (d->cfg.policies[p].mode != EGRESS_MODE_ENFORCE || d->attached <= 0 || d->matching_off)
		return 0;
	for (size_t i = 0; i < d->nres; i++)
		if (d->res[i].policy == p && d->res[i].id != 0)
			return 1;
	return 0;
}

static json_object *policies_json(struct egressd *d)
{
	json_object *a = json_object_new_array();

	for (size_t p = 0; p < d->cfg.npolicies; p++) {
		const struct policy *pol = &d->cfg.policies[p];
		json_object *o = json_object_new_object(), *cg = json_object_new_array(), *cc = json_object_new_array();
		json_object *cidr = json_object_new_array();
		char code[8];

		json_object_object_add(o, "name", json_object_new_string(pol->name));
		json_object_object_add(o, "id", json_object_new_int64(pol->id));
		json_object_object_add(o, "file", json_object_new_string(pol->file));
		json_object_object_add(o, "mode", json_object_new_string(policy_mode_name(pol->mode)));
		json_object_object_add(o, "enforcing", json_object_new_boolean(policy_enforcing(d, p)));
		json_object_object_add(o, "unknown",
				       json_object_new_string(pol->unknown == EGRESS_UNKNOWN_ALLOW ? "allow" : "deny"));
		json_object_object_add(o, "allow_regions", json_str_array(pol->allow_regions, pol->nallow_regions));
		for (unsigned id = 1; id < EGRESS_COUNTRY_MAX; id++)
			if (pol->allowed[id / 64] & (1ULL << (id % 64)))
				json_object_array_add(cc, json_object_new_string(geo_country_code(id, code)));
		json_object_object_add(o, "allowed_countries", cc);
		for (size_t i = 0; i < pol->ncidrs; i++) {
			const struct policy_cidr *c = &pol->cidrs[i];
			char buf[INET6_ADDRSTRLEN + 8], a6[INET6_ADDRSTRLEN];
			json_object *co = json_object_new_object();

			inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, a6, sizeof(a6));
			snprintf(buf, sizeof(buf), "%s/%u", a6, c->plen);
			json_object_object_add(co, "cidr", json_object_new_string(buf));
			json_object_object_add(co, "action",
					       json_object_new_string(c->action == EGRESS_CIDR_ALLOW ? "allow" : "deny"));
			json_object_array_add(cidr, co);
		}
		json_object_object_add(o, "cidrs", cidr);
		for (size_t i = 0; i < d->nres; i++) {
			json_object *c;

			if (d->res[i].policy != p)
				continue;
			c = json_object_new_object();
			json_object_object_add(c, "path", json_object_new_string(d->res[i].rel));
			json_object_object_add(c, "id", json_object_new_uint64(d->res[i].id));
			json_object_object_add(c, "exists", json_object_new_boolean(d->res[i].id != 0));
			json_object_array_add(cg, c);
		}
		json_object_object_add(o, "cgroups", cg);
		json_object_array_add(a, o);
	}
	return a;
}

/* Source=, Version= and Date= of a PROVENANCE file beside a GeoIP file (the shipped data has
 * one, written by scripts/refresh-geo.sh), added to o. */
static void add_file_provenance(json_object *o, const char *geo_path)
{
	static const char *const keys[] = { "Source", "Version", "Date" };
	char *dir = strdup(geo_path), *slash, *path = NULL, line[1024];
	FILE *f;

	if (!dir)
		return;
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	if (asprintf(&path, "%s/PROVENANCE", slash ? dir : ".") < 0)
		path = NULL;
	f = path ? fopen(path, "re") : NULL;
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		for (size_t k = 0; k < 3; k++) {
			size_t l = strlen(keys[k]);
			char name[16];

			if (strncmp(line, keys[k], l) == 0 && line[l] == '=') {
				snprintf(name, sizeof(name), "%c%s", keys[k][0] | 0x20, keys[k] + 1);
				json_object_object_add(o, name, json_object_new_string(line + l + 1));
			}
		}
	}
	if (f)
		fclose(f);
	free(path);
	free(dir);
}

static json_object *provenance_json(struct egressd *d)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();

	json_object_object_add(o, "generation", json_object_new_uint64(d->generation));
	for (size_t i = 0; i < d->geo.nsources; i++) {
		const struct geo_source *s = &d->geo.sources[i];
		json_object *so = json_object_new_object();

		json_object_object_add(so, "path", json_object_new_string(s->path));
		json_object_object_add(so, "format", json_object_new_string(s->format));
		json_object_object_add(so, "sha256", json_object_new_string(s->sha256));
		json_object_object_add(so, "build_epoch", json_object_new_uint64(s->build_epoch));
		if (s->database_type)
			json_object_object_add(so, "database_type", json_object_new_string(s->database_type));
		add_file_provenance(so, s->path);
		json_object_array_add(a, so);
	}
	json_object_object_add(o, "geo", a);
	return o;
}

static int op_provenance(void *userdata, json_object **ret)
{
	*ret = provenance_json(userdata);
	return *ret ? 0 : -ENOMEM;
}

static void op_access_denied(void *userdata, const struct api_denial *a)
{
	log_warning("API access denied: %s %s by pid %d uid %u gid %u (role %s): %s", a->method, a->path,
		    (int)a->pid, (unsigned)a->uid, (unsigned)a->gid, a->role, a->reason);
}

/* The messages of d as a JSON array of strings. */
static json_object *diag_json(const struct diag *dg)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < dg->n; i++)
		json_object_array_add(a, json_object_new_string(dg->msgs[i]));
	return a;
}

static int op_status(void *userdata, json_object **ret, char **ret_err)
{
	struct egressd *d = userdata;
	json_object *o = json_object_new_object(), *geo = json_object_new_object(), *src = json_object_new_array();
	json_object *pre = json_object_new_object(), *rng = json_object_new_object(), *hooks = json_object_new_array();
	json_object *errs = json_object_new_array(), *lr = json_object_new_object();
	uint64_t stats[EGRESS_STAT_COUNT] = {};

	(void)kern_read_stats(d->kern, stats);
	json_object_object_add(o, "version", json_object_new_string(EGRESSD_VERSION));
	json_object_object_add(o, "uptime_s", json_object_new_uint64((now_usec() - d->start_usec) / 1000000));
	json_object_object_add(o, "config", json_object_new_string(d->config_path));
	for (size_t i = 0; i < d->geo.nsources; i++) {
		const struct geo_source *s = &d->geo.sources[i];
		json_object *so = json_object_new_object();

		json_object_object_add(so, "path", json_object_new_string(s->path));
		json_object_object_add(so, "format", json_object_new_string(s->format));
		json_object_object_add(so, "gzip", json_object_new_boolean(s->gzip));
		json_object_object_add(so, "sha256", json_object_new_string(s->sha256));
		if (s->database_type)
			json_object_object_add(so, "database_type", json_object_new_string(s->database_type));
		json_object_object_add(so, "build_epoch", json_object_new_uint64(s->build_epoch));
		json_object_object_add(so, "rows", json_object_new_uint64(s->rows));
		json_object_array_add(src, so);
	}
	json_object_object_add(geo, "sources", src);
	json_object_object_add(pre, "ipv4", json_object_new_uint64(d->geo.prefixes4));
	json_object_object_add(pre, "ipv6", json_object_new_uint64(d->geo.prefixes6));
	json_object_object_add(geo, "prefixes", pre);
	json_object_object_add(rng, "ipv4", json_object_new_uint64(d->img.n4));
	json_object_object_add(rng, "ipv6", json_object_new_uint64(d->img.n6));
	json_object_object_add(geo, "ranges", rng);
	json_object_object_add(geo, "table_bytes", json_object_new_uint64(d->img.nwords * 8));
	json_object_object_add(o, "geo", geo);
	json_object_object_add(o, "generation", json_object_new_uint64(d->generation));
	json_object_object_add(o, "cgroup_mount", json_object_new_string(d->cgmount));
	json_object_object_add(o, "cgroup_socket_matching", json_object_new_boolean(!d->matching_off));
	for (size_t i = 0; i < kern_attached_count(d->kern); i++) {
		json_object *h = json_object_new_object(), *names = json_object_new_array();
		const char *path;
		uint64_t id;

		if (kern_attached(d->kern, i, &path, &id) < 0)
			continue;
		json_object_object_add(h, "cgroup", json_object_new_string(path));
		json_object_object_add(h, "cgroup_id", json_object_new_uint64(id));
		for (size_t k = 0; k < KERN_NHOOKS; k++)
			json_object_array_add(names, json_object_new_string(kern_hook_names[k]));
		json_object_object_add(h, "hooks", names);
		json_object_array_add(hooks, h);
	}
	json_object_object_add(o, "attachments", hooks);
	json_object_object_add(o, "attached_cgroups", json_object_new_int((int)kern_attached_count(d->kern)));
	json_object_object_add(o, "policies", policies_json(d));
	json_object_object_add(o, "events_lost", json_object_new_uint64(stats[EGRESS_STAT_EVENTS_LOST]));
	json_object_object_add(o, "events_seen", json_object_new_uint64(d->events_seen));
	{
		uint64_t logged = 0, suppressed = 0;

		if (d->events)
			events_totals(d->events, &logged, &suppressed);
		json_object_object_add(o, "events_logged", json_object_new_uint64(logged));
		json_object_object_add(o, "events_log_suppressed", json_object_new_uint64(suppressed));
	}
	json_object_object_add(o, "counter_overflow", json_object_new_uint64(stats[EGRESS_STAT_COUNTER_OVERFLOW]));
	json_object_object_add(o, "reload_failures", json_object_new_uint64(d->reload_failures));
	json_object_object_add(lr, "ok", json_object_new_boolean(d->last_reload_ok));
	for (size_t i = 0; i < d->last_errors.n; i++)
		json_object_array_add(errs, json_object_new_string(d->last_errors.msgs[i]));
	json_object_object_add(lr, "errors", errs);
	json_object_object_add(lr, "warnings", diag_json(&d->last_warnings));
	json_object_object_add(o, "last_reload", lr);
	json_object_object_add(o, "provenance", provenance_json(d));
	*ret = o;
	return 0;
}

struct counters_ctx {
	struct egressd *d;
	struct counter_rows *rows;
	int walked;
	int err;
};

static int add_row(struct counter_rows *rows, const struct counter_row *row)
{
	struct counter_row *nv = realloc(rows->v, (rows->n + 1) * sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	rows->v = nv;
	rows->v[rows->n++] = *row;
	return 0;
}

static int counters_cb(const struct egress_counter_key *k, const struct egress_counter_val *v, void *userdata)
{
	struct counters_ctx *c = userdata;
	const char *path = cgroup_name(c->d, k->cgroup_id, &c->walked);
	const char *pol = id_name_get(c->d->polnames, c->d->npolnames, k->policy_id);
	struct counter_row row = {
		.cgroup_id = k->cgroup_id,
		.country = k->country,
		.proto = k->proto,
		.verdict = k->verdict,
		.connections = v->connections,
		.packets = v->packets,
		.bytes = v->bytes,
	};
	char idbuf[32];

	if (!path) {
		snprintf(idbuf, sizeof(idbuf), "id:%" PRIu64, (uint64_t)k->cgroup_id);
		path = idbuf;
	}
	row.cgroup = strdup(path);
	row.unit = cgroup_unit_of(path);
	row.policy = strdup(pol ? pol : "");
	if (!row.cgroup || !row.unit || !row.policy || add_row(c->rows, &row) < 0) {
		free(row.cgroup);
		free(row.unit);
		free(row.policy);
		return -ENOMEM;
	}
	return 0;
}

static int op_counters(void *userdata, struct counter_rows *ret, char **ret_err)
{
	struct egressd *d = userdata;
	struct counter_rows rows = {};
	struct counters_ctx c = { .d = d, .rows = &rows };
	struct egress_counter_val ov[EGRESS_VERDICT_COUNT] = {};
	int r;

	r = kern_read_counters(d->kern, counters_cb, &c);
	if (r >= 0)
		r = kern_read_overflow(d->kern, ov);
	for (unsigned v = 0; r >= 0 && v < EGRESS_VERDICT_COUNT; v++) {
		struct counter_row row = { .verdict = v, .overflow = 1, .connections = ov[v].connections,
					   .packets = ov[v].packets, .bytes = ov[v].bytes };

		if (!ov[v].connections && !ov[v].packets)
			continue;
		row.cgroup = strdup("");
		row.unit = strdup("");
		row.policy = strdup("");
		if (!row.cgroup || !row.unit || !row.policy || add_row(&rows, &row) < 0) {
			free(row.cgroup);
			free(row.unit);
			free(row.policy);
			r = -ENOMEM;
		}
	}
	if (r < 0) {
		counter_rows_free(&rows);
		if (asprintf(ret_err, "reading the kernel counters failed: %s", strerror(-r)) < 0)
			*ret_err = NULL;
		return r;
	}
	*ret = rows;
	return 0;
}

static int op_metrics(void *userdata, struct metrics_snapshot *ret, char **ret_err)
{
	static struct policy_gauge *gauges; /* valid until the next call, like the snapshot */
	struct egressd *d = userdata;
	uint64_t stats[EGRESS_STAT_COUNT] = {};

	(void)kern_read_stats(d->kern, stats);
	free(gauges);
	gauges = calloc(d->cfg.npolicies ? d->cfg.npolicies : 1, sizeof(*gauges));
	if (!gauges)
		return -ENOMEM;
	for (size_t p = 0; p < d->cfg.npolicies; p++)
		gauges[p] = (struct policy_gauge){ d->cfg.policies[p].name, policy_enforcing(d, p) };
	*ret = (struct metrics_snapshot){
		.events_lost = stats[EGRESS_STAT_EVENTS_LOST],
		.counter_overflow = stats[EGRESS_STAT_COUNTER_OVERFLOW],
		.geo_prefixes4 = d->geo.prefixes4,
		.geo_prefixes6 = d->geo.prefixes6,
		.policy_generation = d->generation,
		.reload_failures = d->reload_failures,
		.policies = gauges,
		.npolicies = d->cfg.npolicies,
	};
	return 0;
}

/* The policy in force for a cgroup path: the deepest configured ancestor (or the path itself). */
static const struct policy *policy_for_path(struct egressd *d, const char *rel, const char **ret_at)
{
	const struct policy *best = NULL;
	size_t best_len = 0;

	for (size_t i = 0; i < d->nres; i++) {
		size_t l = strlen(d->res[i].rel);

		if (strncmp(rel, d->res[i].rel, l) == 0 && (rel[l] == '\0' || rel[l] == '/') && (!best || l > best_len)) {
			best = &d->cfg.policies[d->res[i].policy];
			best_len = l;
			*ret_at = d->res[i].rel;
		}
	}
	return best;
}

static int op_lookup(void *userdata, const char *addr, const char *cgroup, json_object **ret, char **ret_err)
{
	struct egressd *d = userdata;
	char buf[46], pbuf[64], code[8];
	const struct geo_span *span;
	json_object *o;
	uint8_t bytes[16] = {};
	int family, canon_family;
	u128 a, canon;
	uint16_t country;

	if (!addr || geo_parse_addr(addr, &a, &family) < 0) {
		if (asprintf(ret_err, "addr: '%s' is not an IPv4 or IPv6 address", addr ? addr : "") < 0)
			*ret_err = NULL;
		return -EINVAL;
	}
	canon = a;
	canon_family = family;
	/* IPv4-mapped ::ffff:0:0/96 and NAT64 64:ff9b::/96 are looked up as the embedded IPv4. */
	if (family == 6 && ((a >> 32) == 0xffff || (a >> 32) == (((u128)0x0064ff9b) << 64))) {
		canon = a & 0xffffffffu;
		canon_family = 4;
	}
	if (canon_family == 4) {
		uint32_t be = htonl((uint32_t)canon);

		memcpy(bytes, &be, 4);
		country = table_lookup4(&d->img, (uint32_t)canon);
	} else {
		for (int i = 0; i < 16; i++)
			bytes[i] = (uint8_t)(canon >> (8 * (15 - i)));
		country = table_lookup6(&d->img, bytes);
	}
	o = json_object_new_object();
	json_object_object_add(o, "address", json_object_new_string(addr));
	json_object_object_add(o, "family", json_object_new_string(canon_family == 4 ? "ipv4" : "ipv6"));
	if (canon_family != family)
		json_object_object_add(o, "canonical", json_object_new_string(geo_format_addr(4, canon, buf)));
	json_object_object_add(o, "country", json_object_new_string(geo_country_code(country, code)));
	span = geo_db_find(&d->geo, canon_family, canon);
	if (span) {
		u128 ps;
		unsigned plen;

		geo_prefix_containing(span->start, span->end, canon, canon_family == 4 ? 32 : 128, &ps, &plen);
		snprintf(pbuf, sizeof(pbuf), "%s/%u", geo_format_addr(canon_family, ps, buf), plen);
		json_object_object_add(o, "prefix", json_object_new_string(pbuf));
		snprintf(pbuf, sizeof(pbuf), "%s", geo_format_addr(canon_family, span->start, buf));
		json_object_object_add(o, "range_start", json_object_new_string(pbuf));
		json_object_object_add(o, "range_end",
				       json_object_new_string(geo_format_addr(canon_family, span->end, buf)));
	} else {
		json_object_object_add(o, "prefix", NULL);
	}
	json_object_object_add(o, "generation", json_object_new_uint64(d->generation));
	if (cgroup) {
		const char *at = NULL, *rel = cgroup;
		const struct policy_cidr *match = NULL;
		const struct policy *p;
		uint8_t verdict;

		while (*rel == '/')
			rel++;
		p = policy_for_path(d, rel, &at);
		json_object_object_add(o, "cgroup", json_object_new_string(rel));
		if (!p) {
			json_object_object_add(o, "policy", NULL);
			json_object_object_add(o, "verdict", NULL);
		} else {
			(void)policy_decide(p, canon_family, bytes, country, &verdict, &match);
			json_object_object_add(o, "policy", json_object_new_string(p->name));
			json_object_object_add(o, "policy_cgroup", json_object_new_string(at));
			json_object_object_add(o, "mode", json_object_new_string(policy_mode_name(p->mode)));
			json_object_object_add(o, "verdict", json_object_new_string(verdict_name(verdict)));
			if (match) {
				char a6[INET6_ADDRSTRLEN];

				inet_ntop(match->family == 4 ? AF_INET : AF_INET6, match->addr, a6, sizeof(a6));
				snprintf(pbuf, sizeof(pbuf), "%s/%u", a6, match->plen);
				json_object_object_add(o, "matched_cidr", json_object_new_string(pbuf));
			}
		}
	}
	*ret = o;
	return 0;
}

static int op_policies(void *userdata, json_object **ret, char **ret_err)
{
	struct egressd *d = userdata;
	json_object *o = json_object_new_object();

	json_object_object_add(o, "generation", json_object_new_uint64(d->generation));
	json_object_object_add(o, "policies", policies_json(d));
	*ret = o;
	return 0;
}

static int op_reload(void *userdata, json_object **ret, char **ret_err)
{
	struct egressd *d = userdata;
	struct diag errors = {};
	json_object *o = json_object_new_object(), *e = json_object_new_array();
	int r = do_reload(d, &errors);

	json_object_object_add(o, "ok", json_object_new_boolean(r >= 0));
	json_object_object_add(o, "generation", json_object_new_uint64(d->generation));
	for (size_t i = 0; i < errors.n; i++)
		json_object_array_add(e, json_object_new_string(errors.msgs[i]));
	json_object_object_add(o, "errors", e);
	json_object_object_add(o, "warnings", diag_json(&d->last_warnings));
	diag_free(&errors);
	*ret = o;
	return 0;
}

/* ---- event loop ----------------------------------------------------------------------------- */

static int event_cb(const struct egress_event *ev, void *userdata)
{
	struct egressd *d = userdata;
	const char *pol = id_name_get(d->polnames, d->npolnames, ev->policy_id);
	const char *path = cgroup_name(d, ev->cgroup_id, &d->event_walked);
	char idbuf[32], *unit;
	struct event_view v = { .ev = ev, .policy = pol ? pol : "", .generation = d->generation };

	d->events_seen++;
	if (!path) {
		snprintf(idbuf, sizeof(idbuf), "id:%" PRIu64, (uint64_t)ev->cgroup_id);
		path = idbuf;
	}
	unit = cgroup_unit_of(path);
	v.cgroup = path;
	v.unit = unit ? unit : "";
	(void)events_log(d->events, &v, now_usec());
	api_publish_event(d->api, &v);
	free(unit);
	return 0;
}

static int on_events(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct egressd *d = userdata;

	d->event_walked = 0; /* one hierarchy walk per batch at most, for new cgroup ids */
	(void)kern_events_consume(d->kern, event_cb, d);
	return 0;
}

struct snap_ctx {
	struct state_record *v;
	size_t n, cap;
};

static int snap_add(struct snap_ctx *c, const struct egress_counter_key *k, const struct egress_counter_val *v)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 1024;
		struct state_record *nv = realloc(c->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		c->v = nv;
		c->cap = cap;
	}
	c->v[c->n++] = (struct state_record){ *k, *v };
	return 0;
}

static int snap_cb(const struct egress_counter_key *k, const struct egress_counter_val *v, void *userdata)
{
	return snap_add(userdata, k, v);
}

/* The names of cgroup and policy ids seen so far, in StateDirectory=/names.json, so counters of a
 * cgroup removed before a restart keep their last known path (and removed policies their name).
 * JSON: {"boot_id": "...", "cgroups": {"ID": "PATH"}, "policies": {"ID": "NAME"}}, written
 * atomically; cgroup names are used only in the same boot. */
/* cgroup ids are unique within one boot only (kernfs inode numbers): names carry the boot id. */
static void boot_id(char buf[40])
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	buf[0] = '\0';
	if (f) {
		if (!fgets(buf, 40, f))
			buf[0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
}

static void names_save(struct egressd *d)
{
	char boot[40];
	json_object *o = json_object_new_object(), *cg = json_object_new_object(), *po = json_object_new_object();
	char *path = NULL, *tmp = NULL, key[32];

	for (size_t i = 0; i < d->ncgnames; i++) {
		snprintf(key, sizeof(key), "%" PRIu64, d->cgnames[i].id);
		json_object_object_add(cg, key, json_object_new_string(d->cgnames[i].name));
	}
	for (size_t i = 0; i < d->npolnames; i++) {
		snprintf(key, sizeof(key), "%" PRIu64, d->polnames[i].id);
		json_object_object_add(po, key, json_object_new_string(d->polnames[i].name));
	}
	boot_id(boot);
	json_object_object_add(o, "boot_id", json_object_new_string(boot));
	json_object_object_add(o, "cgroups", cg);
	json_object_object_add(o, "policies", po);
	if (asprintf(&path, "%s/names.json", d->state_dir) >= 0 && asprintf(&tmp, "%s/.names.json.tmp", d->state_dir) >= 0) {
		(void)mkdir(d->state_dir, 0700);
		if (json_object_to_file_ext(tmp, o, JSON_C_TO_STRING_PLAIN) < 0 || rename(tmp, path) < 0)
			log_warning("%s: cannot save cgroup and policy names", path);
	}
	free(path);
	free(tmp);
	json_object_put(o);
}

static void names_load(struct egressd *d)
{
	json_object *o, *cg, *po, *b;
	char *path = NULL, boot[40];

	if (!d->state_dir || asprintf(&path, "%s/names.json", d->state_dir) < 0)
		return;
	o = access(path, F_OK) == 0 ? json_object_from_file(path) : NULL;
	boot_id(boot);
	if (o && json_object_object_get_ex(o, "boot_id", &b) && strcmp(json_object_get_string(b), boot) == 0 &&
	    json_object_object_get_ex(o, "cgroups", &cg) && json_object_is_type(cg, json_type_object)) {
		json_object_object_foreach(cg, k, v)
			if (json_object_is_type(v, json_type_string))
				(void)id_name_set(&d->cgnames, &d->ncgnames, strtoull(k, NULL, 10), json_object_get_string(v));
	}
	if (o && json_object_object_get_ex(o, "policies", &po) && json_object_is_type(po, json_type_object)) {
		json_object_object_foreach(po, k, v)
			if (json_object_is_type(v, json_type_string))
				(void)id_name_set(&d->polnames, &d->npolnames, strtoull(k, NULL, 10), json_object_get_string(v));
	}
	json_object_put(o);
	free(path);
}

/* Write every counter (and the overflow slots) to StateDirectory=; logs failures. */
static int snapshot_write(struct egressd *d)
{
	struct egress_counter_val ov[EGRESS_VERDICT_COUNT] = {};
	struct snap_ctx c = {};
	struct diag errors = {};
	int r;

	if (!d->state_dir || !d->kern)
		return 0;
	names_save(d);
	r = kern_read_counters(d->kern, snap_cb, &c);
	if (r >= 0)
		r = kern_read_overflow(d->kern, ov);
	for (unsigned v = 0; r >= 0 && v < EGRESS_VERDICT_COUNT; v++)
		if (ov[v].connections || ov[v].packets || ov[v].bytes)
			r = snap_add(&c, &(struct egress_counter_key){ .country = STATE_OVERFLOW_COUNTRY, .verdict = (uint8_t)v },
				     &ov[v]);
	if (r >= 0)
		r = state_write(d->state_dir, c.v, c.n, &errors);
	for (size_t i = 0; i < errors.n; i++)
		log_error("%s", errors.msgs[i]);
	if (r < 0)
		log_error("counter snapshot to %s failed: %s", d->state_dir, strerror(-r));
	else
		log_debug("counter snapshot: %zu records to %s", c.n, d->state_dir);
	diag_free(&errors);
	free(c.v);
	return r;
}

static int on_snapshot(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)snapshot_write(userdata);
	(void)sd_event_source_set_time(s, now_usec() + SNAPSHOT_USEC);
	(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

/* After a reboot (no pins adopted): put the last snapshot's counts back. */
static void snapshot_restore(struct egressd *d)
{
	struct state_record *v = NULL;
	struct diag errors = {};
	size_t n = 0;
	int r;

	if (!d->state_dir)
		return;
	r = state_read(d->state_dir, &v, &n, &errors);
	for (size_t i = 0; i < errors.n; i++)
		log_error("%s", errors.msgs[i]);
	diag_free(&errors);
	if (r == -ENOENT || r < 0)
		return;
	r = kern_restore_counters(d->kern, &v[0].key, &v[0].val, n, sizeof(*v));
	if (r < 0)
		log_error("restoring %zu counters from %s/" STATE_FILE ": %s", n, d->state_dir, strerror(-r));
	else
		log_notice("restored %zu counters from %s/" STATE_FILE, n, d->state_dir);
	free(v);
}

static int on_drain(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct egressd *d = userdata;

	d->event_walked = 0;
	(void)kern_events_consume(d->kern, event_cb, d);
	(void)events_flush(d->events, now_usec(), 0);
	(void)sd_event_source_set_time(s, now_usec() + DRAIN_USEC);
	(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

/* The kernel turns cgroup v2 socket matching off for good once net_cls/net_prio (cgroup v1) is
 * used; then no cgroup program runs for new sockets. Returns 1 (and logs once) if it is off. */
static int check_socket_matching(struct egressd *d)
{
	char *what = NULL;

	if (d->matching_off)
		return 1;
	if (cgroup_netcls_active(&what) <= 0)
		return 0;
	log_error("%s shows the kernel has turned off cgroup v2 socket matching (cgroup v1 net_cls/net_prio in "
		  "use): cgroup BPF programs no longer run for new sockets; nothing is enforced or counted "
		  "until reboot",
		  what);
	free(what);
	d->matching_off = 1;
	notify_status(d);
	return 1;
}

static int on_rescan(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct egressd *d = userdata;

	if (++d->rescans % 10 == 0)
		(void)check_socket_matching(d);
	struct resolved *res = NULL;
	struct diag errors = {};
	size_t nres = 0;

	if (resolve_cgroups(d->cgmount, &d->cfg, &res, &nres, &errors) >= 0) {
		if (!resolved_equal(res, nres, d->res, d->nres)) {
			if (sync_kernel(d, &d->cfg, res, nres, &errors) >= 0) {
				for (size_t i = 0; i < nres; i++)
					if (res[i].id)
						(void)id_name_set(&d->cgnames, &d->ncgnames, res[i].id, res[i].rel);
				log_info("cgroups changed: %d attached", d->attached);
				resolved_free(d->res, d->nres);
				d->res = res;
				d->nres = nres;
				res = NULL;
				nres = 0;
				notify_status(d);
			}
		}
	}
	for (size_t i = 0; i < errors.n; i++)
		log_warning("%s", errors.msgs[i]);
	diag_free(&errors);
	resolved_free(res, nres);
	(void)sd_event_source_set_time(s, now_usec() + RESCAN_USEC);
	(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct diag errors = {};

	(void)do_reload(userdata, &errors);
	diag_free(&errors);
	return 0;
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	sd_notify(0, "STOPPING=1");
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int prepare_socket_dir(const char *path)
{
	char *dir = strdup(path), *slash;
	int r = 0;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			r = -errno;
	}
	free(dir);
	return r;
}

/* 1 if a server accepts connections on the Unix socket at path (another egressd, or systemd
 * holding it for socket activation), else 0. */
/* Whether something listens on the Unix socket path: the pid that listens there (SO_PEERCRED),
 * 1 when in use by an unknown pid, 0 when not (nothing there, or nobody accepts). */
static pid_t socket_in_use_once(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred uc = {};
	socklen_t len = sizeof(uc);
	pid_t r = 0;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return 0;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		r = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0 && uc.pid > 0 ? uc.pid : 1;
	close(fd);
	return r;
}

/* socket_in_use_once, waiting up to 3 s for it to become free: an egressd killed with SIGKILL
 * keeps accepting on its socket while the kernel frees its maps (about 2 s with large ones). */
static pid_t socket_in_use(const char *path)
{
	pid_t r = socket_in_use_once(path);

	for (int i = 0; r > 0 && i < 30; i++) {
		(void)usleep(100 * 1000);
		r = socket_in_use_once(path);
	}
	return r;
}

int egressd_check(const char *config_path)
{
	struct config cfg = {};
	struct geo_db geo = {};
	struct table_image img = {};
	struct diag errors = {}, warnings = {};
	int r;

	r = config_load(config_path, &cfg, &errors);
	if (r >= 0) {
		struct resolved *res = NULL;
		size_t nres = 0;
		char *mount = NULL;

		diag_move(&warnings, &cfg.warnings);

		/* Unit= resolution and cross-policy cgroup conflicts; ids are not needed here. */
		if (cgroup_find_v2_mount(&mount) < 0)
			mount = NULL;
		r = resolve_cgroups(mount ? mount : "/nonexistent", &cfg, &res, &nres, &errors);
		resolved_free(res, nres);
		free(mount);
		if (r >= 0)
			r = check_geo_paths(&cfg, &errors);
		/* PinPath= must be on bpffs: fatal for enforce policies (as at start), else a warning. */
		if (r >= 0 && cfg.pin_path && *cfg.pin_path) {
			struct diag pe = {};

			if (kern_check_pin_path(cfg.pin_path, &pe) < 0) {
				for (size_t i = 0; i < pe.n; i++) {
					if (any_enforce(&cfg))
						diag_add(&errors, "%s: %s (a policy enforces: egressd would not start)",
							 cfg.path, pe.msgs[i]);
					else
						diag_add(&warnings, "%s: %s (monitor only: egressd would run without pins)",
							 cfg.path, pe.msgs[i]);
				}
				if (any_enforce(&cfg))
					r = -ENOTSUP;
			}
			diag_free(&pe);
		}
	}
	if (r >= 0) {
		r = compile_geo(&cfg, 1, &geo, &img, &errors, &warnings);
	}
	for (size_t i = 0; i < warnings.n; i++)
		fprintf(stderr, "warning: %s\n", warnings.msgs[i]);
	for (size_t i = 0; i < errors.n; i++)
		fprintf(stderr, "%s\n", errors.msgs[i]);
	if (r >= 0)
		printf("%s: valid: %zu policies, %zu regions, %" PRIu64 " IPv4 + %" PRIu64 " IPv6 prefixes "
		       "(%" PRIu64 " + %" PRIu64 " ranges, %zu KiB table)\n",
		       config_path, cfg.npolicies, cfg.nregions, geo.prefixes4, geo.prefixes6, img.n4, img.n6,
		       img.nwords * 8 / 1024);
	else if (errors.n == 0)
		fprintf(stderr, "%s: invalid: %s\n", config_path, strerror(-r));
	diag_free(&errors);
	diag_free(&warnings);
	table_image_free(&img);
	geo_db_free(&geo);
	if (cfg.path)
		config_free(&cfg);
	return r < 0 ? 1 : 0;
}

/* keep: leave programs attached and maps pinned (OnExit=keep, or a failed start that adopted an
 * earlier run's enforcement). */
static void egressd_free(struct egressd *d, int keep)
{
	api_free(d->api);
	sd_event_source_unref(d->rescan);
	sd_event_source_unref(d->drain);
	sd_event_source_unref(d->snapshot);
	free(d->state_dir);
	if (d->events) {
		(void)events_flush(d->events, now_usec(), 1); /* report what was held back */
		events_free(d->events);
	}
	sd_event_source_unref(d->events_src);
	kern_close(d->kern, keep);
	if (d->have_cfg) {
		geo_db_free(&d->geo);
		config_free(&d->cfg);
	}
	table_image_free(&d->img);
	free(d->geo_ids);
	resolved_free(d->res, d->nres);
	id_names_free(&d->cgnames, &d->ncgnames);
	id_names_free(&d->polnames, &d->npolnames);
	diag_free(&d->last_errors);
	diag_free(&d->last_warnings);
	free(d->cgmount);
	sd_event_unref(d->event);
}

static void libbpf_log(int level, const char *line)
{
	log_msg(level, "%s", line);
}

int egressd_run(const struct egressd_args *args)
{
	struct egressd d = { .config_path = args->config_path, .start_usec = now_usec(), .last_reload_ok = 1 };
	struct api_ops ops = {
		.userdata = &d,
		.status = op_status,
		.counters = op_counters,
		.metrics = op_metrics,
		.lookup = op_lookup,
		.policies = op_policies,
		.reload = op_reload,
		.provenance = op_provenance,
		.access_denied = op_access_denied,
	};
	struct diag errors = {}, warnings = {};
	sigset_t mask;
	struct group *g;
	char *pin_path = NULL;
	struct kern_sizes sizes = {};
	int r, exit_code = 1, listen_fd, pre_enforce = 1, keep = 0;

	/* Socket activation (egressd.socket): one listening AF_UNIX stream socket. */
	r = sd_listen_fds(1);
	if (r > 1 || (r == 1 && sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0)) {
		log_error("socket activation: expected one listening AF_UNIX stream socket, got %d fds", r);
		goto out;
	}
	if (r < 0)
		log_warning("sd_listen_fds: %s; binding the socket myself", strerror(-r));
	listen_fd = r == 1 ? SD_LISTEN_FDS_START : -1;

	/* A second daemon on the same socket would attach a second set of programs and take the
	 * socket from the first: refuse before touching the kernel. */
	if (listen_fd < 0) {
		struct config pre = {};

		if (config_load(d.config_path, &pre, &errors) >= 0) {
			pid_t busy = socket_in_use(pre.socket);

			if (busy > 1)
				log_error("%s: another process (pid %d) is serving this socket; refusing to start",
					  pre.socket, (int)busy);
			else if (busy)
				log_error("%s: another process is serving this socket; refusing to start", pre.socket);
			config_free(&pre);
			if (busy)
				goto out;
		}
		diag_free(&errors); /* reload() below reports configuration errors */
	}
	/* Where to pin (PinPath= of the configuration at start; empty = no pinning), and whether an
	 * unusable pin directory is fatal (it is when a policy enforces). */
	{
		struct config pre = {};

		if (config_load(d.config_path, &pre, &errors) < 0) {
			for (size_t i = 0; i < errors.n; i++)
				log_error("%s", errors.msgs[i]);
			diag_free(&errors); /* reported; out: would report them again */
			log_error("start failed: invalid configuration; nothing changed in the kernel (programs an "
				  "earlier run pinned stay attached)");
			goto out;
		}
		if (pre.pin_path && *pre.pin_path)
			pin_path = strdup(pre.pin_path);
		if (pre.state_dir && *pre.state_dir)
			d.state_dir = strdup(pre.state_dir);
		pre_enforce = any_enforce(&pre);
		sizes.events = pre.events_ring_bytes; /* EventsRingBytes=, 0 = the default */
		sizes.counters = pre.counter_entries; /* CounterEntries=, 0 = the default */
		config_free(&pre);
	}
	r = cgroup_find_v2_mount(&d.cgmount);
	if (r < 0) {
		log_error("cannot find the cgroup v2 mount in /proc/self/mountinfo: %s; refusing to start", strerror(-r));
		goto out;
	}
	if (check_socket_matching(&d) && pre_enforce) {
		log_error("refusing to start: a policy is in enforce mode and could not be enforced");
		goto out;
	}
	d.events = events_new(log_to_journal());
	if (!d.events) {
		log_error("out of memory");
		goto out;
	}
	kern_set_log(libbpf_log);
	r = kern_open_pinned(&d.kern, &sizes, pin_path, &errors, &warnings);
	if (r == -ENOTSUP && !pre_enforce) {
		for (size_t i = 0; i < errors.n; i++)
			log_warning("%s; monitor-only, so running without pins: counters end with this process",
				    errors.msgs[i]);
		diag_free(&errors);
		free(pin_path);
		pin_path = NULL;
		r = kern_open_pinned(&d.kern, &sizes, NULL, &errors, &warnings);
	}
	for (size_t i = 0; i < warnings.n; i++)
		log_warning("%s", warnings.msgs[i]);
	if (r < 0) {
		diag_free(&warnings);
		for (size_t i = 0; i < errors.n; i++)
			log_error("%s", errors.msgs[i]);
		diag_free(&errors);
		log_error("nothing is counted or enforced%s",
			  r == -EPERM ? ": egressd needs root, or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN" : "");
		goto out;
	}
	if (kern_adopted(d.kern) > 0)
		log_notice("adopted the pinned state of an earlier run from %s (%d maps): counters continue, "
			   "links are taken over in place", pin_path, kern_adopted(d.kern));
	names_load(&d);
	/* A failed start must not end the enforcement an earlier run left pinned. */
	keep = kern_adopted(d.kern) > 0 || kern_counters_continue(d.kern);
	if (!kern_counters_continue(d.kern))
		snapshot_restore(&d); /* no pins: a reboot (or OnExit=detach); counts from the snapshot */
	r = reload(&d, &errors);
	if (r < 0) {
		for (size_t i = 0; i < errors.n; i++)
			log_error("%s", errors.msgs[i]);
		diag_free(&errors);
		if (keep)
			log_error("the pinned programs of the earlier run stay attached");
		log_error("start failed: %s (errno %d); nothing attached", strerror(-r), -r);
		goto out;
	}
	diag_free(&errors);
	/* The start's own warnings (maps replaced) belong to its last_reload too (already logged). */
	for (size_t i = 0; i < warnings.n; i++)
		diag_add(&d.last_warnings, "%s", warnings.msgs[i]);
	diag_free(&warnings);
	/* An upgrade changed a counting map's layout: the earlier run's links now run this version's
	 * programs, so the old map is final and its counts go into the new one. */
	{
		struct diag notes = {};

		r = kern_carry_over(d.kern, &notes, &errors);
		for (size_t i = 0; i < notes.n; i++)
			log_notice("%s", notes.msgs[i]);
		for (size_t i = 0; i < errors.n; i++)
			log_error("%s", errors.msgs[i]);
		diag_free(&notes);
		diag_free(&errors);
		if (r < 0)
			log_error("counts of the replaced maps were not all carried over (%s); they stay pinned "
				  "and the next start tries again", strerror(-r));
	}
	if (d.attached == 0 && any_enforce(&d.cfg))
		log_warning("no configured cgroup exists yet: enforcement starts when one appears");

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	r = sd_event_default(&d.event);
	if (r < 0)
		goto fail_loop;
	r = sd_event_add_signal(d.event, NULL, SIGTERM, on_sigterm, &d);
	if (r >= 0)
		r = sd_event_add_signal(d.event, NULL, SIGINT, on_sigterm, &d);
	if (r >= 0)
		r = sd_event_add_signal(d.event, NULL, SIGHUP, on_sighup, &d);
	if (r >= 0)
		r = sd_event_add_time(d.event, &d.rescan, CLOCK_MONOTONIC, now_usec() + RESCAN_USEC, 100000, on_rescan, &d);
	if (r >= 0)
		r = sd_event_add_time(d.event, &d.snapshot, CLOCK_MONOTONIC, now_usec() + SNAPSHOT_USEC, 1000000,
				      on_snapshot, &d);
	if (r >= 0)
		r = sd_event_add_time(d.event, &d.drain, CLOCK_MONOTONIC, now_usec() + DRAIN_USEC, 10000, on_drain, &d);
	if (r >= 0)
		r = sd_event_add_io(d.event, &d.events_src, kern_events_fd(d.kern), EPOLLIN, on_events, &d);
	if (r >= 0)
		r = sd_event_set_watchdog(d.event, 1);
	if (r < 0)
		goto fail_loop;
	r = listen_fd < 0 ? prepare_socket_dir(d.cfg.socket) : 0;
	if (r < 0) {
		log_error("%s: cannot create the socket directory: %s", d.cfg.socket, strerror(-r));
		goto out;
	}
	r = api_start(d.event, d.cfg.socket, listen_fd, &ops, &d.api);
	if (r < 0) {
		log_error("%s: cannot serve the API: %s", d.cfg.socket, strerror(-r));
		goto out;
	}
	if (listen_fd < 0 && d.cfg.reader_group && *d.cfg.reader_group) {
		g = getgrnam(d.cfg.reader_group);
		if (!g)
			log_warning("ReaderGroup=%s: no such group; %s stays root-only", d.cfg.reader_group, d.cfg.socket);
		else if ((r = api_socket_chown(d.api, g->gr_gid)) < 0)
			log_warning("%s: chown to group %s: %s", d.cfg.socket, d.cfg.reader_group, strerror(-r));
	}
	if (d.cfg.admin_group && *d.cfg.admin_group) {
		g = getgrnam(d.cfg.admin_group);
		if (!g)
			log_warning("AdminGroup=%s: no such group; only root may reload", d.cfg.admin_group);
		else
			api_set_admin_gid(d.api, g->gr_gid);
	}
	if (d.cfg.reader_group && *d.cfg.reader_group) {
		g = getgrnam(d.cfg.reader_group);
		if (g)
			api_set_reader_gid(d.api, g->gr_gid);
	}
	r = api_start_metrics(d.api, d.cfg.metrics_listen);
	if (r < 0) {
		log_error("MetricsListen=%s: %s", d.cfg.metrics_listen, strerror(-r));
		goto out;
	}
	log_info("started: generation %" PRIu64 ", %zu policies, %d cgroups attached, %" PRIu64 " IPv4 + %" PRIu64
		 " IPv6 prefixes, API on %s",
		 d.generation, d.cfg.npolicies, d.attached, d.geo.prefixes4, d.geo.prefixes6, d.cfg.socket);
	sd_notify(0, "READY=1");
	notify_status(&d);
	r = sd_event_loop(d.event);
	if (r < 0)
		goto fail_loop;
	exit_code = 0;
	(void)kern_events_consume(d.kern, event_cb, &d); /* what is still in the ring */
	(void)snapshot_write(&d);
	keep = !d.cfg.on_exit_detach && pin_path;
	if (keep)
		log_info("stopping: programs stay attached and counters pinned in %s (OnExit=keep)", pin_path);
	else
		log_info("stopping: detaching programs%s", pin_path ? " and removing the pins (OnExit=detach)" : "");
	goto out;

fail_loop:
	log_error("event loop: %s", strerror(-r));
out:
	for (size_t i = 0; i < errors.n; i++)
		log_error("%s", errors.msgs[i]);
	diag_free(&errors);
	diag_free(&warnings);
	egressd_free(&d, keep);
	free(pin_path);
	return exit_code;
}
