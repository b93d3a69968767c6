# SPDX-License-Identifier: LGPL-2.1-or-later
# Man pages (hand-written man(7) sources, installed gzip -9n) and the bash completion of egressctl.
# Included by the top Makefile; install/uninstall run the hooks appended below.
#   make install-docs [DESTDIR=...] [PREFIX=...]   make uninstall-docs   make check-docs (root)

DOCS_MAN8   := docs/egressd.8 docs/egressctl.8
DOCS_MAN5   := docs/egressd.conf.5
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions

.PHONY: install-docs uninstall-docs check-docs

install-docs:
	install -d $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(BASHCOMPDIR)
	set -e; for f in $(DOCS_MAN8); do \
		gzip -9n -c $$f > $(DESTDIR)$(MANDIR)/man8/$${f##*/}.gz; \
		chmod 0644 $(DESTDIR)$(MANDIR)/man8/$${f##*/}.gz; done
	set -e; for f in $(DOCS_MAN5); do \
		gzip -9n -c $$f > $(DESTDIR)$(MANDIR)/man5/$${f##*/}.gz; \
		chmod 0644 $(DESTDIR)$(MANDIR)/man5/$${f##*/}.gz; done
	install -m 0644 completions/egressctl.bash $(DESTDIR)$(BASHCOMPDIR)/egressctl

uninstall-docs:
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(addsuffix .gz,$(notdir $(DOCS_MAN8)))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man5/,$(addsuffix .gz,$(notdir $(DOCS_MAN5)))) \
		$(DESTDIR)$(BASHCOMPDIR)/egressctl

# Lint the pages, compare them with --help and the parser's key tables, load the completion.
check-docs: $(BUILD)/egressd $(BUILD)/egressctl
	$(Q)BUILD=$(BUILD) bash tests/system/test_docs.sh

INSTALL_HOOKS += install-docs
UNINSTALL_HOOKS += uninstall-docs
