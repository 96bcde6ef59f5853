/*
 * apilat's peers in plain TCP, for a guest without python: an "API server"
 * that answers each request after the delay the request asks for, and a
 * client that measures its own request -> first response byte latencies on
 * one kept-alive connection (CLOCK_MONOTONIC).
 *
 *   apilat_peer server ADDR PORT [READY_FILE]
 *	one process per connection. A request is one line: "GET US" answers
 *	RESPONSE_BYTES after US microseconds; "WATCH K MS" answers K messages
 *	of RESPONSE_BYTES, MS milliseconds apart, with no request in between.
 *   apilat_peer client ADDR PORT N DELAY_MS [COMM]
 *	one connection; a first turn (a request with no delay: the turn apilat
 *	takes for a TLS handshake), then N requests of REQUEST_BYTES, each
 *	read whole before the next. Prints one line:
 *	"n=N p50=S p99=S p50_sent=S p99_sent=S hello=S sent=B received=B
 *	rtt_min=S rtt_max=S connects=1" (seconds, nearest-rank quantiles; p50,
 *	p99: from before the request's send() to its first byte received;
 *	*_sent: from send()'s return, which on a slow machine can be much later,
 *	as loopback delivers the request in the sender's own softirq; rtt_*: the
 *	socket's own smoothed RTT, TCP_INFO, after the connect and each answer),
 *	then "latencies=S,S,..." (from before the send).
 *   apilat_peer watch ADDR PORT K [COMM]
 *	the first turn, then one WATCH request: K messages pushed 100 ms apart,
 *	never another send. Prints "events=K sent=B received=B connects=1".
 *   apilat_peer connect ADDR PORT [COMM]
 *	prints "refused" when the connect fails with ECONNREFUSED, else what
 *	happened; exits 0 only for the refusal.
 * ADDR is numeric: 127.0.0.1 or ::1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_BYTES 300
#define RESPONSE_BYTES 1000
#define WATCH_INTERVAL_MS 100
#define MAX_REQUESTS 10000

struct peer_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

static int parse_addr(const char *host, const char *port, struct peer_addr *a)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
	int p = atoi(port);

	memset(a, 0, sizeof(*a));
	if (p <= 0 || p > 65535)
		return -EINVAL;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)p);
		a->len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)p);
		a->len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_us(long us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };

	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

static int send_all(int fd, const char *buf, size_t len, uint64_t *sent)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
		if (sent)
			*sent += (uint64_t)n;
	}
	return 0;
}

/* ---- the server ---- */

static int answer(int fd, const char *line)
{
	static char msg[RESPONSE_BYTES];
	long a = 0, b = 0;
	int i;

	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\n';
	if (sscanf(line, "GET %ld", &a) == 1) {
		sleep_us(a);
		return send_all(fd, msg, sizeof(msg), NULL);
	}
	if (sscanf(line, "WATCH %ld %ld", &a, &b) == 2) {
		for (i = 0; i < a; i++) {
			if (i)
				sleep_us(b * 1000);
			if (send_all(fd, msg, sizeof(msg), NULL))
				return -EPIPE;
		}
		return 0;
	}
	return -EINVAL;
}

/* Requests are lines; one may come in pieces, or several in one read. */
static void serve(int fd)
{
	char buf[4 * REQUEST_BYTES];
	size_t have = 0;
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (;;) {
		char *nl;
		ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		have += (size_t)n;
		buf[have] = '\0';
		while ((nl = memchr(buf, '\n', have))) {
			*nl = '\0';
			if (answer(fd, buf))
				return;
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have);
		}
		if (have == sizeof(buf) - 1)
			return; /* a line longer than any request */
	}
}

static int server(const struct peer_addr *a, const char *ready)
{
	int lfd = socket(a->ss.ss_family, SOCK_STREAM, 0), one = 1;
	FILE *f;

	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (const struct sockaddr *)&a->ss, a->len) || listen(lfd, 64)) {
		perror("apilat_peer: server: socket/bind/listen");
		return 1;
	}
	signal(SIGCHLD, SIG_IGN); /* no zombies: the connections' processes are reaped by the kernel */
	if (ready) {
		f = fopen(ready, "w");
		if (!f)
			return 1;
		fputs("ready\n", f);
		fclose(f);
	}
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("apilat_peer: accept");
			return 1;
		}
		if (fork() == 0) {
			close(lfd);
			serve(fd);
			_exit(0);
		}
		close(fd);
	}
}

/* ---- the clients ---- */

static void set_comm(const char *comm)
{
	if (comm)
		prctl(PR_SET_NAME, comm, 0, 0, 0);
}

static int connect_to(const struct peer_addr *a)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/*
 * One request (a line padded to REQUEST_BYTES), then want bytes of answer: its
 * time to the first byte from before the send and from the send's return.
 */
static int turn(int fd, const char *request, size_t want, uint64_t *sent, uint64_t *received, double *latency,
		double *latency_sent)
{
	char line[REQUEST_BYTES], buf[RESPONSE_BYTES];
	size_t got = 0;
	double t0, t_sent;
	int n = snprintf(line, sizeof(line), "%s", request);

	memset(line + n, ' ', sizeof(line) - (size_t)n - 1);
	line[sizeof(line) - 1] = '\n';
	t0 = now_s();
	if (send_all(fd, line, sizeof(line), sent))
		return -EPIPE;
	t_sent = now_s();
	while (got < want) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EPIPE;
		if (!got) {
			double t1 = now_s();

			*latency = t1 - t0;
			*latency_sent = t1 - t_sent;
		}
		got += (size_t)r;
		*received += (uint64_t)r;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The nearest-rank quantile: the smallest value with at least q of them at or below it. */
static double quantile(const double *sorted, int n, double q)
{
	int rank = (int)(q * n + 0.999999);

	if (rank < 1)
		rank = 1;
	return sorted[rank > n ? n - 1 : rank - 1];
}

static double srtt_s(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return 0;
	return ti.tcpi_rtt / 1e6;
}

static int client(const struct peer_addr *a, int n, double delay_ms)
{
	static double lat[MAX_REQUESTS], sorted[MAX_REQUESTS], lat_sent[MAX_REQUESTS];
	uint64_t sent = 0, received = 0;
	double hello = 0, hello_sent, rtt, rtt_min, rtt_max;
	char request[64];
	int fd, i;

	if (n < 1 || n > MAX_REQUESTS)
		return 2;
	fd = connect_to(a);
	if (fd < 0) {
		fprintf(stderr, "apilat_peer: connect: %s\n", strerror(-fd));
		return 1;
	}
	rtt_min = rtt_max = srtt_s(fd);
	if (turn(fd, "GET 0", RESPONSE_BYTES, &sent, &received, &hello, &hello_sent))
		goto broken;
	snprintf(request, sizeof(request), "GET %ld", (long)(delay_ms * 1000));
	for (i = 0; i <= n; i++) {
		rtt = srtt_s(fd);
		rtt_min = rtt < rtt_min ? rtt : rtt_min;
		rtt_max = rtt > rtt_max ? rtt : rtt_max;
		if (i < n && turn(fd, request, RESPONSE_BYTES, &sent, &received, &lat[i], &lat_sent[i]))
			goto broken;
	}
	close(fd);
	memcpy(sorted, lat, sizeof(lat[0]) * (size_t)n);
	qsort(sorted, (size_t)n, sizeof(sorted[0]), cmp_double);
	qsort(lat_sent, (size_t)n, sizeof(lat_sent[0]), cmp_double);
	printf("n=%d p50=%.9f p99=%.9f p50_sent=%.9f p99_sent=%.9f hello=%.9f sent=%llu received=%llu "
	       "rtt_min=%.9f rtt_max=%.9f connects=1\n", n, quantile(sorted, n, 0.5), quantile(sorted, n, 0.99),
	       quantile(lat_sent, n, 0.5), quantile(lat_sent, n, 0.99), hello, (unsigned long long)sent,
	       (unsigned long long)received, rtt_min, rtt_max);
	printf("latencies=");
	for (i = 0; i < n; i++)
		printf("%s%.6f", i ? "," : "", lat[i]);
	printf("\n");
	return 0;
broken:
	fprintf(stderr, "apilat_peer: the server closed the connection\n");
	close(fd);
	return 1;
}

static int watch(const struct peer_addr *a, int k)
{
	uint64_t sent = 0, received = 0;
	char request[64];
	double t, t_sent;
	int fd;

	if (k < 1)
		return 2;
	fd = connect_to(a);
	if (fd < 0) {
		fprintf(stderr, "apilat_peer: connect: %s\n", strerror(-fd));
		return 1;
	}
	snprintf(request, sizeof(request), "WATCH %d %d", k, WATCH_INTERVAL_MS);
	/* the first turn, then the watch: all K messages read, nothing sent in between */
	if (turn(fd, "GET 0", RESPONSE_BYTES, &sent, &received, &t, &t_sent) ||
	    turn(fd, request, (size_t)k * RESPONSE_BYTES, &sent, &received, &t, &t_sent)) {
		fprintf(stderr, "apilat_peer: the server closed the connection\n");
		close(fd);
		return 1;
	}
	close(fd);
	printf("events=%d sent=%llu received=%llu connects=1\n", k, (unsigned long long)sent,
	       (unsigned long long)received);
	return 0;
}

static int refused(const struct peer_addr *a)
{
	int fd = connect_to(a);

	if (fd == -ECONNREFUSED) {
		printf("refused\n");
		return 0;
	}
	if (fd >= 0) {
		printf("connected\n");
		close(fd);
	} else {
		printf("error %s\n", strerror(-fd));
	}
	return 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: apilat_peer server ADDR PORT [READY_FILE]\n"
			"       apilat_peer client ADDR PORT N DELAY_MS [COMM]\n"
			"       apilat_peer watch ADDR PORT K [COMM]\n"
			"       apilat_peer connect ADDR PORT [COMM]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct peer_addr a;

	if (argc < 4 || parse_addr(argv[2], argv[3], &a))
		return usage();
	if (!strcmp(argv[1], "server") && argc <= 5)
		return server(&a, argc == 5 ? argv[4] : NULL);
	if (!strcmp(argv[1], "client") && (argc == 6 || argc == 7)) {
		set_comm(argc == 7 ? argv[6] : NULL);
		return client(&a, atoi(argv[4]), atof(argv[5]));
	}
	if (!strcmp(argv[1], "watch") && (argc == 5 || argc == 6)) {
		set_comm(argc == 6 ? argv[5] : NULL);
		return watch(&a, atoi(argv[4]));
	}
	if (!strcmp(argv[1], "connect") && (argc == 4 || argc == 5)) {
		set_comm(argc == 5 ? argv[4] : NULL);
		return refused(&a);
	}
	return usage();
}
