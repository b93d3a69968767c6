# SPDX-License-Identifier: LGPL-2.1-or-later
# Packages. Included by the top Makefile.
#   make deb      .deb from a copy of this tree (dpkg-buildpackage -us -uc -b): $(BUILD)/egressd_VERSION_ARCH.deb
#                 DEB_BUILD_OPTIONS is passed through (nocheck skips the unit tests, parallel=N)
#   make lintian  lintian on what make deb built
#   make rpm      binary RPM with rpmbuild from a tarball of this tree: $(BUILD)/rpm/RPMS/ARCH/
#                 RPMBUILD_FLAGS: e.g. --nodeps on a host whose rpm database has no build deps

DEB_TOP    := $(BUILD)/deb
DEB_SRC    := $(DEB_TOP)/egressd-$(VERSION)
DEB_ARCH   := $(shell dpkg --print-architecture 2>/dev/null)
DEB_FILE   := $(BUILD)/egressd_$(VERSION)_$(DEB_ARCH).deb
RPM_TOP    := $(BUILD)/rpm
RPMBUILD_FLAGS ?=

.PHONY: deb lintian rpm

# The copy leaves out git metadata and every build directory; packaging/debian becomes debian/.
# The version in debian/changelog must be the one in VERSION (native package, no revision).
deb:
	$(Q)cl=$$(dpkg-parsechangelog -l packaging/debian/changelog -S Version); \
	if [ "$$cl" != "$(VERSION)" ]; then \
		echo "packaging/debian/changelog is at $$cl, VERSION is $(VERSION): add a changelog entry" >&2; \
		exit 1; fi
	rm -rf $(DEB_TOP)
	mkdir -p $(DEB_SRC)
	tar -cf - --exclude=./.git --exclude=./build --exclude=./build-san --exclude='./$(BUILD)' \
		--exclude=./debian . | tar -xf - -C $(DEB_SRC)
	cp -a packaging/debian $(DEB_SRC)/debian
	cd $(DEB_SRC) && dpkg-buildpackage -us -uc -b
	cp $(DEB_TOP)/egressd_$(VERSION)_$(DEB_ARCH).deb $(DEB_FILE)
	@echo "  DEB      $(DEB_FILE)"

lintian:
	lintian --info --display-info --pedantic $(DEB_TOP)/egressd_$(VERSION)_$(DEB_ARCH).changes

rpm:
	$(Q)sv=$$(sed -n 's/^Version: *//p' packaging/rpm/egressd.spec); \
	if [ "$$sv" != "$(VERSION)" ]; then \
		echo "packaging/rpm/egressd.spec is at $$sv, VERSION is $(VERSION)" >&2; exit 1; fi
	rm -rf $(RPM_TOP)
	mkdir -p $(RPM_TOP)/SOURCES
	tar -czf $(RPM_TOP)/SOURCES/egressd-$(VERSION).tar.gz --transform 's|^\.|egressd-$(VERSION)|' \
		--exclude=./.git --exclude=./build --exclude=./build-san --exclude='./$(BUILD)' .
	cp systemd/egressd.sysusers $(RPM_TOP)/SOURCES/
	rpmbuild -bb $(RPMBUILD_FLAGS) --define '_topdir $(abspath $(RPM_TOP))' packaging/rpm/egressd.spec
