#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The systemd units as "make install" writes them: systemd-analyze verify prints nothing, the
# sysusers.d and tmpfiles.d snippets do what they say, and the sandbox the service unit sets up is
# enough for egressd: with exactly the unit's CapabilityBoundingSet=, every mount under /sys
# read-only except /sys/fs/bpf (ProtectKernelTunables=, ProtectControlGroups=, ReadWritePaths=)
# and a private network namespace (PrivateNetwork=), egressd attaches, pins and blocks; without
# any one of those capabilities it refuses to start. Needs root (BPF, cgroups); PID 1 need not be
# systemd (systemd-analyze verify works offline).
set -u
cd "$(dirname "$0")/../.."
top=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
egressd=$BUILD/egressd
probe=$BUILD/tests/sockprobe

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (BPF programs, cgroups, mount namespaces)"
for t in systemd-analyze systemd-sysusers systemd-tmpfiles setpriv unshare; do
	command -v "$t" > /dev/null || skip "$t is not installed (scripts/deps.sh installs it)"
done
for b in "$egressd" "$probe"; do
	[ -x "$b" ] || { echo "FAILED $b is not built (make all)"; exit 1; }
done

tmp=$(mktemp -d /tmp/egressd-units.XXXXXX)
cgmount=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)
cgname=egressd-units-$$
pin=/sys/fs/bpf/egressd-units-$$
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2> /dev/null
		wait "$pid" 2> /dev/null
	fi
	[ -n "$cgmount" ] && [ -d "$cgmount/$cgname" ] && rmdir "$cgmount/$cgname"
	rm -rf "$pin" "$tmp"
	return 0
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail=0
ok() { echo "ok     $*"; }
bad() { echo "FAILED $*"; fail=1; }

# ---- 1. systemd-analyze verify on the installed units ----------------------------------------
# PREFIX inside $tmp: the unit's ExecStart= then names the installed binary, which verify
# requires to exist; the man pages of Documentation= are looked up in the same tree.
inst=$tmp/inst
if ! make --no-print-directory -C "$top" BUILD="$BUILD" install PREFIX="$inst/usr" \
	SYSCONFDIR="$inst/etc" > "$tmp/install.log" 2>&1; then
	bad "make install PREFIX=$inst/usr: $(tail -5 "$tmp/install.log")"
	exit 1
fi
unitdir=$inst/usr/lib/systemd/system
exec_start=$(sed -n 's/^ExecStart=//p' "$unitdir/egressd.service")
if [ "$exec_start" = "$inst/usr/sbin/egressd" ] && [ -x "$exec_start" ]; then
	ok "installed unit: ExecStart=$exec_start"
else
	bad "installed unit: ExecStart=$exec_start, expected $inst/usr/sbin/egressd"
fi
out=$(cd "$unitdir" && MANPATH=$inst/usr/share/man systemd-analyze verify egressd.service egressd.socket 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ]; then
	ok "systemd-analyze verify egressd.service egressd.socket: clean"
else
	bad "systemd-analyze verify (rc $rc): $out"
fi
# The unit as shipped differs from the installed one only in ExecStart= (and is what a PREFIX=/usr
# install writes to /lib/systemd/system).
if diff <(grep -v '^ExecStart=' systemd/egressd.service) <(grep -v '^ExecStart=' "$unitdir/egressd.service") > /dev/null &&
	grep -qx 'ExecStart=/usr/sbin/egressd' systemd/egressd.service; then
	ok "systemd/egressd.service: ExecStart=/usr/sbin/egressd, otherwise installed unchanged"
else
	bad "systemd/egressd.service and the installed unit differ beyond ExecStart="
fi
if make --no-print-directory -C "$top" BUILD="$BUILD" install-systemd PREFIX=/usr \
	DESTDIR="$tmp/destdir" > /dev/null 2>&1 &&
	cmp -s systemd/egressd.service "$tmp/destdir/lib/systemd/system/egressd.service" &&
	[ -f "$tmp/destdir/lib/systemd/system/egressd.socket" ] &&
	[ -f "$tmp/destdir/usr/lib/sysusers.d/egressd.conf" ] &&
	[ -f "$tmp/destdir/usr/lib/tmpfiles.d/egressd.conf" ] &&
	[ -f "$tmp/destdir/usr/lib/systemd/catalog/egressd.catalog" ]; then
	ok "PREFIX=/usr DESTDIR install: /lib/systemd/system, /usr/lib/{sysusers,tmpfiles}.d, catalog"
else
	bad "PREFIX=/usr DESTDIR install: files missing or unit changed: $(cd "$tmp/destdir" 2> /dev/null && find . -type f)"
fi

# ---- 2. sysusers.d and tmpfiles.d snippets, applied to an empty root ---------------------------
root=$tmp/root
mkdir -p "$root/etc" "$root/sys/fs/bpf"
: > "$root/etc/group"
: > "$root/etc/passwd"
if systemd-sysusers --root="$root" "$inst/usr/lib/sysusers.d/egressd.conf" > "$tmp/sysusers.log" 2>&1 &&
	grep -q '^egress-audit:x:[0-9]*:$' "$root/etc/group"; then
	ok "sysusers.d: $(grep '^egress-audit:' "$root/etc/group")"
else
	bad "sysusers.d: no egress-audit group: $(cat "$tmp/sysusers.log" "$root/etc/group")"
fi
if systemd-tmpfiles --root="$root" --create "$inst/usr/lib/tmpfiles.d/egressd.conf" > "$tmp/tmpfiles.log" 2>&1 &&
	[ "$(stat -c '%a %U %G' "$root/sys/fs/bpf/egressd" 2> /dev/null)" = "700 root root" ]; then
	ok "tmpfiles.d: /sys/fs/bpf/egressd 0700 root root"
else
	bad "tmpfiles.d: $(cat "$tmp/tmpfiles.log"; stat -c '%a %U %G' "$root/sys/fs/bpf/egressd" 2>&1)"
fi

# ---- 3. the unit's sandbox and capability set are enough, and each capability is needed -------
[ -n "$cgmount" ] || { bad "no cgroup v2 mount in /proc/self/mountinfo"; exit 1; }
[ "$(stat -f -c %T /sys/fs/bpf 2> /dev/null)" = bpf_fs ] || { bad "/sys/fs/bpf is not a bpf filesystem"; exit 1; }
caps=$(sed -n 's/^CapabilityBoundingSet=//p' systemd/egressd.service)
ambient=$(sed -n 's/^AmbientCapabilities=//p' systemd/egressd.service)
[ "$caps" = "$ambient" ] || bad "CapabilityBoundingSet=$caps but AmbientCapabilities=$ambient"
mkdir "$cgmount/$cgname" "$tmp/policies.d" "$tmp/run"
cat > "$tmp/egressd.conf" <<EOF
[Daemon]
GeoDatabase=$top/data/geo/country.csv.gz
Regions=$top/data/regions.conf
Socket=$tmp/run/egressd.sock
ReaderGroup=
PinPath=$pin
StateDirectory=$tmp/state
OnExit=detach
EOF
cat > "$tmp/policies.d/10-eu.conf" <<EOF
[Policy]
Name=units-eu
Cgroup=$cgname
Mode=enforce
AllowRegion=EU
Unknown=deny
EOF
# ProtectKernelTunables=yes + ProtectControlGroups=yes + ReadWritePaths=/sys/fs/bpf, as in the
# unit: every mount under /sys read-only, except the bpffs.
cat > "$tmp/sandbox.sh" <<'EOF'
set -e
for mp in $(awk '$5 ~ "^/sys(/|$)" { print $5 }' /proc/self/mountinfo | sort -u); do
	[ "$mp" = /sys/fs/bpf ] || mount -o remount,bind,ro "$mp"
done
# Check: every mount under /sys is read-only now, except the bpffs.
awk '$5 ~ "^/sys(/|$)" && $5 != "/sys/fs/bpf" && $6 !~ /^ro(,|$)/ { print "still rw: " $5; bad = 1 }
	END { exit bad }' /proc/self/mountinfo >&2
exec "$@"
EOF
# start CAPS: egressd as uid 0 with bounding set CAPS (comma-separated, lower case, no "cap_"),
# in a private mount and network namespace. 0 once the API answers, 1 if egressd exited.
start() {
	local bset=-all c
	for c in ${1//,/ }; do bset=$bset,+$c; done
	rm -f "$tmp/egressd.log"
	unshare --mount --net --propagation private bash "$tmp/sandbox.sh" \
		setpriv --bounding-set="$bset" --inh-caps=-all -- \
		"$egressd" --config "$tmp/egressd.conf" > "$tmp/egressd.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 300); do
		grep -q 'started:' "$tmp/egressd.log" 2> /dev/null && return 0
		kill -0 "$pid" 2> /dev/null || { wait "$pid" 2> /dev/null; pid=; return 1; }
		sleep 0.05
	done
	return 1
}
stop() {
	[ -n "$pid" ] || return 0
	kill "$pid" 2> /dev/null
	wait "$pid" 2> /dev/null
	pid=
}
# A client in the policy's cgroup and in its own network namespace (only lo): 8.8.8.8 (US) must
# get EPERM from the hook, 193.0.14.129 (NL, k.root-servers.net) ENETUNREACH (allowed, no route).
probe_cg() {
	unshare --net sh -c 'echo $$ > "$1/cgroup.procs" && ip link set lo up &&
		"$2" tcp4 connect 8.8.8.8 443 && "$2" tcp4 connect 193.0.14.129 443' \
		sh "$cgmount/$cgname" "$probe" | tr '\n' ' '
}

capset=$(echo "$caps" | tr 'A-Z' 'a-z' | sed 's/cap_//g; s/ \+/,/g')
if start "$capset"; then
	res=$(probe_cg)
	if [ "$res" = "EPERM ENETUNREACH " ] && [ -e "$pin/links" ]; then
		ok "egressd with only $caps, /sys read-only but bpffs, private netns: pins, 8.8.8.8 EPERM, 193.0.14.129 allowed"
	else
		bad "egressd with $caps: probes '$res' (want 'EPERM ENETUNREACH '), pins: $(ls "$pin" 2>&1 | tr '\n' ' ')"
	fi
	stop
else
	bad "egressd with $caps in the unit's sandbox did not start: $(tail -3 "$tmp/egressd.log")"
fi
[ -e "$pin" ] && bad "OnExit=detach left $pin"
for c in ${capset//,/ }; do
	less=$(echo ",$capset," | sed "s/,$c,/,/; s/^,//; s/,\$//")
	if start "$less"; then
		bad "egressd started without cap_$c (with $less): cap_$c is not needed, shrink the unit"
		stop
	elif grep -q 'nothing is counted or enforced' "$tmp/egressd.log"; then
		ok "without cap_$c egressd refuses to start: $(grep -m1 -o 'loading the programs failed: [^;]*' "$tmp/egressd.log")"
	else
		bad "without cap_$c egressd failed for another reason: $(tail -2 "$tmp/egressd.log")"
	fi
done
exit $fail
