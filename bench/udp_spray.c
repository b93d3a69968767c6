// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * udp_spray - send COUNT UDP datagrams from one unconnected socket to random destinations, so the
 * cgroup/sendmsg4 (or sendmsg6) hook runs once per datagram. Meant to run inside a private network
 * namespace with only lo up: every sendto() then fails with ENETUNREACH (allowed by the hook, no
 * route) or EPERM (denied), and no packet leaves.
 *
 * Usage: udp_spray 4|6 COUNT [SEED]
 *   4: uniform random IPv4 addresses in 1.0.0.0 - 223.255.255.255 (unicast, not 127/8)
 *   6: uniform random IPv6 addresses in 2000::/3 (global unicast)
 * Prints "sent=N eperm=N enetunreach=N other=N".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* splitmix64 (Steele, Lea, Flood: "Fast splittable pseudorandom number generators", 2014). */
static uint64_t next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int main(int argc, char **argv)
{
	unsigned long n, ok = 0, eperm = 0, unreach = 0, other = 0;
	uint64_t seed = 1;
	int fam, fd;
	char byte = 0;

	if (argc < 3 || (strcmp(argv[1], "4") && strcmp(argv[1], "6"))) {
		fprintf(stderr, "usage: udp_spray 4|6 COUNT [SEED]\n");
		return 2;
	}
	fam = argv[1][0] == '4' ? AF_INET : AF_INET6;
	n = strtoul(argv[2], NULL, 10);
	if (argc > 3)
		seed = strtoull(argv[3], NULL, 10);
	fd = socket(fam, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	for (unsigned long i = 0; i < n; i++) {
		struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(53) };
		struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(53) };
		uint64_t r = next(&seed);
		ssize_t w;

		if (fam == AF_INET) {
			uint32_t a = (uint32_t)(r % (0xe0000000u - 0x01000000u)) + 0x01000000u;

			if ((a >> 24) == 127)
				a ^= 0x01000000u;
			s4.sin_addr.s_addr = htonl(a);
			w = sendto(fd, &byte, 1, 0, (struct sockaddr *)&s4, sizeof(s4));
		} else {
			uint64_t hi = (r & 0x1fffffffffffffffULL) | 0x2000000000000000ULL, lo = next(&seed);

			for (int k = 0; k < 8; k++) {
				s6.sin6_addr.s6_addr[k] = (uint8_t)(hi >> (56 - 8 * k));
				s6.sin6_addr.s6_addr[8 + k] = (uint8_t)(lo >> (56 - 8 * k));
			}
			w = sendto(fd, &byte, 1, 0, (struct sockaddr *)&s6, sizeof(s6));
		}
		if (w >= 0)
			ok++;
		else if (errno == EPERM)
			eperm++;
		else if (errno == ENETUNREACH)
			unreach++;
		else
			other++;
	}
	printf("sent=%lu eperm=%lu enetunreach=%lu other=%lu\n", ok, eperm, unreach, other);
	close(fd);
	return 0;
}
