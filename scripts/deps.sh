#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Install what a fresh Debian 12 machine lacks to build, test and run egressd (needs root).
set -euo pipefail
pkgs=(
	make gcc clang llvm pkg-config bpftool
	# libFuzzer + sanitizer runtimes for clang (make fuzz, tests/system/test_fuzz.sh)
	libclang-rt-14-dev
	libbpf-dev libelf-dev zlib1g-dev libsystemd-dev libmicrohttpd-dev libjson-c-dev libinih-dev
	libmaxminddb-dev libcmocka-dev libssl-dev libcurl4-openssl-dev
	# tests/kernel/sockprobe: io_uring connect and sendmsg paths
	liburing-dev
	iproute2 util-linux procps curl python3 mmdb-bin mandoc groff-base man-db
	# tests/system/test_schemas.sh: replies validated against the schemas of docs/api.md
	python3-jsonschema
	# tests of the service: systemd-socket-activate, systemd-journald, journalctl, systemd-analyze
	systemd
	# packages: make deb (dpkg-buildpackage, dh), make lintian
	debhelper dpkg-dev lintian
	# make bench: the nftables geoip comparison (nft, only inside a private network namespace)
	nftables
	# promtool (check metrics, check rules) and the Prometheus server of the scrape test
	prometheus
)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
