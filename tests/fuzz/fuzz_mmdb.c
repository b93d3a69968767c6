// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_mmdb.c - libFuzzer target for the MMDB walk (daemon/geo.c load_mmdb over libmaxminddb):
 * the input is written to a memfd and loaded as a GeoDatabase= file. Inputs without the MMDB
 * metadata marker get it appended with a minimal metadata map (so mutations of the tree and data
 * section are still read as MMDB, not CSV). Seeds: the MMDB files (plain and gzip) of tests/data/geo.
 * Built and run by `make fuzz` (tests/fuzz/fuzz.mk).
 */
#include "fuzz_geo_common.h"

#define MARKER "\xab\xcd\xefMaxMind.com"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* metadata map: node_count 1, record_size 24, ip_version 4 (MMDB spec 2.0 encoding) */
	static const uint8_t meta[] = MARKER
		"\xe3" /* map, 3 pairs */
		"\x4anode_count" "\xc1\x01" /* uint32 1 */
		"\x4brecord_size" "\xa1\x18" /* uint16 24 */
		"\x4aip_version" "\xa1\x04"; /* uint16 4 */
	uint8_t *buf;
	int r;

	if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b)
		return fuzz_geo_load(data, size); /* gzip: as is */
	if (memmem(data, size, MARKER, sizeof(MARKER) - 1))
		return fuzz_geo_load(data, size);
	buf = malloc(size + sizeof(meta));
	if (!buf)
		abort();
	if (size)
		memcpy(buf, data, size);
	memcpy(buf + size, meta, sizeof(meta) - 1);
	r = fuzz_geo_load(buf, size + sizeof(meta) - 1);
	free(buf);
	return r;
}
