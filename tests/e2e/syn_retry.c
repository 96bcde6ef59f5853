/*
 * TCP retransmits without a firewall (the 6.1 guest has none): a listener on
 * 127.0.0.1:PORT with a backlog of 0 that never accepts, one connection that
 * fills its accept queue, and a second whose SYN the listener then drops
 * (ListenOverflows), so the client retransmits its SYN (1 s, then 2 s later,
 * ...) until it is closed after SECONDS. Every SYN retransmit is one
 * TcpRetransSegs of the namespace. Prints "established" (the first
 * connection) and the second's state at the end: "pending" (still in SYN_SENT),
 * "connected" or "error ...".
 *
 * usage: syn_retry PORT SECONDS
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		perror("syn_retry: socket");
	return fd;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	int lfd, c1, c2;

	if (argc != 3) {
		fprintf(stderr, "usage: syn_retry PORT SECONDS\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	lfd = tcp_socket();
	if (lfd < 0)
		return 1;
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 0)) {
		perror("syn_retry: bind/listen");
		return 1;
	}
	c1 = tcp_socket();
	if (c1 < 0)
		return 1;
	if (connect(c1, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("syn_retry: first connect");
		return 1;
	}
	printf("established\n");
	fflush(stdout);
	/* the first's ACK is in the accept queue before the second's SYN arrives */
	usleep(200000);
	c2 = tcp_socket();
	if (c2 < 0)
		return 1;
	fcntl(c2, F_SETFL, O_NONBLOCK);
	if (connect(c2, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		perror("syn_retry: second connect");
		return 1;
	}
	sleep((unsigned int)atoi(argv[2]));
	/* still in SYN_SENT: connecting again says EALREADY; established: EISCONN */
	if (!connect(c2, (struct sockaddr *)&sa, sizeof(sa)) || errno == EISCONN)
		printf("connected\n");
	else if (errno == EALREADY)
		printf("pending\n");
	else
		printf("error %s\n", strerror(errno));
	close(c2);
	close(c1);
	close(lfd);
	return 0;
}
