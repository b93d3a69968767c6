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
 *     udp4|udp6 uring-sendmsg ADDR PORT          one IORING_OP_SENDMSG of one datagram
 *     tcp4|tcp6 uring-connect ADDR PORT          IORING_OP_CONNECT on a blocking socket
 *     icmp4|icmp6 ping ADDR COUNT                ICMP ping socket (SOCK_DGRAM): COUNT echo
 *                                                (--ping-connect A: connect() it to A first)
 *                                                requests of 16 bytes of data, each waiting up to
 *                                                --timeout-ms for its reply: "ok", "ETIMEDOUT" or
 *                                                the errno of sendto()
 *     raw4|raw6 sendto ADDR COUNT                raw socket, protocol 253 (RFC 3692 experiment):
 *                                                COUNT packets of 10 bytes of data
 *     tcp4|tcp6 xfer ADDR PORT BYTES [--v6only=0|1] [--fastopen=sendto|connect]
 *                                                a server child (in --peer-cgroup if given) listens
 *                                                on ADDR:PORT (::ffff:a.b.c.d: on a.b.c.d); the
 *                                                client connects, sends BYTES, shuts down its side,
 *                                                reads to EOF. Prints the connect result, then
 *                                                "segs=N" "sent=N" "rcvd=N" "syndata=0|1": TCP_INFO
 *                                                tcpi_segs_out and tcpi_bytes_sent of the client
 *                                                socket, the bytes the server read, whether the SYN
 *                                                carried data. --fastopen: TCP Fast Open through
 *                                                sendto(MSG_FASTOPEN) or TCP_FASTOPEN_CONNECT; the
 *                                                transfer runs twice (the first one fetches the
 *                                                cookie), all numbers are sums over both.
 *
 * Socket origin (any operation): --move-to CGDIR creates the socket, then moves this process to
 * the cgroup directory CGDIR before using it; --scm-from CGDIR has a child process join CGDIR,
 * create the socket there and pass it over SCM_RIGHTS.
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
#include <linux/tcp.h>
#include <liburing.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
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
static const char *move_to; /* --move-to CGDIR */
static const char *scm_from; /* --scm-from CGDIR */
static const char *peer_cgroup; /* --peer-cgroup CGDIR */
static const char *ping_connect; /* --ping-connect ADDR: ping sockets connect() there first */

static void usage(void)
{
	fprintf(stderr, "usage: sockprobe [--repeat N] [--timeout-ms MS] [--ping-connect ADDR] [--udp-sink ADDR PORT] "
			"tcp4|tcp6|udp4|udp6 OP ARGS...\n"
			"  OP: connect ADDR PORT [--v6only=0|1] | sendto ADDR PORT | sendto-sin "
			"ADDR4 PORT |\n"
			"      connect-sin ADDR4 PORT | connect-send ADDR PORT COUNT |\n"
			"      connect-then-sendto A PORT B PORT | sendmmsg PORT A B ... |\n"
			"      uring-sendmsg ADDR PORT | uring-connect ADDR PORT | ping ADDR COUNT |\n"
			"      sendto ADDR COUNT (raw) | xfer ADDR PORT BYTES [--fastopen=sendto|connect]\n"
			"  SOCK: tcp4 tcp6 udp4 udp6 icmp4 icmp6 raw4 raw6\n"
			"  --move-to CGDIR | --scm-from CGDIR | --peer-cgroup CGDIR\n");
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

/* Move this process into the cgroup directory dir. */
static void join_cgroup(const char *dir)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) {
		fprintf(stderr, "sockprobe: joining %s: %s\n", dir, strerror(errno));
		exit(1);
	}
}

/* socket(), created by a child in scm_from and received over SCM_RIGHTS when set. */
static int new_socket(int family, int type, int proto)
{
	char cbuf[CMSG_SPACE(sizeof(int))], byte = 0;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int sv[2], fd, status;
	pid_t pid;

	if (!scm_from)
		return socket(family, type, proto);
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		join_cgroup(scm_from);
		fd = socket(family, type, proto);
		if (fd < 0)
			_exit(1);
		memset(cbuf, 0, sizeof(cbuf));
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
		_exit(sendmsg(sv[1], &m, 0) == 1 ? 0 : 1);
	}
	close(sv[1]);
	fd = -1;
	if (recvmsg(sv[0], &m, MSG_CMSG_CLOEXEC) == 1 && (c = CMSG_FIRSTHDR(&m)) &&
	    c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	close(sv[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fd = -1;
	if (fd < 0)
		errno = EIO;
	return fd;
}

static int make_socket_proto(int family, int type, int proto, int v6only)
{
	int fd = new_socket(family, type | SOCK_CLOEXEC, proto);

	if (fd < 0) {
		fprintf(stderr, "sockprobe: socket: %s\n", strerror(errno));
		exit(1);
	}
	if (move_to)
		join_cgroup(move_to);
	if (family == AF_INET6 && v6only >= 0 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0) {
		fprintf(stderr, "sockprobe: IPV6_V6ONLY: %s\n", strerror(errno));
		exit(1);
	}
	return fd;
}

static int make_socket(int family, int type, int v6only)
{
	int fd = make_socket_proto(family, type, 0, v6only);

	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		fprintf(stderr, "sockprobe: O_NONBLOCK: %s\n", strerror(errno));
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

/* ---- io_uring -------------------------------------------------------------------------------- */

/* Submit one prepared request and wait for its completion: its result (>= 0 or -errno). */
static int uring_one(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;
	int r;

	r = io_uring_submit(ring);
	if (r < 0)
		return r;
	r = io_uring_wait_cqe(ring, &cqe);
	if (r < 0)
		return r;
	r = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return r;
}

static void uring_op(int family, int type, const char *op, const struct target *t, int v6only)
{
	struct iovec iov = { .iov_base = (void *)payload, .iov_len = sizeof(payload) };
	struct msghdr m = { .msg_name = (void *)&t->ss, .msg_namelen = t->len, .msg_iov = &iov,
			    .msg_iovlen = 1 };
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	int fd, r;

	r = io_uring_queue_init(4, &ring, 0);
	if (r < 0) {
		fprintf(stderr, "sockprobe: io_uring_queue_init: %s\n", strerror(-r));
		exit(1);
	}
	fd = make_socket_proto(family, type, 0, v6only); /* blocking: io_uring waits */
	sqe = io_uring_get_sqe(&ring);
	if (strcmp(op, "uring-connect") == 0)
		io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&t->ss, t->len);
	else
		io_uring_prep_sendmsg(sqe, fd, &m, 0);
	r = uring_one(&ring);
	report_err(r < 0 ? -r : 0);
	close(fd);
	io_uring_queue_exit(&ring);
}

/* ---- ICMP ping sockets, raw sockets ---------------------------------------------------------- */

static void ping_op(int family, const struct target *t, long count)
{
	int proto = family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	int fd = make_socket_proto(family, SOCK_DGRAM, proto, -1);
	unsigned char pkt[8 + 16], reply[256];

	if (ping_connect) {
		struct target c;

		parse_target(family, ping_connect, "0", &c);
		if (connect(fd, (const struct sockaddr *)&c.ss, c.len) < 0) {
			fprintf(stderr, "sockprobe: connect %s: %s\n", ping_connect, strerror(errno));
			exit(1);
		}
	}

	for (long i = 0; i < count; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		memset(pkt, 0xa5, sizeof(pkt));
		pkt[0] = family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
		pkt[1] = 0;
		pkt[2] = pkt[3] = 0; /* checksum: filled in by the kernel */
		pkt[4] = pkt[5] = 0; /* id: the kernel uses the socket's port */
		pkt[6] = (unsigned char)(i >> 8);
		pkt[7] = (unsigned char)i;
		if (sendto(fd, pkt, sizeof(pkt), 0, (const struct sockaddr *)&t->ss, t->len) < 0) {
			result_send(-1);
			cur_pos--;
			continue;
		}
		if (poll(&p, 1, timeout_ms) == 1 && recv(fd, reply, sizeof(reply), 0) > 0)
			result("ok", 1);
		else
			result("ETIMEDOUT", 1);
		cur_pos--;
	}
	cur_pos++;
	close(fd);
}

static void raw_op(int family, const struct target *t, long count)
{
	int fd = make_socket_proto(family, SOCK_RAW, 253, -1);

	for (long i = 0; i < count; i++) {
		result_send(sendto(fd, payload, sizeof(payload), 0, (const struct sockaddr *)&t->ss,
				   t->len));
		cur_pos--;
	}
	cur_pos++;
	close(fd);
}

/* ---- TCP transfers --------------------------------------------------------------------------- */

#define XFER_CONNS_MAX 2

/* The server child: listen on t, accept nconns connections, read each to EOF, write the total to
 * the pipe fd out ("READY\n" first once listening). */
static void xfer_server(const struct target *t, int tfo, int nconns, int out)
{
	struct sockaddr_storage ss = t->ss;
	socklen_t len = t->len;
	int one = 1, qlen = 16, fd;
	long total = 0;
	char buf[65536];

	if (peer_cgroup)
		join_cgroup(peer_cgroup);
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		if (memcmp(&s6->sin6_addr, mapped, 12) == 0) { /* listen on the IPv4 address */
			struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = s6->sin6_port };

			memcpy(&sin.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
			memset(&ss, 0, sizeof(ss));
			memcpy(&ss, &sin, sizeof(sin));
			len = sizeof(sin);
		}
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (tfo && setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0) {
		fprintf(stderr, "sockprobe: xfer server: %s\n", strerror(errno));
		_exit(1);
	}
	if (write(out, "READY\n", 6) != 6)
		_exit(1);
	for (int i = 0; i < nconns; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int c;
		ssize_t n;

		if (poll(&p, 1, 5000) != 1)
			break;
		c = accept(fd, NULL, NULL);
		if (c < 0)
			break;
		while ((n = read(c, buf, sizeof(buf))) > 0)
			total += n;
		close(c);
	}
	dprintf(out, "%ld\n", total);
	_exit(0);
}

static void xfer_op(int family, const struct target *t, long bytes, const char *fastopen,
		    int v6only)
{
	static char buf[1 << 16];
	unsigned long segs = 0, sent = 0, rcvd = 0, syndata = 0;
	int nconns = fastopen ? 2 : 1, pfd[2], status;
	struct timeval tv = { .tv_sec = 5 };
	char line[64];
	FILE *from;
	pid_t pid;

	memset(buf, 'x', sizeof(buf));
	if (pipe(pfd) < 0)
		exit(1);
	pid = fork();
	if (pid < 0)
		exit(1);
	if (pid == 0) {
		close(pfd[0]);
		xfer_server(t, fastopen != NULL, nconns, pfd[1]);
	}
	close(pfd[1]);
	from = fdopen(pfd[0], "r");
	if (!from || !fgets(line, sizeof(line), from) || strcmp(line, "READY\n") != 0) {
		fprintf(stderr, "sockprobe: xfer server did not start\n");
		exit(1);
	}
	for (int i = 0; i < nconns; i++) {
		struct tcp_info ti = {};
		socklen_t tl = sizeof(ti);
		int fd = make_socket_proto(family, SOCK_STREAM, 0, v6only), one = 1, e = 0;
		long left = bytes;
		ssize_t n;

		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (fastopen && strcmp(fastopen, "sendto") == 0) {
			/* The data goes with the SYN once a cookie is known; the first call sends
			 * what fits and the loop below the rest. */
			n = sendto(fd, buf, left < (long)sizeof(buf) ? (size_t)left : sizeof(buf),
				   MSG_FASTOPEN, (const struct sockaddr *)&t->ss, t->len);
			if (n < 0)
				e = errno;
			else
				left -= n;
		} else {
			if (fastopen && setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one,
						   sizeof(one)) < 0)
				e = errno;
			if (!e && connect(fd, (const struct sockaddr *)&t->ss, t->len) < 0)
				e = errno;
		}
		while (!e && left > 0) {
			n = write(fd, buf, left < (long)sizeof(buf) ? (size_t)left : sizeof(buf));
			if (n < 0)
				e = errno;
			else
				left -= n;
		}
		if (!e) {
			(void)shutdown(fd, SHUT_WR);
			while ((n = read(fd, buf, sizeof(buf))) > 0)
				;
			if (n < 0)
				e = errno;
		}
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0) {
			segs += ti.tcpi_segs_out;
			sent += ti.tcpi_bytes_sent;
			syndata |= (ti.tcpi_options & TCPI_OPT_SYN_DATA) != 0;
		}
		report_err(e);
		cur_pos--;
		close(fd);
	}
	cur_pos++;
	if (fgets(line, sizeof(line), from))
		rcvd = strtoul(line, NULL, 10);
	fclose(from);
	(void)waitpid(pid, &status, 0);
	snprintf(line, sizeof(line), "segs=%lu", segs);
	result(line, 1);
	snprintf(line, sizeof(line), "sent=%lu", sent);
	result(line, 1);
	snprintf(line, sizeof(line), "rcvd=%lu", rcvd);
	result(line, 1);
	snprintf(line, sizeof(line), "syndata=%lu", syndata);
	result(line, 1);
}

static void run(int argc, char **argv)
{
	const char *sock, *op, *fastopen = NULL;
	int family, type, v6only = -1, fd, nargs;
	char *args[MAX_MSGS + 2];
	struct target t, t2;

	if (argc < 2)
		usage();
	sock = argv[0];
	op = argv[1];
	if (strlen(sock) < 4 || (sock[strlen(sock) - 1] != '4' && sock[strlen(sock) - 1] != '6'))
		usage();
	family = sock[strlen(sock) - 1] == '4' ? AF_INET : AF_INET6;
	if (strncmp(sock, "tcp", 3) == 0 && strlen(sock) == 4)
		type = SOCK_STREAM;
	else if (strncmp(sock, "udp", 3) == 0 && strlen(sock) == 4)
		type = SOCK_DGRAM;
	else if (strncmp(sock, "icmp", 4) == 0 && strlen(sock) == 5)
		type = -1;
	else if (strncmp(sock, "raw", 3) == 0 && strlen(sock) == 4)
		type = SOCK_RAW;
	else
		usage();

	nargs = 0;
	for (int i = 2; i < argc; i++) {
		if (strncmp(argv[i], "--v6only=", 9) == 0) {
			v6only = atoi(argv[i] + 9) ? 1 : 0;
			continue;
		}
		if (strncmp(argv[i], "--fastopen=", 11) == 0) {
			fastopen = argv[i] + 11;
			if (strcmp(fastopen, "sendto") != 0 && strcmp(fastopen, "connect") != 0)
				usage();
			continue;
		}
		if (nargs == MAX_MSGS + 2)
			usage();
		args[nargs++] = argv[i];
	}

	if (type == -1 && strcmp(op, "ping") == 0 && nargs == 2) {
		parse_target(family, args[0], "0", &t);
		ping_op(family, &t, atol(args[1]));
	} else if (type == SOCK_RAW && strcmp(op, "sendto") == 0 && nargs == 2) {
		parse_target(family, args[0], "0", &t);
		raw_op(family, &t, atol(args[1]));
	} else if (type == -1 || type == SOCK_RAW) {
		usage();
	} else if (type == SOCK_STREAM && strcmp(op, "xfer") == 0 && nargs == 3) {
		parse_target(family, args[0], args[1], &t);
		xfer_op(family, &t, atol(args[2]), fastopen, v6only);
	} else if ((type == SOCK_STREAM && strcmp(op, "uring-connect") == 0 && nargs == 2) ||
		   (type == SOCK_DGRAM && strcmp(op, "uring-sendmsg") == 0 && nargs == 2)) {
		parse_target(family, args[0], args[1], &t);
		uring_op(family, type, op, &t, v6only);
	} else if (strcmp(op, "connect") == 0 && nargs == 2) {
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
		} else if (strcmp(argv[i], "--move-to") == 0 && i + 1 < argc) {
			move_to = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "--scm-from") == 0 && i + 1 < argc) {
			scm_from = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "--peer-cgroup") == 0 && i + 1 < argc) {
			peer_cgroup = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "--ping-connect") == 0 && i + 1 < argc) {
			ping_connect = argv[i + 1];
			i += 2;
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
