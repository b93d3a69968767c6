# SPDX-License-Identifier: LGPL-2.1-or-later
# tests/kernel/other_deny.bpf.c: another tool's program for the coexistence test.
$(BUILD)/tests/other_deny.bpf.o: tests/kernel/other_deny.bpf.c | $(BUILD)/tests
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

KTEST_BINS += $(BUILD)/tests/other_deny.bpf.o
