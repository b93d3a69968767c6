/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tcheck.h - the check() of the C kernel tests: counts passes, prints "FAIL: MESSAGE" to stderr for
 * each failure, and tcheck_summary() prints "ok|FAIL: N checks passed, M failed" and returns the
 * exit code (0 or 1). Header-only; one test program per translation unit.
 */
#ifndef EGRESSD_TCHECK_H
#define EGRESSD_TCHECK_H

#include <stdarg.h>
#include <stdio.h>

static int tcheck_failures, tcheck_passes;

/* ok != 0: one pass; else one failure, described by the printf-formatted fmt. */
static void __attribute__((format(printf, 2, 3), unused)) check(int ok, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		tcheck_passes++;
		return;
	}
	tcheck_failures++;
	fprintf(stderr, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Print the summary line on stdout; returns the exit code: 0 when nothing failed, else 1. */
static int __attribute__((unused)) tcheck_summary(void)
{
	printf("%s: %d checks passed, %d failed\n", tcheck_failures ? "FAIL" : "ok", tcheck_passes,
	       tcheck_failures);
	return tcheck_failures ? 1 : 0;
}

#endif
