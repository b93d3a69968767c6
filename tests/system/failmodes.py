#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Never fail open silently: each way egressd cannot enforce, caused on purpose, must give one
clear message, no READY=1, and exit 1 when a policy is in enforce mode.

- capabilities dropped (setpriv --bounding-set without CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON,
  CAP_SYS_ADMIN);
- no bpf filesystem under PinPath= (a private mount namespace with a tmpfs on /sys/fs/bpf);
- no cgroup v2 mount (a private mount namespace with it unmounted).
The net_cls/net_prio case is tested on a fake hierarchy (tests/unit/test_cgroup.c): writing a
real classid would turn cgroup v2 socket matching off on this machine until reboot.
"""
import os
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernel"))
import e2e  # noqa: E402
from e2e import Failure, check, policy  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from service import NotifySocket  # noqa: E402


def start_fails(env, name, mode, prefix, want_msg, want_rc=1):
    cg = env.cgroup(name)
    d = env.daemon(name, e2e.TEST_GEO, [policy(name, cg, mode, "DE")])
    ns = NotifySocket(os.path.join(env.tmp, name + ".notify"))
    try:
        d.start(env={"NOTIFY_SOCKET": ns.path}, prefix=prefix, wait=False)
        rc = d.proc.wait(30)
        with open(d.log) as f:
            log = f.read()
        check(rc == want_rc, "exit %s, want %s:\n%s" % (rc, want_rc, log))
        check(want_msg in log, "no '%s' in:\n%s" % (want_msg, log))
        check("READY=1" not in ns.lines(), "READY=1 sent: %s" % ns.lines())
        att = subprocess.run(["bpftool", "cgroup", "show", os.path.join(env.cgmount, cg)],
                             capture_output=True, text=True).stdout.strip()
        check(len(att.splitlines()) <= 1, "programs attached after a failed start: %s" % att)
        print("   %s: %s" % (name, [l for l in log.splitlines() if want_msg in l][0]))
    finally:
        d.stop()
        ns.close()


def mountns(script):
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script + '; exec "$@"', "sh"]


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        return 77
    e2e.ensure_bpffs()
    env = e2e.Env()
    cases = [
        ("nocaps", "enforce", ["setpriv", "--bounding-set", "-bpf,-net_admin,-perfmon,-sys_admin",
                               "--inh-caps", "-all"],
         "needs root, or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN"),
        ("nobpffs", "enforce", mountns("mount -t tmpfs tmpfs /sys/fs/bpf"), "is not a bpf filesystem"),
        ("nocgroup2", "enforce", mountns("umount -l %s" % env.cgmount), "cannot find the cgroup v2 mount"),
    ]
    passed = failed = 0
    try:
        for name, mode, prefix, msg in cases:
            try:
                start_fails(env, name, mode, prefix, msg)
                passed += 1
                print("ok     %s" % name, flush=True)
            except Exception as e:  # noqa: BLE001
                failed += 1
                print("FAILED %s: %s" % (name, e if isinstance(e, Failure) else traceback.format_exc()), flush=True)
        # A program the verifier rejects (a build with a deliberate invalid load).
        try:
            bdir = os.path.join(e2e.ROOT, "build-reject")
            b = subprocess.run(["make", "-C", e2e.ROOT, "BUILD=build-reject",
                                "BPF_EXTRA_CFLAGS=-DEGRESS_TEST_VERIFIER_REJECT", "build-reject/egressd"],
                               capture_output=True, text=True, timeout=600)
            check(b.returncode == 0, b.stdout[-2000:] + b.stderr[-2000:])
            cg = env.cgroup("verifier")
            d = env.daemon("verifier", e2e.TEST_GEO, [policy("v", cg, "enforce", "DE")])
            ns = NotifySocket(os.path.join(env.tmp, "verifier.notify"))
            try:
                r = subprocess.run([os.path.join(bdir, "egressd"), "--config", d.conf],
                                   env=dict(os.environ, NOTIFY_SOCKET=ns.path), capture_output=True, text=True,
                                   timeout=60)
            finally:
                ns.close()
            check(r.returncode == 1, "exit %d:\n%s" % (r.returncode, r.stderr[-3000:]))
            line = [l for l in r.stderr.splitlines() if "loading the programs failed" in l]
            check(line and "errno" in line[0], r.stderr[-3000:])
            check("READY=1" not in ns.lines(), ns.lines())
            check("verifier: " in line[0] and "invalid mem access" in line[0],
                  "the verifier's reason is not in the error line:\n" + r.stderr[-3000:])
            print("   verifier: " + line[0])
            passed += 1
            print("ok     verifier rejection: no start, one clear line with the errno", flush=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print("FAILED verifier rejection: %s" % (e if isinstance(e, Failure) else traceback.format_exc()),
                  flush=True)
        finally:
            subprocess.run(["rm", "-rf", os.path.join(e2e.ROOT, "build-reject")])
        # Monitor-only without bpffs: runs, unpinned, and says so.
        try:
            cg = env.cgroup("monnobpffs")
            d = env.daemon("monnobpffs", e2e.TEST_GEO, [policy("m", cg, "monitor", "DE")])
            d.start(prefix=mountns("mount -t tmpfs tmpfs /sys/fs/bpf"))
            with open(d.log) as f:
                log = f.read()
            check("running without pins" in log, log[-3000:])
            d.stop()
            passed += 1
            print("ok     monitor-only without bpffs runs unpinned, with a warning", flush=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print("FAILED monitor-only without bpffs: %s" % (e if isinstance(e, Failure) else traceback.format_exc()), flush=True)
    finally:
        env.cleanup()
    print("failmodes: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
