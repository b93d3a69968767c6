# SPDX-License-Identifier: LGPL-2.1-or-later
# Benchmark suite (bench/run.sh, `make bench`). bench/sock_rate and bench/udp_spray use the
# generic $(BUILD)/bench/% rule of the Makefile; these two need more.
# $(BUILD)/bench/bench.bpf is the linked BPF object (the name also keeps the generic rule, which
# BENCH_BINS lists for bench/bench.bpf.c, from compiling it with $(CC)).

LOOKUP_COST_DEPS := table geo diag

$(BUILD)/bench/bench.bpf.o: bench/bench.bpf.c include/egress_lookup.h include/egress_abi.h \
		| $(BUILD)/bench
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/bench/bench.bpf: $(BUILD)/bench/bench.bpf.o
	$(call msg,GEN-OBJ,$@)
	$(Q)$(BPFTOOL) gen object $@ $<

$(BUILD)/bench/lookup_cost: bench/lookup_cost.c $(patsubst %,$(BUILD)/obj/%.o,$(LOOKUP_COST_DEPS)) \
		| $(BUILD)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< \
		$(patsubst %,$(BUILD)/obj/%.o,$(LOOKUP_COST_DEPS)) $(LIBS)
