# SPDX-License-Identifier: LGPL-2.1-or-later
TEST_DEPS_carry := carry diag
