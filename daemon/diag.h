/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * diag.h - a list of one-line diagnostics ("FILE:LINE: message") collected by library-like code
 * (parsers, compilers) for the caller to print, log or return through the API.
 */
#ifndef EGRESSD_DIAG_H
#define EGRESSD_DIAG_H

#include <stdarg.h>
#include <stddef.h>

struct diag {
	char **msgs; /* n heap strings, no trailing newline */
	size_t n;
};

/* Append one printf-formatted message. On out-of-memory the message is dropped; the caller's
 * error return still reports the failure. */
void diag_add(struct diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* diag_add with a va_list (ap is consumed). */
void diag_addv(struct diag *d, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Move all messages of src to the end of dst; src is left empty. */
void diag_move(struct diag *dst, struct diag *src);

/* Free all messages; d is left empty and reusable. */
void diag_free(struct diag *d);

#endif
