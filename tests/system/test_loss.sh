#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Loss accounting: 50,000 denied connects with the event consumer stopped (tests/system/test_loss.py).
cd "$(dirname "$0")/../.."
exec python3 tests/system/test_loss.py
