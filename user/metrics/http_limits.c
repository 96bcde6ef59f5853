/*
 * The metrics endpoint's books on its connections: deadlines and room.
 *
 * Slow clients. MHD's connection timeout only measures inactivity, so a
 * client sending a byte every few seconds would hold its connection for
 * ever, and a few of them would fill MHD's connection limit: new connections,
 * the kubelet's probes among them, then wait in the accept queue. So we keep
 * our own books on every connection (MHD's connection notifications):
 *
 *  - a deadline: the request head must be in within header_deadline_ms of
 *    the connection or of the previous answer, the answer out within
 *    send_deadline_ms of the head. One timer thread cuts a connection whose
 *    deadline passes (shutdown() of its socket, which MHD then closes). It
 *    sleeps on a timerfd armed for the earliest deadline and disarmed when
 *    no connection is open, so it wakes only to cut a connection: never
 *    while idle, never for clients that finish in time.
 *  - capacity on the same port rather than a second listener for /healthz
 *    (the DaemonSet's probes and Prometheus both use the metrics port, and a
 *    second port would be a new flag and a manifest change): at most
 *    per_ip_limit connections per client address and conn_limit in all. A
 *    connection beyond either limit makes room by cutting the connection of
 *    that address (or of anyone) that has waited longest for its request
 *    head; a real client sends its head at once, so it is never that one for
 *    long. Only when none is waiting (all are being answered) is the newcomer
 *    refused (per address) or left to MHD's limits, set above ours so that
 *    they stop only what we cannot make room for.
 */
#include "http_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "util.h"

/* Defaults of struct http_limits: a scraper needs one or two connections. */
#define HTTP_HEADER_DEADLINE_MS	5000
#define HTTP_SEND_DEADLINE_MS	30000
#define HTTP_CONN_LIMIT		64
#define HTTP_PER_IP_LIMIT	4

static int64_t ms_to_ns(unsigned int ms)
{
	return (int64_t)ms * 1000000;
}

/*
 * Arm the timer for the earliest deadline of a connection not cut yet, or
 * disarm it (none open). Lock held. A failed timerfd_settime() cannot
 * happen with these arguments; if it did, MHD's inactivity timeout remains.
 */
static void arm_timer(struct http_server *srv)
{
	struct itimerspec its = { 0 };
	struct http_conn *c;
	int64_t next = 0;

	if (srv->stopping)
		next = 1;	/* long past: wake the timer thread now */
	for (c = srv->conns; c && !srv->stopping; c = c->next)
		if (!c->cut && (!next || c->deadline < next))
			next = c->deadline;
	if (next == srv->armed)
		return;
	its.it_value.tv_sec = next / NSEC_PER_SEC;
	its.it_value.tv_nsec = next % NSEC_PER_SEC;
	if (!timerfd_settime(srv->timer_fd, TFD_TIMER_ABSTIME, &its, NULL))
		srv->armed = next;
}

/*
 * Hang up on a connection: reset rather than a graceful close, so that a
 * slow reader's unsent answer is dropped instead of trickling on from an
 * orphaned socket. shutdown() wakes MHD's poll on it; MHD reads EOF and
 * closes the descriptor, which stays valid until its CLOSED notification
 * (which takes the lock we hold). Lock held.
 */
static void cut(struct http_conn *c)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	shutdown(c->fd, SHUT_RDWR);
	c->cut = true;
	c->waiting = false;
}

/* Connections not cut yet; of `addr` only, if not NULL. Lock held. */
static unsigned int count_open(const struct http_server *srv, const struct in6_addr *addr)
{
	const struct http_conn *c;
	unsigned int n = 0;

	for (c = srv->conns; c; c = c->next)
		if (!c->cut && (!addr || !memcmp(&c->addr, addr, sizeof(*addr))))
			n++;
	return n;
}

/* The connection that has waited longest for its request head (of `addr`). Lock held. */
static struct http_conn *longest_waiting(const struct http_server *srv,
					 const struct in6_addr *addr)
{
	struct http_conn *c, *best = NULL;

	for (c = srv->conns; c; c = c->next)
		if (c->waiting && (!addr || !memcmp(&c->addr, addr, sizeof(*addr))) &&
		    (!best || c->waiting_since < best->waiting_since))
			best = c;
	return best;
}

/* Make room for `nc` (not in the books yet), or refuse it. Lock held. */
static void admit(struct http_server *srv, struct http_conn *nc)
{
	struct http_conn *victim;

	if (count_open(srv, &nc->addr) >= srv->limits.per_ip_limit) {
		victim = longest_waiting(srv, &nc->addr);
		if (!victim) {
			/* All of that address's connections are being answered. */
			cut(nc);
			return;
		}
		cut(victim);
	}
	if (count_open(srv, NULL) >= srv->limits.conn_limit) {
		victim = longest_waiting(srv, NULL);
		if (victim)
			cut(victim);
	}
}

/* The client's address, IPv4 as v4-mapped IPv6: one key for both kinds of socket. */
static void client_addr(const struct sockaddr *sa, struct in6_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (!sa)
		return;
	if (sa->sa_family == AF_INET6) {
		*out = ((const struct sockaddr_in6 *)sa)->sin6_addr;
	} else if (sa->sa_family == AF_INET) {
		out->s6_addr[10] = 0xff;
		out->s6_addr[11] = 0xff;
		memcpy(&out->s6_addr[12], &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

static void conn_started(struct http_server *srv, struct MHD_Connection *conn, void **ctx)
{
	const union MHD_ConnectionInfo *fd_info, *addr_info;
	struct http_conn *c;

	fd_info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	addr_info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!fd_info)
		return;		/* cannot be: MHD has just accepted it */
	c = calloc(1, sizeof(*c));
	if (!c) {
		/* Without books it could not be held to a deadline. */
		shutdown(fd_info->connect_fd, SHUT_RDWR);
		return;
	}
	c->fd = fd_info->connect_fd;
	client_addr(addr_info ? addr_info->client_addr : NULL, &c->addr);
	c->waiting_since = clock_ns(CLOCK_MONOTONIC);
	c->deadline = c->waiting_since + ms_to_ns(srv->limits.header_deadline_ms);
	c->waiting = true;

	pthread_mutex_lock(&srv->lock);
	admit(srv, c);
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	arm_timer(srv);
	pthread_mutex_unlock(&srv->lock);
	*ctx = c;
}

static void conn_closed(struct http_server *srv, struct http_conn *c)
{
	pthread_mutex_lock(&srv->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	arm_timer(srv);
	pthread_mutex_unlock(&srv->lock);
	free(c);
}

/* MHD thread: a connection accepted, or about to be closed. */
void on_connection(void *cls, struct MHD_Connection *conn, void **ctx,
		   enum MHD_ConnectionNotificationCode what)
{
	struct http_server *srv = cls;

	if (what == MHD_CONNECTION_NOTIFY_STARTED)
		conn_started(srv, conn, ctx);
	else if (what == MHD_CONNECTION_NOTIFY_CLOSED && *ctx)
		conn_closed(srv, *ctx);
}

static struct http_conn *conn_books(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info;

	info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return info ? info->socket_context : NULL;
}

/* Switch a connection's deadline: its head is in (answering) or it waits for the next. */
void set_phase(struct http_server *srv, struct MHD_Connection *conn, bool waiting)
{
	struct http_conn *c = conn_books(conn);
	int64_t now = clock_ns(CLOCK_MONOTONIC);

	if (!c)
		return;
	pthread_mutex_lock(&srv->lock);
	if (!c->cut) {
		c->waiting = waiting;
		c->waiting_since = now;
		c->deadline = now + ms_to_ns(waiting ? srv->limits.header_deadline_ms :
						       srv->limits.send_deadline_ms);
		arm_timer(srv);
	}
	pthread_mutex_unlock(&srv->lock);
}

/*
 * MHD thread: an answer is out (or the request is abandoned). On a kept-alive
 * connection the wait for the next head starts now.
 */
void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
		  enum MHD_RequestTerminationCode why)
{
	if (why == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		set_phase(cls, conn, true);
}

/* The timer thread: wakes when the earliest deadline passes, cuts what is due. */
static void *timer_main(void *arg)
{
	struct http_server *srv = arg;
	struct http_conn *c;
	uint64_t expirations;
	int64_t now;

	for (;;) {
		if (read(srv->timer_fd, &expirations, sizeof(expirations)) < 0 &&
		    errno != EINTR && errno != EAGAIN)
			break;
		now = clock_ns(CLOCK_MONOTONIC);
		pthread_mutex_lock(&srv->lock);
		if (srv->stopping) {
			pthread_mutex_unlock(&srv->lock);
			break;
		}
		srv->armed = 0;		/* fired: disarmed */
		for (c = srv->conns; c; c = c->next)
			if (!c->cut && c->deadline <= now)
				cut(c);
		arm_timer(srv);
		pthread_mutex_unlock(&srv->lock);
	}
	return NULL;
}

int timer_start(struct http_server *srv)
{
	int ret;

	srv->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (srv->timer_fd < 0)
		return -errno;
	ret = pthread_mutex_init(&srv->lock, NULL);
	if (ret) {
		close(srv->timer_fd);
		return -ret;
	}
	ret = pthread_create(&srv->timer_thread, NULL, timer_main, srv);
	if (ret) {
		pthread_mutex_destroy(&srv->lock);
		close(srv->timer_fd);
		return -ret;
	}
	pthread_setname_np(srv->timer_thread, "http-deadline");
	return 0;
}

/* After MHD stopped: it has closed every connection, so the books are empty. */
void timer_stop(struct http_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	arm_timer(srv);
	pthread_mutex_unlock(&srv->lock);
	pthread_join(srv->timer_thread, NULL);
	pthread_mutex_destroy(&srv->lock);
	close(srv->timer_fd);
}

void set_limits(struct http_limits *out, const struct http_limits *in)
{
	static const struct http_limits none;

	if (!in)
		in = &none;
	out->header_deadline_ms = in->header_deadline_ms ?: HTTP_HEADER_DEADLINE_MS;
	out->send_deadline_ms = in->send_deadline_ms ?: HTTP_SEND_DEADLINE_MS;
	out->conn_limit = in->conn_limit ?: HTTP_CONN_LIMIT;
	out->per_ip_limit = in->per_ip_limit ?: HTTP_PER_IP_LIMIT;
}
