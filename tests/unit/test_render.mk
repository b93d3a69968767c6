# SPDX-License-Identifier: LGPL-2.1-or-later
TEST_DEPS_render := render model geo policy diag
