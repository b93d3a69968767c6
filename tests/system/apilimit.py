#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The API recovers after its connection limit was reached: more than 256 clients hold half-sent
requests, then go away; egressd must answer again at once (it used to stop accepting for good:
libmicrohttpd re-arms its listening socket only in a later MHD_run, and nothing woke it).
And one uid cannot take the API from the others: beyond 64 connections of one non-root uid, its
further connections are closed at once, while another uid and root are still served."""
import os
import resource
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernel"))
import e2e  # noqa: E402
from e2e import check, policy  # noqa: E402


HOLDER = r"""
import os, socket, sys, time
sock, n = sys.argv[1], int(sys.argv[2])
held = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.send(b"GET /v1/status HTTP/1.1\r\n")  # half a request: the connection stays idle
    held.append(s)
time.sleep(1)
closed = 0
for s in held:
    s.setblocking(False)
    try:
        closed += s.recv(1) == b""
    except BlockingIOError:
        pass
print(closed, flush=True)
sys.stdin.readline()
"""

FOLLOWERS = r"""
import socket, sys
held = []
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.sendall(b"GET /v1/events?follow=1&country=JP HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:  # the response has started: the stream waits for events
        b = s.recv(4096)
        if not b:
            sys.exit("stream closed early: %r" % data)
        data += b
    held.append(s)
for s in held:
    s.close()
print("closed", len(held), flush=True)
"""

GETTER = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(data.split(b"\r\n", 1)[0].decode())
"""


# The system interpreter: a per-user one (pyenv under /root) is not executable by other uids.
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def as_user(uid, gid):
    def f():
        os.setgroups([gid])
        os.setgid(gid)
        os.setuid(uid)
    return f


def per_uid(env):
    cg = env.cgroup("apiuid")
    d = env.daemon("apiuid", e2e.TEST_GEO, [policy("u", cg, "monitor", "DE")])
    d.edit_conf("ReaderGroup=\n", "ReaderGroup=nogroup\n")
    os.chmod(env.tmp, 0o755)
    os.chmod(d.dir, 0o755)
    d.start()
    holder = subprocess.Popen([PY, "-c", HOLDER, d.sock, "100"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, preexec_fn=as_user(65534, 65534))
    try:
        closed = int(holder.stdout.readline())
        check(closed == 36, "uid 65534 opened 100 connections, %d were closed; want 100 - 64 = 36" % closed)
        other = subprocess.run([PY, "-c", GETTER, d.sock], capture_output=True, text=True,
                               timeout=10, preexec_fn=as_user(65533, 65534))
        check(other.stdout.strip() == "HTTP/1.1 200 OK", "another uid was not served: %s %s" %
              (other.stdout, other.stderr))
        check(d.get("/v1/status")["version"], "root was not served")
        again = subprocess.run([PY, "-c", GETTER, d.sock], capture_output=True, text=True,
                               timeout=10, preexec_fn=as_user(65534, 65534))
        check(again.stdout.strip() == "", "uid 65534 got a 65th connection: %s" % again.stdout)
        ctl = subprocess.run([e2e.EGRESSCTL, "--socket", d.sock, "status"], capture_output=True, text=True,
                             timeout=10, preexec_fn=as_user(65534, 65534))
        check(ctl.returncode != 0 and "closed the connection without a reply (it does that when this user "
              "holds 64 API connections, or all users but root 240; see its log)" in ctl.stderr,
              "egressctl: %r" % ctl.stderr)
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(10)
    deadline = time.time() + 5
    while True:
        again = subprocess.run([PY, "-c", GETTER, d.sock], capture_output=True, text=True,
                               timeout=10, preexec_fn=as_user(65534, 65534))
        if again.stdout.strip() == "HTTP/1.1 200 OK" or time.time() > deadline:
            break
        time.sleep(0.1)
    check(again.stdout.strip() == "HTTP/1.1 200 OK", "uid 65534 not served after closing its connections")
    # Event streams the client closes while no event comes free their connections at once (MHD
    # does not poll a waiting stream; egressd watches it for the hang-up).
    def nsock():
        n = 0
        for fd in os.listdir("/proc/%d/fd" % d.proc.pid):
            try:
                n += os.readlink("/proc/%d/fd/%s" % (d.proc.pid, fd)).startswith("socket:")
            except FileNotFoundError:
                pass  # closed meanwhile
        return n
    base = nsock()
    for rnd in range(2):
        r = subprocess.run([PY, "-c", FOLLOWERS, d.sock, "64"], capture_output=True, text=True, timeout=30,
                           preexec_fn=as_user(65534, 65534))
        check(r.stdout.strip() == "closed 64", "follow streams: %s %s" % (r.stdout, r.stderr))
        deadline = time.time() + 3
        while nsock() > base and time.time() < deadline:
            time.sleep(0.05)
        check(nsock() <= base, "round %d: %d sockets of closed event streams still open" % (rnd, nsock() - base))
        again = subprocess.run([PY, "-c", GETTER, d.sock], capture_output=True, text=True, timeout=10,
                               preexec_fn=as_user(65534, 65534))
        check(again.stdout.strip() == "HTTP/1.1 200 OK", "round %d: closed event streams still hold the uid's "
              "connections: %s" % (rnd, again.stdout))
    # Several uids within their share cannot together take the connections kept for root:
    # four uids hold 60 each (240); a fifth uid is refused, root is still served.
    holders = []
    try:
        for uid in (60001, 60002, 60003, 60004):
            h = subprocess.Popen([PY, "-c", HOLDER, d.sock, "60"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True, preexec_fn=as_user(uid, 65534))
            holders.append(h)
            check(int(h.stdout.readline()) == 0, "uid %d: a connection within its share was closed" % uid)
        fifth = subprocess.run([PY, "-c", GETTER, d.sock], capture_output=True, text=True, timeout=10,
                               preexec_fn=as_user(60005, 65534))
        check(fifth.stdout.strip() == "", "a fifth uid got one of the connections kept for root")
        t0 = time.time()
        check(d.get("/v1/status")["version"], "root not served")
        check(time.time() - t0 < 2, "root waited %.1f s" % (time.time() - t0))
    finally:
        for h in holders:
            h.stdin.write("\n")
            h.stdin.flush()
            h.wait(10)
    log = d.logtext()
    check(log.count("users other than root hold 240 API connections, all but the 16 kept for root") == 1,
          "the non-root total is not logged exactly once:\n" + log)
    check(log.count("uid 65534 holds 64 API connections, the limit per uid") == 1,
          "the limit is not logged exactly once:\n" + log)
    d.stop()
    print("ok     one uid holds at most 64 API connections, all non-root uids 240; another uid and root are "
          "still served; closed event streams free theirs at once")


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
        print("ok     the API accepts again after its connection limit was reached")
        per_uid(env)
        ok = True
    except Exception as e:  # noqa: BLE001
        print("FAILED api limit: %s" % e)
    finally:
        env.cleanup()
    print("apilimit: %d passed, %d failed" % (2 if ok else 0, 0 if ok else 1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
