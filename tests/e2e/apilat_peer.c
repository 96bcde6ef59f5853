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
 *	"n=N p50=S p99=S p50_sent=S p99_sent=S p50_rx=S p99_rx=S p50_rx_sent=S
 *	p99_rx_sent=S hello=S sent=B received=B rtt_min=S rtt_max=S connects=1"
 *	(seconds, nearest-rank quantiles; p50, p99: from before the request's
 *	send() to its first byte received; *_sent: from send()'s return, which
 *	on a slow machine can be much later, as loopback delivers the request in
 *	the sender's own softirq; *_rx: to the first byte's arrival, the kernel's
 *	own receive timestamp of it (SO_TIMESTAMPING, software) instead of the
 *	read: a machine slow to wake the reader delays only the read; rtt_*: the
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
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
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

static double clock_s(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* What a turn measured of itself, in seconds. */
struct turn_times {
	double latency, latency_sent;       /* to the first byte read: from before the send, from its return */
	double latency_rx, latency_rx_sent; /* the same to the first byte's kernel receive timestamp */
};

/* One recv() with the receive timestamp of what it read (CLOCK_REALTIME; 0 when none came). */
static ssize_t recv_stamped(int fd, char *buf, size_t len, double *rx)
{
	char control[CMSG_SPACE(sizeof(struct scm_timestamping))];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			      .msg_controllen = sizeof(control) };
	struct cmsghdr *c;
	ssize_t r = recvmsg(fd, &msg, 0);

	*rx = 0;
	for (c = r > 0 ? CMSG_FIRSTHDR(&msg) : NULL; c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING) {
			struct scm_timestamping ts;

			memcpy(&ts, CMSG_DATA(c), sizeof(ts));
			*rx = (double)ts.ts[0].tv_sec + (double)ts.ts[0].tv_nsec / 1e9;
		}
	}
	return r;
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
	/*
	 * The clients' receive timestamps: the first socket that asks turns the
	 * kernel's timestamping on (a static key: kernel text patched) and the
	 * last one off. The server asks for the whole run, before any traffic, so
	 * the clients only count up and down: under TCG a text patch racing
	 * packets on another vCPU has crashed a guest (an int3 oops).
	 */
	setsockopt(lfd, SOL_SOCKET, SO_TIMESTAMPING, &(int){ SOF_TIMESTAMPING_RX_SOFTWARE }, sizeof(int));
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
static int turn(int fd, const char *request, size_t want, uint64_t *sent, uint64_t *received,
		struct turn_times *tt)
{
	char line[REQUEST_BYTES], buf[RESPONSE_BYTES];
	size_t got = 0;
	double t0, t_sent, r0, r_sent, rx;
	int n = snprintf(line, sizeof(line), "%s", request);

	memset(line + n, ' ', sizeof(line) - (size_t)n - 1);
	line[sizeof(line) - 1] = '\n';
	t0 = now_s();
	r0 = clock_s(CLOCK_REALTIME);
	if (send_all(fd, line, sizeof(line), sent))
		return -EPIPE;
	r_sent = clock_s(CLOCK_REALTIME);
	t_sent = now_s();
	while (got < want) {
		ssize_t r = recv_stamped(fd, buf, sizeof(buf), &rx);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EPIPE;
		if (!got) {
			double t1 = now_s();

			tt->latency = t1 - t0;
			tt->latency_sent = t1 - t_sent;
			/* no timestamp: the read's time */
			tt->latency_rx = rx ? rx - r0 : tt->latency;
			tt->latency_rx_sent = rx ? rx - r_sent : tt->latency_sent;
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

/* go: after the first turn, write go.ready and wait (idle) until go exists; count from there */
static int wait_for_go(const char *go)
{
	char ready[4096];
	FILE *f;

	snprintf(ready, sizeof(ready), "%s.ready", go);
	f = fopen(ready, "w");
	if (!f)
		return -errno;
	fclose(f);
	while (access(go, F_OK))
		usleep(50000);
	return 0;
}

static int client(const struct peer_addr *a, int n, double delay_ms, const char *go)
{
	static double lat[MAX_REQUESTS], sorted[MAX_REQUESTS], lat_sent[MAX_REQUESTS];
	static double lat_rx[MAX_REQUESTS], lat_rx_sent[MAX_REQUESTS];
	int stamping = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
	uint64_t sent = 0, received = 0;
	double rtt, rtt_min, rtt_max;
	struct turn_times hello = { 0 }, t;
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
	/* the kernel's receive timestamps: without them the *_rx values are the reads' */
	setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &stamping, sizeof(stamping));
	if (turn(fd, "GET 0", RESPONSE_BYTES, &sent, &received, &hello))
		goto broken;
	if (go) {
		/* open before ksight starts: what follows is what an adopted connection counts */
		if (wait_for_go(go)) {
			fprintf(stderr, "apilat_peer: cannot write %s.ready\n", go);
			close(fd);
			return 1;
		}
		sent = received = 0;
	}
	snprintf(request, sizeof(request), "GET %ld", (long)(delay_ms * 1000));
	for (i = 0; i <= n; i++) {
		rtt = srtt_s(fd);
		rtt_min = rtt < rtt_min ? rtt : rtt_min;
		rtt_max = rtt > rtt_max ? rtt : rtt_max;
		if (i == n)
			break;
		if (turn(fd, request, RESPONSE_BYTES, &sent, &received, &t))
			goto broken;
		lat[i] = t.latency;
		lat_sent[i] = t.latency_sent;
		lat_rx[i] = t.latency_rx;
		lat_rx_sent[i] = t.latency_rx_sent;
	}
	close(fd);
	memcpy(sorted, lat, sizeof(lat[0]) * (size_t)n);
	qsort(sorted, (size_t)n, sizeof(sorted[0]), cmp_double);
	qsort(lat_sent, (size_t)n, sizeof(lat_sent[0]), cmp_double);
	qsort(lat_rx, (size_t)n, sizeof(lat_rx[0]), cmp_double);
	qsort(lat_rx_sent, (size_t)n, sizeof(lat_rx_sent[0]), cmp_double);
	printf("n=%d p50=%.9f p99=%.9f p50_sent=%.9f p99_sent=%.9f p50_rx=%.9f p99_rx=%.9f p50_rx_sent=%.9f "
	       "p99_rx_sent=%.9f hello=%.9f sent=%llu received=%llu rtt_min=%.9f rtt_max=%.9f connects=1\n", n,
	       quantile(sorted, n, 0.5), quantile(sorted, n, 0.99), quantile(lat_sent, n, 0.5),
	       quantile(lat_sent, n, 0.99), quantile(lat_rx, n, 0.5), quantile(lat_rx, n, 0.99),
	       quantile(lat_rx_sent, n, 0.5), quantile(lat_rx_sent, n, 0.99), hello.latency,
	       (unsigned long long)sent, (unsigned long long)received, rtt_min, rtt_max);
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
	struct turn_times t;
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
	if (turn(fd, "GET 0", RESPONSE_BYTES, &sent, &received, &t) ||
	    turn(fd, request, (size_t)k * RESPONSE_BYTES, &sent, &received, &t)) {
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
			"       apilat_peer client ADDR PORT N DELAY_MS [COMM [GO_FILE]]\n"
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
	if (!strcmp(argv[1], "client") && argc >= 6 && argc <= 8) {
		set_comm(argc >= 7 ? argv[6] : NULL);
		return client(&a, atoi(argv[4]), atof(argv[5]), argc == 8 ? argv[7] : NULL);
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
