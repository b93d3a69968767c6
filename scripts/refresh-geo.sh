#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Refresh the embedded default GeoIP data (data/geo/country.csv.gz + data/geo/PROVENANCE) from the
# npm package @ip-location-db/geo-whois-asn-country (country by WHOIS/ASN data, CC BY 4.0 NRO).
# Usage: scripts/refresh-geo.sh [VERSION]   (default: the latest published version)
set -euo pipefail
pkg=@ip-location-db/geo-whois-asn-country
ver=${1:-$(npm view "$pkg" version)}
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
( cd "$tmp" && npm pack --silent "$pkg@$ver" >/dev/null )
tgz=$(ls "$tmp"/*.tgz)
tar -xzf "$tgz" -C "$tmp"
p="$tmp/package"
for f in geo-whois-asn-country-ipv4.csv geo-whois-asn-country-ipv6.csv NRO_LICENSE; do
	[ -s "$p/$f" ] || { echo "refresh-geo: $pkg@$ver has no $f" >&2; exit 1; }
done
out="$top/data/geo"
mkdir -p "$out"
# Special-purpose blocks cut out, identical duplicate rows reduced to the later one
# (scripts/geo-filter.py says why); one file, IPv4 rows then IPv6 rows; -n keeps the gzip header
# free of names and times so the output is reproducible for one input.
python3 "$top/scripts/geo-filter.py" "$p/geo-whois-asn-country-ipv4.csv" > "$tmp/v4.csv" 2> "$tmp/v4.log"
python3 "$top/scripts/geo-filter.py" "$p/geo-whois-asn-country-ipv6.csv" > "$tmp/v6.csv" 2> "$tmp/v6.log"
cat "$tmp/v4.csv" "$tmp/v6.csv" | gzip -9n > "$out/country.csv.gz.new"
mv "$out/country.csv.gz.new" "$out/country.csv.gz"
v4=$(wc -l < "$tmp/v4.csv")
v6=$(wc -l < "$tmp/v6.csv")
cat > "$out/PROVENANCE" <<PROV
# Provenance of data/geo/country.csv.gz (written by scripts/refresh-geo.sh; do not edit by hand)
Source=npm package $pkg (https://github.com/sapics/ip-location-db, geo-whois-asn-country)
Version=$ver
Date=$(date -u +%Y-%m-%d)
Files=geo-whois-asn-country-ipv4.csv ($v4 rows) + geo-whois-asn-country-ipv6.csv ($v6 rows), filtered, concatenated, gzip -9n
Filter=scripts/geo-filter.py: special-purpose blocks (IANA registries, RFC 6890: private, loopback, link-local, documentation, benchmarking, multicast, reserved) cut out of every row; of identical ranges the later row kept. IPv4 $(cat "$tmp/v4.log"). IPv6 $(cat "$tmp/v6.log").
PackageSHA256=$(sha256sum "$tgz" | cut -d' ' -f1)
SHA256=$(sha256sum "$out/country.csv.gz" | cut -d' ' -f1)
License=CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); package metadata: CC0-1.0
Attribution=The statistics data provided by NRO is licensed under a Creative Commons Attribution 4.0 International License. Copyright Holder: Number Resource Organization (NRO), https://www.nro.net. Country by WHOIS and ASN data, compiled by ip-location-db (sapics).
Format=CSV rows start,end,CC (ISO 3166-1 alpha-2); IPv4 and IPv6
PROV
echo "refresh-geo: $pkg@$ver -> $out/country.csv.gz ($v4 IPv4 + $v6 IPv6 rows)"
