#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Man pages and bash completion against the code:
#   - docs/egressd.8, docs/egressctl.8, docs/egressd.conf.5 are clean for mandoc -Tlint, groff -ww
#     and man --warnings;
#   - every option that egressd --help / egressctl --help prints is in the page, every option the
#     page documents is in --help (short aliases that --help omits must at least be accepted by the
#     binary), and the binaries accept the options as documented;
#   - the keys of the parser's tables (daemon/policy.c) are exactly the keys each section of
#     egressd.conf.5 documents, and the built-in defaults and limits appear there;
#   - completions/egressctl.bash loads, registers itself and completes commands, options, verdicts
#     and countries;
#   - make install-docs / uninstall-docs put gzip -9n pages and the completion where they belong.
# Prints "ok - ..." or "FAILED - ..." per check; exits 1 if any failed. Run from anywhere:
#   BUILD=build bash tests/system/test_docs.sh
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
build=${BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
tmp=$(mktemp -d /tmp/egressd-test-docs.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "ok - $*"; }
bad() { echo "FAILED - $*"; fail=1; }

pages=(docs/egressd.8 docs/egressctl.8 docs/egressd.conf.5)

for b in "$build/egressd" "$build/egressctl"; do
	[ -x "$b" ] || { bad "$b is not built (run make)"; exit 1; }
done

# ---- lint --------------------------------------------------------------------------------------
for p in "${pages[@]}"; do
	if ! command -v mandoc >/dev/null; then
		bad "$p: mandoc is not installed (scripts/deps.sh installs it)"
	elif out=$(mandoc -Tlint "$p" 2>&1) && [ -z "$out" ]; then
		ok "$p: mandoc -Tlint clean"
	else
		bad "$p: mandoc -Tlint:"$'\n'"$out"
	fi
	out=$(groff -ww -z -man "$p" 2>&1)
	if [ -z "$out" ]; then ok "$p: groff -ww -z -man clean"; else bad "$p: groff:"$'\n'"$out"; fi
	out=$(MANWIDTH=80 man --warnings -E UTF-8 -l "$p" 2>&1 >/dev/null)
	if [ -z "$out" ]; then ok "$p: man --warnings clean"; else bad "$p: man --warnings:"$'\n'"$out"; fi
done

# ---- options: --help against the pages ---------------------------------------------------------
# opts_of_help: every -x / --long token of a --help text. opts_of_page FILE SECTION...: the same
# tokens in the given .SH sections of a roff source (escapes removed).
opts_of_help() {
	grep -oE '(^|[[ ,])--?[a-zA-Z][a-zA-Z-]*' | sed -E 's/^[[ ,]//' | sort -u
}
opts_of_page() {
	python3 - "$@" <<'EOF'
import re, sys
path, wanted = sys.argv[1], set(sys.argv[2:])
sec, out = None, set()
for line in open(path, encoding='utf-8'):
    line = line.rstrip('\n')
    if line.startswith('.SH'):
        sec = line[3:].strip().strip('"')
        continue
    if sec not in wanted or line.startswith('.\\"'):
        continue
    text = re.sub(r'\\f[BIRP]|\\f\(..|\\&|\\e', '', line).replace('\\-', '-')
    text = re.sub(r'^\.[A-Z]+\s*', ' ', text)
    for m in re.finditer(r'(?:^|(?<=[\s\[(|"]))(--?[a-zA-Z][a-zA-Z-]*)', text):
        out.add(m.group(1))
print('\n'.join(sorted(out)))
EOF
}
compare_opts() { # NAME HELP_LIST PAGE_LIST; prints results, returns the options only in the page
	local name=$1 help=$2 page=$3 missing extra
	missing=$(comm -23 <(echo "$help") <(echo "$page"))
	extra=$(comm -13 <(echo "$help") <(echo "$page"))
	if [ -z "$missing" ]; then
		ok "$name: all $(echo "$help" | wc -l) options of --help are documented"
	else
		bad "$name: options of --help missing from the page: $(echo $missing)"
	fi
	EXTRA=$extra
}

help_d=$("$build/egressd" --help | opts_of_help)
page_d=$(opts_of_page docs/egressd.8 SYNOPSIS OPTIONS)
compare_opts egressd.8 "$help_d" "$page_d"
if [ -z "$EXTRA" ]; then
	ok "egressd.8: documents no option that --help lacks"
else
	bad "egressd.8: documents options --help does not print: $(echo $EXTRA)"
fi
# The binary takes every documented option: they parse, then --help ends with 0; a bogus one is 1.
if "$build/egressd" -c /nonexistent --config=/nonexistent -l debug --log-level=notice --help >/dev/null &&
	"$build/egressd" --version | grep -qx "egressd $(cat VERSION)"; then
	ok "egressd: -c, --config, -l, --log-level, --help, --version are accepted"
else
	bad "egressd: a documented option is rejected"
fi
for lvl in emerg alert crit err error warning notice info debug 0 7; do
	"$build/egressd" --log-level "$lvl" --help >/dev/null || bad "egressd: --log-level $lvl rejected"
done
"$build/egressd" --log-level verbose --help >/dev/null 2>&1
[ $? -eq 1 ] && ok "egressd: the log levels of the page are accepted, others exit 1" ||
	bad "egressd: --log-level verbose does not exit 1"
"$build/egressd" --no-such-option >/dev/null 2>&1
[ $? -eq 1 ] && ok "egressd: an unknown option exits 1" || bad "egressd: unknown option exit status"

help_c=$("$build/egressctl" --help | opts_of_help)
page_c=$(opts_of_page docs/egressctl.8 SYNOPSIS OPTIONS COMMANDS)
compare_opts egressctl.8 "$help_c" "$page_c"
# Options the page has and --help lacks: long options are an error; short aliases must work.
sock=$tmp/no-daemon.sock
e=0
for o in $EXTRA; do
	case $o in
	--*) bad "egressctl.8: documents $o, which --help does not print"; e=1 ;;
	-f)
		"$build/egressctl" --socket "$sock" events -f >/dev/null 2>&1
		if [ $? -eq 2 ]; then
			echo "note - egressctl.8 documents -f (events), which --help does not print; the binary accepts it"
		else
			bad "egressctl.8: documents -f, which egressctl does not accept"; e=1
		fi
		;;
	*) bad "egressctl.8: documents $o, which --help does not print"; e=1 ;;
	esac
done
[ $e -eq 0 ] && ok "egressctl.8: every documented option is in --help or accepted by egressctl"
# Commands of --help = commands of the page (".TP" items of COMMANDS).
cmds_help=$("$build/egressctl" --help | awk '/^Commands:/ { f = 1; next } /^$/ { f = 0 } f && /^  [a-z]/ { print $1 }' | sort)
cmds_page=$(awk '/^\.SH COMMANDS/ { f = 1; next } /^\.SH/ { f = 0 }
	f && prev == ".TP" && $1 == ".B" && $2 ~ /^[a-z]+$/ { print $2 } { prev = $0 }' docs/egressctl.8 | sort)
if [ -n "$cmds_help" ] && [ "$cmds_help" = "$cmds_page" ]; then
	ok "egressctl.8: commands match --help ($(echo $cmds_help))"
else
	bad "egressctl.8: commands differ: --help: $(echo $cmds_help); page: $(echo $cmds_page)"
fi
# Every command with its documented options reaches the (absent) daemon: exit 2, not 1 (usage).
e=0
while read -r args; do
	# shellcheck disable=SC2086
	"$build/egressctl" --socket "$sock" $args >/dev/null 2>&1
	rc=$?
	[ $rc -eq 2 ] || { bad "egressctl $args: exit $rc, expected 2 (no daemon)"; e=1; }
done <<'EOF'
status
status --json
--json policies
counters --policy p --cgroup system.slice/x.service --country DE --verdict would_deny
counters --policy=p --cgroup=x.service --country=unknown --verdict=local
counters --country other --verdict allow
counters --country de --verdict deny
lookup 192.0.2.1 --cgroup system.slice/x.service
lookup 2001:db8::1
reload
events
events --follow
EOF
EGRESSD_SOCKET=$sock "$build/egressctl" status >/dev/null 2>&1
[ $? -eq 2 ] || { bad "EGRESSD_SOCKET is not used"; e=1; }
while read -r args; do
	# shellcheck disable=SC2086
	"$build/egressctl" --socket "$sock" $args >/dev/null 2>&1
	rc=$?
	[ $rc -eq 1 ] || { bad "egressctl $args: exit $rc, expected 1 (usage)"; e=1; }
done <<'EOF'
counters --verdict maybe
counters --country DEU
counters --policy
lookup not-an-address
lookup
nosuchcommand
status --nosuchoption
status --version
EOF
[ $e -eq 0 ] && ok "egressctl: documented commands and options work, exit codes 1 and 2 as documented"

# ---- configuration keys: daemon/policy.c tables against egressd.conf.5 --------------------------
out=$(python3 - <<'EOF'
import re, sys
src = open('daemon/policy.c').read()
tables = {}
for name in ('daemon_keys', 'region_keys', 'policy_keys'):
    m = re.search(r'static const struct key_def %s\[\] = \{(.*?)\n\};' % name, src, re.S)
    if not m:
        print('FAILED - daemon/policy.c: table %s not found' % name); sys.exit(0)
    tables[name] = set(re.findall(r'\{\s*"([A-Za-z]+)",\s*K_', m.group(1)))
sections = {'[DAEMON] SECTION': 'daemon_keys', '[POLICY] SECTION': 'policy_keys',
            'REGIONS FILE': 'region_keys'}
page = {v: set() for v in sections.values()}
sec, prev = None, ''
text = open('docs/egressd.conf.5', encoding='utf-8').read()
for line in text.split('\n'):
    if line.startswith('.SH'):
        sec = sections.get(line[3:].strip().strip('"'))
    elif sec and prev in ('.TP', '.TQ'):
        m = re.match(r'\.B[IR]?\s+"?([A-Za-z]+)=', line)
        if m:
            page[sec].add(m.group(1))
    prev = line
for t, keys in tables.items():
    if not keys:
        print('FAILED - daemon/policy.c: no keys in %s' % t); continue
    if keys == page[t]:
        print('ok - egressd.conf.5 documents exactly the %d keys of %s: %s' % (len(keys), t, ' '.join(sorted(keys))))
    else:
        print('FAILED - egressd.conf.5 vs %s: undocumented %s, not in the parser %s' % (
            t, sorted(keys - page[t]), sorted(page[t] - keys)))
# Built-in defaults (other than the DATADIR ones) and the limits must be in the page.
plain = re.sub(r'\\f[BIRP]|\\&', '', text).replace('\\-', '-')
defaults = re.findall(r'#define DEFAULT_[A-Z_]+ "([^"]+)"', src)
hdr = open('daemon/policy.h').read()
limits = re.findall(r'#define (CONFIG_MAX_[A-Z]+) (\d+)', hdr)
missing = [d for d in defaults if d not in plain]
missing += ['%s=%s' % (n, v) for n, v in limits if v + ' bytes' not in plain and 'to ' + v not in plain]
prev_tp = False
abi = open('include/egress_abi.h').read()
lvl = re.search(r'#define EGRESS_MAX_CGROUP_LEVEL (\d+)', abi).group(1)
if lvl + ' levels' not in plain:
    missing.append('EGRESS_MAX_CGROUP_LEVEL=' + lvl)
# The defaults policy_start() gives Mode= and Unknown= must be the ones the page calls default.
items, cur = {}, None
for line in text.split('\n'):
    m = re.match(r'\.B[IR]?\s+"?([A-Za-z]+)=', line)
    if m and prev_tp:
        cur = m.group(1); items[cur] = ''
    elif line.startswith(('.TP', '.SH', '.TQ')):
        cur = None
    elif cur:
        items[cur] += ' ' + re.sub(r'^\.B[IR]?\s+', '', line)
    prev_tp = line in ('.TP', '.TQ')
for key, field in (('Mode', 'mode'), ('Unknown', 'unknown')):
    m = re.search(r'np->%s = EGRESS_%s_([A-Z]+);' % (field, field.upper()), src)
    val = m.group(1).lower() if m else '?'
    body = re.sub(r'\s+', ' ', items.get(key, '').replace('\\-', '-'))
    if not re.search(r'%s \(the default\)|Default: %s\b' % (val, val), body):
        missing.append('%s= default %s' % (key, val))
if missing:
    print('FAILED - egressd.conf.5 lacks defaults or limits: %s' % ', '.join(missing))
else:
    print('ok - egressd.conf.5 names the %d built-in defaults and the limits (%s, cgroup depth %s)' % (
        len(defaults), ', '.join('%s=%s' % l for l in limits), lvl))
EOF
)
echo "$out"
grep -q '^FAILED' <<<"$out" && fail=1

# ---- bash completion ---------------------------------------------------------------------------
comp=completions/egressctl.bash
touch "$tmp/socket-file"
out=$(bash --norc --noprofile -c '
	source "$1" || exit 1
	complete -p egressctl
	t() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _egressctl; echo "${COMPREPLY[*]}"; }
	t egressctl co
	COMP_WORDS=(egressctl ""); COMP_CWORD=1; COMPREPLY=(); _egressctl; printf "%s\n" "${COMPREPLY[@]}" | sort | xargs
	t egressctl counters --verdict ""
	t egressctl counters --country D
	t egressctl counters --country=u
	t egressctl --json counters --
	t egressctl lookup 192.0.2.1 --c
	t egressctl events --f
	t egressctl --socket "$2/so"
	t egressctl counters --country ""
' sh "$comp" "$tmp" 2>&1)
mapfile -t r <<<"$out"
expect() { # INDEX WANT WHAT
	if [ "${r[$1]-}" = "$2" ]; then ok "completion: $3"; else bad "completion: $3: got '${r[$1]-}', want '$2'"; fi
}
expect 0 "complete -F _egressctl egressctl" "complete -p egressctl shows it"
expect 1 "counters" "'egressctl co' completes to counters"
expect 2 "$(echo $cmds_help)" "commands are those of --help"
expect 3 "allow deny would_deny local" "--verdict values"
expect 4 "DE DJ DK DM DO DZ" "--country D"
expect 5 "unknown ua ug um us uy uz" "--country=u (lower case)"
expect 6 "--policy --cgroup --country --verdict --interval --count --socket --json --help" "counters options"
expect 7 "--cgroup" "lookup options"
expect 8 "--follow" "events options"
expect 9 "$tmp/socket-file" "--socket completes files"
ncodes=$(python3 -c "import re; s=open('daemon/geo.c').read(); m=re.search(r'iso_codes\[\]\[3\] = \{(.*?)\};', s, re.S); print(len(re.findall(r'\"[A-Z]{2}\"', m.group(1))))")
n=$(wc -w <<<"${r[10]-}")
if [ "$n" -eq $((ncodes + 2)) ]; then
	ok "completion: --country offers the $ncodes codes of daemon/geo.c plus unknown and other"
else
	bad "completion: --country offers $n values, want $((ncodes + 2))"
fi

# ---- install / uninstall -----------------------------------------------------------------------
dest=$tmp/dest
if make -s --no-print-directory install-docs DESTDIR="$dest" PREFIX=/usr >"$tmp/make.log" 2>&1; then
	e=0
	for p in "${pages[@]}"; do
		f=$dest/usr/share/man/man${p##*.}/${p##*/}.gz
		if [ ! -f "$f" ] || ! zcat "$f" | cmp -s - "$p"; then
			bad "install-docs: $f missing or not $p"; e=1
		elif [ "$(od -An -tx1 -j4 -N4 "$f" | tr -d ' ')" != 00000000 ] ||
			[ "$(od -An -tx1 -j3 -N1 "$f" | tr -d ' ')" != 00 ]; then
			bad "install-docs: $f has a name or a time stamp (not gzip -n)"; e=1
		fi
	done
	cmp -s "$dest/usr/share/bash-completion/completions/egressctl" "$comp" ||
		{ bad "install-docs: completion not at share/bash-completion/completions/egressctl"; e=1; }
	[ $e -eq 0 ] && ok "install-docs: pages gzip -9n under man5/man8, completion installed"
	make -s --no-print-directory uninstall-docs DESTDIR="$dest" PREFIX=/usr >>"$tmp/make.log" 2>&1
	left=$(find "$dest" -type f)
	[ -z "$left" ] && ok "uninstall-docs: nothing left" || bad "uninstall-docs left: $left"
else
	bad "make install-docs failed: $(cat "$tmp/make.log")"
fi

[ $fail -eq 0 ] && echo "test_docs: all passed" || echo "test_docs: FAILED"
exit $fail
