#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# egressd as a systemd service: notify protocol, socket activation, reloads, journal (root).
exec python3 "$(dirname "$0")/service.py"
