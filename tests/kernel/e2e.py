#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Kernel integration tests for egressd.

The real daemon loads the real BPF programs into this kernel and attaches them to cgroups this test
creates (never the root, never one it did not create). Client processes join those cgroups and run
inside their own network namespace (unshare -n, only lo up), so no packet leaves them: an allowed
public destination fails with ENETUNREACH (the connect hook runs before routing), a denied one with
EPERM. Verdicts and counters are read back through the daemon's API on its Unix socket.

Prints one line per test and a closing "N passed, N failed" line; exit 0 only if all passed.
Exit 77 (SKIP) when not root or BPF is unavailable.
"""
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
EGRESSD = os.path.join(BUILD, "egressd")
EGRESSCTL = os.path.join(BUILD, "egressctl")
SOCKPROBE = os.path.join(BUILD, "tests", "sockprobe")
TEST_GEO = os.path.join(ROOT, "tests", "data", "geo", "kernel-test.csv")
WORLD_GEO = os.path.join(ROOT, "data", "geo", "country.csv.gz")
REGIONS = os.path.join(ROOT, "data", "regions.conf")
BPFFS = "/sys/fs/bpf"


def ensure_bpffs():
    """bpffs at /sys/fs/bpf (systemd mounts it at boot; some machines, like CI here, lack it)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if left.split()[4] == BPFFS and right.split()[0] == "bpf":
                return
    subprocess.run(["mount", "-t", "bpf", "bpf", BPFFS], check=True)


def cgroup2_mount():
    """The cgroup v2 mount point, from /proc/self/mountinfo (never hard-coded)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                return left.split()[4].encode().decode("unicode_escape")
    return None


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


class Runner:
    """run(name, fn, *args): one test, printed as "ok     NAME" or "FAILED NAME: why" (a Failure's
    message, else the traceback). E2E_ONLY=TEXT in the environment runs only the tests whose name
    contains TEXT (development). summary() prints "N passed, N failed" and returns the exit code."""

    def __init__(self):
        self.passed = self.failed = 0
        self.only = os.environ.get("E2E_ONLY")

    def __call__(self, name, fn, *a):
        if self.only and self.only not in name:
            return
        try:
            fn(*a)
            self.passed += 1
            print("ok     %s" % name, flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            self.failed += 1
            detail = str(e) if isinstance(e, Failure) else traceback.format_exc()
            print("FAILED %s: %s" % (name, detail), flush=True)

    def summary(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 0 if self.failed == 0 else 1


class Daemon:
    """One egressd with its own config directory, socket and test cgroups."""

    def __init__(self, env, name, geo, policies, on_exit="detach"):
        self.env = env
        self.dir = os.path.join(env.tmp, name)
        self.pins = os.path.join(BPFFS, "%s-%s" % (env.cgbase_rel, name))
        env.pin_dirs.append(self.pins)
        os.makedirs(os.path.join(self.dir, "policies.d"))
        self.sock = os.path.join(self.dir, "egressd.sock")
        self.conf = os.path.join(self.dir, "egressd.conf")
        with open(self.conf, "w") as f:
            f.write("[Daemon]\nGeoDatabase=%s\nSocket=%s\nRegions=%s\nReaderGroup=\n"
                    "PinPath=%s\nOnExit=%s\nStateDirectory=%s/state\n"
                    % (geo, self.sock, REGIONS, self.pins, on_exit, self.dir))
        self.write_policies(policies)
        self.proc = None
        self.log = os.path.join(self.dir, "egressd.log")

    def edit_conf(self, old, new):
        """Replace old by new in the main configuration file (old must be there)."""
        with open(self.conf) as f:
            text = f.read()
        if old not in text:
            raise Failure("%s: %r is not in the configuration" % (self.conf, old))
        with open(self.conf, "w") as f:
            f.write(text.replace(old, new))

    def write_policies(self, policies):
        pd = os.path.join(self.dir, "policies.d")
        for fn in os.listdir(pd):
            os.unlink(os.path.join(pd, fn))
        for i, text in enumerate(policies):
            with open(os.path.join(pd, "%02d.conf" % i), "w") as f:
                f.write(text)

    def start(self, env=None, prefix=(), wait=True, pass_fds=()):
        """Start egressd (argv prefix: e.g. systemd-socket-activate ...); wait for its API."""
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(list(prefix) + [EGRESSD, "--config", self.conf, "--log-level", "debug"],
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})), pass_fds=pass_fds)
        if not wait:
            return
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Failure("egressd exited with %d:\n%s" % (self.proc.returncode, self.logtext()))
            if os.path.exists(self.sock):
                try:
                    self.get("/v1/status")
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise Failure("egressd did not come up:\n" + self.logtext())

    def logtext(self):
        try:
            with open(self.log) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def request(self, method, path):
        c = UnixHTTPConnection(self.sock)
        try:
            c.request(method, path)
            r = c.getresponse()
            body = r.read().decode()
            return r.status, body
        finally:
            c.close()

    def get(self, path):
        status, body = self.request("GET", path)
        if status != 200:
            raise Failure("GET %s -> %d %s" % (path, status, body))
        return json.loads(body) if not path.startswith("/metrics") else body

    def counters(self, cgroup=None):
        """{(cgroup, country, protocol, verdict): connections} for rows of one cgroup."""
        q = "/v1/counters"
        if cgroup is not None:
            q += "?" + urllib.parse.urlencode({"cgroup": cgroup})
        rows = self.get(q)["rows"]
        out = {}
        for r in rows:
            k = (r["cgroup"], r["country"], r["protocol"], r["verdict"])
            out[k] = out.get(k, 0) + r["connections"]
        return out

    def wait_attached(self, n, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.get("/v1/status")
            if st.get("attached_cgroups") == n:
                return st
            time.sleep(0.1)
        raise Failure("attached_cgroups never became %d: %s" % (n, st.get("attached_cgroups")))


class Env:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="egressd-test-")
        self.cgmount = cgroup2_mount()
        self.cgbase_rel = "egressd-test-%d-%d" % (os.getpid(), random.randrange(1 << 30))
        self.cgbase = os.path.join(self.cgmount, self.cgbase_rel)
        os.mkdir(self.cgbase)
        self.daemons = []
        self.pin_dirs = []

    def cgroup(self, rel):
        """Create a cgroup under this test's own base; return its path relative to the mount."""
        path = os.path.join(self.cgbase, rel)
        os.makedirs(path, exist_ok=True)
        return os.path.join(self.cgbase_rel, rel)

    def daemon(self, name, geo, policies, on_exit="detach"):
        d = Daemon(self, name, geo, policies, on_exit)
        self.daemons.append(d)
        return d

    def cleanup(self):
        for d in self.daemons:
            d.stop()
        # Remove cgroups bottom-up; processes in them have exited (probes are waited for).
        if os.path.isdir(self.cgbase):
            for dirpath, dirnames, _ in sorted(os.walk(self.cgbase), key=lambda t: -t[0].count("/")):
                for i in range(50):
                    try:
                        os.rmdir(dirpath)
                        break
                    except OSError:
                        time.sleep(0.1)
        # Unpinning the links detaches programs a test left attached (OnExit=keep, kill -9).
        for p in self.pin_dirs:
            shutil.rmtree(p, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def probe(env, cg_rel, *args, lo=()):
    """Run sockprobe inside cgroup cg_rel and a private network namespace (only lo up). Addresses
    in lo are added to lo inside that namespace, so packets to them really flow (on lo only)."""
    cg = os.path.join(env.cgmount, cg_rel)
    script = 'echo $$ > "$1/cgroup.procs" && ip link set lo up || exit 1; shift; '
    for a in lo:
        # nodad: an IPv6 address must be usable at once (no tentative state)
        script += 'ip addr add %s dev lo%s || exit 1; ' % (a, " nodad" if ":" in a else "")
    script += 'exec "$@"'
    r = subprocess.run(["unshare", "--net", "sh", "-c", script, "sh", cg, SOCKPROBE] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise Failure("sockprobe %s: exit %d: %s %s" % (" ".join(map(str, args)), r.returncode, r.stdout, r.stderr))
    return r.stdout.split()


def delta(before, after):
    out = {}
    for k in set(before) | set(after):
        v = after.get(k, 0) - before.get(k, 0)
        if v:
            out[k] = v
    return out


POLICY = """[Policy]
Name={name}
Cgroup={cgroup}
Mode={mode}
AllowCountry={allow}
{extra}
"""


def policy(name, cgroup, mode, allow, extra=""):
    return POLICY.format(name=name, cgroup=cgroup, mode=mode, allow=allow, extra=extra)


# ---- tests ------------------------------------------------------------------------------------

def run_case(d, env, cg, args, expect_out, expect_counts, lo=()):
    """One probe run: its printed results and the exact counter delta of its cgroup."""
    before = d.counters(cg)
    out = probe(env, cg, *args, lo=lo)
    after = d.counters(cg)
    check(out == expect_out, "sockprobe %s: got %s, want %s" % (" ".join(map(str, args)), out, expect_out))
    want = {(cg, c, p, v): n for (c, p, v), n in expect_counts.items()}
    got = delta(before, after)
    check(got == want, "sockprobe %s: counters delta %s, want %s" % (" ".join(map(str, args)), got, want))


def enforce_cases(env, d, cg):
    # Policy: allow DE only. 192.0.2.x = DE (A), 198.51.100.x = US (B), 100.64.x = ZZ (unknown).
    A, B, A6, B6 = "192.0.2.10", "198.51.100.10", "2001:db8:1::10", "2001:db8:2::10"
    return [
        ("tcp4 allowed country", ["tcp4", "connect", A, 443], ["ENETUNREACH"], {("DE", "tcp", "allow"): 1}),
        ("tcp4 denied country", ["tcp4", "connect", B, 443], ["EPERM"], {("US", "tcp", "deny"): 1}),
        ("tcp6 allowed country", ["tcp6", "connect", A6, 443], ["ENETUNREACH"], {("DE", "tcp", "allow"): 1}),
        ("tcp6 denied country", ["tcp6", "connect", B6, 443], ["EPERM"], {("US", "tcp", "deny"): 1}),
        ("unknown country, Unknown=deny", ["tcp4", "connect", "100.64.0.1", 443], ["EPERM"],
         {("unknown", "tcp", "deny"): 1}),
        ("no data, Unknown=deny", ["tcp4", "connect", "10.9.8.7", 443], ["EPERM"], {("unknown", "tcp", "deny"): 1}),
        ("AllowCIDR exception", ["tcp4", "connect", "198.51.100.200", 443], ["ENETUNREACH"],
         {("US", "tcp", "allow"): 1}),
        ("DenyCIDR exception", ["tcp4", "connect", "192.0.2.200", 443], ["EPERM"], {("DE", "tcp", "deny"): 1}),
        ("loopback is local", ["tcp4", "connect", "127.0.0.1", 9], ["ECONNREFUSED"], {("unknown", "tcp", "local"): 1}),
        ("::1 is local", ["tcp6", "connect", "::1", 9], ["ECONNREFUSED"], {("unknown", "tcp", "local"): 1}),
        # ../shared/cases/sockets-dual-stack.md
        ("dual-stack 1: v6 socket to ::ffff:B", ["tcp6", "connect", "::ffff:" + B, 443, "--v6only=0"], ["EPERM"],
         {("US", "tcp", "deny"): 1}),
        ("dual-stack 2: v6 socket to ::ffff:A", ["tcp6", "connect", "::ffff:" + A, 443, "--v6only=0"],
         ["ENETUNREACH"], {("DE", "tcp", "allow"): 1}),
        ("dual-stack 3: udp6 sendto ::ffff:B", ["udp6", "sendto", "::ffff:" + B, 53], ["EPERM"],
         {("US", "udp", "deny"): 1}),
        ("dual-stack 4: udp6 sendto sockaddr_in B", ["udp6", "sendto-sin", B, 53], ["EPERM"],
         {("US", "udp", "deny"): 1}),
        ("dual-stack 5: NAT64 64:ff9b::B", ["tcp6", "connect", "64:ff9b::" + B, 443], ["EPERM"],
         {("US", "tcp", "deny"): 1}),
        # Same kinds, other paths: UDP to NAT64 and IPv4-mapped, UDP connect on a v6 socket with
        # a mapped address and with a struct sockaddr_in (connect4 runs for the latter).
        ("udp6 sendto NAT64 B", ["udp6", "sendto", "64:ff9b::" + B, 53], ["EPERM"], {("US", "udp", "deny"): 1}),
        ("udp6 connect ::ffff:B", ["udp6", "connect", "::ffff:" + B, 53], ["EPERM"], {("US", "udp", "deny"): 1}),
        ("udp6 connect sockaddr_in B", ["udp6", "connect-sin", B, 53], ["EPERM"], {("US", "udp", "deny"): 1}),
        ("udp6 sendto B6", ["udp6", "sendto", B6, 53], ["EPERM"], {("US", "udp", "deny"): 1}),
        ("tcp6 V6ONLY=1 to ::ffff:B", ["tcp6", "connect", "::ffff:" + B, 443, "--v6only=1"], ["EPERM"],
         {("US", "tcp", "deny"): 1}),
        # ../shared/cases/sockets-udp.md
        ("udp 1: sendto B on a fresh socket", ["udp4", "sendto", B, 53], ["EPERM"], {("US", "udp", "deny"): 1}),
        ("udp 2: connect(udp, B)", ["udp4", "connect", B, 53], ["EPERM"], {("US", "udp", "deny"): 1}),
        # A is added to lo in the client's namespace with a UDP sink bound to it, so the
        # allowed datagrams really flow (on lo) and no ICMP error comes back.
        ("udp 3: connect A then send 100x: one decision",
         ["--udp-sink", A, 53, "udp4", "connect-send", A, 53, 100],
         ["ok", "ok*100"], {("DE", "udp", "allow"): 1}, [A + "/32"]),
        ("udp 4: connected socket, sendto B", ["--udp-sink", A, 53, "udp4", "connect-then-sendto", A, 53, B, 53],
         ["ok", "EPERM"], {("DE", "udp", "allow"): 1, ("US", "udp", "deny"): 1}, [A + "/32"]),
        ("udp 5: sendmmsg A,B,A", ["--udp-sink", A, 53, "udp4", "sendmmsg", 53, A, B, A], ["1"],
         {("DE", "udp", "allow"): 1, ("US", "udp", "deny"): 1}, [A + "/32"]),
    ]


def main():
    if os.geteuid() != 0:
        print("SKIP: kernel tests need root (BPF, cgroups, network namespaces)")
        return 77
    for tool in (EGRESSD, SOCKPROBE):
        if not os.access(tool, os.X_OK):
            print("FAIL: %s is not built (run make)" % tool)
            return 1
    if not cgroup2_mount():
        print("SKIP: no cgroup v2 mount in /proc/self/mountinfo")
        return 77

    ensure_bpffs()
    env = Env()
    run = Runner()

    try:
        cg_enf = env.cgroup("enforce")
        cg_mon = env.cgroup("monitor")
        cg_nest = env.cgroup("enforce/nested")
        extra = "AllowCIDR=198.51.100.128/25\nDenyCIDR=192.0.2.128/25\nUnknown=deny"
        d = env.daemon("main", TEST_GEO, [
            policy("t-enforce", cg_enf, "enforce", "DE", extra),
            policy("t-monitor", cg_mon, "monitor", "DE", extra),
            policy("t-nested", cg_nest, "enforce", "US", "Unknown=allow"),
        ])
        d.start()
        st = d.wait_attached(2)  # enforce (covers nested) and monitor

        for name, args, out, counts, *lo in enforce_cases(env, d, cg_enf):
            run("enforce: " + name, run_case, d, env, cg_enf, args, out, counts, *lo)

        # Monitor mode: the same denied calls pass the hook and count as would_deny.
        mon = [
            ("tcp4 denied country", ["tcp4", "connect", "198.51.100.10", 443], ["ENETUNREACH"],
             {("US", "tcp", "would_deny"): 1}),
            ("dual-stack ::ffff:B", ["tcp6", "connect", "::ffff:198.51.100.10", 443, "--v6only=0"], ["ENETUNREACH"],
             {("US", "tcp", "would_deny"): 1}),
            ("NAT64 B", ["tcp6", "connect", "64:ff9b::198.51.100.10", 443], ["ENETUNREACH"],
             {("US", "tcp", "would_deny"): 1}),
            ("udp sendto B", ["udp4", "sendto", "198.51.100.10", 53], ["ENETUNREACH"], {("US", "udp", "would_deny"): 1}),
            ("allowed stays allow", ["tcp4", "connect", "192.0.2.10", 443], ["ENETUNREACH"], {("DE", "tcp", "allow"): 1}),
            ("DenyCIDR -> would_deny", ["tcp4", "connect", "192.0.2.200", 443], ["ENETUNREACH"],
             {("DE", "tcp", "would_deny"): 1}),
        ]
        for name, args, out, counts in mon:
            run("monitor: " + name, run_case, d, env, cg_mon, args, out, counts)

        # Nested cgroup with its own policy: the deepest configured ancestor wins, counted once.
        run("nested: own policy wins (US allowed)", run_case, d, env, cg_nest,
            ["tcp4", "connect", "198.51.100.10", 443], ["ENETUNREACH"], {("US", "tcp", "allow"): 1})
        run("nested: DE denied by its own policy", run_case, d, env, cg_nest,
            ["tcp4", "connect", "192.0.2.10", 443], ["EPERM"], {("DE", "tcp", "deny"): 1})

        def events_and_lost():
            st = d.get("/v1/status")
            check(st["events_lost"] == 0, "events lost: %s" % st["events_lost"])
            check(st["events_seen"] > 0, "no deny events reached the daemon")
        run("events reach the daemon, none lost", events_and_lost)

        def lookup():
            r = d.get("/v1/lookup?addr=198.51.100.10&cgroup=" + urllib.parse.quote(cg_enf))
            check(r["country"] == "US" and r["verdict"] == "deny" and r["policy"] == "t-enforce", r)
            check(r["prefix"] == "198.51.100.0/24", r)
            r = d.get("/v1/lookup?addr=::ffff:192.0.2.10&cgroup=" + urllib.parse.quote(cg_mon))
            check(r["country"] == "DE" and r["verdict"] == "allow", r)
            r = d.get("/v1/lookup?addr=192.0.2.200&cgroup=" + urllib.parse.quote(cg_mon))
            check(r["verdict"] == "would_deny" and r.get("matched_cidr") == "192.0.2.128/25", r)
            r = d.get("/v1/lookup?addr=198.51.100.10&cgroup=" + urllib.parse.quote(cg_nest))
            check(r["verdict"] == "allow" and r["policy"] == "t-nested", r)
            status, body = d.request("GET", "/v1/lookup?addr=300.1.2.3")
            check(status == 400 and "addr" in json.loads(body)["error"], (status, body))
        run("api: lookup", lookup)

        def ctl_status_table():
            r = subprocess.run([EGRESSCTL, "--socket", d.sock, "status"], capture_output=True, text=True, timeout=10)
            check(r.returncode == 0, r.stderr)
            rows = [l for l in r.stdout.splitlines() if "t-enforce" in l]
            check(len(rows) == 1, r.stdout)
            check(cg_enf + " " in rows[0] + " " and "allow:198.51.100.128/25,deny:192.0.2.128/25" in rows[0]
                  and "{" not in rows[0], "policies row is not readable text: %r" % rows[0])
        run("egressctl status: policies as a readable table", ctl_status_table)

        def metrics():
            m = d.get("/metrics")
            for name in ("egressd_connections_total{", "egressd_events_lost_total", "egressd_geo_prefixes{",
                         "egressd_policy_generation", "egressd_reload_failures_total", "egressd_enforcing{"):
                check(name in m, "metrics lack %s" % name)
            check('egressd_enforcing{policy="t-enforce"} 1' in m, "t-enforce not enforcing")
            check('egressd_enforcing{policy="t-monitor"} 0' in m, "t-monitor enforcing")
        run("api: metrics", metrics)

        def failed_reload_keeps_state():
            before = d.counters()
            gen = d.get("/v1/status")["generation"]
            d.write_policies([policy("t-enforce", cg_enf, "enforce", "DE D3", "DenyCIDR=224.0.0.0/24")])
            status, body = d.request("POST", "/v1/reload")
            r = json.loads(body)
            check(status == 200 and r["ok"] is False, (status, body))
            # the one error in errors; the warning of the same file in warnings, not among the errors
            check(len(r["errors"]) == 1 and "00.conf:" in r["errors"][0] and "D3" in r["errors"][0], r)
            check(len(r["warnings"]) == 1 and r["warnings"][0].find("00.conf:6: DenyCIDR: 224.0.0.0/24") > 0, r)
            st = d.get("/v1/status")
            check(st["last_reload"]["errors"] == r["errors"] and st["last_reload"]["warnings"] == r["warnings"],
                  st["last_reload"])
            check(st["generation"] == gen and st["reload_failures"] == 1, st)
            check(d.counters() == before, "counters changed by a failed reload")
            out = probe(env, cg_enf, "tcp4", "connect", "198.51.100.10", 443)
            check(out == ["EPERM"], "policy lost after failed reload: %s" % out)
        run("reload: a bad policy keeps the running generation and counters", failed_reload_keeps_state)

        def good_reload():
            d.write_policies([
                policy("t-enforce", cg_enf, "enforce", "DE US", "Unknown=deny"),
                policy("t-monitor", cg_mon, "monitor", "DE", extra),
                policy("t-nested", cg_nest, "enforce", "US", "Unknown=allow"),
            ])
            before = d.counters(cg_enf)
            gen = d.get("/v1/status")["generation"]
            os.kill(d.proc.pid, signal.SIGHUP)
            deadline = time.time() + 10
            while d.get("/v1/status")["generation"] <= gen and time.time() < deadline:
                time.sleep(0.05)
            out = probe(env, cg_enf, "tcp4", "connect", "198.51.100.10", 443)
            check(out == ["ENETUNREACH"], "US still denied after reload: %s" % out)
            after = d.counters(cg_enf)
            check(after[(cg_enf, "US", "tcp", "deny")] == before[(cg_enf, "US", "tcp", "deny")],
                  "deny counter changed across reload")
        run("reload: SIGHUP applies a new policy, counters continue", good_reload)

        def follows_recreated_cgroup():
            path = os.path.join(env.cgmount, cg_mon)
            os.rmdir(path)
            d.wait_attached(1)
            os.mkdir(path)
            d.wait_attached(2)
            out = probe(env, cg_mon, "tcp4", "connect", "198.51.100.10", 443)
            check(out == ["ENETUNREACH"], out)
            c = d.counters(cg_mon)
            check(c.get((cg_mon, "US", "tcp", "would_deny"), 0) >= 2, c)
        run("cgroup removed and created again: the policy follows it", follows_recreated_cgroup)

        def world_data():
            cg_w = env.cgroup("world")
            w = env.daemon("world", WORLD_GEO, [policy("w", cg_w, "enforce", "DE FR NL")])
            w.start()
            w.wait_attached(1)
            st = w.get("/v1/status")
            check(st["geo"]["prefixes"]["ipv4"] > 100000 and st["geo"]["prefixes"]["ipv6"] > 50000, st["geo"])
            # Countries as the embedded data says (checked against the CSV rows by the unit tests).
            for addr in ("8.8.8.8", "1.1.1.1"):
                r = w.get("/v1/lookup?addr=%s&cgroup=%s" % (addr, urllib.parse.quote(cg_w)))
                want = "EPERM" if r["verdict"] == "deny" else "ENETUNREACH"
                out = probe(env, cg_w, "tcp4", "connect", addr, 443)
                check(out == [want], "%s (%s, %s): %s" % (addr, r["country"], r["verdict"], out))
            w.stop()
        run("world data: lookups and verdicts agree with the kernel", world_data)

        def check_cli():
            bad = os.path.join(env.tmp, "bad")
            os.makedirs(os.path.join(bad, "policies.d"))
            with open(os.path.join(bad, "egressd.conf"), "w") as f:
                f.write("[Daemon]\nGeoDatabase=%s\nRegions=%s\n" % (TEST_GEO, REGIONS))
            with open(os.path.join(bad, "policies.d", "p.conf"), "w") as f:
                f.write("[Policy]\nName=x\nCgroup=a\nMode=enforce\nAllowCountry=ZZZ\n")
            r = subprocess.run([EGRESSD, "--check", "--config", os.path.join(bad, "egressd.conf")],
                               capture_output=True, text=True)
            check(r.returncode == 1, r)
            check(os.path.join(bad, "policies.d", "p.conf") + ":5:" in r.stderr, r.stderr)
            # PinPath= off bpffs: --check says what the start would say.
            with open(os.path.join(bad, "egressd.conf"), "a") as f:
                f.write("PinPath=%s/pins\n" % bad)
            with open(os.path.join(bad, "policies.d", "p.conf"), "w") as f:
                f.write("[Policy]\nName=x\nCgroup=a\nMode=enforce\nAllowCountry=DE\n")
            r = subprocess.run([EGRESSD, "--check", "--config", os.path.join(bad, "egressd.conf")],
                               capture_output=True, text=True)
            check(r.returncode == 1 and "is not a bpf filesystem" in r.stderr, r)
        run("egressd --check reports FILE:LINE", check_cli)

        def unit_collision():
            bad = os.path.join(env.tmp, "unitdup")
            os.makedirs(os.path.join(bad, "policies.d"))
            with open(os.path.join(bad, "egressd.conf"), "w") as f:
                f.write("[Daemon]\nGeoDatabase=%s\nRegions=%s\n" % (TEST_GEO, REGIONS))
            with open(os.path.join(bad, "policies.d", "a.conf"), "w") as f:
                f.write("[Policy]\nName=a\nCgroup=system.slice/egressd-test-x.service\nAllowCountry=DE\n")
            with open(os.path.join(bad, "policies.d", "b.conf"), "w") as f:
                f.write("[Policy]\nName=b\nUnit=egressd-test-x.service\nAllowCountry=FR\n")
            r = subprocess.run([EGRESSD, "--check", "--config", os.path.join(bad, "egressd.conf")],
                               capture_output=True, text=True)
            want = ("%s:1: policy b: cgroup system.slice/egressd-test-x.service is also selected by policy a (%s:1)"
                    % (os.path.join(bad, "policies.d", "b.conf"), os.path.join(bad, "policies.d", "a.conf")))
            check(r.returncode == 1 and want in r.stderr, r.stderr)
        run("a Unit= resolving to another policy's cgroup is an error", unit_collision)

        def attached_progs(cg_rel):
            out = subprocess.run(["bpftool", "cgroup", "show", os.path.join(env.cgmount, cg_rel)],
                                 capture_output=True, text=True).stdout
            return sorted(l.split()[-1] for l in out.splitlines()[1:] if l.strip())

        def crash_and_adopt():
            cg_p = env.cgroup("pinned")
            p = env.daemon("pinned", TEST_GEO, [policy("p", cg_p, "enforce", "DE")], on_exit="keep")
            p.start()
            p.wait_attached(1)
            hooks = ["egress_connect4", "egress_connect6", "egress_sendmsg4", "egress_sendmsg6", "egress_skb"]
            check(attached_progs(cg_p) == hooks, attached_progs(cg_p))
            check(probe(env, cg_p, "--repeat", 5, "tcp4", "connect", "198.51.100.10", 443) == ["EPERM*5"], "")
            before = p.counters(cg_p)[(cg_p, "US", "tcp", "deny")]
            p.proc.kill()  # kill -9: nothing runs on the way out
            p.proc.wait()
            # Down: enforcement and counting go on in the kernel.
            out = probe(env, cg_p, "--repeat", 7, "tcp4", "connect", "198.51.100.10", 443)
            check(out == ["EPERM*7"], "denied destination allowed while the daemon was down: %s" % out)
            os.unlink(p.sock)  # a crash leaves the socket file behind
            p.start()
            p.wait_attached(1)
            after = p.counters(cg_p)[(cg_p, "US", "tcp", "deny")]
            check(after == before + 7, "counters after restart %d, want %d + 7" % (after, before))
            check(attached_progs(cg_p) == hooks, "not one program per hook: %s" % attached_progs(cg_p))
            check("adopted the pinned state" in p.logtext(), p.logtext())
            # A child cgroup counted, then removed: after a restart its rows keep the last known
            # path (StateDirectory=/names.json), not "id:N".
            cg_child = env.cgroup("pinned/child")
            check(probe(env, cg_child, "tcp4", "connect", "198.51.100.10", 443) == ["EPERM"], "")
            check(p.counters(cg_child).get((cg_child, "US", "tcp", "deny")) == 1, p.counters(cg_child))
            os.rmdir(os.path.join(env.cgmount, cg_child))
            p.stop()
            p.start()
            check(p.counters(cg_child).get((cg_child, "US", "tcp", "deny")) == 1,
                  "removed cgroup lost its name over a restart: %s" % p.get("/v1/counters")["rows"])
            # Clean stop with OnExit=keep: still enforcing; then a start with a broken policy keeps it.
            p.stop()
            check(attached_progs(cg_p) == hooks, attached_progs(cg_p))
            p.write_policies([policy("p", cg_p, "enforce", "D3")])
            r = subprocess.run([EGRESSD, "--config", p.conf], capture_output=True, text=True, timeout=20)
            check(r.returncode == 1 and "stay attached" in r.stderr and "00.conf:5:" in r.stderr, r.stderr)
            check(probe(env, cg_p, "tcp4", "connect", "198.51.100.10", 443) == ["EPERM"], "failed start ended enforcement")
            # OnExit=detach removes everything.
            p.write_policies([policy("p", cg_p, "enforce", "DE")])
            p.edit_conf("OnExit=keep", "OnExit=detach")
            p.start()
            c = p.counters(cg_p)[(cg_p, "US", "tcp", "deny")]
            check(c == before + 8, "counters %d, want %d" % (c, before + 8))
            p.stop()
            check(attached_progs(cg_p) == [], attached_progs(cg_p))
            check(not os.path.exists(p.pins), os.listdir(p.pins) if os.path.exists(p.pins) else "")
            # A reboot: no pins, only the snapshot in StateDirectory=; the counts come back.
            p.start()
            c = p.counters(cg_p)[(cg_p, "US", "tcp", "deny")]
            check(c == before + 8, "after the simulated reboot counters %d, want %d" % (c, before + 8))
            check("restored" in p.logtext(), p.logtext())
            p.stop()
            # A damaged snapshot is reported and set aside, never half-loaded.
            snap = os.path.join(p.dir, "state", "counters.snapshot")
            with open(snap, "r+b") as f:
                f.truncate(os.path.getsize(snap) // 2)
            p.start()
            check(p.counters(cg_p).get((cg_p, "US", "tcp", "deny"), 0) == 0, "half-loaded snapshot")
            check("set aside" in p.logtext() and os.path.exists(snap + ".corrupt"), p.logtext())
            p.stop()
        def coexistence():
            cg_c = env.cgroup("coexist")
            pin = os.path.join(BPFFS, env.cgbase_rel + "-other")
            env.pin_dirs.append(pin)
            cgpath = os.path.join(env.cgmount, cg_c)
            subprocess.run(["bpftool", "prog", "load", os.path.join(BUILD, "tests", "other_deny.bpf.o"), pin,
                            "type", "cgroup/connect4"], check=True)
            try:
                subprocess.run(["bpftool", "cgroup", "attach", cgpath, "connect4", "pinned", pin, "multi"],
                               check=True)
                c = env.daemon("coexist", TEST_GEO, [policy("c", cg_c, "enforce", "DE")])
                for _ in range(2):  # two starts (restart) must leave one egressd program per hook
                    c.start()
                    c.wait_attached(1)
                    check(probe(env, cg_c, "tcp4", "connect", "192.0.2.10", 443) == ["EPERM"], "other tool's deny lost")
                    check(probe(env, cg_c, "tcp4", "connect", "192.0.2.20", 443) == ["ENETUNREACH"], "DE not allowed")
                    check(probe(env, cg_c, "tcp4", "connect", "198.51.100.10", 443) == ["EPERM"], "egressd deny lost")
                    progs = attached_progs(cg_c)
                    check(progs == sorted(["other_deny", "egress_connect4", "egress_connect6", "egress_sendmsg4",
                                           "egress_sendmsg6", "egress_skb"]), progs)
                    c.stop()  # OnExit=detach
                    check(attached_progs(cg_c) == ["other_deny"], "after stop: %s" % attached_progs(cg_c))
                check(probe(env, cg_c, "tcp4", "connect", "192.0.2.10", 443) == ["EPERM"], "other tool's deny lost")
                check(probe(env, cg_c, "tcp4", "connect", "198.51.100.10", 443) == ["ENETUNREACH"], "")
            finally:
                subprocess.run(["bpftool", "cgroup", "detach", cgpath, "connect4", "pinned", pin],
                               capture_output=True)
                if os.path.exists(pin):
                    os.unlink(pin)
        run("coexistence: another tool's program stays attached and both policies hold", coexistence)

        def upgrade_layout():
            # An upgrade (here: CounterEntries= and EventsRingBytes= changed, which changes the
            # layout of "counters" and "events" the same way a new version would) replaces the
            # maps and carries every count over, while connects keep being denied and counted.
            cg_u = env.cgroup("upgrade")
            u = env.daemon("upgrade", TEST_GEO, [policy("u", cg_u, "enforce", "DE")], on_exit="keep")
            with open(u.conf, "a") as f:
                f.write("CounterEntries=2048\nEventsRingBytes=8K\n")
            u.start()
            u.wait_attached(1)
            check(probe(env, cg_u, "--repeat", 5, "tcp4", "connect", "198.51.100.10", 443) == ["EPERM*5"], "")
            seen_before = u.get("/v1/status")["events_seen"]
            u.proc.kill()
            u.proc.wait()
            os.unlink(u.sock)
            # Down: 7 denies, their events wait in the old ring buffer.
            check(probe(env, cg_u, "--repeat", 7, "tcp4", "connect", "198.51.100.10", 443) == ["EPERM*7"], "")
            u.edit_conf("CounterEntries=2048", "CounterEntries=4096")
            u.edit_conf("EventsRingBytes=8K", "EventsRingBytes=16K")
            # A map an earlier version pinned under a name this version does not use.
            subprocess.run(["bpftool", "map", "create", os.path.join(u.pins, "geo_gen_v0"), "type", "array",
                            "key", "4", "value", "8", "entries", "1", "name", "geo_gen_v0"], check=True)
            # Connects in a loop while the new version loads, takes over the links and carries.
            results, stop = [], threading.Event()

            def loop():
                while not stop.is_set():
                    results.append(probe(env, cg_u, "--repeat", 200, "tcp4", "connect", "198.51.100.10", 443))
            t = threading.Thread(target=loop)
            t.start()
            try:
                time.sleep(0.2)
                u.start()
                u.wait_attached(1)
                time.sleep(0.3)
            finally:
                stop.set()
                t.join()
            check(all(r == ["EPERM*200"] for r in results), "not denied across the upgrade: %s" %
                  [r for r in results if r != ["EPERM*200"]][:3])
            during = 200 * len(results)
            check(during >= 400, "the loop ran only %d connects" % during)
            log = u.logtext()
            check("CounterEntries= differs" not in log, log)
            check("/counters: the pinned map's layout differs" in log and "max_entries 2048 -> 4096" in log, log)
            check("/events: the pinned ring buffer's layout differs" in log and "unread events are read from" in log, log)
            lr = u.get("/v1/status")["last_reload"]
            check(any("/counters: the pinned map's layout differs" in w for w in lr["warnings"]),
                  "the start's warnings are not in last_reload: %s" % lr)
            check("entries carried over into this version's \"counters\" map" in log, log)
            want = 5 + 7 + during
            print("  upgrade: %d connects during the switch" % during)
            c = u.counters(cg_u).get((cg_u, "US", "tcp", "deny"), 0)
            check(c == want, "counters after the upgrade %d, want 5 + 7 + %d = %d" % (c, during, want))
            # Every deny is an event delivered (by either run) or counted lost: the old ring's
            # unread events are read by the new run, the lost count is carried over.
            deadline = time.time() + 5
            while time.time() < deadline:
                st = u.get("/v1/status")
                if seen_before + st["events_seen"] + st["events_lost"] >= want:
                    break
                time.sleep(0.1)
            check(seen_before + st["events_seen"] + st["events_lost"] == want,
                  "events: %d seen before + %d seen after + %d lost != %d denies" %
                  (seen_before, st["events_seen"], st["events_lost"], want))
            check(st["events_seen"] >= 7, "the 7 events of the downtime were not read: %s" % st)
            left = [n for n in os.listdir(u.pins) if "-carry-" in n or n == "geo_gen_v0"]
            check(left == [], "replaced maps still pinned: %s" % left)
            check("geo_gen_v0: a map of an earlier version that this version does not use; unpinned" in log, log)
            hooks = ["egress_connect4", "egress_connect6", "egress_sendmsg4", "egress_sendmsg6", "egress_skb"]
            check(attached_progs(cg_u) == hooks, "not one program per hook: %s" % attached_progs(cg_u))
            info = json.loads(subprocess.run(["bpftool", "-j", "map", "show", "pinned",
                                              os.path.join(u.pins, "counters")],
                                             capture_output=True, text=True).stdout)
            check(info["max_entries"] == 4096, info)
            # A reload cannot resize the maps: each reload while the file differs from the value
            # in force says so, and the running maps stay as they are.
            u.edit_conf("CounterEntries=4096", "CounterEntries=8192")
            for n in (1, 2):
                gen = u.get("/v1/status")["generation"]
                if n == 1:
                    os.kill(u.proc.pid, signal.SIGHUP)
                else:  # egressctl shows the warnings of its reload, /v1/status keeps them
                    r = subprocess.run([EGRESSCTL, "--socket", u.sock, "reload"], capture_output=True,
                                       text=True, timeout=30)
                    check(r.returncode == 0 and "warning: " in r.stderr and
                          "CounterEntries= differs from the value in force (4096)" in r.stderr, r.stderr)
                deadline = time.time() + 10
                while u.get("/v1/status")["generation"] == gen and time.time() < deadline:
                    time.sleep(0.05)
                lr = u.get("/v1/status")["last_reload"]
                check(lr["ok"] and any("CounterEntries= differs" in w for w in lr["warnings"]), lr)
                with open(u.log) as f:
                    full = f.read()
                check(full.count("CounterEntries= differs from the value in force (4096)") == n,
                      "reload %d: no reminder that CounterEntries= waits for the next start" % n)
            info = json.loads(subprocess.run(["bpftool", "-j", "map", "show", "pinned",
                                              os.path.join(u.pins, "counters")],
                                             capture_output=True, text=True).stdout)
            check(info["max_entries"] == 4096, "a reload resized the counter map: %s" % info)
            u.edit_conf("CounterEntries=8192", "CounterEntries=4096")
            # A plain restart after that: nothing to carry, counts continue.
            u.stop()
            u.start()
            check(u.counters(cg_u).get((cg_u, "US", "tcp", "deny"), 0) == want, "counts lost on restart")
            check("carried over" not in u.logtext(), u.logtext())
            u.edit_conf("OnExit=keep", "OnExit=detach")
            u.stop()
            u.start()
            u.stop()
            check(attached_progs(cg_u) == [] and not os.path.exists(u.pins), "OnExit=detach left state")
        def start_config_errors_once():
            cg_x = env.cgroup("badconf")
            x = env.daemon("badconf", TEST_GEO, [policy("x", cg_x, "enforce", "DE")])
            with open(x.conf, "a") as f:
                f.write("EventsRingBytes=3000\nCounterEntries=5\n")
            r = subprocess.run([EGRESSD, "--config", x.conf], capture_output=True, text=True, timeout=20)
            lines = r.stderr.splitlines()
            want = ["egressd.conf:9: EventsRingBytes: '3000' is not a power of two",
                    "egressd.conf:10: CounterEntries: '5' is not a number of counter rows from 1024 to 4194304"]
            check(r.returncode == 1, r.stderr)
            for w in want:
                check(sum(w in l for l in lines) == 1, "%r not reported exactly once:\n%s" % (w, r.stderr))
            check(sum("start failed: invalid configuration" in l for l in lines) == 1, r.stderr)
            # A valid configuration with an exception that cannot take effect: --check warns.
            x.edit_conf("EventsRingBytes=3000\nCounterEntries=5\n", "")
            x.write_policies([policy("x", cg_x, "enforce", "DE", "DenyCIDR=224.0.0.0/24")])
            r = subprocess.run([EGRESSD, "--check", "--config", x.conf], capture_output=True, text=True, timeout=60)
            check(r.returncode == 0 and "warning: " in r.stderr and
                  "00.conf:6: DenyCIDR: 224.0.0.0/24 holds only local destinations" in r.stderr, r.stderr)
        run("a start with an invalid configuration reports each error once", start_config_errors_once)

        run("upgrade: a changed map layout is replaced and its counts and events carried over, "
            "enforcing throughout", upgrade_layout)

        run("pins: kill -9 keeps enforcing; restart adopts, counters continue, one program per hook; "
            "snapshots carry counters over a reboot",
            crash_and_adopt)
    finally:
        env.cleanup()
    return run.summary()


if __name__ == "__main__":
    sys.exit(main())
