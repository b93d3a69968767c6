# SPDX-License-Identifier: LGPL-2.1-or-later
# systemd integration files: service and socket units, sysusers.d and tmpfiles.d snippets, the
# journal message catalog. Included by the top Makefile; install/uninstall run the hooks below.
#   make install-systemd [DESTDIR=...] [PREFIX=...]   make uninstall-systemd   make check-units
#
# Unit directory: /lib/systemd/system for PREFIX=/usr (Debian 12, where dpkg does not yet ship
# units under /usr/lib), else PREFIX/lib/systemd/system (systemd reads /usr/local/lib/systemd/system).

SYSTEMDUNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR    ?= $(PREFIX)/lib/tmpfiles.d
CATALOGDIR     ?= $(PREFIX)/lib/systemd/catalog

SYSTEMD_UNITS  := systemd/egressd.service systemd/egressd.socket

.PHONY: install-systemd uninstall-systemd check-units

# The unit names /usr/sbin/egressd; another SBINDIR gets its own path written in.
install-systemd:
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
		$(DESTDIR)$(CATALOGDIR)
	sed 's|^ExecStart=/usr/sbin/egressd|ExecStart=$(SBINDIR)/egressd|' systemd/egressd.service \
		> $(DESTDIR)$(SYSTEMDUNITDIR)/egressd.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/egressd.service
	install -m 0644 systemd/egressd.socket $(DESTDIR)$(SYSTEMDUNITDIR)/egressd.socket
	install -m 0644 systemd/egressd.sysusers $(DESTDIR)$(SYSUSERSDIR)/egressd.conf
	install -m 0644 systemd/egressd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/egressd.conf
	install -m 0644 systemd/egressd.catalog $(DESTDIR)$(CATALOGDIR)/egressd.catalog

uninstall-systemd:
	rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/egressd.service $(DESTDIR)$(SYSTEMDUNITDIR)/egressd.socket \
		$(DESTDIR)$(SYSUSERSDIR)/egressd.conf $(DESTDIR)$(TMPFILESDIR)/egressd.conf \
		$(DESTDIR)$(CATALOGDIR)/egressd.catalog

# systemd-analyze verify on the units as installed (needs the binaries: builds them).
check-units: $(BUILD)/egressd
	$(Q)BUILD=$(BUILD) bash tests/system/test_units.sh

INSTALL_HOOKS += install-systemd
UNINSTALL_HOOKS += uninstall-systemd
