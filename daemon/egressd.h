/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * egressd.h - the daemon core: one sd-event loop that owns the configuration, the GeoIP data and
 * table generation, the BPF programs (kern.h) and the API (api.h), and reloads them as a unit.
 */
#ifndef EGRESSD_EGRESSD_H
#define EGRESSD_EGRESSD_H

struct egressd_args {
	const char *config_path; /* default EGRESSD_DEFAULT_CONFIG */
	int check; /* --check: validate configuration, policies and GeoIP data, then exit */
};

/* Validate everything without touching the kernel: prints "FILE:LINE: message" errors to stderr
 * and a one-line summary to stdout. Returns 0 when valid, 1 when invalid (the exit code). */
int egressd_check(const char *config_path);

/* Load, attach, serve until SIGTERM/SIGINT; SIGHUP reloads. Returns the process exit code:
 * 0 after a clean stop, 1 when the start failed (nothing was left attached). */
int egressd_run(const struct egressd_args *args);

#endif
