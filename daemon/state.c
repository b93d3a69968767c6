/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "state.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#define MAGIC "EGRSNAP1"
#define HDR_LEN 32

_Static_assert(sizeof(struct state_record) == 40, "snapshot record layout");

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t k = write(fd, p, len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

int state_write(const char *dir, const struct state_record *v, size_t n, struct diag *errors)
{
	size_t raw_len = n * sizeof(*v);
	uLongf comp_len = compressBound(raw_len);
	uint8_t hdr[HDR_LEN], *comp = NULL;
	char *path = NULL, *tmp = NULL;
	int fd = -1, dfd = -1, r;

	if (n > STATE_MAX_RECORDS)
		return -E2BIG;
	if (asprintf(&path, "%s/" STATE_FILE, dir) < 0 || asprintf(&tmp, "%s/." STATE_FILE ".tmp", dir) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		diag_add(errors, "%s: %s", dir, strerror(-r));
		goto out;
	}
	comp = malloc(comp_len ? comp_len : 1);
	if (!comp) {
		r = -ENOMEM;
		goto out;
	}
	if (compress2(comp, &comp_len, (const Bytef *)v, raw_len, Z_BEST_SPEED) != Z_OK) {
		r = -EIO;
		diag_add(errors, "%s: compressing the snapshot failed", path);
		goto out;
	}
	memcpy(hdr, MAGIC, 8);
	put32(hdr + 8, STATE_VERSION);
	put32(hdr + 12, (uint32_t)crc32(crc32(0, NULL, 0), (const Bytef *)v, (uInt)raw_len));
	put64(hdr + 16, raw_len);
	put64(hdr + 24, comp_len);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		diag_add(errors, "%s: %s", tmp, strerror(-r));
		goto out;
	}
	r = write_all(fd, hdr, sizeof(hdr));
	if (r == 0)
		r = write_all(fd, comp, comp_len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && close(fd) < 0)
		r = -errno;
	fd = -1;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		diag_add(errors, "%s: writing the snapshot failed: %s", path, strerror(-r));
		(void)unlink(tmp);
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		(void)fsync(dfd); /* the rename itself */
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	free(comp);
	free(path);
	free(tmp);
	return r;
}

/* Set a bad snapshot aside so it is reported once and never loaded. */
static int corrupt(const char *path, const char *why, struct diag *errors)
{
	char *aside = NULL;

	if (asprintf(&aside, "%s.corrupt", path) >= 0 && rename(path, aside) == 0)
		diag_add(errors, "%s: %s; set aside as %s, counters start from zero", path, why, aside);
	else
		diag_add(errors, "%s: %s; counters start from zero", path, why);
	free(aside);
	return -EBADMSG;
}

int state_read(const char *dir, struct state_record **ret, size_t *ret_n, struct diag *errors)
{
	uint8_t hdr[HDR_LEN], *comp = NULL, *raw = NULL;
	uint64_t raw_len, comp_len;
	char *path = NULL;
	struct stat st;
	uLongf got;
	ssize_t k;
	int fd = -1, r;

	if (asprintf(&path, "%s/" STATE_FILE, dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (r != -ENOENT)
			diag_add(errors, "%s: %s", path, strerror(-r));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	k = read(fd, hdr, sizeof(hdr));
	if (k != (ssize_t)sizeof(hdr) || memcmp(hdr, MAGIC, 8) != 0) {
		r = corrupt(path, "not an egressd counter snapshot (bad header)", errors);
		goto out;
	}
	if (get32(hdr + 8) != STATE_VERSION) {
		r = corrupt(path, "snapshot version not understood", errors);
		goto out;
	}
	raw_len = get64(hdr + 16);
	comp_len = get64(hdr + 24);
	if (raw_len % sizeof(struct state_record) || raw_len / sizeof(struct state_record) > STATE_MAX_RECORDS ||
	    comp_len != (uint64_t)st.st_size - HDR_LEN) {
		r = corrupt(path, "truncated or inconsistent snapshot", errors);
		goto out;
	}
	comp = malloc(comp_len ? comp_len : 1);
	raw = malloc(raw_len ? raw_len : 1);
	if (!comp || !raw) {
		r = -ENOMEM;
		goto out;
	}
	k = read(fd, comp, comp_len);
	got = raw_len;
	if (k != (ssize_t)comp_len || uncompress(raw, &got, comp, comp_len) != Z_OK || got != raw_len) {
		r = corrupt(path, "snapshot data does not decompress", errors);
		goto out;
	}
	if ((uint32_t)crc32(crc32(0, NULL, 0), raw, (uInt)raw_len) != get32(hdr + 12)) {
		r = corrupt(path, "snapshot CRC mismatch", errors);
		goto out;
	}
	*ret = (struct state_record *)raw;
	*ret_n = raw_len / sizeof(struct state_record);
	raw = NULL;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(comp);
	free(raw);
	free(path);
	return r;
}
