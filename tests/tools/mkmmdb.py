#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""mkmmdb.py - a small MaxMind DB writer (MaxMind DB File Format Specification v2.0), standard
library only, for test databases.

Usage: mkmmdb.py SPEC.json OUT.mmdb

SPEC.json:
  {
    "ip_version": 6,                 # 4 or 6
    "record_size": 28,               # 24, 28 or 32
    "database_type": "Test-Country",
    "build_epoch": 1700000000,
    "ipv4_aliases": true,            # ip_version 6 only: ::ffff:0:0/96, 2001::/32, 2002::/16
                                     # point at the IPv4 subtree node (as MaxMind's writer does)
    "networks": [["1.0.0.0/24", {"country": {"iso_code": "AU"}}], ...]
  }

IPv4 networks in an ip_version 6 database are stored under ::/96 (::a.b.c.d). Networks must not
overlap. Data values: dict -> map, str -> utf8_string, int >= 0 -> uint16/uint32/uint64 by size,
list -> array, bool -> boolean.
"""
import ipaddress
import json
import struct
import sys

METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"


# ---- data section encoding (spec section "Output Data Section") ----------------------------
def ctrl(type_num, size):
    """Control byte(s) for a type number and payload size."""
    if size < 29:
        first, extra = size, b""
    elif size < 29 + 256:
        first, extra = 29, bytes([size - 29])
    elif size < 285 + 65536:
        first, extra = 30, struct.pack(">H", size - 285)
    else:
        first, extra = 31, struct.pack(">I", size - 65821)[1:]
    if type_num <= 7:
        return bytes([(type_num << 5) | first]) + extra
    return bytes([first, type_num - 7]) + extra  # extended type: type 0 + next byte


def uint_bytes(v):
    n = (v.bit_length() + 7) // 8
    return v.to_bytes(n, "big") if n else b""


def encode(v):
    if isinstance(v, bool):
        return ctrl(14, 1 if v else 0)
    if isinstance(v, str):
        b = v.encode("utf-8")
        return ctrl(2, len(b)) + b
    if isinstance(v, int):
        if v < 0:
            raise ValueError("negative integers are not supported")
        b = uint_bytes(v)
        t = 5 if v < 1 << 16 else 6 if v < 1 << 32 else 9 if v < 1 << 64 else 10
        return ctrl(t, len(b)) + b
    if isinstance(v, dict):
        out = ctrl(7, len(v))
        for k, x in v.items():
            out += encode(str(k)) + encode(x)
        return out
    if isinstance(v, list):
        out = ctrl(11, len(v))
        for x in v:
            out += encode(x)
        return out
    raise TypeError("cannot encode %r" % (v,))


def encode_uint(type_num, v):
    b = uint_bytes(v)
    return ctrl(type_num, len(b)) + b


# ---- search tree -----------------------------------------------------------------------------
class Node:
    __slots__ = ("rec",)

    def __init__(self):
        self.rec = [None, None]  # None = empty, Node, or ("data", index)


def insert(root, bits, value, plen, data):
    node = root
    for depth in range(plen):
        bit = (value >> (bits - 1 - depth)) & 1
        if depth == plen - 1:
            if node.rec[bit] is not None:
                raise ValueError("overlapping network")
            node.rec[bit] = data
            return
        child = node.rec[bit]
        if child is None:
            child = Node()
            node.rec[bit] = child
        elif not isinstance(child, Node):
            raise ValueError("overlapping network")
        node = child
    raise ValueError("prefix length 0 is not supported")


def node_at(root, bits, value, depth, create):
    """The node reached after following depth bits of value."""
    node = root
    for d in range(depth):
        bit = (value >> (bits - 1 - d)) & 1
        child = node.rec[bit]
        if child is None and create:
            child = Node()
            node.rec[bit] = child
        if not isinstance(child, Node):
            return None
        node = child
    return node


def build(spec):
    ipv = spec["ip_version"]
    bits = 128 if ipv == 6 else 32
    rs = spec["record_size"]
    if rs not in (24, 28, 32):
        raise ValueError("record_size must be 24, 28 or 32")
    root = Node()
    datas, data_index = [], {}
    for net, data in spec["networks"]:
        n = ipaddress.ip_network(net)
        value, plen = int(n.network_address), n.prefixlen
        if n.version == 4 and ipv == 6:
            plen += 96
        elif n.version == 6 and ipv == 4:
            raise ValueError("IPv6 network in an IPv4 database")
        key = json.dumps(data, sort_keys=True)
        if key not in data_index:
            data_index[key] = len(datas)
            datas.append(data)
        insert(root, bits, value, plen, ("data", data_index[key]))

    if ipv == 6 and spec.get("ipv4_aliases"):
        v4 = node_at(root, 128, 0, 96, create=False)
        if v4 is None:
            raise ValueError("ipv4_aliases needs IPv4 networks")
        for value, plen in ((0xFFFF << 32, 96), (0x2001 << 112, 32), (0x2002 << 112, 16)):
            parent = node_at(root, 128, value, plen - 1, create=True)
            bit = (value >> (128 - plen)) & 1
            if parent.rec[bit] is not None:
                raise ValueError("alias position already used")
            parent.rec[bit] = v4

    # number the nodes breadth-first (root = 0); aliased nodes get one number
    order, ids = [root], {id(root): 0}
    i = 0
    while i < len(order):
        for c in order[i].rec:
            if isinstance(c, Node) and id(c) not in ids:
                ids[id(c)] = len(order)
                order.append(c)
        i += 1
    node_count = len(order)

    data_section, offsets = b"", []
    for d in datas:
        offsets.append(len(data_section))
        data_section += encode(d)

    def rec_value(r):
        if r is None:
            return node_count
        if isinstance(r, Node):
            return ids[id(r)]
        return node_count + 16 + offsets[r[1]]

    limit = 1 << rs
    tree = bytearray()
    for node in order:
        left, right = (rec_value(r) for r in node.rec)
        if left >= limit or right >= limit:
            raise ValueError("record value does not fit in %d bits" % rs)
        if rs == 24:
            tree += left.to_bytes(3, "big") + right.to_bytes(3, "big")
        elif rs == 28:
            tree += (left & 0xFFFFFF).to_bytes(3, "big")
            tree.append(((left >> 24) << 4) | (right >> 24))
            tree += (right & 0xFFFFFF).to_bytes(3, "big")
        else:
            tree += left.to_bytes(4, "big") + right.to_bytes(4, "big")

    meta = ctrl(7, 9)
    meta += encode("node_count") + encode_uint(6, node_count)
    meta += encode("record_size") + encode_uint(5, rs)
    meta += encode("ip_version") + encode_uint(5, ipv)
    meta += encode("database_type") + encode(spec.get("database_type", "Test"))
    meta += encode("languages") + encode(["en"])
    meta += encode("binary_format_major_version") + encode_uint(5, 2)
    meta += encode("binary_format_minor_version") + encode_uint(5, 0)
    meta += encode("build_epoch") + encode_uint(9, spec.get("build_epoch", 0))
    meta += encode("description") + encode({"en": spec.get("description", "egressd test data")})
    return bytes(tree) + b"\0" * 16 + data_section + METADATA_MARKER + meta


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: mkmmdb.py SPEC.json OUT.mmdb\n")
        return 2
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    out = build(spec)
    with open(sys.argv[2], "wb") as f:
        f.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
