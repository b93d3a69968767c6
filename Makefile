# SPDX-License-Identifier: LGPL-2.1-or-later
# egressd - build, test, install.  `make help` lists the targets.

.DELETE_ON_ERROR:
.DEFAULT_GOAL := all
# Keep intermediate files (BPF objects) so a second make does nothing.
.SECONDARY:
.SUFFIXES:

PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share/egressd
SYSCONFDIR ?= /etc
MANDIR     ?= $(PREFIX)/share/man
DESTDIR    ?=

BUILD      ?= build
CC         ?= gcc
CLANG      ?= clang
BPFTOOL    ?= bpftool
PKG_CONFIG ?= pkg-config
VERSION    := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# SAN=1: AddressSanitizer + UndefinedBehaviorSanitizer build (own build directory).
ifeq ($(SAN),1)
BUILD := build-san
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

PKGS       := libbpf libelf zlib libsystemd libmicrohttpd json-c inih libmaxminddb libcrypto
CTL_PKGS   := libcurl json-c
TEST_PKGS  := cmocka
MULTIARCH  := $(shell $(CC) -print-multiarch 2>/dev/null)

CFLAGS     ?= -O2 -g
WFLAGS     := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2 -Wstrict-prototypes
ALL_CFLAGS := -std=gnu11 $(CFLAGS) $(WFLAGS) $(SAN_FLAGS) -D_GNU_SOURCE \
	      -DEGRESSD_VERSION='"$(VERSION)"' -DEGRESSD_DATADIR='"$(DATADIR)"' \
	      -Iinclude -Idaemon -I$(BUILD) $(shell $(PKG_CONFIG) --cflags $(PKGS) $(CTL_PKGS))
ALL_LDFLAGS := $(LDFLAGS) $(SAN_FLAGS)
LIBS       := $(shell $(PKG_CONFIG) --libs $(PKGS))
CTL_LIBS   := $(shell $(PKG_CONFIG) --libs $(CTL_PKGS))
TEST_LIBS  := $(shell $(PKG_CONFIG) --libs $(TEST_PKGS))

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Wextra -Werror -Wno-unused-parameter \
	      -Iinclude -Ibpf $(if $(MULTIARCH),-I/usr/include/$(MULTIARCH)) $(BPF_EXTRA_CFLAGS)

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS))
SKELS      := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))

MAIN_SRCS  := daemon/main.c daemon/egressctl.c
LIB_SRCS   := $(filter-out $(MAIN_SRCS),$(wildcard daemon/*.c))
LIB_OBJS   := $(patsubst daemon/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
LIB        := $(BUILD)/libegressd.a

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
# Kernel test tools: sockprobe (generic rule below); others come with their own rules in
# tests/*/NAME.mk and add themselves to KTEST_BINS.
KTOOL_BINS := $(BUILD)/tests/sockprobe
KTEST_BINS :=
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

BINS       := $(BUILD)/egressd $(BUILD)/egressctl

# Fragments of other parts (tests, docs, packaging, systemd) add rules here and may append to
# INSTALL_HOOKS / UNINSTALL_HOOKS (phony targets run by install / uninstall).
INSTALL_HOOKS :=
UNINSTALL_HOOKS :=
-include $(wildcard tests/*/*.mk docs/*.mk systemd/*.mk packaging/*.mk bench/*.mk)

.PHONY: all bench check check-unit check-kernel unit demo install uninstall clean help data

all: $(BINS) $(KTOOL_BINS) $(KTEST_BINS)

help:
	@echo 'Targets:'
	@echo '  all           build bpf objects, skeletons, egressd, egressctl (default)'
	@echo '  check         unit tests under ASan/UBSan, then kernel tests (root, real kernel)'
	@echo '  check-unit    unit tests only (add SAN=1 for sanitizers)'
	@echo '  check-kernel  kernel integration tests only (root)'
	@echo '  demo          run the demo on the embedded world data (root)'
	@echo '  bench         benchmark suite, one table (root; bench/README.md): lookup vs LPM trie,'
	@echo '                connect/sendto rates vs nftables, reload, /metrics, events'
	@echo '  install       install under DESTDIR/PREFIX (PREFIX=$(PREFIX))'
	@echo '  uninstall     remove what install put there'
	@echo '  clean         remove build directories'
	@echo '  deb, lintian  build the Debian package into $(BUILD)/ and check it (dpkg-buildpackage)'
	@echo '  rpm           build the RPM (packaging/rpm/egressd.spec; needs rpmbuild)'
	@echo '  fuzz          libFuzzer targets, FUZZ_SECONDS each (clang)'
	@echo 'Variables: V=1 (show commands), SAN=1 (sanitizers), PREFIX, DESTDIR, BUILD'

# ---- BPF ----------------------------------------------------------------------------------------
$(BUILD)/%.tmp.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.bpf.h) $(wildcard include/*.h) | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.bpf.o: $(BUILD)/%.tmp.bpf.o
	$(call msg,GEN-OBJ,$@)
	$(Q)$(BPFTOOL) gen object $@ $<

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@

# ---- userspace ----------------------------------------------------------------------------------
$(BUILD) $(BUILD)/obj $(BUILD)/tests:
	$(Q)mkdir -p $@

$(BUILD)/obj/%.o: daemon/%.c $(wildcard daemon/*.h) $(wildcard include/*.h) | $(BUILD)/obj
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# Objects embed DATADIR and VERSION: rebuild them when those change, so that
# `make && make install PREFIX=/usr` installs a binary that looks in /usr/share/egressd.
.PHONY: FORCE
FORCE:
$(BUILD)/paths.stamp: FORCE | $(BUILD)
	$(Q)echo '$(DATADIR) $(VERSION)' | cmp -s - $@ || echo '$(DATADIR) $(VERSION)' > $@
$(LIB_OBJS) $(BUILD)/obj/main.o $(BUILD)/obj/egressctl.o: $(BUILD)/paths.stamp

# Only the BPF loader includes the skeleton.
$(BUILD)/obj/kern.o: $(SKELS)

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/egressd: $(BUILD)/obj/main.o $(LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/egressctl: $(BUILD)/obj/egressctl.o
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CTL_LIBS)

# ---- tests --------------------------------------------------------------------------------------
# Each unit test links only the daemon modules it names in tests/unit/test_NAME.mk:
#   TEST_DEPS_NAME := geo diag
.SECONDEXPANSION:
$(BUILD)/tests/test_%: tests/unit/test_%.c $$(addprefix $(BUILD)/obj/,$$(addsuffix .o,$$(TEST_DEPS_$$*))) $(wildcard tests/unit/*.h) | $(BUILD)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit -DTEST_SRCDIR='"$(CURDIR)"' $(ALL_LDFLAGS) -o $@ $< \
		$(addprefix $(BUILD)/obj/,$(addsuffix .o,$(TEST_DEPS_$*))) $(TEST_LIBS) $(CTL_LIBS) $(LIBS)

$(BUILD)/tests/sockprobe: tests/kernel/sockprobe.c | $(BUILD)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $<

unit: $(UNIT_BINS)

# Unit tests: cmocka, each binary on its own; a failing one fails the target.
check-unit: $(UNIT_BINS)
	$(Q)set -e; fail=0; for t in $(UNIT_BINS); do \
		echo "== $$t"; $$t || fail=1; done; exit $$fail

# Kernel tests: real programs, a test cgroup and private network namespaces (needs root).
check-kernel: all
	$(Q)BUILD=$(BUILD) bash tests/kernel/run.sh

check:
	$(Q)$(MAKE) --no-print-directory SAN=1 check-unit
	$(Q)$(MAKE) --no-print-directory check-kernel

demo: all
	$(Q)bash scripts/demo.sh

$(BUILD)/bench:
	$(Q)mkdir -p $@

$(BUILD)/bench/%: bench/%.c | $(BUILD)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $<

# Benchmarks (root): the suite of bench/README.md (lookup cost against an LPM trie, connect and
# sendto rates against nftables, reload, /metrics, events), one table, results in bench/README.md.
bench: all $(BENCH_BINS)
	$(Q)BUILD=$(BUILD) bash bench/run.sh

# ---- install ------------------------------------------------------------------------------------
install: all
	$(Q)$(MAKE) --no-print-directory install-core $(INSTALL_HOOKS)

.PHONY: install-core
install-core:
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/geo \
		$(DESTDIR)$(SYSCONFDIR)/egressd/policies.d
	install -m 0755 $(BUILD)/egressd $(DESTDIR)$(SBINDIR)/egressd
	install -m 0755 $(BUILD)/egressctl $(DESTDIR)$(BINDIR)/egressctl
	install -m 0644 data/regions.conf $(DESTDIR)$(DATADIR)/regions.conf
	install -m 0644 data/geo/country.csv.gz data/geo/PROVENANCE $(DESTDIR)$(DATADIR)/geo/
	test -e $(DESTDIR)$(SYSCONFDIR)/egressd/egressd.conf || \
		install -m 0644 data/egressd.conf $(DESTDIR)$(SYSCONFDIR)/egressd/egressd.conf
	test -e $(DESTDIR)$(SYSCONFDIR)/egressd/policies.d/example.conf || \
		install -m 0644 data/policies.d/example.conf $(DESTDIR)$(SYSCONFDIR)/egressd/policies.d/example.conf

uninstall: $(UNINSTALL_HOOKS)
	rm -f $(DESTDIR)$(SBINDIR)/egressd $(DESTDIR)$(BINDIR)/egressctl
	rm -rf $(DESTDIR)$(DATADIR)
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/egressd (configuration)"

clean:
	rm -rf build build-san
