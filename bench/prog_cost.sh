#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Cost per run of egressd's sendmsg4/sendmsg6 programs with the embedded world table loaded,
# from the kernel's own accounting (kernel.bpf_stats_enabled=1: run_time_ns / run_cnt per
# program; the accounting itself adds a few tens of ns per run, included in the numbers).
#
# A client in a benchmark cgroup made here, inside a private network namespace (only lo up,
# nothing leaves), sends UDP datagrams to uniformly random unicast destinations from one socket;
# every sendto() runs the hook once. Policy: AllowRegion=EU, in monitor and in enforce mode.
# Usage: bench/prog_cost.sh [COUNT]   (default 1000000 per family and mode; needs root)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
count=${1:-1000000}
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
cgmount=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
name=egressd-bench-$$
cg=$cgmount/$name
tmp=$(mktemp -d /tmp/egressd-bench.XXXXXX)
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
	sysctl -q -w kernel.bpf_stats_enabled="$old_stats"
	if [ -d "$cg" ]; then rmdir "$cg"; fi
	rm -rf "$tmp" "/sys/fs/bpf/$name"
	return 0
}
trap cleanup EXIT INT TERM
mkdir "$cg" "$tmp/policies.d"

prog_stats() { # prints "run_time_ns run_cnt" of program id $1
	bpftool prog show id "$1" --json |
		python3 -c 'import json,sys; j=json.load(sys.stdin); print(j.get("run_time_ns",0), j.get("run_cnt",0))'
}

run_mode() {
	local mode=$1 fam prog id t0 c0 t1 c1 out
	printf '[Daemon]\nGeoDatabase=%s\nRegions=%s\nSocket=%s\nReaderGroup=\nPinPath=/sys/fs/bpf/%s\nOnExit=detach\nStateDirectory=%s/state\n' \
		"$top/data/geo/country.csv.gz" "$top/data/regions.conf" "$tmp/egressd.sock" "$name" "$tmp" > "$tmp/egressd.conf"
	printf '[Policy]\nName=bench\nCgroup=%s\nMode=%s\nAllowRegion=EU\nUnknown=deny\n' "$name" "$mode" \
		> "$tmp/policies.d/b.conf"
	"$build/egressd" --config "$tmp/egressd.conf" --log-level warning > "$tmp/log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do [ -S "$tmp/egressd.sock" ] && break; sleep 0.1; done
	[ -S "$tmp/egressd.sock" ] || { cat "$tmp/log"; exit 1; }
	for fam in 4 6; do
		prog=egress_sendmsg$fam
		id=$(bpftool cgroup show "$cg" | awk -v p="$prog" '$0 ~ p { print $1; exit }')
		[ -n "$id" ] || { echo "bench: $prog is not attached to $cg" >&2; exit 1; }
		read -r t0 c0 < <(prog_stats "$id")
		out=$(unshare --net sh -c 'echo $$ > "$1/cgroup.procs" && ip link set lo up && exec "$2" "$3" "$4" 42' \
			sh "$cg" "$build/bench/udp_spray" "$fam" "$count")
		read -r t1 c1 < <(prog_stats "$id")
		awk -v m="$mode" -v p="$prog" -v t=$((t1 - t0)) -v c=$((c1 - c0)) -v o="$out" \
			'BEGIN { printf "%-8s %-16s runs=%-8d %7.1f ns/run   (%s)\n", m, p, c, c ? t / c : 0, o }'
	done
	sleep 0.3 # the daemon drains the event ring every 100 ms
	"$build/egressctl" --socket "$tmp/egressd.sock" --json status |
		python3 -c 'import json,sys; j=json.load(sys.stdin); print("         events delivered to the daemon: %d, lost: %d" % (j["events_seen"], j["events_lost"]))'
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
}

sysctl -q -w kernel.bpf_stats_enabled=1
echo "egressd program cost, world table, $count random destinations per row"
echo "kernel $(uname -r); CPU$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
run_mode monitor
run_mode enforce
