#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Kernel integration tests: every tests/kernel/test_*.sh and e2e.py against the real kernel.
# Needs root; each test cleans up its cgroups, namespaces, pins and processes on every exit path.
set -u
cd "$(dirname "$0")/../.."
export BUILD=${BUILD:-build}
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: kernel tests need root (BPF, cgroups, network namespaces)"
	exit 77
fi
fail=0
for t in "$BUILD"/tests/kern_smoke "$BUILD"/tests/carry_check "$BUILD"/tests/lookup_check; do
	echo "== $t"
	if [ ! -x "$t" ]; then
		echo "FAIL: $t is not built (make all builds it)"
		fail=1
		continue
	fi
	"$t"
	rc=$?
	# 77 = SKIP; on machines where these tests can run (CI here) a SKIP is a failure.
	[ $rc -eq 0 ] || fail=1
done
# System tests (units, packages, man pages, notify protocol, ...): each prints its own result line.
for t in tests/system/test_*.sh; do
	[ -e "$t" ] || continue
	echo "== $t"
	bash "$t" || fail=1
done
echo "== tests/kernel/e2e.py"
python3 tests/kernel/e2e.py || fail=1
echo "== tests/kernel/paths.py"
python3 tests/kernel/paths.py || fail=1
exit $fail
