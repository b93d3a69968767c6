#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""API roles with real users (useradd/groupadd), against a running egressd.

Users: a ReaderGroup member, an AdminGroup member, and an outsider, each running curl and egressctl
through runuser (which sets the user's supplementary groups) or setpriv: 200/403 on every endpoint,
the socket file 0660 root:ReaderGroup, and every refusal in the daemon's log. Users and groups are
removed at the end whatever happens.
"""
import grp
import os
import pwd
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernel"))
import e2e  # noqa: E402
from e2e import Failure, check, policy  # noqa: E402

e2e.EGRESSD = os.environ.get("EGRESSD_BIN", e2e.EGRESSD)
SUFFIX = "%d" % (os.getpid() % 100000)
G_READ, G_ADMIN = "egrr" + SUFFIX, "egra" + SUFFIX
U_READ, U_ADMIN, U_OUT = "egrr" + SUFFIX + "u", "egra" + SUFFIX + "u", "egro" + SUFFIX + "u"
GETS = ["/v1/status", "/v1/counters", "/metrics", "/v1/events", "/v1/lookup?addr=8.8.8.8", "/v1/policies"]


def run(*argv, check_rc=True):
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    if check_rc and r.returncode != 0:
        raise Failure("%s: exit %d: %s" % (" ".join(argv), r.returncode, r.stderr))
    return r


def curl_as(user, sock, method, path, setpriv=None):
    base = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", sock, "-X", method,
            "http://localhost" + path]
    if setpriv:
        cmd = ["setpriv"] + setpriv + ["--"] + base
    else:
        cmd = ["runuser", "-u", user, "--"] + base
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return r.stdout.strip() or "000"


def ctl_as(user, sock, *args):
    r = subprocess.run(["runuser", "-u", user, "--", e2e.EGRESSCTL, "--socket", sock] + list(args),
                       capture_output=True, text=True, timeout=60)
    return r.returncode


def cleanup_accounts():
    for u in (U_READ, U_ADMIN, U_OUT):
        subprocess.run(["userdel", u], capture_output=True)
    for g in (G_READ, G_ADMIN):
        subprocess.run(["groupdel", g], capture_output=True)


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        return 77
    e2e.ensure_bpffs()
    env = e2e.Env()
    results = []
    try:
        run("groupadd", G_READ)
        run("groupadd", G_ADMIN)
        run("useradd", "-M", "-N", "-s", "/usr/sbin/nologin", "-G", G_READ, U_READ)
        # The socket file is 0660 root:ReaderGroup: an admin needs ReaderGroup too to open it.
        run("useradd", "-M", "-N", "-s", "/usr/sbin/nologin", "-G", "%s,%s" % (G_READ, G_ADMIN), U_ADMIN)
        run("useradd", "-M", "-N", "-s", "/usr/sbin/nologin", U_OUT)
        cg = env.cgroup("roles")
        d = env.daemon("roles", e2e.WORLD_GEO, [policy("r", cg, "monitor", "DE")])
        d.edit_conf("ReaderGroup=\n", "ReaderGroup=%s\nAdminGroup=%s\n" % (G_READ, G_ADMIN))
        for p in (env.tmp, d.dir):
            os.chmod(p, 0o711)
        d.start()
        st = os.stat(d.sock)
        check(st.st_mode & 0o7777 == 0o660 and st.st_uid == 0 and st.st_gid == grp.getgrnam(G_READ).gr_gid,
              "socket %o %d:%d, want 0660 root:%s" % (st.st_mode & 0o7777, st.st_uid, st.st_gid, G_READ))

        def expect(user, method, path, want, **kw):
            got = curl_as(user, d.sock, method, path, **kw)
            results.append((user, method, path, got))
            check(got == want, "%s %s %s as %s: %s, want %s" % (method, path, kw, user, got, want))

        for p in GETS:
            expect(U_READ, "GET", p, "200")
            expect(U_ADMIN, "GET", p, "200")
            expect(U_OUT, "GET", p, "000")  # 0660 socket: cannot even connect
        expect(U_READ, "POST", "/v1/reload", "403")
        expect(U_ADMIN, "POST", "/v1/reload", "200")
        expect(U_OUT, "POST", "/v1/reload", "000")
        check(ctl_as(U_READ, d.sock, "status") == 0, "egressctl status as reader")
        check(ctl_as(U_READ, d.sock, "reload") == 2, "egressctl reload as reader must exit 2")
        check(ctl_as(U_ADMIN, d.sock, "reload") == 0, "egressctl reload as admin")
        check(ctl_as(U_OUT, d.sock, "status") == 2, "egressctl status as outsider must exit 2")
        # The second line of defence: with the file mode opened up, the outsider gets 403 everywhere.
        os.chmod(d.sock, 0o666)
        for p in GETS + ["/v1/nope"]:
            expect(U_OUT, "GET", p, "403")
        expect(U_OUT, "POST", "/v1/reload", "403")
        # Membership from the group database only (setpriv drops the supplementary groups):
        # the uid of a ReaderGroup member is a reader, of an AdminGroup member an admin.
        uid_r, uid_a = pwd.getpwnam(U_READ).pw_uid, pwd.getpwnam(U_ADMIN).pw_uid
        expect(U_READ, "GET", "/v1/status", "200",
               setpriv=["--reuid=%d" % uid_r, "--regid=65534", "--clear-groups"])
        expect(U_ADMIN, "POST", "/v1/reload", "200",
               setpriv=["--reuid=%d" % uid_a, "--regid=65534", "--clear-groups"])
        expect(U_OUT, "GET", "/v1/status", "403",
               setpriv=["--reuid=%d" % pwd.getpwnam(U_OUT).pw_uid, "--regid=65534", "--clear-groups"])
        os.chmod(d.sock, 0o660)
        log = d.logtext()
        uid_o = pwd.getpwnam(U_OUT).pw_uid
        check("uid %d" % uid_o in log or "uid=%d" % uid_o in log,
              "no refusal of uid %d in the daemon log:\n%s" % (uid_o, log[-2000:]))
        d.stop()
        print("   %d requests checked: %s" % (len(results), " ".join("%s:%s%s=%s" % (u[:5], m[0], p, c)
                                                                  for u, m, p, c in results[:6])))
        print("ok     roles")
        return 0
    except Failure as e:
        print("FAILED roles: %s" % e)
        return 1
    finally:
        env.cleanup()
        cleanup_accounts()


if __name__ == "__main__":
    sys.exit(main())
