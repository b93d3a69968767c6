#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every JSON reply of a running egressd validates against its schema in docs/api.md.

The schemas are the ```json schema=NAME blocks of docs/api.md (JSON Schema draft 2020-12). Each is
checked to be a valid schema; then an egressd with its own test cgroups (tests/kernel/e2e.py: PinPath
under /sys/fs/bpf, OnExit=detach, probes in private network namespaces) sees allowed, denied and
monitored connections, and the replies of every route are validated: status, counters, lookup with
and without cgroup, policies, a failed and a good reload, the error replies (400, 404, 405), the
recent and the followed events, and a {"missed":N} line of a follower that stopped reading.
A self-check shows that the validation can fail: altered replies and a broken document must be
rejected. Prints ok/FAILED lines and "schemas: N passed, N failed".
"""
import copy
import json
import os
import re
import sys
import time
import traceback
import urllib.parse

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernel"))
import e2e  # noqa: E402
from e2e import Failure, check, policy, probe  # noqa: E402

e2e.EGRESSD = os.environ.get("EGRESSD_BIN", e2e.EGRESSD)
API_MD = os.environ.get("API_MD", os.path.join(e2e.ROOT, "docs", "api.md"))  # another copy: tests
# Replies (and parts of replies) that docs/api.md must describe.
NAMES = {"provenance", "policy", "status", "counters", "lookup", "lookup-cgroup", "policies", "reload",
         "event", "events-missed", "error"}
BLOCK = re.compile(r"^```json schema=([A-Za-z0-9_-]+)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
MISSED_N = 8000  # denied connects while a follower does not read: more than its queue (4096)


def extract(text):
    """{name: schema} of the schema blocks of text, and a list of problems (bad JSON, duplicates,
    missing or unknown names, invalid schemas, $id not urn:egressd:schema:NAME)."""
    schemas, problems = {}, []
    for m in BLOCK.finditer(text):
        name = m.group(1)
        if name in schemas:
            problems.append("schema %s: defined twice" % name)
            continue
        try:
            s = json.loads(m.group(2))
        except ValueError as e:
            problems.append("schema %s: not JSON: %s" % (name, e))
            continue
        try:
            Draft202012Validator.check_schema(s)
        except SchemaError as e:
            problems.append("schema %s: not a valid draft 2020-12 schema: %s" % (name, e.message))
            continue
        if s.get("$id") != "urn:egressd:schema:" + name:
            problems.append("schema %s: $id is %r" % (name, s.get("$id")))
            continue
        schemas[name] = s
    for name in sorted(NAMES - set(schemas)):
        problems.append("schema %s: missing" % name)
    for name in sorted(set(schemas) - NAMES):
        problems.append("schema %s: not a known reply" % name)
    return schemas, problems


def validators(schemas):
    """{name: validator} resolving $ref between the schemas by $id."""
    try:  # jsonschema >= 4.18
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        reg = Registry().with_resources(
            (s["$id"], Resource.from_contents(s, default_specification=DRAFT202012)) for s in schemas.values())
        return {n: Draft202012Validator(s, registry=reg) for n, s in schemas.items()}
    except ImportError:  # Debian 12: jsonschema 4.10
        from jsonschema import RefResolver

        store = {s["$id"]: s for s in schemas.values()}
        return {n: Draft202012Validator(s, resolver=RefResolver.from_schema(s, store=store))
                for n, s in schemas.items()}


def errors_of(v, doc):
    return ["%s: %s" % ("/".join(map(str, e.absolute_path)) or "(top)", e.message)
            for e in sorted(v.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


class Run:
    def __init__(self):
        self.passed = self.failed = 0
        self.used = set()

    def result(self, name, problems):
        if problems:
            self.failed += 1
            print("FAILED %s: %s" % (name, "; ".join(problems[:5])), flush=True)
        else:
            self.passed += 1
            print("ok     %s" % name, flush=True)

    def step(self, name, fn, *a):
        try:
            fn(*a)
            self.result(name, [])
        except Exception as e:  # noqa: BLE001 - every failure is reported
            self.result(name, [str(e) if isinstance(e, Failure) else traceback.format_exc()])


def self_check(run, vals, schemas, status, event, text):
    """The checks can fail: altered replies and broken documents are rejected."""
    bad = []
    s = copy.deepcopy(status)
    s["bogus"] = 1
    bad.append(("status with an undocumented key", "status", s))
    s = copy.deepcopy(status)
    del s["generation"]
    bad.append(("status without generation", "status", s))
    s = copy.deepcopy(status)
    s["policies"][0]["mode"] = "audit"
    bad.append(("status with policy mode audit", "status", s))
    s = copy.deepcopy(status)
    s["provenance"]["geo"][0]["sha256"] = "9f"
    bad.append(("status with a short sha256 in provenance", "status", s))
    e = dict(event, verdict="allow")
    bad.append(("event with verdict allow", "event", e))
    e = dict(event, time="2024-02-29 23:59:59")
    bad.append(("event with a bad time", "event", e))
    bad.append(("missed 0", "events-missed", {"missed": 0}))
    bad.append(("error not a string", "error", {"error": 5}))
    bad.append(("error with a newline", "error", {"error": "a\nb"}))
    bad.append(("failed reload without errors", "reload", {"ok": False, "generation": 1, "errors": []}))
    bad.append(("lookup with a prefix but no range", "lookup",
                {"address": "192.0.2.1", "family": "ipv4", "country": "DE", "prefix": "192.0.2.0/24",
                 "generation": 1}))
    bad.append(("lookup-cgroup with no policy but a verdict", "lookup-cgroup",
                {"address": "10.0.0.1", "family": "ipv4", "country": "unknown", "prefix": None,
                 "generation": 1, "cgroup": "x", "policy": None, "verdict": "deny"}))
    for name, schema, doc in bad:
        errs = errors_of(vals[schema], doc)
        run.result("self-check: %s is rejected" % name, [] if errs else ["accepted by schema %s" % schema])
    # Broken documents: invalid schema, bad JSON, a missing block.
    broken = [
        ("a schema with type objekt", text.replace('"$id": "urn:egressd:schema:error",\n  "type": "object"',
                                                   '"$id": "urn:egressd:schema:error",\n  "type": "objekt"')),
        ("a schema that is not JSON", text.replace('"$id": "urn:egressd:schema:reload",',
                                                   '"$id": "urn:egressd:schema:reload",,')),
        ("a missing schema", text.replace("```json schema=events-missed", "```json")),
    ]
    for name, doc in broken:
        if doc == text:
            run.result("self-check: document with %s" % name, ["could not alter the document"])
            continue
        _, problems = extract(doc)
        run.result("self-check: document with %s is rejected" % name,
                   [] if problems else ["no problem found"])


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root (BPF, cgroups, network namespaces)")
        return 77
    for tool in (e2e.EGRESSD, e2e.SOCKPROBE):
        if not os.access(tool, os.X_OK):
            print("FAILED: %s is not built (run make)" % tool)
            return 1
    if not e2e.cgroup2_mount():
        print("SKIP: no cgroup v2 mount")
        return 77
    run = Run()
    with open(API_MD) as f:
        text = f.read()
    schemas, problems = extract(text)
    for name in sorted(schemas):
        run.result("schema %s is a valid draft 2020-12 schema" % name, [])
    for p in problems:
        run.result("docs/api.md", [p])
    if problems:
        print("schemas: %d passed, %d failed" % (run.passed, run.failed))
        return 1
    vals = validators(schemas)

    def validate(label, schema, body):
        """body: one reply (one JSON line + \\n)."""
        run.used.add(schema)
        probs = []
        if not body.endswith("\n") or "\n" in body[:-1]:
            probs.append("not one line followed by \\n: %r" % body[:200])
        try:
            doc = json.loads(body)
        except ValueError as e:
            run.result("%s: schema %s" % (label, schema), ["not JSON: %s: %r" % (e, body[:200])])
            return None
        probs += errors_of(vals[schema], doc)
        run.result("%s: schema %s" % (label, schema), probs)
        return doc

    def get(label, schema, path, method="GET", status=200):
        c = e2e.UnixHTTPConnection(d.sock)
        try:
            c.request(method, path)
            r = c.getresponse()
            body = r.read().decode()
            ctype = r.getheader("Content-Type")
        finally:
            c.close()
        if r.status != status or ctype != "application/json":
            run.result("%s: schema %s" % (label, schema),
                       ["%s %s: HTTP %d (%s), want %d: %s" % (method, path, r.status, ctype, status, body[:300])])
            return None
        return validate(label, schema, body)

    e2e.ensure_bpffs()
    env = e2e.Env()
    follower = None
    try:
        cg_enf = env.cgroup("enforce")
        cg_mon = env.cgroup("monitor")
        cg_free = env.cgroup("nopolicy")
        extra = "AllowCIDR=198.51.100.128/25\nDenyCIDR=192.0.2.128/25\nUnknown=deny"
        pols = [policy("s-enforce", cg_enf, "enforce", "DE", extra),
                policy("s-monitor", cg_mon, "monitor", "DE", extra)]
        d = env.daemon("schemas", e2e.TEST_GEO, pols)
        d.start()
        d.wait_attached(2)
        q = lambda **kw: urllib.parse.urlencode(kw)  # noqa: E731

        # A follower that reads from the start (it sees the traffic below as it happens).
        live = e2e.UnixHTTPConnection(d.sock, timeout=30)
        live.request("GET", "/v1/events?" + q(follow="1"))
        live_resp = live.getresponse()
        check(live_resp.status == 200, "events follow: HTTP %d" % live_resp.status)

        # Traffic: allowed, denied (connect4/6, sendmsg4), monitored (would_deny), local.
        cases = [
            (cg_enf, ["tcp4", "connect", "192.0.2.10", 443], ["ENETUNREACH"]),
            (cg_enf, ["tcp4", "connect", "198.51.100.10", 443], ["EPERM"]),
            (cg_enf, ["tcp6", "connect", "2001:db8:2::10", 443], ["EPERM"]),
            (cg_enf, ["udp4", "sendto", "198.51.100.10", 53], ["EPERM"]),
            (cg_enf, ["tcp4", "connect", "10.9.8.7", 443], ["EPERM"]),
            (cg_enf, ["tcp4", "connect", "127.0.0.1", 9], ["ECONNREFUSED"]),
            (cg_mon, ["tcp4", "connect", "198.51.100.10", 443], ["ENETUNREACH"]),
            (cg_mon, ["tcp6", "connect", "64:ff9b::198.51.100.10", 443], ["ENETUNREACH"]),
        ]
        for cg, args, want in cases:
            out = probe(env, cg, *args)
            check(out == want, "probe %s: %s, want %s" % (args, out, want))
        # 6 of them are events (deny x4, would_deny x2)

        live_lines = []
        buf = b""
        deadline = time.time() + 10
        while len(live_lines) < 6 and time.time() < deadline:
            data = live_resp.read1(65536)
            if not data:
                break
            buf += data
            *lines, buf = buf.split(b"\n")
            live_lines += [ln.decode() + "\n" for ln in lines]
        live.close()
        run.result("events follow: 6 events streamed", [] if len(live_lines) == 6 else
                   ["got %d lines: %s" % (len(live_lines), live_lines)])
        first_event = None
        for i, ln in enumerate(live_lines):
            doc = validate("events follow line %d" % (i + 1), "event", ln)
            first_event = first_event or doc
        verdicts = sorted(json.loads(ln)["verdict"] for ln in live_lines)
        hooks = sorted(set(json.loads(ln)["hook"] for ln in live_lines))
        run.result("events follow: verdicts and hooks",
                   [] if verdicts == ["deny"] * 4 + ["would_deny"] * 2 and
                   hooks == ["connect4", "connect6", "sendmsg4"] else ["%s %s" % (verdicts, hooks)])

        # Recent events (no follow), filtered and not.
        c = e2e.UnixHTTPConnection(d.sock)
        c.request("GET", "/v1/events")
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        recent = body.splitlines(keepends=True)
        run.result("events recent: 6 lines, application/x-ndjson",
                   [] if r.status == 200 and len(recent) == 6 and
                   r.getheader("Content-Type") == "application/x-ndjson" else
                   ["HTTP %d %s, %d lines" % (r.status, r.getheader("Content-Type"), len(recent))])
        for i, ln in enumerate(recent):
            validate("events recent line %d" % (i + 1), "event", ln)

        status = get("status", "status", "/v1/status")
        get("counters", "counters", "/v1/counters")
        get("counters filtered", "counters", "/v1/counters?" + q(cgroup=cg_mon, verdict="would_deny"))
        get("counters empty", "counters", "/v1/counters?" + q(country="ZZ"))
        get("policies", "policies", "/v1/policies")
        get("lookup IPv4", "lookup", "/v1/lookup?" + q(addr="198.51.100.10"))
        get("lookup IPv6", "lookup", "/v1/lookup?" + q(addr="2001:db8:1::5"))
        get("lookup IPv4-mapped", "lookup", "/v1/lookup?" + q(addr="::ffff:192.0.2.10"))
        get("lookup no data", "lookup", "/v1/lookup?" + q(addr="10.9.8.7"))
        r = get("lookup cgroup deny", "lookup-cgroup", "/v1/lookup?" + q(addr="198.51.100.10", cgroup=cg_enf))
        check(r is None or (r["verdict"] == "deny" and "matched_cidr" not in r), "lookup: %s" % r)
        r = get("lookup cgroup DenyCIDR", "lookup-cgroup", "/v1/lookup?" + q(addr="192.0.2.200", cgroup=cg_mon))
        check(r is None or (r["verdict"] == "would_deny" and r["matched_cidr"] == "192.0.2.128/25"), "lookup: %s" % r)
        r = get("lookup cgroup NAT64 no data", "lookup-cgroup",
                "/v1/lookup?" + q(addr="64:ff9b::10.9.8.7", cgroup="/" + cg_enf))
        check(r is None or (r["prefix"] is None and r["canonical"] == "10.9.8.7"), "lookup: %s" % r)
        r = get("lookup cgroup without policy", "lookup-cgroup", "/v1/lookup?" + q(addr="192.0.2.10", cgroup=cg_free))
        check(r is None or (r["policy"] is None and r["verdict"] is None), "lookup: %s" % r)

        # Errors.
        get("error lookup addr=bad", "error", "/v1/lookup?addr=bad", status=400)
        get("error lookup without addr", "error", "/v1/lookup", status=400)
        get("error unknown parameter", "error", "/v1/counters?foo=1", status=400)
        get("error bad verdict", "error", "/v1/counters?verdict=maybe", status=400)
        get("error events bad follow", "error", "/v1/events?follow=perhaps", status=400)
        get("error unknown path", "error", "/v1/nothing", status=404)
        get("error wrong method", "error", "/v1/reload", method="GET", status=405)
        get("error wrong method POST status", "error", "/v1/status", method="POST", status=405)

        # Reloads: a broken policy (ok false, errors), then a good one (ok true).
        d.write_policies([policy("s-enforce", cg_enf, "enforce", "DE D3")])
        r = get("reload failed", "reload", "/v1/reload", method="POST")
        check(r is None or (r["ok"] is False and r["errors"]), "reload: %s" % r)
        get("status after a failed reload", "status", "/v1/status")
        d.write_policies(pols)
        r = get("reload ok", "reload", "/v1/reload", method="POST")
        check(r is None or (r["ok"] is True and r["errors"] == []), "reload: %s" % r)

        # A follower that stops reading: its queue overflows, then it gets {"missed": N}.
        follower = e2e.UnixHTTPConnection(d.sock, timeout=60)
        follower.request("GET", "/v1/events?" + q(follow="1", cgroup=cg_enf))
        fresp = follower.getresponse()
        check(fresp.status == 200, "events follow: HTTP %d" % fresp.status)
        out = probe(env, cg_enf, "--repeat", str(MISSED_N), "tcp4", "connect", "198.51.100.10", 443)
        check(out == ["EPERM*%d" % MISSED_N], "probe: %s" % out)
        # The follower first gets the recent events of its cgroup (the 4 denials above).
        want = MISSED_N + sum(1 for ln in recent if json.loads(ln)["cgroup"] == cg_enf)
        events = missed = 0
        missed_lines, some_events = [], []
        buf = b""
        deadline = time.time() + 60
        while events + missed < want and time.time() < deadline:
            data = fresp.read1(65536)
            if not data:
                break
            buf += data
            *lines, buf = buf.split(b"\n")
            for ln in lines:
                if ln.startswith(b'{"missed":'):
                    missed_lines.append(ln.decode() + "\n")
                    missed += json.loads(ln)["missed"]
                else:
                    events += 1
                    if events % 1000 == 1:
                        some_events.append(ln.decode() + "\n")
        follower.close()
        follower = None
        run.result("stopped follower: %d events + %d missed = %d" % (events, missed, want),
                   [] if events + missed == want and missed_lines else
                   ["got %d events + %d missed (%d lines), want %d in all" %
                    (events, missed, len(missed_lines), want)])
        for i, ln in enumerate(missed_lines):
            validate("missed line %d" % (i + 1), "events-missed", ln)
        for i, ln in enumerate(some_events):
            validate("stopped follower event %d" % (i * 1000 + 1), "event", ln)

        for name in sorted(NAMES - {"provenance", "policy"} - run.used):
            run.result("schema %s was exercised" % name, ["no reply validated against it"])
        if status and first_event:
            self_check(run, vals, schemas, status, first_event, text)
        else:
            run.result("self-check", ["no status or event to alter"])
        d.stop()
    except Exception as e:  # noqa: BLE001 - every failure is reported
        run.result("schemas", [str(e) if isinstance(e, Failure) else traceback.format_exc()])
    finally:
        if follower:
            follower.close()
        env.cleanup()
    print("schemas: %d passed, %d failed" % (run.passed, run.failed))
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
