#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Failure modes that must never fail open silently (root).
exec python3 "$(dirname "$0")/failmodes.py"
