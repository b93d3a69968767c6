#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The API recovers after its connection limit was reached: more than 256 clients hold half-sent
requests, then go away; egressd must answer again at once (it used to stop accepting for good:
libmicrohttpd re-arms its listening socket only in a later MHD_run, and nothing woke it)."""
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernel"))
import e2e  # noqa: E402
from e2e import check, policy  # noqa: E402


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        return 77
    e2e.ensure_bpffs()
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    env = e2e.Env()
    ok = False
    try:
        cg = env.cgroup("apilimit")
        d = env.daemon("apilimit", e2e.TEST_GEO, [policy("l", cg, "monitor", "DE")])
        d.start()
        for rnd in range(3):
            held = []
            for _ in range(400):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.setblocking(False)
                try:
                    s.connect(d.sock)
                    s.send(b"GET /metrics HTTP/1.1\r\n")
                except OSError:
                    pass
                held.append(s)
            time.sleep(0.5)
            for s in held:
                s.close()
            t0 = time.time()
            while True:
                try:
                    st = d.get("/v1/status")
                    break
                except Exception:  # noqa: BLE001
                    check(time.time() - t0 < 5, "round %d: the API did not answer 5 s after the clients left" % rnd)
                    time.sleep(0.1)
            print("   round %d: 400 half-open clients gone, API answered after %.2f s" % (rnd, time.time() - t0))
        check(st["version"], st)
        ok = True
        print("ok     the API accepts again after its connection limit was reached")
    except Exception as e:  # noqa: BLE001
        print("FAILED api limit: %s" % e)
    finally:
        env.cleanup()
    print("apilimit: %d passed, %d failed" % (1 if ok else 0, 0 if ok else 1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
