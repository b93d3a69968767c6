# SPDX-License-Identifier: LGPL-2.1-or-later
TEST_DEPS_api := api render model geo policy diag
# test_api runs $(BUILD)/egressctl end to end (it SKIPs that test when the binary is missing).
$(BUILD)/tests/test_api: | $(BUILD)/egressctl
