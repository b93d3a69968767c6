#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# egressd demo on the embedded world GeoIP data, on the real kernel (needs root).
#
# Two cgroups made here, each with an "EU only" policy: one in enforce mode, one in monitor mode.
# Client processes join a cgroup and, inside their own network namespace (only lo up, so nothing
# leaves this machine), connect over TCP and send UDP to public addresses of several countries.
# The connect/sendmsg hooks run before routing: a destination egressd allows then fails with
# ENETUNREACH (no route in the sandbox), one it blocks fails with EPERM. At the end: the counters.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
egressd=$build/egressd
egressctl=$build/egressctl
probe=$build/tests/sockprobe

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root (BPF programs, cgroups, network namespaces)" >&2
	exit 1
fi
for b in "$egressd" "$egressctl" "$probe"; do
	[ -x "$b" ] || { echo "demo: $b is not built; run make" >&2; exit 1; }
done
cgmount=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)
[ -n "$cgmount" ] || { echo "demo: no cgroup v2 mount in /proc/self/mountinfo" >&2; exit 1; }

# Pins live on bpffs (systemd mounts it at boot; mount it where that did not happen).
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
name=egressd-demo-$$
cg=$cgmount/$name
tmp=$(mktemp -d /tmp/egressd-demo.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	for d in "$cg/enforce" "$cg/monitor" "$cg"; do
		[ -d "$d" ] && rmdir "$d" 2>/dev/null
	done
	rm -rf "$tmp" "/sys/fs/bpf/$name"
	return 0
}
trap cleanup EXIT INT TERM

mkdir -p "$cg/enforce" "$cg/monitor" "$tmp/policies.d"
cat > "$tmp/egressd.conf" <<EOF
[Daemon]
GeoDatabase=$top/data/geo/country.csv.gz
Regions=$top/data/regions.conf
Socket=$tmp/egressd.sock
ReaderGroup=
PinPath=/sys/fs/bpf/$name
OnExit=detach
StateDirectory=$tmp/state
EOF
cat > "$tmp/policies.d/10-eu.conf" <<EOF
[Policy]
Name=eu-enforce
Cgroup=$name/enforce
Mode=enforce
AllowRegion=EU
Unknown=deny

[Policy]
Name=eu-monitor
Cgroup=$name/monitor
Mode=monitor
AllowRegion=EU
Unknown=deny
EOF

echo "== egressd --check"
"$egressd" --check --config "$tmp/egressd.conf"
echo
echo "== starting egressd (log: $tmp/egressd.log)"
"$egressd" --config "$tmp/egressd.conf" > "$tmp/egressd.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
	[ -S "$tmp/egressd.sock" ] && "$egressctl" --socket "$tmp/egressd.sock" status > /dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/egressd.log"; exit 1; }
	sleep 0.1
done
ctl() { "$egressctl" --socket "$tmp/egressd.sock" "$@"; }
ctl status
echo

# Public destinations (the country column is what egressd's table says, not this script).
tcp_targets="193.0.14.129 80.67.169.12 194.150.168.168 130.59.31.248 8.8.8.8 1.1.1.1 202.12.27.33 200.160.0.10 2001:67c:2e8::1 2001:41d0::1 2001:4860:4860::8888"
udp_targets="80.67.169.12 194.150.168.168 9.9.9.9 77.88.8.8 2001:4860:4860::8888"

# Run one workload: a shell that joins the cgroup, enters a new network namespace with only lo
# up, and runs the clients.
workload() {
	local group=$1
	unshare --net sh -c '
		echo $$ > "$1/cgroup.procs" && ip link set lo up || exit 1
		probe=$2; tcp=$3; udp=$4; group=$5
		for a in $tcp; do
			case $a in *:*) fam=tcp6 ;; *) fam=tcp4 ;; esac
			printf "  %-8s tcp connect %-22s -> %s\n" "$group" "$a" "$("$probe" $fam connect "$a" 443)"
		done
		for a in $udp; do
			case $a in *:*) fam=udp6 ;; *) fam=udp4 ;; esac
			printf "  %-8s udp sendto  %-22s -> %s\n" "$group" "$a" "$("$probe" $fam sendto "$a" 53)"
		done
		printf "  %-8s tcp connect %-22s -> %s\n" "$group" 127.0.0.1 "$("$probe" tcp4 connect 127.0.0.1 9)"
	' sh "$cg/$group" "$probe" "$tcp_targets" "$udp_targets" "$group"
}

echo "== clients (ENETUNREACH = allowed by egressd, no route out of the sandbox; EPERM = blocked)"
workload enforce
workload monitor
echo
echo "== egressctl lookup 8.8.8.8 --cgroup $name/enforce"
ctl lookup 8.8.8.8 --cgroup "$name/enforce"
echo
echo "== egressctl counters"
ctl counters
