#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Loss accounting (issue 5, item 3): with the event consumer stopped, nothing is missed.

egressd runs with EventsRingBytes=8K (a ring of ~100 events) and an enforce policy in a test
cgroup. The daemon is stopped with SIGSTOP (it consumes the ring and serves the API on the same
thread), a client in that cgroup, inside its own network namespace, makes 50,000 connects to a
denied destination (all EPERM), then the daemon gets SIGCONT. Checked afterwards, through the
API: the counters show exactly 50,000 denies, and events delivered (status events_seen) + events
lost (status events_lost, the ring's reservation failures) = 50,000, with some of each. The
ring's size in the kernel (bpftool, the pinned map "events") must be the configured one.

Uses the helpers of tests/kernel/e2e.py (test cgroups, private network namespaces).
"""
import json
import os
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernel"))
import e2e  # noqa: E402
from e2e import Failure, check, policy, probe  # noqa: E402

N = 50000
RING = 8192


def ring_size(pins):
    r = subprocess.run(["bpftool", "-j", "map", "show", "pinned", os.path.join(pins, "events")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Failure("bpftool map show pinned %s/events: %s" % (pins, r.stderr.strip()))
    return json.loads(r.stdout)["max_entries"]


def test_loss(env):
    cg = env.cgroup("loss")
    d = env.daemon("loss", e2e.TEST_GEO, [policy("loss", cg, "enforce", "FR")])
    with open(d.conf, "a") as f:
        f.write("EventsRingBytes=%d\n" % RING)
    d.start()
    d.wait_attached(1)
    size = ring_size(d.pins)
    check(size == RING, "ring buffer 'events' has %d bytes, EventsRingBytes=%d was not applied "
          "(daemon/egressd.c must pass config events_ring_bytes to kern_open_pinned)" % (size, RING))
    st0 = d.get("/v1/status")
    before = d.counters(cg)
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        out = probe(env, cg, "--repeat", N, "tcp4", "connect", "192.0.2.10", 443)
        elapsed = time.monotonic() - t0
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
    check(out == ["EPERM*%d" % N], "sockprobe: %s" % out)
    # The daemon drains the ring after SIGCONT; wait until seen + lost stop moving.
    deadline = time.time() + 20
    last = None
    while time.time() < deadline:
        st = d.get("/v1/status")
        cur = (st["events_seen"] - st0["events_seen"], st["events_lost"] - st0["events_lost"])
        if cur == last and sum(cur) >= N:
            break
        last = cur
        time.sleep(0.2)
    seen, lost = cur
    got = e2e.delta(before, d.counters(cg))
    print("  %d denied connects in %.1f s with the consumer stopped: counters %s, "
          "events delivered %d + lost %d = %d (ring %d bytes)"
          % (N, elapsed, got, seen, lost, seen + lost, size))
    check(got == {(cg, "DE", "tcp", "deny"): N}, "counters: %s, want %d denies" % (got, N))
    check(seen + lost == N, "events delivered %d + lost %d = %d, want %d" % (seen, lost, seen + lost, N))
    check(lost > 0 and seen > 0, "a stopped consumer and a ring of %d bytes must lose some events "
          "and deliver some: seen %d, lost %d" % (size, seen, lost))
    m = d.get("/metrics")
    check("egressd_events_lost_total %d" % st["events_lost"] in m,
          "egressd_events_lost_total is not %d in /metrics" % st["events_lost"])


def main():
    if os.geteuid() != 0:
        print("SKIP: test_loss needs root")
        return 77
    e2e.ensure_bpffs()
    env = e2e.Env()
    try:
        test_loss(env)
        print("ok test_loss: %d denied connects reconciled (counters, events delivered + lost)" % N)
        return 0
    except Exception as ex:
        traceback.print_exc()
        print("FAILED test_loss: %s" % ex)
        return 1
    finally:
        env.cleanup()


if __name__ == "__main__":
    sys.exit(main())
