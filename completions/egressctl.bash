# SPDX-License-Identifier: LGPL-2.1-or-later
# bash completion for egressctl(8). Installed as
# $(PREFIX)/share/bash-completion/completions/egressctl; to try it: source completions/egressctl.bash

# The ISO 3166-1 alpha-2 codes egressd knows (iso_codes in daemon/geo.c: the 249 assigned codes
# plus AN and XK), and the two pseudo-countries of the counters.
_egressctl_countries="unknown other
	AD AE AF AG AI AL AM AN AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
	BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO
	DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU
	GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW
	KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU
	MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW
	PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
	TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT
	ZA ZM ZW"

_egressctl()
{
	local cur prev words cword
	if declare -F _init_completion >/dev/null 2>&1; then
		_init_completion -n = || return
	else
		COMPREPLY=()
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	fi

	local commands="status counters lookup policies reload events top help"
	local global_opts="--socket --json --help -h"
	local value_opt="" cmd="" i w

	# The value of "--opt=value" or of "--opt value".
	if [[ $cur == --*=* ]]; then
		value_opt=${cur%%=*}
		cur=${cur#*=}
	elif ((cword > 1)); then
		# Without bash-completion's _init_completion, "--opt=value" arrives as "--opt" "=" "value".
		[[ $prev == = ]] && ((cword > 2)) && prev=${words[cword - 2]}
		case $prev in
		--socket | --policy | --cgroup | --country | --verdict | --interval | --count | --iterations) value_opt=$prev ;;
		esac
	fi

	# The command: the first word that is neither an option nor an option's value.
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		case $w in
		--socket | --policy | --cgroup | --country | --verdict | --interval | --count | --iterations)
			[[ ${words[i + 1]-} == = ]] && ((i++))
			((i++))
			;;
		-* | =) ;;
		*)
			cmd=$w
			break
			;;
		esac
	done

	case $value_opt in
	--socket)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return 0
		;;
	--verdict)
		COMPREPLY=($(compgen -W "allow deny would_deny local" -- "$cur"))
		return 0
		;;
	--country)
		# Codes are accepted in any case: offer the case the user started with.
		if [[ $cur == [a-z]* ]]; then
			COMPREPLY=($(compgen -W "${_egressctl_countries,,}" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$_egressctl_countries" -- "$cur"))
		fi
		return 0
		;;
	--cgroup)
		# Paths relative to the cgroup v2 mount.
		local mnt
		mnt=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' \
			/proc/self/mountinfo 2>/dev/null)
		if [[ -n $mnt && -d $mnt ]]; then
			local IFS=$'\n'
			COMPREPLY=($(cd "$mnt" && compgen -d -- "$cur"))
			compopt -o filenames 2>/dev/null
		fi
		return 0
		;;
	--policy)
		return 0
		;;
	esac

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$global_opts --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		fi
		return 0
	fi

	local opts=""
	case $cmd in
	counters) opts="--policy --cgroup --country --verdict --interval --count" ;;
	lookup) opts="--cgroup" ;;
	events) opts="--follow -f --policy --cgroup --country --verdict" ;;
	top) opts="--interval --iterations --once" ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts $global_opts" -- "$cur"))
	fi
	return 0
}

complete -F _egressctl egressctl
