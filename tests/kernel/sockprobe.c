/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sockprobe - do one or a few socket operations and print one result per operation: "ok" or the
 * errno name ("EPERM", "ENETUNREACH", "ECONNREFUSED", ...). Used by the kernel tests and the demo
 * to see what the egressd hooks decided. Exit 0 when all operations ran (whatever their result),
 * 1 when a socket could not be created, 2 on usage errors.
 *
 *   sockprobe [--repeat N] [--timeout-ms MS] [--udp-sink ADDR PORT] SOCK OP ARGS...
 *     tcp4 connect ADDR PORT
 *     tcp6 connect ADDR PORT [--v6only=0|1]     ADDR may be ::ffff:a.b.c.d or 64:ff9b::a.b.c.d
 *     udp4|udp6 connect ADDR PORT [--v6only=0|1]
 *     udp4|udp6 sendto ADDR PORT                 one datagram on a fresh socket
 *     udp6 sendto-sin ADDR4 PORT                 AF_INET6 socket, struct sockaddr_in destination
 *     udp6 connect-sin ADDR4 PORT                AF_INET6 socket, connect() to a sockaddr_in
 *     udp4|udp6 connect-send ADDR PORT COUNT     connect, then send() COUNT times: prints the
 *                                                connect result and one summary of the sends
 *     udp4|udp6 connect-then-sendto A PORT B PORT  connect to A, then sendto(B) on that socket
 *     udp4|udp6 sendmmsg PORT A B ...            one sendmmsg() with a message per address:
 *                                                prints its return value, or the errno name if -1
 *
 * --udp-sink binds a UDP socket to ADDR:PORT first (ADDR must be local, e.g. added to lo in the
 * test's network namespace), so UDP sends to it succeed and no ICMP error comes back.
 *
 * Summaries group equal results in order: "ENETUNREACH*100", "ok*3,EPERM*1". With --repeat N the
 * whole operation runs N times and each printed position is such a summary.
 * Connects are non-blocking: EINPROGRESS then waits up to --timeout-ms (default 1000) for the
 * outcome (ECONNREFUSED on loopback); still pending after that counts as "ok" (the hook allowed
 * the connect).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_RESULTS 8
#define MAX_KINDS 8
#define MAX_MSGS 64

struct tally {
	char name[MAX_KINDS][32];
	unsigned long count[MAX_KINDS];
	int n;
};

static struct tally results[MAX_RESULTS];
static int nresults_max;
static int cur_pos;
static int timeout_ms = 1000;

static void usage(void)
{
	fprintf(stderr, "usage: sockprobe [--repeat N] [--timeout-ms MS] [--udp-sink ADDR PORT] "
			"tcp4|tcp6|udp4|udp6 OP ARGS...\n"
			"  OP: connect ADDR PORT [--v6only=0|1] | sendto ADDR PORT | sendto-sin "
			"ADDR4 PORT |\n"
			"      connect-sin ADDR4 PORT | connect-send ADDR PORT COUNT |\n"
			"      connect-then-sendto A PORT B PORT | sendmmsg PORT A B ...\n");
	exit(2);
}

static void tally_add(struct tally *t, const char *name, unsigned long n)
{
	for (int i = 0; i < t->n; i++)
		if (strcmp(t->name[i], name) == 0) {
			t->count[i] += n;
			return;
		}
	if (t->n == MAX_KINDS)
		return;
	snprintf(t->name[t->n], sizeof(t->name[t->n]), "%s", name);
	t->count[t->n++] = n;
}

/* Record the result of the next printed position. */
static void result(const char *name, unsigned long n)
{
	if (cur_pos < MAX_RESULTS)
		tally_add(&results[cur_pos], name, n);
	cur_pos++;
	if (cur_pos > nresults_max)
		nresults_max = cur_pos;
}

static const char *err_name(int e)
{
	const char *s = strerrorname_np(e);

	return s ? s : "EUNKNOWN";
}

/* Result of a send: call as result_send(sendto(...)) so errno is read after the call. */
static void result_send(ssize_t rc)
{
	result(rc < 0 ? err_name(errno) : "ok", 1);
}

struct target {
	struct sockaddr_storage ss;
	socklen_t len;
};

static int parse_port(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end || v < 0 || v > 65535)
		usage();
	return (int)v;
}

/* family: AF_INET or AF_INET6: the address family of the sockaddr to build. */
static void parse_target(int family, const char *addr, const char *port, struct target *t)
{
	memset(t, 0, sizeof(*t));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&t->ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)parse_port(port));
		if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1) {
			fprintf(stderr, "sockprobe: not an IPv4 address: %s\n", addr);
			exit(2);
		}
		t->len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)parse_port(port));
		if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1) {
			fprintf(stderr, "sockprobe: not an IPv6 address: %s\n", addr);
			exit(2);
		}
		t->len = sizeof(*sin6);
	}
}

static int make_socket(int family, int type, int v6only)
{
	int fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0) {
		fprintf(stderr, "sockprobe: socket: %s\n", strerror(errno));
		exit(1);
	}
	if (family == AF_INET6 && v6only >= 0 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0) {
		fprintf(stderr, "sockprobe: IPV6_V6ONLY: %s\n", strerror(errno));
		exit(1);
	}
	return fd;
}

/* connect(); for EINPROGRESS wait for the outcome. Returns 0 or an errno value. */
static int do_connect(int fd, const struct target *t)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	socklen_t len = sizeof(int);
	int err = 0;

	if (connect(fd, (const struct sockaddr *)&t->ss, t->len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return errno;
	if (poll(&p, 1, timeout_ms) <= 0)
		return 0; /* still in progress: the hook let it through */
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

static void report_err(int e)
{
	result(e ? err_name(e) : "ok", 1);
}

static const char payload[] = "sockprobe";

static void run(int argc, char **argv)
{
	const char *sock, *op;
	int family, type, v6only = -1, fd, nargs;
	char *args[MAX_MSGS + 2];
	struct target t, t2;

	if (argc < 2)
		usage();
	sock = argv[0];
	op = argv[1];
	if (strcmp(sock, "tcp4") == 0 || strcmp(sock, "udp4") == 0)
		family = AF_INET;
	else if (strcmp(sock, "tcp6") == 0 || strcmp(sock, "udp6") == 0)
		family = AF_INET6;
	else
		usage();
	type = sock[0] == 't' ? SOCK_STREAM : SOCK_DGRAM;

	nargs = 0;
	for (int i = 2; i < argc; i++) {
		if (strncmp(argv[i], "--v6only=", 9) == 0) {
			v6only = atoi(argv[i] + 9) ? 1 : 0;
			continue;
		}
		if (nargs == MAX_MSGS + 2)
			usage();
		args[nargs++] = argv[i];
	}

	if (strcmp(op, "connect") == 0 && nargs == 2) {
		parse_target(family, args[0], args[1], &t);
		fd = make_socket(family, type, v6only);
		report_err(do_connect(fd, &t));
		close(fd);
	} else if (type == SOCK_DGRAM && strcmp(op, "sendto") == 0 && nargs == 2) {
		parse_target(family, args[0], args[1], &t);
		fd = make_socket(family, type, v6only);
		result_send(
			sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&t.ss, t.len));
		close(fd);
	} else if (type == SOCK_DGRAM && family == AF_INET6 && strcmp(op, "sendto-sin") == 0 &&
		   nargs == 2) {
		parse_target(AF_INET, args[0], args[1], &t);
		fd = make_socket(family, type, v6only);
		result_send(
			sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&t.ss, t.len));
		close(fd);
	} else if (type == SOCK_DGRAM && family == AF_INET6 && strcmp(op, "connect-sin") == 0 &&
		   nargs == 2) {
		parse_target(AF_INET, args[0], args[1], &t);
		fd = make_socket(family, type, v6only);
		report_err(do_connect(fd, &t));
		close(fd);
	} else if (type == SOCK_DGRAM && strcmp(op, "connect-send") == 0 && nargs == 3) {
		long count = atol(args[2]);
		struct tally sends = {};
		int e;

		if (count <= 0)
			usage();
		parse_target(family, args[0], args[1], &t);
		fd = make_socket(family, type, v6only);
		e = do_connect(fd, &t);
		report_err(e);
		if (!e) {
			for (long i = 0; i < count; i++) {
				ssize_t r = send(fd, payload, sizeof(payload), 0);

				tally_add(&sends, r < 0 ? err_name(errno) : "ok", 1);
			}
			for (int i = 0; i < sends.n; i++)
				tally_add(
					&results[cur_pos < MAX_RESULTS ? cur_pos : MAX_RESULTS - 1],
					sends.name[i], sends.count[i]);
			cur_pos++;
			if (cur_pos > nresults_max)
				nresults_max = cur_pos;
		}
		close(fd);
	} else if (type == SOCK_DGRAM && strcmp(op, "connect-then-sendto") == 0 && nargs == 4) {
		int e;

		parse_target(family, args[0], args[1], &t);
		parse_target(family, args[2], args[3], &t2);
		fd = make_socket(family, type, v6only);
		e = do_connect(fd, &t);
		report_err(e);
		if (!e)
			result_send(sendto(fd, payload, sizeof(payload), 0,
					   (struct sockaddr *)&t2.ss, t2.len));
		close(fd);
	} else if (type == SOCK_DGRAM && strcmp(op, "sendmmsg") == 0 && nargs >= 2) {
		static struct target tg[MAX_MSGS];
		static struct mmsghdr msgs[MAX_MSGS];
		static struct iovec iov[MAX_MSGS];
		int n = nargs - 1, r;
		char buf[32];

		if (n > MAX_MSGS)
			usage();
		memset(msgs, 0, sizeof(msgs));
		for (int i = 0; i < n; i++) {
			parse_target(family, args[1 + i], args[0], &tg[i]);
			iov[i].iov_base = (void *)payload;
			iov[i].iov_len = sizeof(payload);
			msgs[i].msg_hdr.msg_name = &tg[i].ss;
			msgs[i].msg_hdr.msg_namelen = tg[i].len;
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		fd = make_socket(family, type, v6only);
		r = sendmmsg(fd, msgs, (unsigned)n, 0);
		if (r < 0)
			result(err_name(errno), 1);
		else {
			snprintf(buf, sizeof(buf), "%d", r);
			result(buf, 1);
		}
		close(fd);
	} else {
		usage();
	}
}

/* Bind a UDP socket to ADDR:PORT (an address of this network namespace, e.g. added to lo) and
 * keep it open, so datagrams sent there are received instead of answered with ICMP port
 * unreachable (which would make later send()s on a connected socket fail with ECONNREFUSED). */
static void udp_sink(const char *addr, const char *port)
{
	struct target t;
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET, fd, one = 1 << 22;

	parse_target(family, addr, port, &t);
	fd = make_socket(family, SOCK_DGRAM, -1);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&t.ss, t.len) < 0) {
		fprintf(stderr, "sockprobe: --udp-sink %s %s: bind: %s\n", addr, port,
			strerror(errno));
		exit(1);
	}
	/* fd stays open until exit */
}

int main(int argc, char **argv)
{
	long repeat = 1;
	int i = 1;

	while (i < argc && strncmp(argv[i], "--", 2) == 0) {
		if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
			repeat = atol(argv[i + 1]);
			i += 2;
		} else if (strcmp(argv[i], "--udp-sink") == 0 && i + 2 < argc) {
			udp_sink(argv[i + 1], argv[i + 2]);
			i += 3;
		} else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) {
			timeout_ms = atoi(argv[i + 1]);
			i += 2;
		} else {
			usage();
		}
	}
	if (repeat <= 0 || timeout_ms < 0)
		usage();
	for (long r = 0; r < repeat; r++) {
		cur_pos = 0;
		run(argc - i, argv + i);
	}
	for (int p = 0; p < nresults_max && p < MAX_RESULTS; p++) {
		const struct tally *t = &results[p];

		for (int k = 0; k < t->n; k++) {
			if (t->count[k] == 1 && t->n == 1)
				printf("%s", t->name[k]);
			else
				printf("%s%s*%lu", k ? "," : "", t->name[k], t->count[k]);
		}
		printf("\n");
	}
	return 0;
}
