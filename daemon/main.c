/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* egressd - egress monitor for data residency: entry point (arguments only; see egressd.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "egressd.h"
#include "log.h"
#include "policy.h"

static void usage(FILE *f)
{
	fputs("Usage: egressd [--config FILE] [--log-level LEVEL] [--check]\n"
	      "Count, and in enforce mode block, egress by destination country (eBPF on cgroup hooks).\n\n"
	      "  -c, --config FILE      configuration file (default " EGRESSD_DEFAULT_CONFIG ")\n"
	      "  -l, --log-level LEVEL  err, warning, notice, info (default), debug\n"
	      "      --check            validate configuration, policies and GeoIP data, then exit\n"
	      "                         (0 valid, 1 invalid; errors as FILE:LINE: message)\n"
	      "  -h, --help             this text\n"
	      "      --version          print the version\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "log-level", required_argument, NULL, 'l' },
		{ "check", no_argument, NULL, 'C' },	    { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },	    {},
	};
	struct egressd_args args = { .config_path = EGRESSD_DEFAULT_CONFIG };
	int c, lvl;

	while ((c = getopt_long(argc, argv, "c:l:h", opts, NULL)) >= 0) {
		switch (c) {
		case 'c':
			args.config_path = optarg;
			break;
		case 'l':
			lvl = log_level_from_string(optarg);
			if (lvl < 0) {
				fprintf(stderr, "egressd: --log-level: unknown level '%s' (err, warning, notice, info, debug)\n", optarg);
				return 1;
			}
			log_set_level(lvl);
			break;
		case 'C':
			args.check = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			puts("egressd " EGRESSD_VERSION);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "egressd: unexpected argument '%s'\n", argv[optind]);
		return 1;
	}
	if (args.check)
		return egressd_check(args.config_path);
	return egressd_run(&args);
}
