#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
exec python3 "$(dirname "$0")/apilimit.py"
