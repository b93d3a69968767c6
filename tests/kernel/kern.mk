# SPDX-License-Identifier: LGPL-2.1-or-later
# tests/kernel/kern_smoke: end-to-end check of daemon/kern.c + bpf/egress.bpf.c (needs root).
# Overrides the generic tests/kernel/%.c rule: links the loader, cgroup and diag modules.
KERN_SMOKE_DEPS := kern carry cgroup policy geo diag

$(BUILD)/tests/kern_smoke: tests/kernel/kern_smoke.c $(patsubst %,$(BUILD)/obj/%.o,$(KERN_SMOKE_DEPS)) | $(BUILD)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(patsubst %,$(BUILD)/obj/%.o,$(KERN_SMOKE_DEPS)) $(LIBS)
KTEST_BINS += $(BUILD)/tests/kern_smoke
