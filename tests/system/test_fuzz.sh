#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Short bounded fuzz run for CI: build the libFuzzer targets (make fuzz-build, clang
# -fsanitize=fuzzer,address,undefined) and run each for FUZZ_SECONDS (default 15) on its seed
# corpus from the test data. Prints one ok/FAILED line per target with its executions; any crash,
# leak or sanitizer report fails. `make fuzz` is the longer run (60 s per target).
set -u
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-15}
export FUZZ_BUILD=${FUZZ_BUILD:-build/fuzz}
if ! command -v clang >/dev/null; then
	echo "FAILED test_fuzz: clang is not installed (scripts/deps.sh)"
	exit 1
fi
if ! make --no-print-directory -s fuzz-build FUZZ_BUILD="$FUZZ_BUILD" >"$FUZZ_BUILD.build.log" 2>&1; then
	echo "FAILED test_fuzz: make fuzz-build failed:"
	tail -20 "$FUZZ_BUILD.build.log"
	exit 1
fi
if bash tests/fuzz/run.sh "$secs" csv mmdb policy api; then
	echo "ok test_fuzz: 4 targets, $secs s each, 0 crashes"
else
	echo "FAILED test_fuzz"
	exit 1
fi
