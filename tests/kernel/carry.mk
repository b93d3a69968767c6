# SPDX-License-Identifier: LGPL-2.1-or-later
# tests/kernel/carry_check: counts carried over a map layout change (needs root). Built from the
# daemon sources with AddressSanitizer + UndefinedBehaviorSanitizer, whatever SAN= says.
CARRY_CHECK_SRCS := $(patsubst %,daemon/%.c,kern carry cgroup policy geo diag)
CARRY_SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

$(BUILD)/tests/carry_check: tests/kernel/carry_check.c $(CARRY_CHECK_SRCS) $(wildcard daemon/*.h) $(wildcard include/*.h) $(SKELS) | $(BUILD)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(CARRY_SAN) $(ALL_LDFLAGS) $(CARRY_SAN) -o $@ $< $(CARRY_CHECK_SRCS) $(LIBS)
KTEST_BINS += $(BUILD)/tests/carry_check
