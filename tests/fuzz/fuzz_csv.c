// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_csv.c - libFuzzer target for the CSV GeoIP loader (daemon/geo.c): the input is one file
 * as GeoDatabase= would name it (plain or gzip; the format is sniffed, so an input carrying the
 * MMDB marker reaches the MMDB walk). Seeds: the CSV files (plain and gzip) of
 * tests/data/geo and tests/data/cases.
 * Built and run by `make fuzz` (tests/fuzz/fuzz.mk).
 */
#include "fuzz_geo_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_geo_load(data, size);
}
