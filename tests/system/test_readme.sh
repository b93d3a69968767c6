#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# .ci/run runs exactly the test command the README gives users (its second command block).
set -u
cd "$(dirname "$0")/../.."
readme=$(awk '/^```sh/{b++; next} /^```/{next} b==2 && !/^#/ && NF {print; exit}' README.md)
ci=$(grep -v '^#' .ci/run | grep -v '^set \|^cd ' | sed '/^$/d' | tail -n 1)
if [ -n "$readme" ] && [ "$readme" = "$ci" ]; then
	echo "ok     .ci/run runs the README's test command: $ci"
else
	echo "FAILED README test command '$readme' != .ci/run '$ci'"
	exit 1
fi
