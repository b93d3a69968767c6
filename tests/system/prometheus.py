#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""MetricsListen= and a real Prometheus server (Debian package prometheus), on loopback only.

egressd runs with MetricsListen=127.0.0.1:PORT and counts denied connects of a test cgroup;
`promtool check metrics` accepts what it serves; only /metrics is served there; a Prometheus server
with its own temporary config and data directory (scrape interval 1 s, the rules of
packaging/prometheus/alerts.yml) scrapes it, and the test reads egressd_connections_total back
through Prometheus' HTTP API (/api/v1/query) and sees the EgressdDenials alert fire.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernel"))
import e2e  # noqa: E402
from e2e import Failure, check, policy, probe  # noqa: E402

e2e.EGRESSD = os.environ.get("EGRESSD_BIN", e2e.EGRESSD)
ALERTS = os.path.join(e2e.ROOT, "packaging", "prometheus", "alerts.yml")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def prom_query(base, q):
    status, body = http_get(base + "/api/v1/query?" + urllib.parse.urlencode({"query": q}))
    check(status == 200, "query %s: HTTP %d %s" % (q, status, body))
    return json.loads(body)["data"]["result"]


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        return 77
    for tool in ("prometheus", "promtool"):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode != 0:
            print("FAILED prometheus: %s not installed (scripts/deps.sh installs package prometheus)" % tool)
            return 1
    e2e.ensure_bpffs()
    env = e2e.Env()
    prom = None
    try:
        cg = env.cgroup("prom")
        d = env.daemon("prom", e2e.WORLD_GEO, [policy("residency", cg, "enforce", "DE FR")])
        mport = free_port()
        with open(d.conf, "a") as f:
            f.write("MetricsListen=127.0.0.1:%d\n" % mport)
        d.start()
        out = probe(env, cg, "--repeat", "5", "tcp4", "connect", "8.8.8.8", "443")
        check(out == ["EPERM*5"], "probe: %s" % out)
        murl = "http://127.0.0.1:%d" % mport
        status, text = http_get(murl + "/metrics")
        check(status == 200, "GET /metrics on MetricsListen: %d" % status)
        line = 'egressd_connections_total{policy="residency",cgroup="%s",unit="",country="US",protocol="tcp",verdict="deny"} 5' % cg
        check(line in text.splitlines(), "no line %s in:\n%s" % (line, text[:2000]))
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        check(r.returncode == 0, "promtool check metrics: %s %s" % (r.stdout, r.stderr))
        status, body = http_get(murl + "/v1/status")
        check(status == 404, "/v1/status on MetricsListen: %d %s" % (status, body))
        r = subprocess.run(["promtool", "check", "rules", ALERTS], capture_output=True, text=True)
        check(r.returncode == 0, "promtool check rules: %s %s" % (r.stdout, r.stderr))

        pdir = os.path.join(env.tmp, "prometheus")
        os.makedirs(os.path.join(pdir, "data"))
        pport = free_port()
        with open(os.path.join(pdir, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "rule_files:\n  - %s\n"
                    "scrape_configs:\n  - job_name: egressd\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % (ALERTS, mport))
        plog = open(os.path.join(pdir, "log"), "w")
        prom = subprocess.Popen(["prometheus", "--config.file=" + os.path.join(pdir, "prometheus.yml"),
                                 "--storage.tsdb.path=" + os.path.join(pdir, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % pport],
                                stdout=plog, stderr=subprocess.STDOUT)
        base = "http://127.0.0.1:%d" % pport
        q = 'egressd_connections_total{verdict="deny",cgroup="%s",country="US"}' % cg
        deadline = time.time() + 60
        res = []
        while time.time() < deadline:
            try:
                res = prom_query(base, q)
                if res and res[0]["value"][1] == "5":
                    break
            except (OSError, Failure):
                pass
            time.sleep(0.5)
        check(res and res[0]["value"][1] == "5", "Prometheus never saw 5 denials: %s" % res)
        print("   PromQL %s -> %s" % (q, json.dumps(res)))
        # More denials after the first scrapes: the increase fires EgressdDenials.
        probe(env, cg, "--repeat", "3", "tcp4", "connect", "8.8.8.8", "443")
        deadline = time.time() + 60
        firing = []
        while time.time() < deadline:
            status, body = http_get(base + "/api/v1/alerts")
            firing = [a for a in json.loads(body)["data"]["alerts"]
                      if a["labels"]["alertname"] == "EgressdDenials" and a["state"] == "firing"]
            if firing:
                break
            time.sleep(0.5)
        check(firing and firing[0]["labels"]["country"] == "US", "EgressdDenials did not fire: %s" % body)
        res = prom_query(base, q)
        check(res[0]["value"][1] == "8", "after 3 more: %s" % res)
        print("   alert: %s" % json.dumps(firing[0]["labels"], sort_keys=True))
        d.stop()
        print("ok     prometheus scrape, promtool check metrics/rules, /api/v1/query, alert")
        return 0
    except Failure as e:
        print("FAILED prometheus: %s" % e)
        return 1
    finally:
        if prom:
            prom.terminate()
            try:
                prom.wait(10)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
        env.cleanup()


if __name__ == "__main__":
    sys.exit(main())
