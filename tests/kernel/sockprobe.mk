# SPDX-License-Identifier: LGPL-2.1-or-later
# tests/kernel/sockprobe.c uses liburing (io_uring paths): link it (Debian: liburing-dev).
$(BUILD)/tests/sockprobe: ALL_LDFLAGS += -Wl,--push-state,--no-as-needed $(shell $(PKG_CONFIG) --libs liburing) -Wl,--pop-state
