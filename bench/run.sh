#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# egressd benchmark suite (`make bench`; bench/README.md explains every row). Needs root.
#
# Everything runs in cgroups created here under the cgroup v2 mount (egressd-bench-PID/...) and in
# network namespaces created here (ip netns egressd-bench-PID-{plain,nft}, only lo up, plus one
# address of an EU country on lo): no packet leaves the machine, the nftables table exists only in
# the private namespace. On every exit path: the daemon is stopped, kernel.bpf_stats_enabled is
# restored, programs are detached, pins, cgroups and namespaces are removed.
#
# Environment: BUILD (build directory), BENCH_REPS (interleaved repetitions, default 5),
# BENCH_SECONDS (seconds per rate measurement, default 1), BENCH_COLD (sends per cold lookup
# measurement, default 1500), BENCH_WARM (per warm/hot measurement, default 200000).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
reps=${BENCH_REPS:-5}
secs=${BENCH_SECONDS:-1}
n_cold=${BENCH_COLD:-1500}
n_warm=${BENCH_WARM:-200000}
geo=$top/data/geo/country.csv.gz
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
cgmount=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)
[ -n "$cgmount" ] || { echo "bench: no cgroup v2 mount" >&2; exit 1; }
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

name=egressd-bench-$$
cg=$cgmount/$name
pin=/sys/fs/bpf/$name
pin_b=/sys/fs/bpf/$name-bench
ns_plain=$name-plain
ns_nft=$name-nft
tmp=$(mktemp -d /tmp/egressd-bench.XXXXXX)
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
pid=
cleanup() {
	set +e
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
	sysctl -q -w kernel.bpf_stats_enabled="$old_stats"
	if [ -d "$cg/counter" ]; then
		for h in connect4 sendmsg4; do
			bpftool cgroup detach "$cg/counter" "$h" pinned "$pin_b/count_$h" 2>/dev/null
		done
	fi
	ip netns del "$ns_plain" 2>/dev/null
	ip netns del "$ns_nft" 2>/dev/null
	if [ -d "$cg" ]; then
		# children first; a cgroup with processes left cannot go (none should be left)
		find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
	fi
	rm -rf "$tmp" "$pin" "$pin_b"
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.4f\n", b - a }'; }
# run CGROUP NETNS CMD...: CMD in that cgroup (set before entering the namespace) and namespace
run() {
	local c=$1 n=$2
	shift 2
	sh -c 'echo $$ > "$1/cgroup.procs" && n=$2 && shift 2 && exec nsenter --net=/run/netns/"$n" "$@"' sh "$c" "$n" "$@"
}

echo "egressd benchmark suite: $(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r)," \
	"CPU$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc), $reps interleaved repetitions"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

mkdir "$cg" "$tmp/policies.d"
for c in lookup none counter monitor enforce; do mkdir "$cg/$c"; done
"$build/bench/lookup_cost" countries "$geo" > "$tmp/countries"
eu=$(awk '/^\[EU\]/ { f = 1; next } /^\[/ { f = 0 } f && /^Countries=/ { sub(/^Countries=/, ""); printf "%s ", $0 }' data/regions.conf)
# the loopback target: an address the data places in Germany (allowed: EU)
target=$(awk '$1 == "DE" { print $2 }' "$tmp/countries")
[ -n "$target" ] || { echo "bench: no DE address in $geo" >&2; exit 1; }
awk -v eu=" $eu " 'index(eu, " " $1 " ") == 0' "$tmp/countries" > "$tmp/noneu"

for n in "$ns_plain" "$ns_nft"; do
	ip netns add "$n"
	ip -n "$n" link set lo up
	ip -n "$n" addr add "$target/32" dev lo
done
# shellcheck disable=SC2086
"$build/bench/lookup_cost" nft "$geo" $eu > "$tmp/geo.nft"
t0=$(date +%s.%N)
nsenter --net="/run/netns/$ns_nft" nft -f "$tmp/geo.nft"
nft_load=$(elapsed "$t0")

# ---- (a) lookup cost ----------------------------------------------------------------------------
sysctl -q -w kernel.bpf_stats_enabled=1
nsenter --net="/run/netns/$ns_plain" "$build/bench/lookup_cost" lookup "$build/bench/bench.bpf" \
	"$geo" "$cg/lookup" "$reps" "$n_cold" "$n_warm" > "$tmp/lookup"
sysctl -q -w kernel.bpf_stats_enabled=0

# ---- egressd: one daemon, a monitor and an enforce policy (EU allowed) --------------------------
printf '[Daemon]\nGeoDatabase=%s\nRegions=%s\nSocket=%s\nReaderGroup=\nPinPath=%s\nOnExit=detach\nStateDirectory=%s/state\n' \
	"$geo" "$top/data/regions.conf" "$tmp/egressd.sock" "$pin" "$tmp" > "$tmp/egressd.conf"
for m in monitor enforce; do
	printf '[Policy]\nName=bench-%s\nCgroup=%s/%s\nMode=%s\nAllowRegion=EU\nUnknown=deny\n' \
		"$m" "$name" "$m" "$m" > "$tmp/policies.d/$m.conf"
done
"$build/egressd" --config "$tmp/egressd.conf" --log-level warning > "$tmp/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -S "$tmp/egressd.sock" ] && break; sleep 0.1; done
[ -S "$tmp/egressd.sock" ] || { cat "$tmp/log"; exit 1; }
ctl() { "$build/egressctl" --socket "$tmp/egressd.sock" "$@"; }

# counter-only programs (bench/bench.bpf.c) on connect4 and sendmsg4 of the "counter" cgroup
bpftool prog loadall "$build/bench/bench.bpf" "$pin_b"
for h in connect4 sendmsg4; do
	bpftool cgroup attach "$cg/counter" "$h" pinned "$pin_b/count_$h"
done

# ---- (b) connect and sendto rates, interleaved -----------------------------------------------
configs="none counter monitor enforce nft"
for rep in $(seq 1 "$reps"); do
	for c in $configs; do
		if [ "$c" = nft ]; then cgd=$cg/none ns=$ns_nft; else cgd=$cg/$c ns=$ns_plain; fi
		for w in tcp udp; do
			run "$cgd" "$ns" "$build/bench/sock_rate" "$w" "$target" "$secs" |
				awk -v c="$c" '{ print c, $1, $2 }' >> "$tmp/rates"
		done
	done
done

# where the time of egressd's path goes: every program attached to the monitor cgroup (egressd's
# sock_addr hooks and packet hook), ns per run and runs per operation, one pass with bpf_stats on
progs_json() {
	bpftool cgroup show "$1" --json | python3 -c '
import json, subprocess, sys
out = {}
for a in json.load(sys.stdin):
    p = json.loads(subprocess.run(["bpftool", "prog", "show", "id", str(a["id"]), "--json"],
                                  capture_output=True, text=True, check=True).stdout)
    out[p.get("name", str(a["id"]))] = (p.get("run_time_ns", 0), p.get("run_cnt", 0))
print(json.dumps(out))'
}
sysctl -q -w kernel.bpf_stats_enabled=1
for w in tcp udp; do
	s0=$(progs_json "$cg/monitor")
	o=$(run "$cg/monitor" "$ns_plain" "$build/bench/sock_rate" "$w" "$target" "$secs")
	s1=$(progs_json "$cg/monitor")
	python3 -c '
import json, sys
w, o, s0, s1 = sys.argv[1], sys.argv[2].split(), json.loads(sys.argv[3]), json.loads(sys.argv[4])
ops = int(o[2])
cells = []
for name in sorted(s1):
    t = s1[name][0] - s0.get(name, (0, 0))[0]
    c = s1[name][1] - s0.get(name, (0, 0))[1]
    if c:
        cells.append("%s %.0f ns x %.1f/op" % (name, t / c, c / ops))
print("%s: %s" % (w.upper(), "; ".join(cells) or "no runs"))' "$w" "$o" "$s0" "$s1" >> "$tmp/breakdown"
done
sysctl -q -w kernel.bpf_stats_enabled=0

# ---- (c) reload -------------------------------------------------------------------------------
"$build/bench/lookup_cost" reload "$geo" 3 > "$tmp/reload"
# the daemon re-parses only changed files: alternate between two copies of the data
cp "$geo" "$tmp/geo0.csv.gz"
cp "$geo" "$tmp/geo1.csv.gz"
for i in 1 2 3; do
	sed -i "s|^GeoDatabase=.*|GeoDatabase=$tmp/geo$((i % 2)).csv.gz|" "$tmp/egressd.conf"
	t0=$(date +%s.%N)
	ctl reload > /dev/null
	elapsed "$t0"
done | median > "$tmp/daemon_reload"
inner=$(bpftool map dump pinned "$pin/geo_gen" --json |
	python3 -c 'import json,sys; v=json.load(sys.stdin)[0]["value"]; print(int.from_bytes(bytes(int(x, 16) for x in v), "little"))' || true)
daemon_mem=
if [ -n "$inner" ]; then
	daemon_mem=$(bpftool map show id "$inner" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_memlock"])')
fi

# ---- (d) /metrics with >= 10,000 counter series, events ---------------------------------------
# series = child cgroups of the monitor cgroup x countries x {tcp, udp}
ncc=$(wc -l < "$tmp/countries")
nchild=$(( (10000 + 2 * ncc - 1) / (2 * ncc) ))
for i in $(seq 1 "$nchild"); do
	mkdir "$cg/monitor/s$i"
	run "$cg/monitor/s$i" "$ns_plain" "$build/bench/sock_rate" spray "$tmp/countries" > /dev/null
done
sleep 0.5
curl -s --unix-socket "$tmp/egressd.sock" http://localhost/metrics > "$tmp/metrics"
series=$(grep -c '^egressd_connections_total{' "$tmp/metrics" || true)
for _ in $(seq 1 11); do
	curl -s -o /dev/null -w '%{time_total}\n' --unix-socket "$tmp/egressd.sock" http://localhost/metrics
done | median > "$tmp/metrics_s"
ev0=$(ctl --json status | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j.get("events_seen", 0), j.get("events_lost", 0))')
n_events=500000
run "$cg/monitor" "$ns_plain" "$build/bench/sock_rate" events "$tmp/noneu" "$n_events" > "$tmp/events"
sleep 1
ev1=$(ctl --json status | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j.get("events_seen", 0), j.get("events_lost", 0))')

kill "$pid"
wait "$pid" 2>/dev/null || true
pid=

# ---- the table --------------------------------------------------------------------------------
python3 - "$tmp" "$nft_load" "$daemon_mem" "$series" "$ev0" "$ev1" "$n_events" <<'EOF'
import statistics, sys
tmp, nft_load, daemon_mem, series, ev0, ev1, n_events = sys.argv[1:]
kv = lambda line: dict(x.split("=", 1) for x in line.split() if "=" in x)
lookup = {}
for line in open(tmp + "/lookup"):
    w = line.split()
    if w[0] == "lookup":
        lookup[(w[1], w[2])] = {k: float(v) for k, v in kv(line).items()}
    elif w[0] == "memory":
        mem = {k: int(v) for k, v in kv(line).items()}
    elif w[0] == "data":
        data = kv(line)
print("data: %s IPv4 / %s IPv6 ranges in egressd's table; %s IPv4 / %s IPv6 prefixes in the LPM tries"
      % (data["v4_ranges"], data["v6_ranges"], data["lpm4_prefixes"], data["lpm6_prefixes"]))
print()
print("(a) country lookup, ns per program run (bpf_stats), median; net = minus the counter-only program;")
print("    range = egressd's table as the daemon installs it (BPF_F_INNER_MAP), fixed = the same table in a")
print("    fixed-size inner map (lookups inlined), lpm = kernel LPM trie with the same data")
print("    %-4s %-5s %8s %8s %8s %8s %10s %10s %10s %10s %10s" % ("fam", "temp", "counter", "range", "fixed", "lpm", "range net", "fixed net", "lpm net", "range/lpm", "fixed/lpm"))
for fam in ("4", "6"):
    for t in ("cold", "warm", "hot"):
        r = lookup[(fam, t)]
        rel = lambda k: "%9.2fx" % (r[k] / r["lpm_net"]) if r["lpm_net"] > 0 else "      nan"
        print("    IPv%s %-5s %8.1f %8.1f %8.1f %8.1f %10.1f %10.1f %10.1f %s %s" % (fam, t, r["count"], r["range"], r["fixed"], r["lpm"], r["range_net"], r["fixed_net"], r["lpm_net"], rel("range_net"), rel("fixed_net")))
rates = {}
for line in open(tmp + "/rates"):
    c, w, v = line.split()
    rates.setdefault((c, w), []).append(float(v))
print()
print("(b) loopback rates (ops/s, median of %d interleaved runs; ratio to no program; min-max spread)" % len(rates[("none", "tcp")]))
print("    %-22s %12s %7s %7s %12s %7s %7s" % ("config", "TCP conn/s", "ratio", "spread", "UDP send/s", "ratio", "spread"))
labels = {"none": "no program", "counter": "counter-only program", "monitor": "egressd monitor",
          "enforce": "egressd enforce", "nft": "nftables geoip map"}
base = {w: statistics.median(rates[("none", w)]) for w in ("tcp", "udp")}
for c in ("none", "counter", "monitor", "enforce", "nft"):
    cells = []
    for w in ("tcp", "udp"):
        v = rates[(c, w)]
        m = statistics.median(v)
        cells += ["%12.0f" % m, "%6.3fx" % (m / base[w]), "%6.1f%%" % (100 * (max(v) - min(v)) / m)]
    print("    %-22s %s" % (labels[c], " ".join(cells)))
print("    egressd monitor, per program (bpf_stats, one extra pass): " + open(tmp + "/breakdown").read().strip().replace("\n", "\n" + " " * 8))
rl = kv(open(tmp + "/reload").read())
print()
print("(c) world-table reload, s (median of 3): parse %s, compile %s, fill %s, flip %s, total %s;"
      % (rl["parse"], rl["compile"], rl["fill"], rl["flip"], rl["total"]))
print("    egressd end to end (egressctl reload of new data + policies): %.3f s; nftables set load (nft -f): %.1f s"
      % (float(open(tmp + "/daemon_reload").read()), float(nft_load)))
print("    kernel memory: egressd table %.1f MiB (daemon's map: %s; fixed-size variant %.1f MiB), LPM tries %.1f MiB (v4 %.1f + v6 %.1f)"
      % (mem["range"] / 2**20, ("%.1f MiB" % (int(daemon_mem) / 2**20)) if daemon_mem else "n/a", mem["fixed"] / 2**20,
         (mem["lpm4"] + mem["lpm6"]) / 2**20, mem["lpm4"] / 2**20, mem["lpm6"] / 2**20))
e0, e1 = [list(map(int, x.split())) for x in (ev0, ev1)]
ev = open(tmp + "/events").read().split()
print()
print("(d) /metrics with %s connections_total series: %.1f ms (median of 11)"
      % (series, 1000 * float(open(tmp + "/metrics_s").read())))
print("    events: %s would_deny sendto() in %.2f s = %.0f events/s offered; delivered %d, lost %d"
      % (ev[1], float(ev[2]), int(ev[1]) / float(ev[2]), e1[0] - e0[0], e1[1] - e0[1]))
EOF
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
