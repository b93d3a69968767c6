// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * sock_rate - socket workloads of the benchmark suite (bench/run.sh); meant to run inside a private
 * network namespace with only lo up.
 *
 *   sock_rate tcp ADDR SECONDS
 *       A listener on ADDR (IPv4 or IPv6, an address of lo), then for SECONDS: connect() a new
 *       socket to it, accept(), close both (the client with SO_LINGER 0: a RST, no TIME_WAIT, so
 *       the ephemeral ports never run out). Prints "tcp N_PER_S N".
 *   sock_rate udp ADDR SECONDS
 *       A bound receiver on ADDR, then sendto() of 1-byte datagrams from one unconnected socket to
 *       it for SECONDS (the receive queue fills; later datagrams are dropped by the receiver, the
 *       sender's path is complete). Prints "udp N_PER_S N".
 *   sock_rate spray FILE
 *       For each line "CC ADDR" of FILE: one UDP sendto() and one non-blocking TCP connect() to
 *       ADDR port 443 (both fail with ENETUNREACH or EPERM in a namespace with only lo: the hooks
 *       ran first). Prints "spray N".
 *   sock_rate events FILE COUNT
 *       COUNT UDP sendto() calls round-robin over the addresses of FILE, one socket. Prints
 *       "events COUNT SECONDS".
 * Exit status 0, 1 on a setup error, 2 on usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Parse ADDR with port into ss; returns its length or 0. */
static socklen_t parse(const char *addr, int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		return sizeof(*s4);
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		return sizeof(*s6);
	}
	return 0;
}

/* A socket of type bound to addr (port 0), its bound address in *ret. */
static int bound(int type, const char *addr, struct sockaddr_storage *ret, socklen_t *ret_len)
{
	socklen_t len = parse(addr, 0, ret);
	int fd;

	if (!len)
		return -1;
	fd = socket(ret->ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)ret, len) < 0 ||
	    getsockname(fd, (struct sockaddr *)ret, &len) < 0) {
		perror("sock_rate: bind");
		return -1;
	}
	*ret_len = len;
	return fd;
}

static int run_tcp(const char *addr, double secs)
{
	struct sockaddr_storage ss;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	socklen_t len;
	unsigned long n = 0;
	double t0, t;
	int l = bound(SOCK_STREAM, addr, &ss, &len);

	if (l < 0 || listen(l, 128) < 0)
		return 1;
	t0 = now_s();
	do {
		for (int k = 0; k < 64; k++) {
			int c = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), a;

			if (c < 0 || connect(c, (struct sockaddr *)&ss, len) < 0) {
				perror("sock_rate: connect");
				return 1;
			}
			a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
			if (a < 0) {
				perror("sock_rate: accept");
				return 1;
			}
			setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(c);
			close(a);
			n++;
		}
		t = now_s() - t0;
	} while (t < secs);
	printf("tcp %.0f %lu\n", n / t, n);
	return 0;
}

static int run_udp(const char *addr, double secs)
{
	struct sockaddr_storage ss;
	socklen_t len;
	unsigned long n = 0;
	double t0, t;
	char byte = 0;
	int rcvbuf = 4096, s, r = bound(SOCK_DGRAM, addr, &ss, &len);

	if (r < 0)
		return 1;
	setsockopt(r, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	s = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return 1;
	t0 = now_s();
	do {
		for (int k = 0; k < 256; k++) {
			if (sendto(s, &byte, 1, 0, (struct sockaddr *)&ss, len) < 0 &&
			    errno != ENOBUFS) {
				perror("sock_rate: sendto");
				return 1;
			}
			n++;
		}
		t = now_s() - t0;
	} while (t < secs);
	printf("udp %.0f %lu\n", n / t, n);
	return 0;
}

/* Addresses of FILE ("CC ADDR" lines). */
static int read_addrs(const char *path, struct sockaddr_storage **ret, socklen_t **ret_len,
		      size_t *ret_n)
{
	struct sockaddr_storage *a = NULL;
	socklen_t *l = NULL;
	size_t n = 0, cap = 0;
	char cc[8], addr[64];
	FILE *f = fopen(path, "re");

	if (!f) {
		perror(path);
		return -1;
	}
	while (fscanf(f, "%7s %63s", cc, addr) == 2) {
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			a = realloc(a, cap * sizeof(*a));
			l = realloc(l, cap * sizeof(*l));
			if (!a || !l) {
				fclose(f);
				return -1;
			}
		}
		l[n] = parse(addr, 443, &a[n]);
		if (l[n])
			n++;
	}
	fclose(f);
	*ret = a;
	*ret_len = l;
	*ret_n = n;
	return n ? 0 : -1;
}

static int run_spray(const char *path)
{
	struct sockaddr_storage *a;
	socklen_t *l;
	size_t n;
	char byte = 0;

	if (read_addrs(path, &a, &l, &n) < 0)
		return 1;
	for (size_t i = 0; i < n; i++) {
		int u = socket(a[i].ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		int t = socket(a[i].ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

		if (u < 0 || t < 0)
			return 1;
		(void)!sendto(u, &byte, 1, 0, (struct sockaddr *)&a[i], l[i]);
		(void)!connect(t, (struct sockaddr *)&a[i], l[i]);
		close(u);
		close(t);
	}
	printf("spray %zu\n", n);
	free(a);
	free(l);
	return 0;
}

static int run_events(const char *path, unsigned long count)
{
	struct sockaddr_storage *a;
	socklen_t *l;
	size_t n;
	char byte = 0;
	double t0;
	int s;

	if (read_addrs(path, &a, &l, &n) < 0)
		return 1;
	s = socket(a[0].ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return 1;
	t0 = now_s();
	for (unsigned long i = 0; i < count; i++)
		(void)!sendto(s, &byte, 1, 0, (struct sockaddr *)&a[i % n], l[i % n]);
	printf("events %lu %.3f\n", count, now_s() - t0);
	free(a);
	free(l);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "tcp"))
		return run_tcp(argv[2], atof(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "udp"))
		return run_udp(argv[2], atof(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "spray"))
		return run_spray(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "events"))
		return run_events(argv[2], strtoul(argv[3], NULL, 10));
	fprintf(stderr, "usage: sock_rate tcp|udp ADDR SECONDS | spray FILE | events FILE COUNT\n");
	return 2;
}
