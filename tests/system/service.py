#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""egressd as a systemd service, against the real tools:

- the sd_notify protocol on a NOTIFY_SOCKET this test listens on: READY=1 only after the programs
  are attached, RELOADING=1 + MONOTONIC_USEC= then READY=1 around a reload, WATCHDOG=1 keeps
  coming during a reload longer than the watchdog period, no READY=1 when the start fails;
- socket activation through systemd's own systemd-socket-activate;
- reload under load: 100 reloads alternating two valid configurations while clients loop
  connect() to an allowed and a denied address: no denied connection allowed, no allowed one
  denied, counters never decrease;
- failed reloads (broken policy, truncated GeoIP file) keep the running generation;
- deny events as journal entries, read back with journalctl from a real systemd-journald that runs
  in a private mount namespace (nothing is written to this machine's journal).

Uses the helpers of tests/kernel/e2e.py (test cgroups, private network namespaces).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernel"))
import e2e  # noqa: E402
from e2e import Failure, check, policy, probe  # noqa: E402


class NotifySocket:
    """A datagram socket in the role of systemd's NOTIFY_SOCKET; records (time, message) pairs."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.msgs = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            for line in data.decode().split("\n"):
                if line:
                    self.msgs.append((time.monotonic(), line))

    def lines(self):
        return [m for _, m in self.msgs]

    def wait_for(self, prefix, after=0, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for i, (_, m) in enumerate(self.msgs[after:], after):
                if m.startswith(prefix):
                    return i
            time.sleep(0.02)
        raise Failure("no %s in notify messages: %s" % (prefix, self.lines()[after:]))

    def close(self):
        self.stop = True
        self.t.join()
        self.sock.close()


def test_notify(env):
    cg = env.cgroup("notify")
    d = env.daemon("notify", e2e.WORLD_GEO, [policy("n", cg, "enforce", "DE FR")])
    ns = NotifySocket(os.path.join(env.tmp, "notify.sock"))
    try:
        # A watchdog much shorter than one GeoIP compile of the world data (~0.2 s): egressd
        # must keep pinging while it parses (WATCHDOG_USEC / 2 is the interval sd-event uses).
        # No WATCHDOG_PID: sd_watchdog_enabled() then applies WATCHDOG_USEC to this process.
        d.start(env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "60000"}, wait=False)
        i = ns.wait_for("READY=1")
        st = d.get("/v1/status")
        check(st["attached_cgroups"] == 1, "READY=1 before the programs were attached: %s" % st)
        check(any(m.startswith("STATUS=") for m in ns.lines()), ns.lines())
        # Reload with changed GeoIP data (a copy with a new mtime) so the slow path runs.
        geo2 = os.path.join(env.tmp, "world2.csv.gz")
        with open(e2e.WORLD_GEO, "rb") as src, open(geo2, "wb") as dst:
            dst.write(src.read())
        d.edit_conf(e2e.WORLD_GEO, geo2)
        mark = len(ns.msgs)
        os.kill(d.proc.pid, signal.SIGHUP)
        r = ns.wait_for("RELOADING=1", mark)
        rd = ns.wait_for("READY=1", r)
        seq = ns.lines()[mark:rd + 1]
        check(any(m.startswith("MONOTONIC_USEC=") for m in seq), "no MONOTONIC_USEC with RELOADING=1: %s" % seq)
        t_reload = ns.msgs[r][0]
        t_ready = ns.msgs[rd][0]
        pings = [t for t, m in ns.msgs[r:rd] if m == "WATCHDOG=1"]
        check(t_ready - t_reload > 0.06, "reload took %.3f s, not longer than the watchdog" % (t_ready - t_reload))
        gaps = [b - a for a, b in zip([t_reload] + pings, pings + [t_ready])]
        check(pings and max(gaps) < 0.06,
              "watchdog starved during reload: pings %d, largest gap %.3f s (WatchdogSec 0.06 s)"
              % (len(pings), max(gaps)))
        print("   reload %.3f s, %d WATCHDOG=1 during it, largest gap %.1f ms; sequence: %s"
              % (t_ready - t_reload, len(pings), max(gaps) * 1000,
                 " | ".join(m for m in seq if not m.startswith("WATCHDOG"))))
        d.stop()
        check(any(m == "STOPPING=1" for m in ns.lines()), "no STOPPING=1")
    finally:
        d.stop()
        ns.close()


def test_failed_start_no_ready(env):
    cg = env.cgroup("failstart")
    d = env.daemon("failstart", os.path.join(env.tmp, "missing.csv"), [policy("f", cg, "enforce", "DE")])
    ns = NotifySocket(os.path.join(env.tmp, "notify2.sock"))
    try:
        d.start(env={"NOTIFY_SOCKET": ns.path}, wait=False)
        rc = d.proc.wait(20)
        time.sleep(0.2)
        check(rc == 1, "exit code %s" % rc)
        check(not any(m == "READY=1" for m in ns.lines()), "READY=1 on a failed start: %s" % ns.lines())
        log = d.logtext()
        check("missing.csv" in log and "errno" in log, log)
    finally:
        d.stop()
        ns.close()


def test_socket_activation(env):
    cg = env.cgroup("sockact")
    d = env.daemon("sockact", e2e.TEST_GEO, [policy("s", cg, "enforce", "DE")])
    try:
        d.start(prefix=["systemd-socket-activate", "-l", d.sock])
        # The socket existed before egressd ran: systemd-socket-activate made it and passed it.
        st = d.get("/v1/status")
        check(st["attached_cgroups"] == 1, st)
        out = probe(env, cg, "tcp4", "connect", "198.51.100.10", 443)
        check(out == ["EPERM"], out)
        # egressd took the socket over and does not refuse its own (sd_listen_fds).
        check(not any("refusing" in l for l in d.logtext().splitlines()), d.logtext())
    finally:
        d.stop()


def test_second_instance_refused(env):
    cg = env.cgroup("second")
    d = env.daemon("second", e2e.TEST_GEO, [policy("x", cg, "enforce", "DE")])
    try:
        d.start()
        t0 = time.time()
        r = subprocess.run([e2e.EGRESSD, "--config", d.conf], capture_output=True, text=True, timeout=20)
        check(r.returncode == 1 and "another process (pid %d) is serving this socket" % d.proc.pid in r.stderr, r)
        check(time.time() - t0 >= 3, "refused before waiting 3 s for the socket to become free")
        check(d.get("/v1/status")["attached_cgroups"] == 1, "first daemon lost its socket")
        # An egressd on its way out (here: stopped, then killed while the new one waits; after
        # kill -9 the kernel takes ~2 s to free large maps, its socket accepting meanwhile) does
        # not make a start fail.
        os.kill(d.proc.pid, signal.SIGSTOP)
        with open(os.path.join(d.dir, "second.log"), "w") as log:
            p2 = subprocess.Popen([e2e.EGRESSD, "--config", d.conf], stdout=log, stderr=subprocess.STDOUT)
        try:
            time.sleep(1)
            os.kill(d.proc.pid, signal.SIGKILL)
            d.proc.wait()
            deadline = time.time() + 15
            st = None
            while time.time() < deadline and p2.poll() is None:
                try:
                    st = d.get("/v1/status")
                    break
                except Exception:  # noqa: BLE001 - not up yet
                    time.sleep(0.1)
            with open(os.path.join(d.dir, "second.log")) as f:
                text = f.read()
            check(p2.poll() is None and st and st["attached_cgroups"] == 1,
                  "a start while the old egressd was dying failed:\n" + text)
        finally:
            if p2.poll() is None:
                p2.send_signal(signal.SIGTERM)
                p2.wait(10)
    finally:
        d.stop()


def test_reload_under_load(env):
    cg = env.cgroup("load")
    # Two valid configurations; both deny 198.51.100.10 (US) and allow 192.0.2.10 (DE).
    conf_a = [policy("l", cg, "enforce", "DE")]
    conf_b = [policy("l", cg, "enforce", "DE FR", "DenyCIDR=198.51.100.0/24")]
    d = env.daemon("load", e2e.TEST_GEO, conf_a)
    stop = threading.Event()
    results = {"allowed": [], "denied": []}
    errors = []

    def client(kind, addr):
        # One process in the cgroup loops connect() (sockprobe --repeat), repeatedly.
        while not stop.is_set():
            try:
                out = probe(env, cg, "--repeat", 200, "tcp4", "connect", addr, 443)
            except Exception as e:  # noqa: BLE001
                errors.append(str(e))
                return
            results[kind].extend(out)

    try:
        d.start()
        threads = [threading.Thread(target=client, args=("allowed", "192.0.2.10")),
                   threading.Thread(target=client, args=("denied", "198.51.100.10"))]
        for t in threads:
            t.start()
        last = {}
        decreases = []
        for i in range(100):
            d.write_policies(conf_b if i % 2 == 0 else conf_a)
            status, body = d.request("POST", "/v1/reload")
            r = json.loads(body)
            check(status == 200 and r["ok"], "reload %d failed: %s" % (i, body))
            c = d.counters(cg)
            for k, v in last.items():
                if c.get(k, 0) < v:
                    decreases.append((k, v, c.get(k, 0)))
            last = c
        stop.set()
        for t in threads:
            t.join()
        check(not errors, errors)
        # sockprobe --repeat prints summaries like "ENETUNREACH*200" per run.
        allowed = {tok.split("*")[0] for tok in results["allowed"]}
        denied = {tok.split("*")[0] for tok in results["denied"]}
        n_a = sum(int(tok.split("*")[1]) if "*" in tok else 1 for tok in results["allowed"])
        n_d = sum(int(tok.split("*")[1]) if "*" in tok else 1 for tok in results["denied"])
        check(allowed == {"ENETUNREACH"}, "allowed destination got %s" % allowed)
        check(denied == {"EPERM"}, "denied destination got %s" % denied)
        check(not decreases, "counters decreased: %s" % decreases[:5])
        check(d.get("/v1/status")["generation"] == 101, "generation %s" % d.get("/v1/status")["generation"])
        c = d.counters(cg)
        check(c.get((cg, "US", "tcp", "deny"), 0) == n_d, "deny count %s != %d connects" % (c, n_d))
        check(c.get((cg, "DE", "tcp", "allow"), 0) == n_a, "allow count %s != %d connects" % (c, n_a))
        print("   100 reloads under load: %d allowed and %d denied connects, all right, counts exact" % (n_a, n_d))
    finally:
        stop.set()
        d.stop()


def test_failed_reloads(env):
    cg = env.cgroup("badreload")
    ns = NotifySocket(os.path.join(env.tmp, "notify3.sock"))
    geo = os.path.join(env.tmp, "geo-ok.csv")
    with open(e2e.TEST_GEO) as f:
        good = f.read()
    with open(geo, "w") as f:
        f.write(good)
    d = env.daemon("badreload", geo, [policy("b", cg, "enforce", "DE")])
    try:
        d.start(env={"NOTIFY_SOCKET": ns.path})
        probe(env, cg, "tcp4", "connect", "198.51.100.10", 443)
        before = d.counters(cg)
        # A truncated GeoIP file: the last row cut in the middle.
        with open(geo, "w") as f:
            f.write(good[:good.rindex("2001:db8:2::") + 9])
        status, body = d.request("POST", "/v1/reload")
        r = json.loads(body)
        check(r["ok"] is False and any(geo + ":" in e for e in r["errors"]), body)
        st = d.get("/v1/status")
        check(st["generation"] == 1 and st["reload_failures"] == 1, st)
        check(probe(env, cg, "tcp4", "connect", "198.51.100.10", 443) == ["EPERM"], "policy lost")
        check(d.get("/v1/lookup?addr=2001:db8:2::1")["country"] == "US", "old table lost")
        after = d.counters(cg)
        check(after[(cg, "US", "tcp", "deny")] == before[(cg, "US", "tcp", "deny")] + 1, (before, after))
        st = [m for m in ns.lines() if m.startswith("STATUS=") and "FAILED" in m]
        check(st and geo + ":" in st[-1], "STATUS= does not name the error: %s" % ns.lines())
        print("   " + st[-1])
    finally:
        d.stop()
        ns.close()


def test_journal(env):
    """Deny events as journal entries, through a real systemd-journald in a private mount
    namespace (tmpfs over its sockets and journal directories)."""
    cg = env.cgroup("journal")
    d = env.daemon("journal", e2e.TEST_GEO, [policy("j", cg, "enforce", "DE")])
    jpid_file = os.path.join(env.tmp, "journald.pid")
    script = r'''
set -e
mount -t tmpfs tmpfs /run/systemd 2>/dev/null || { mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd; }
mkdir -p /run/systemd/journal /run/log /var/log/journal
mount -t tmpfs tmpfs /run/log
mount -t tmpfs tmpfs /var/log/journal
/lib/systemd/systemd-journald </dev/null >/dev/null 2>&1 &
echo $! > "$1"
for i in $(seq 1 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
shift
exec "$@"
'''
    try:
        d.start(prefix=["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", jpid_file],
                env={"EGRESSD_LOG_TARGET": "journal"})
        n = 25  # above the burst of 10 per (cgroup, country, verdict) and window
        out = probe(env, cg, "--repeat", n, "tcp4", "connect", "198.51.100.10", 443)
        check(out == ["EPERM*%d" % n], out)
        deadline = time.time() + 5
        st = {}
        while time.time() < deadline:
            st = d.get("/v1/status")
            if st["events_seen"] >= n:
                break
            time.sleep(0.1)
        check(st["events_logged"] == 10 and st["events_log_suppressed"] == n - 10, st)
        d.stop()  # flushes the suppression summary
        r = subprocess.run(["nsenter", "-t", open(jpid_file).read().strip(), "-m", "journalctl", "--no-pager",
                            "-o", "json", "SYSLOG_IDENTIFIER=egressd"], capture_output=True, text=True, timeout=30)
        entries = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
        ev = [e for e in entries if e.get("MESSAGE_ID") == "098bd904eb594f61a659c4a4ce01355f"]
        sup = [e for e in entries if e.get("MESSAGE_ID") == "bb926dc752ce42dba297fdd0499a7f01"]
        check(len(ev) == 10, "%d event entries: %s" % (len(ev), r.stdout[-2000:] + r.stderr))
        e = ev[0]
        want = {"EGRESSD_POLICY": "j", "EGRESSD_COUNTRY": "US", "EGRESSD_DST": "198.51.100.10",
                "EGRESSD_DPORT": "443", "EGRESSD_PROTO": "tcp", "EGRESSD_VERDICT": "deny",
                "EGRESSD_CGROUP": cg, "EGRESSD_COMM": "sockprobe", "EGRESSD_UID": "0", "PRIORITY": "4"}
        for k, v in want.items():
            check(e.get(k) == v, "%s=%r, want %r in %s" % (k, e.get(k), v, e))
        check(int(e["EGRESSD_PID"]) > 0, e)
        check(len(sup) == 1 and sup[0]["EGRESSD_SUPPRESSED"] == str(n - 10), "summary: %s" % sup)
        print("   journal entry: " + json.dumps({k: v for k, v in e.items() if not k.startswith("_")
                                                  and not k.startswith("__")}, sort_keys=True))
        print("   summary entry: " + sup[0]["MESSAGE"])
    finally:
        d.stop()
        try:
            os.kill(int(open(jpid_file).read()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        return 77
    e2e.ensure_bpffs()
    passed = failed = 0
    env = e2e.Env()
    tests = [test_notify, test_failed_start_no_ready, test_socket_activation, test_second_instance_refused,
             test_reload_under_load, test_failed_reloads, test_journal]
    only = os.environ.get("E2E_ONLY")  # run only tests whose name contains this (development)
    tests = [t for t in tests if not only or only in t.__name__]
    try:
        for t in tests:
            try:
                t(env)
                passed += 1
                print("ok     %s" % t.__name__, flush=True)
            except Exception as e:  # noqa: BLE001
                failed += 1
                print("FAILED %s: %s" % (t.__name__, e if isinstance(e, Failure) else traceback.format_exc()),
                      flush=True)
    finally:
        env.cleanup()
    print("service: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
