#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# run.sh SECONDS TARGET...: run each built libFuzzer target $FUZZ_BUILD/fuzz_TARGET for SECONDS on
# its seed corpus (mkcorpus.sh) plus $FUZZ_BUILD/corpus/TARGET (where new inputs are kept).
# Prints per target "ok fuzz_T: N executions in S s (E exec/s), 0 crashes" or "FAILED fuzz_T: ..."
# with the crash report and the reproducer under $FUZZ_BUILD/artifacts/. Exit 1 if any failed.
set -u
cd "$(dirname "$0")/../.."
FUZZ_BUILD=${FUZZ_BUILD:-build/fuzz}
secs=$1
shift
fail=0
mkdir -p "$FUZZ_BUILD/artifacts"
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}
for t in "$@"; do
	bin=$FUZZ_BUILD/fuzz_$t
	if [ ! -x "$bin" ]; then
		echo "FAILED fuzz_$t: $bin is not built (make fuzz-build)"
		fail=1
		continue
	fi
	rm -rf "$FUZZ_BUILD/seeds/$t"
	bash tests/fuzz/mkcorpus.sh "$t" "$FUZZ_BUILD/seeds/$t"
	mkdir -p "$FUZZ_BUILD/corpus/$t"
	log=$FUZZ_BUILD/fuzz_$t.log
	"$bin" -max_total_time="$secs" -print_final_stats=1 -max_len=65536 -timeout=20 \
		-rss_limit_mb=4096 -artifact_prefix="$FUZZ_BUILD/artifacts/$t-" \
		"$FUZZ_BUILD/corpus/$t" "$FUZZ_BUILD/seeds/$t" >"$log" 2>&1
	rc=$?
	runs=$(grep -a "^stat::number_of_executed_units:" "$log" | tail -1 | grep -Eo "[0-9]+$")
	rate=$(grep -a "^stat::average_exec_per_sec:" "$log" | tail -1 | grep -Eo "[0-9]+$")
	cov=$(grep -aEo "cov: [0-9]+" "$log" | tail -1)
	if [ $rc -eq 0 ] && [ -n "$runs" ] && [ "$runs" -gt 0 ]; then
		echo "ok fuzz_$t: $runs executions in $secs s ($rate exec/s, $cov), 0 crashes"
	else
		echo "FAILED fuzz_$t: exit $rc after ${runs:-?} executions; log $log:"
		grep -E 'ERROR|SUMMARY|artifact|#[0-9]+ +in ' "$log" | head -30
		fail=1
	fi
done
exit $fail
