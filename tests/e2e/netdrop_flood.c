/*
 * Send COUNT one-byte UDP datagrams to ADDR:PORT as fast as one thread can,
 * for drop storms (netdrop e2e) and the per-drop cost benchmark; prints the
 * nanoseconds the sends took. Errors of a send (EPERM from an output-hook
 * drop, ECONNREFUSED from an earlier ICMP error, ENOBUFS) do not stop it:
 * the datagram was handed to the kernel, which is what is measured.
 *
 * usage: netdrop_flood ADDR PORT COUNT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;
	long count, i;
	int64_t t0, t1;
	int fd, port;

	if (argc != 4) {
		fprintf(stderr, "usage: netdrop_flood ADDR PORT COUNT\n");
		return 2;
	}
	port = atoi(argv[2]);
	count = atol(argv[3]);
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, argv[1], &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, argv[1], &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in6);
	} else {
		fprintf(stderr, "netdrop_flood: bad address %s\n", argv[1]);
		return 2;
	}
	fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("netdrop_flood: socket");
		return 1;
	}
	t0 = now_ns();
	for (i = 0; i < count; i++) {
		while (sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, len) < 0 && errno == ENOBUFS)
			; /* the device queue is full: this datagram was not handed over yet */
	}
	t1 = now_ns();
	printf("%" PRId64 "\n", t1 - t0);
	close(fd);
	return 0;
}
