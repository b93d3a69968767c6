# SPDX-License-Identifier: LGPL-2.1-or-later
# libFuzzer targets (clang -fsanitize=fuzzer,address,undefined), one per parser:
#   fuzz_csv (CSV loader), fuzz_mmdb (MMDB walk), fuzz_policy (configuration), fuzz_api (HTTP API).
# `make fuzz` builds them under $(FUZZ_BUILD) and runs each for FUZZ_SECONDS (default 60) on its
# seed corpus (tests/fuzz/mkcorpus.sh, from the test data); new inputs go to
# $(FUZZ_BUILD)/corpus/TARGET, crashes to $(FUZZ_BUILD)/artifacts/TARGET-*. A crash fails the target.
# `make fuzz-build` only builds them. tests/system/test_fuzz.sh is the short run of CI.

FUZZ_BUILD   ?= build/fuzz
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := csv mmdb policy api
FUZZ_BINS    := $(addprefix $(FUZZ_BUILD)/fuzz_,$(FUZZ_TARGETS))
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -Wall -Wextra -Werror -Wno-unused-parameter $(FUZZ_SAN) \
		-fsanitize=fuzzer-no-link -D_GNU_SOURCE -DEGRESSD_VERSION='"$(VERSION)"' \
		-DEGRESSD_DATADIR='"$(CURDIR)/data"' -Iinclude -Idaemon \
		$(shell $(PKG_CONFIG) --cflags $(PKGS))

# daemon modules each target links
FUZZ_DEPS_csv    := geo diag
FUZZ_DEPS_mmdb   := geo diag
FUZZ_DEPS_policy := policy geo diag
FUZZ_DEPS_api    := api render model geo policy diag

.PHONY: fuzz fuzz-build

$(FUZZ_BUILD)/obj:
	$(Q)mkdir -p $@

$(FUZZ_BUILD)/obj/%.o: daemon/%.c $(wildcard daemon/*.h) include/egress_abi.h | $(FUZZ_BUILD)/obj
	$(call msg,FUZZ-CC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

define FUZZ_RULE
$(FUZZ_BUILD)/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(wildcard tests/fuzz/*.h) $(addprefix $(FUZZ_BUILD)/obj/,$(addsuffix .o,$(FUZZ_DEPS_$(1))))
	$$(call msg,FUZZ-LD,$$@)
	$$(Q)$$(FUZZ_CC) $$(FUZZ_CFLAGS) -Itests/fuzz -fsanitize=fuzzer -o $$@ $$< \
		$(addprefix $(FUZZ_BUILD)/obj/,$(addsuffix .o,$(FUZZ_DEPS_$(1)))) $$(LIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_RULE,$(t))))

fuzz-build: $(FUZZ_BINS)

# Each target in turn (tests/fuzz/run.sh): fresh seeds from the test data plus what earlier runs
# found, libFuzzer's statistics (executions) at the end; the first crash fails the target.
fuzz: $(FUZZ_BINS)
	$(Q)FUZZ_BUILD=$(FUZZ_BUILD) bash tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)
