#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Prepare rows start,end,CC of ip-location-db CSV files for egressd's embedded data.

- Special-purpose address blocks (IANA IPv4 and IPv6 Special-Purpose Address Registries, RFC 6890
  and its updates: private, loopback, link-local, documentation, benchmarking, multicast, reserved)
  are cut out of every row: a country for 192.168.0.0/16 or 2001:db8::/32 is an artefact of WHOIS
  data, and would put LAN traffic in a country. Such destinations count as unknown; loopback and
  link-local are "local" in egressd anyway.
- Of identical ranges only the last row is kept (the loader's rule: the later row wins), so the
  shipped data loads without warnings.
Reads CSV files given as arguments, writes the result to stdout in input order (IPv4 then IPv6),
and a summary to stderr. Standard library only.
"""
import ipaddress
import sys

SPECIAL = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001:db8::/32",
    "fc00::/7", "fe80::/10", "ff00::/8",
)]


def cut(start, end, version):
    """[start, end] minus the special blocks of that family, as a list of (start, end) ints."""
    pieces = [(start, end)]
    for net in SPECIAL:
        if net.version != version:
            continue
        a, b = int(net.network_address), int(net.broadcast_address)
        out = []
        for s, e in pieces:
            if e < a or s > b:
                out.append((s, e))
                continue
            if s < a:
                out.append((s, a - 1))
            if e > b:
                out.append((b + 1, e))
        pieces = out
    return pieces


def main():
    rows = []
    for path in sys.argv[1:]:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                a, b, cc = line.split(",")[:3]
                ia, ib = ipaddress.ip_address(a), ipaddress.ip_address(b)
                rows.append((ia.version, int(ia), int(ib), cc))
    last = {}
    for i, (v, s, e, cc) in enumerate(rows):
        last[(v, s, e)] = i
    kept = clipped = dropped = dups = 0
    out = sys.stdout
    for i, (v, s, e, cc) in enumerate(rows):
        if last[(v, s, e)] != i:
            dups += 1
            continue
        pieces = cut(s, e, v)
        if not pieces:
            dropped += 1
            continue
        if pieces != [(s, e)]:
            clipped += 1
        for ps, pe in pieces:
            ip = ipaddress.IPv4Address if v == 4 else ipaddress.IPv6Address
            out.write("%s,%s,%s\n" % (ip(ps), ip(pe), cc))
            kept += 1
    print("rows in=%d out=%d special-purpose: %d dropped %d clipped; identical ranges: %d earlier rows dropped"
          % (len(rows), kept, dropped, clipped, dups), file=sys.stderr)


if __name__ == "__main__":
    main()
