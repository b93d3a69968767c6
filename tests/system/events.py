#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""GET /v1/events?follow=1 under load, against a running egressd.

Three followers read, a fourth (curl) is stopped with SIGSTOP; 10,000 denied connects: each
reading follower gets all 10,000 events in sequence, the stopped one, once continued, gets what
fit in its queue and a {"missed": N} line for the rest; /v1/status answers throughout (worst
latency printed, no timed assertion).
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernel"))
import e2e  # noqa: E402
from e2e import Failure, check, policy, probe  # noqa: E402

e2e.EGRESSD = os.environ.get("EGRESSD_BIN", e2e.EGRESSD)
N = 10000


class Follower(threading.Thread):
    def __init__(self, sock, query):
        super().__init__(daemon=True)
        self.conn = e2e.UnixHTTPConnection(sock, timeout=60)
        self.conn.request("GET", "/v1/events?" + query)
        self.resp = self.conn.getresponse()
        check(self.resp.status == 200, "events: HTTP %d" % self.resp.status)
        self.events = self.missed = self.gaps = 0
        self.last_seq = None
        self.first = None

    def run(self):
        buf = b""
        while self.events + self.missed < N:
            try:
                data = self.resp.read1(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            *lines, buf = buf.split(b"\n")
            for ln in lines:
                if ln.startswith(b'{"missed":'):
                    self.missed += json.loads(ln)["missed"]
                    continue
                seq = int(ln[7:ln.index(b",")])
                if self.first is None:
                    self.first = ln.decode()
                if self.last_seq is not None and seq != self.last_seq + 1:
                    self.gaps += 1
                self.last_seq = seq
                self.events += 1


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        return 77
    e2e.ensure_bpffs()
    env = e2e.Env()
    stopped = None
    try:
        cg = env.cgroup("events")
        d = env.daemon("events", e2e.WORLD_GEO, [policy("ev", cg, "enforce", "DE")])
        d.start()
        q = urllib.parse.urlencode({"follow": "1", "cgroup": cg})
        runners = [Follower(d.sock, q) for _ in range(3)]
        out = os.path.join(env.tmp, "stopped.ndjson")
        stopped = subprocess.Popen(["curl", "-sN", "--unix-socket", d.sock, "http://localhost/v1/events?" + q],
                                   stdout=open(out, "w"))
        time.sleep(0.5)
        os.kill(stopped.pid, signal.SIGSTOP)
        for r in runners:
            r.start()
        worst = [0.0]
        done = threading.Event()

        def poll():
            while not done.is_set():
                t = time.monotonic()
                d.get("/v1/status")
                worst[0] = max(worst[0], time.monotonic() - t)
                time.sleep(0.005)
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        res = probe(env, cg, "--repeat", str(N), "tcp4", "connect", "8.8.8.8", "443")
        check(res == ["EPERM*%d" % N], "probe: %s" % res)
        for r in runners:
            r.join(60)
        done.set()
        poller.join()
        for i, r in enumerate(runners):
            check(r.events == N and r.missed == 0 and r.gaps == 0,
                  "follower %d: %d events, %d missed, %d gaps" % (i, r.events, r.missed, r.gaps))
        os.kill(stopped.pid, signal.SIGCONT)
        deadline = time.time() + 30
        ev = missed = 0
        while time.time() < deadline:
            with open(out) as f:
                lines = [ln for ln in f.read().split("\n") if ln]
            ev = sum(1 for ln in lines if not ln.startswith('{"missed":'))
            missed = sum(json.loads(ln)["missed"] for ln in lines if ln.startswith('{"missed":'))
            if ev + missed >= N:
                break
            time.sleep(0.2)
        check(ev + missed == N and missed > 0, "stopped follower: %d events + %d missed" % (ev, missed))
        print("   one event as streamed: %s" % runners[0].first)
        print("   3 followers got %d events each; the stopped one got %d and {\"missed\": %d}; "
              "worst /v1/status latency %.1f ms" % (N, ev, missed, worst[0] * 1000))
        st = d.get("/v1/status")
        check("provenance" in st, "no provenance in /v1/status")
        rows = d.get("/v1/counters?" + urllib.parse.urlencode({"cgroup": cg}))
        check("provenance" in rows, "no provenance in the counters reply")
        print("   counters row: %s" % json.dumps(rows["rows"][0]))
        d.stop()
        print("ok     events")
        return 0
    except Failure as e:
        print("FAILED events: %s" % e)
        return 1
    finally:
        if stopped:
            stopped.kill()
            stopped.wait()
        env.cleanup()


if __name__ == "__main__":
    sys.exit(main())
