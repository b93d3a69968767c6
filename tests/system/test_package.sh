#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Debian package, for real: build it (make deb), install it with dpkg on this machine, check
# what postinst did and that the installed configuration is valid and runs, then purge it and
# check that nothing is left. Needs root. The package is purged on every exit path.
#
# The whole install/purge cycle runs in a private mount namespace with a fresh bpffs on
# /sys/fs/bpf (and a private /run/egressd if one exists), so the pins of any other egressd on
# this machine are never touched; dpkg still writes the real /usr, /etc and /var.
# Refuses (SKIP) when egressd is already installed, or when paths the package owns or its purge
# removes exist already (/etc/egressd, /usr/sbin/egressd, group egress-audit). A /var/lib/egressd
# left by an egressd run by hand (default StateDirectory=, e.g. make demo) is moved aside for the
# test and put back at exit, when no egressd is running.
set -u
cd "$(dirname "$0")/../.."
top=$PWD

skip() { echo "SKIP: $*"; exit 77; }

if [ "${EGRESSD_PKG_INNER:-}" != 1 ]; then
	# ---- outer: preconditions, build, then the cycle in its own mount namespace --------------
	[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i, dpkg --purge)"
	for t in dpkg-buildpackage dh dpkg-parsechangelog unshare systemd-analyze systemd-sysusers; do
		command -v "$t" > /dev/null || skip "$t is not installed (scripts/deps.sh installs it)"
	done
	[ "$(stat -f -c %T /sys/fs/bpf 2> /dev/null)" = bpf_fs ] || skip "no bpffs on /sys/fs/bpf"
	if dpkg-query -W -f='${Status}' egressd 2> /dev/null | grep -q 'installed\|config-files'; then
		skip "a package egressd is already on this machine ($(dpkg-query -W -f='${Version} ${Status}' egressd)); not touching it"
	fi
	for p in /etc/egressd /usr/sbin/egressd /usr/bin/egressctl /usr/share/egressd \
		/lib/systemd/system/egressd.service /lib/systemd/system/egressd.socket; do
		[ -e "$p" ] && skip "$p exists (not from a package): the package would take it over and its purge delete it"
	done
	getent group egress-audit > /dev/null && skip "group egress-audit exists already: the purge would remove it"

	aside=
	if [ -e /var/lib/egressd ]; then
		pgrep -x egressd > /dev/null && skip "/var/lib/egressd exists and an egressd is running (pid $(pgrep -x egressd | tr '\n' ' '))"
		aside=/var/lib/egressd.pkgtest-$$
	fi
	tmp=$(mktemp -d /tmp/egressd-pkg.XXXXXX)
	purge_in_ns() {
		# Only ever purge in a namespace with its own bpffs: never the machine's pins.
		dpkg-query -W -f='${Status}' egressd 2> /dev/null | grep -q 'installed\|config-files' || return 0
		echo "cleanup: dpkg --purge egressd"
		unshare --mount --propagation private sh -c \
			'mount -t bpf bpf /sys/fs/bpf && dpkg --purge egressd' > "$tmp/purge-outer.log" 2>&1 ||
			cat "$tmp/purge-outer.log"
	}
	cleanup() {
		purge_in_ns
		if [ -n "$aside" ] && [ -e "$aside" ]; then
			rm -rf /var/lib/egressd
			mv "$aside" /var/lib/egressd
		fi
		rm -rf "$tmp"
	}
	trap cleanup EXIT
	trap 'exit 1' INT TERM
	if [ -n "$aside" ]; then
		mv /var/lib/egressd "$aside" || { echo "FAILED cannot move /var/lib/egressd aside"; exit 1; }
		echo "ok     /var/lib/egressd of an earlier egressd run moved aside to $aside until the end"
	fi

	start=$(date +%s)
	if ! DEB_BUILD_OPTIONS="noddebs parallel=$(nproc)" make --no-print-directory -C "$top" deb \
		BUILD="$tmp/build" > "$tmp/build.log" 2>&1; then
		echo "FAILED make deb: $(tail -20 "$tmp/build.log")"
		exit 1
	fi
	version=$(cat "$top/VERSION")
	deb=$tmp/build/egressd_${version}_$(dpkg --print-architecture).deb
	if [ -f "$deb" ]; then
		echo "ok     make deb: ${deb##*/} in $(($(date +%s) - start)) s"
	else
		echo "FAILED make deb: no $deb"
		exit 1
	fi
	EGRESSD_PKG_INNER=1 EGRESSD_PKG_DEB=$deb EGRESSD_PKG_TMP=$tmp \
		unshare --mount --propagation private bash "$0"
	rc=$?
	echo "   ($(($(date +%s) - start)) s in all)"
	exit $rc
fi

# ---- inner: private mount namespace ------------------------------------------------------------
deb=$EGRESSD_PKG_DEB
tmp=$EGRESSD_PKG_TMP
fail=0
ok() { echo "ok     $*"; }
bad() { echo "FAILED $*"; fail=1; }
pid=
cleanup_inner() {
	if [ -n "$pid" ]; then
		kill "$pid" 2> /dev/null
		wait "$pid" 2> /dev/null
	fi
	if dpkg-query -W -f='${Status}' egressd 2> /dev/null | grep -q 'installed\|config-files'; then
		dpkg --purge egressd > "$tmp/purge-inner.log" 2>&1 || cat "$tmp/purge-inner.log"
	fi
	return 0
}
trap cleanup_inner EXIT
trap 'exit 1' INT TERM

mount -t bpf bpf /sys/fs/bpf || { echo "FAILED mount a private bpffs"; exit 1; }
[ -d /run/egressd ] && { mount -t tmpfs -o mode=0755 tmpfs /run/egressd || exit 1; }

# -- install
if dpkg -i "$deb" > "$tmp/install.log" 2>&1; then
	ok "dpkg -i ${deb##*/}"
elif DEBIAN_FRONTEND=noninteractive apt-get install -f -y -qq > "$tmp/apt.log" 2>&1 &&
	dpkg-query -W -f='${Status}' egressd | grep -q 'install ok installed'; then
	ok "dpkg -i ${deb##*/} + apt-get install -f (dependencies)"
else
	bad "dpkg -i: $(tail -15 "$tmp/install.log" "$tmp/apt.log" 2> /dev/null)"
	exit 1
fi
grep -i 'warning\|error' "$tmp/install.log" && bad "dpkg -i printed warnings or errors (above)"

# -- files
for f in /usr/sbin/egressd /usr/bin/egressctl /etc/egressd/egressd.conf \
	/etc/egressd/policies.d/example.conf /usr/share/egressd/regions.conf \
	/usr/share/egressd/geo/country.csv.gz /usr/share/egressd/geo/PROVENANCE \
	/lib/systemd/system/egressd.service /lib/systemd/system/egressd.socket \
	/usr/lib/sysusers.d/egressd.conf /usr/lib/tmpfiles.d/egressd.conf \
	/usr/lib/systemd/catalog/egressd.catalog /usr/share/man/man8/egressd.8.gz \
	/usr/share/doc/egressd/copyright; do
	[ -f "$f" ] || bad "not installed: $f"
done
[ $fail -eq 0 ] && ok "installed: binaries, config, example policy, GeoIP data, units, sysusers.d, tmpfiles.d, catalog, man pages"
if [ "$(dpkg-query -W -f='${Conffiles}' egressd | awk 'NF { print $1 }' | sort | tr '\n' ' ')" = \
	"/etc/egressd/egressd.conf /etc/egressd/policies.d/example.conf " ]; then
	ok "conffiles: /etc/egressd/egressd.conf /etc/egressd/policies.d/example.conf"
else
	bad "conffiles: $(dpkg-query -W -f='${Conffiles}' egressd)"
fi

# -- what postinst did (PID 1 need not be systemd: nothing is started, the rest happens)
if getent group egress-audit > /dev/null; then
	ok "postinst: group $(getent group egress-audit)"
else
	bad "postinst: no group egress-audit"
fi
if [ "$(stat -c '%a %U' /sys/fs/bpf/egressd 2> /dev/null)" = "700 root" ]; then
	ok "postinst: tmpfiles.d made /sys/fs/bpf/egressd 0700 root"
else
	bad "postinst: /sys/fs/bpf/egressd: $(stat -c '%a %U' /sys/fs/bpf/egressd 2>&1)"
fi
wants_svc=/etc/systemd/system/multi-user.target.wants/egressd.service
wants_sock=/etc/systemd/system/sockets.target.wants/egressd.socket
if [ "$(readlink "$wants_svc")" = /lib/systemd/system/egressd.service ] &&
	[ "$(readlink "$wants_sock")" = /lib/systemd/system/egressd.socket ]; then
	ok "postinst: egressd.service and egressd.socket enabled (deb-systemd-helper)"
else
	bad "postinst: not enabled: $(ls -l "$wants_svc" "$wants_sock" 2>&1)"
fi

# -- the installed units, as shipped
out=$(systemd-analyze verify /lib/systemd/system/egressd.service /lib/systemd/system/egressd.socket 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ]; then
	ok "systemd-analyze verify on the installed units: clean"
else
	bad "systemd-analyze verify (rc $rc): $out"
fi

# -- the installed configuration
out=$(/usr/sbin/egressd --check 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q '^/etc/egressd/egressd.conf: valid: 1 policies' <<< "$out"; then
	ok "egressd --check: $out"
else
	bad "egressd --check (rc $rc): $out"
fi

# -- the installed daemon with the installed configuration (what the service runs): it starts,
# serves the socket for group egress-audit, pins under /sys/fs/bpf/egressd and leaves the pins
# when it stops (OnExit=keep), as after a crash or a stop; the purge below must remove them.
/usr/sbin/egressd > "$tmp/egressd.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
	/usr/bin/egressctl status > /dev/null 2>&1 && break
	kill -0 "$pid" 2> /dev/null || break
	sleep 0.05
done
if st=$(/usr/bin/egressctl status 2>&1); then
	ok "installed egressd runs with the installed config; egressctl status answers on /run/egressd/egressd.sock"
else
	bad "installed egressd: $st; log: $(tail -5 "$tmp/egressd.log")"
fi
if [ "$(stat -c '%G %a' /run/egressd/egressd.sock 2> /dev/null)" = "egress-audit 660" ]; then
	ok "socket /run/egressd/egressd.sock: group egress-audit, mode 0660"
else
	bad "socket: $(stat -c '%G %a' /run/egressd/egressd.sock 2>&1)"
fi
kill "$pid" 2> /dev/null
wait "$pid" 2> /dev/null
pid=
npins=$(find /sys/fs/bpf/egressd -mindepth 1 2> /dev/null | wc -l)
[ "$npins" -gt 0 ] && ok "after stop: $npins pins in /sys/fs/bpf/egressd (OnExit=keep)" ||
	bad "no pins in /sys/fs/bpf/egressd after a run with OnExit=keep: $(tail -3 "$tmp/egressd.log")"
# What StateDirectory=egressd gives the service; the purge must remove it.
mkdir -p /var/lib/egressd && echo snapshot > /var/lib/egressd/counters

# -- remove: programs, units and pins go (nothing could manage the pins any more); configuration,
# state and group stay until the purge.
if dpkg --remove egressd > "$tmp/remove.log" 2>&1; then
	ok "dpkg --remove egressd"
else
	bad "dpkg --remove: $(tail -10 "$tmp/remove.log")"
fi
if [ ! -e /usr/sbin/egressd ] && [ ! -e /lib/systemd/system/egressd.service ] &&
	[ ! -e /sys/fs/bpf/egressd ] && [ -f /etc/egressd/egressd.conf ] &&
	[ -f /var/lib/egressd/counters ] && getent group egress-audit > /dev/null &&
	dpkg-query -W -f='${Status}' egressd | grep -q 'config-files'; then
	ok "after remove: binaries, units and pins gone; /etc/egressd, /var/lib/egressd, group kept"
else
	bad "after remove: $(ls -d /usr/sbin/egressd /lib/systemd/system/egressd.service /sys/fs/bpf/egressd /etc/egressd/egressd.conf /var/lib/egressd/counters 2>&1 | tr '\n' ' ')"
fi

# -- purge
if dpkg --purge egressd > "$tmp/purge.log" 2>&1; then
	ok "dpkg --purge egressd"
else
	bad "dpkg --purge: $(tail -10 "$tmp/purge.log")"
fi
left=
for p in /usr/sbin/egressd /usr/bin/egressctl /etc/egressd /usr/share/egressd /var/lib/egressd \
	/sys/fs/bpf/egressd /run/egressd /lib/systemd/system/egressd.service \
	/lib/systemd/system/egressd.socket /usr/lib/sysusers.d/egressd.conf \
	/usr/lib/tmpfiles.d/egressd.conf /usr/lib/systemd/catalog/egressd.catalog \
	"$wants_svc" "$wants_sock"; do
	[ -e "$p" ] || [ -L "$p" ] && left="$left $p"
done
[ -z "$left" ] && ok "after purge: no binaries, /etc/egressd, /var/lib/egressd, pins, units, snippets, enable links" ||
	bad "left after purge:$left"
getent group egress-audit > /dev/null && bad "group egress-audit left after purge" || ok "after purge: no group egress-audit"
dpkg-query -W -f='${Status}' egressd 2> /dev/null | grep -q 'installed\|config-files' &&
	bad "dpkg still knows egressd: $(dpkg-query -W -f='${Status}' egressd)" || ok "after purge: dpkg has no egressd"
exit $fail
