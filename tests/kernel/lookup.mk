# SPDX-License-Identifier: LGPL-2.1-or-later
# Kernel cross-check of include/egress_lookup.h (tests/kernel/lookup_check.{c,bpf.c}); run as root:
#   make build/tests/lookup_check && build/tests/lookup_check
# $(BUILD)/tests/lookup_check.bpf is the linked BPF object the checker loads (the name also keeps
# the generic tests/kernel/%.c rule away from lookup_check.bpf.c, which KTOOL_BINS lists).

LOOKUP_CHECK_DEPS := table geo diag

$(BUILD)/tests/lookup_check.bpf.o: tests/kernel/lookup_check.bpf.c include/egress_lookup.h \
		include/egress_abi.h | $(BUILD)/tests
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/tests/lookup_check.bpf: $(BUILD)/tests/lookup_check.bpf.o
	$(call msg,GEN-OBJ,$@)
	$(Q)$(BPFTOOL) gen object $@ $<

$(BUILD)/tests/lookup_check: tests/kernel/lookup_check.c \
		$(patsubst %,$(BUILD)/obj/%.o,$(LOOKUP_CHECK_DEPS)) \
		$(BUILD)/tests/lookup_check.bpf | $(BUILD)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) \
		-DLOOKUP_CHECK_BPF_OBJ='"$(abspath $(BUILD)/tests/lookup_check.bpf)"' \
		-DLOOKUP_CHECK_GEO='"$(CURDIR)/data/geo/country.csv.gz"' \
		$(ALL_LDFLAGS) -o $@ $< $(patsubst %,$(BUILD)/obj/%.o,$(LOOKUP_CHECK_DEPS)) $(LIBS)
KTEST_BINS += $(BUILD)/tests/lookup_check
