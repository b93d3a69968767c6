#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# systemd/egressd.catalog parses with journalctl and defines the MESSAGE_IDs daemon/events.h uses.
set -u
cd "$(dirname "$0")/../.."
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/lib/systemd/catalog"
cp systemd/egressd.catalog "$root/usr/lib/systemd/catalog/"
fail=0
journalctl --root="$root" --update-catalog || fail=1
list=$(journalctl --root="$root" --list-catalog 2>&1)
for id in $(sed -n 's/^#define EGRESSD_[A-Z_]*MESSAGE_ID "\([0-9a-f]*\)"$/\1/p' daemon/events.h); do
	if grep -q "^$id egressd: " <<<"$list"; then
		echo "ok     catalog entry $id"
	else
		echo "FAILED catalog entry $id missing: $list"
		fail=1
	fi
done
exit $fail
