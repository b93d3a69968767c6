/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

static int max_level = LOG_INFO;

void log_set_level(int level)
{
	max_level = level;
}

int log_get_level(void)
{
	return max_level;
}

int log_level_from_string(const char *s)
{
	static const char *const names[] = { "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" };

	for (int i = 0; i < 8; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	if (strcmp(s, "error") == 0)
		return LOG_ERR;
	if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
		return s[0] - '0';
	return -EINVAL;
}

int log_to_journal(void)
{
	static int journal = -1;

	if (journal < 0) {
		const char *t = getenv("EGRESSD_LOG_TARGET"), *js = getenv("JOURNAL_STREAM");
		unsigned long long dev, ino;
		struct stat st;

		if (t && strcmp(t, "journal") == 0)
			journal = 1;
		else if (t && strcmp(t, "console") == 0)
			journal = 0;
		else
			journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
				  (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
	}
	return journal;
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > max_level)
		return;
	if (log_to_journal()) {
		char *m = NULL;

		va_start(ap, fmt);
		if (vasprintf(&m, fmt, ap) < 0)
			m = NULL;
		va_end(ap);
		if (m) {
			sd_journal_send("MESSAGE=%s", m, "PRIORITY=%d", level, "SYSLOG_IDENTIFIER=egressd", NULL);
			free(m);
		}
		return;
	}
	fputs("egressd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
