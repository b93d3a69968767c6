#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# mkcorpus.sh TARGET DIR: fill DIR with the seed corpus of fuzz target TARGET (csv, mmdb, policy,
# api), taken from the test data of the source tree (run from its top directory).
set -euo pipefail
t=$1 out=$2
mkdir -p "$out"
case $t in
csv)
	cp tests/data/geo/*.csv tests/data/geo/*.csv.gz tests/data/cases/*.csv "$out"/
	;;
mmdb)
	cp tests/data/geo/*.mmdb tests/data/geo/*.mmdb.gz "$out"/
	;;
policy)
	# first byte: 0 the main file, 1 a policy file, 2 the regions file (fuzz_policy.c)
	n=0
	for f in tests/data/config/*/egressd.conf data/egressd.conf; do
		[ -f "$f" ] || continue
		{ printf '\0'; cat "$f"; } >"$out/main-$n"; n=$((n + 1))
	done
	for f in tests/data/config/*/policies.d/*.conf data/policies.d/*.conf; do
		[ -f "$f" ] || continue
		{ printf '\1'; cat "$f"; } >"$out/policy-$n"; n=$((n + 1))
	done
	{ printf '\2'; cat data/regions.conf; } >"$out/regions"
	;;
api)
	cp tests/fuzz/seeds/api/* "$out"/
	;;
*)
	echo "mkcorpus.sh: unknown target '$t'" >&2
	exit 2
	;;
esac
