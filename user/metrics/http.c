/*
 * The metrics HTTP endpoint on libmicrohttpd.
 *
 * We bind the listening socket ourselves and hand it to MHD: MHD only says
 * "failed to start" when its own bind fails, and an operator needs to know
 * whether the port is taken, privileged or not on this host.
 *
 * We never need a request body: a request that announces one is refused as
 * soon as its headers are in, before MHD reads any of it, and the connection
 * is closed after the answer. Nothing of an upload is ever buffered.
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
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <microhttpd.h>

#include "metrics.h"
#include "log.h"
#include "strbuf.h"
#include "util.h"

/* Defaults of struct http_limits: a scraper needs one or two connections. */
#define HTTP_HEADER_DEADLINE_MS	5000
#define HTTP_SEND_DEADLINE_MS	30000
#define HTTP_CONN_LIMIT		64
#define HTTP_PER_IP_LIMIT	4
/*
 * MHD's own limits, above ours: room for the connections we cut and MHD has
 * not closed yet (it accepts up to 10 at a time before it reads any).
 */
#define HTTP_MHD_SPARE		32
/* Inactivity, under the deadlines: a client that stops reading goes after 10 s. */
#define HTTP_TIMEOUT_S		10
#define HTTP_CONN_MEMORY	(64 * 1024)
/*
 * Connections beyond HTTP_CONN_LIMIT wait in the kernel's accept queue, not
 * in our memory; a scraper needs one or two.
 */
#define HTTP_BACKLOG		128
/* A host name may resolve to many addresses; we bind the first that works. */
#define HTTP_MAX_ADDRS		16

#define METRICS_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"
#define TEXT_CONTENT_TYPE	"text/plain; charset=utf-8"
#define HTML_CONTENT_TYPE	"text/html; charset=utf-8"

static const char root_page[] =
	"<!DOCTYPE html>\n"
	"<html><head><title>ksight</title></head>\n"
	"<body><h1>ksight</h1>\n"
	"<p><a href=\"/metrics\">Metrics</a></p>\n"
	"<p><a href=\"/healthz\">Health</a></p>\n"
	"</body></html>\n";

/* Our books on one connection of MHD's: its socket context. */
struct http_conn {
	struct http_conn *prev, *next;
	int fd;			/* MHD's; valid until the CLOSED notification */
	struct in6_addr addr;	/* the client's (IPv4 v4-mapped) */
	int64_t waiting_since;	/* CLOCK_MONOTONIC ns: start of the wait for the head */
	int64_t deadline;	/* CLOCK_MONOTONIC ns */
	bool waiting;		/* for its request head, so it may make room */
	bool cut;		/* shut down by us; MHD will close it */
};

struct http_server {
	struct MHD_Daemon *daemon;
	struct metrics_registry *reg;
	int port;
	int ready;		/* __atomic: set by the caller, read by the MHD thread */
	struct http_limits limits;
	/*
	 * The books, shared by the MHD thread (notifications, requests) and
	 * the timer thread: conns, armed, stopping.
	 */
	pthread_mutex_t lock;
	struct http_conn *conns;
	int timer_fd;
	int64_t armed;		/* the timer's expiry; 0: disarmed */
	bool stopping;
	pthread_t timer_thread;
	/*
	 * MHD's own message for a failed start: kept only from the thread in
	 * http_server_start(), so the MHD thread never touches it.
	 */
	pthread_t starter;
	int capture_log;
	char start_log[160];
	/* between http_server_bind() and http_server_serve(): the socket, the daemon's afterwards */
	int listen_fd;
	struct stat listen_st;
	char listen[160];
};

struct listen_spec {
	char host[NI_MAXHOST];	/* "" for all addresses */
	char port[6];
	int bracketed;		/* "[v6]:PORT": must be an IPv6 literal */
};

/* strerror() starts a capital letter; ours go mid-sentence. */
static void errno_text(int e, char *buf, size_t cap)
{
	const char *s = strerror_r(e, buf, cap);

	if (s != buf)
		snprintf(buf, cap, "%s", s);
	if (isupper((unsigned char)buf[0]) && islower((unsigned char)buf[1]))
		buf[0] = (char)tolower((unsigned char)buf[0]);
}

/* What to do about the usual bind failures, for the operator reading the log. */
static const char *bind_hint(int e)
{
	switch (e) {
	case EADDRINUSE:
		return " (another ksight or exporter is running? pick another port with --listen)";
	case EACCES:
		return " (ports below 1024 need root or CAP_NET_BIND_SERVICE; pick another port with --listen)";
	case EADDRNOTAVAIL:
		return " (no interface of this host has that address)";
	case EAFNOSUPPORT:
		return " (IPv6 is disabled on this host?)";
	default:
		return "";
	}
}

static int parse_port(const char *listen, const char *s, char *out, size_t outlen,
		      char *err, size_t errlen)
{
	unsigned long v = 0;
	const char *p;

	if (!*s) {
		set_error_text(err, errlen,
			"invalid --listen address '%s': missing port, expected ADDR:PORT",
			listen);
		return -EINVAL;
	}
	for (p = s; *p; p++) {
		if (!isdigit((unsigned char)*p)) {
			set_error_text(err, errlen,
				"invalid --listen address '%s': port '%s' is not a number",
				listen, s);
			return -EINVAL;
		}
		/* Stop accumulating past the limit so long inputs cannot wrap. */
		if (v <= 65535)
			v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535) {
		set_error_text(err, errlen,
			"invalid --listen address '%s': port %s is out of range (0-65535)",
			listen, s);
		return -EINVAL;
	}
	snprintf(out, outlen, "%lu", v);
	return 0;
}

static int parse_listen(const char *listen, struct listen_spec *ls, char *err, size_t errlen)
{
	const char *host, *colon, *end;
	size_t hlen;

	memset(ls, 0, sizeof(*ls));
	if (!listen || !*listen) {
		set_error_text(err, errlen,
			"invalid --listen address '': expected ADDR:PORT, [IPv6]:PORT or :PORT");
		return -EINVAL;
	}
	if (listen[0] == '[') {
		host = listen + 1;
		end = strchr(host, ']');
		if (!end) {
			set_error_text(err, errlen,
				"invalid --listen address '%s': missing ']' after the IPv6 address",
				listen);
			return -EINVAL;
		}
		if (end[1] != ':') {
			set_error_text(err, errlen,
				"invalid --listen address '%s': expected [IPv6]:PORT", listen);
			return -EINVAL;
		}
		colon = end + 1;
		ls->bracketed = 1;
	} else {
		host = listen;
		colon = strrchr(listen, ':');
		if (!colon) {
			set_error_text(err, errlen,
				"invalid --listen address '%s': expected ADDR:PORT, [IPv6]:PORT or :PORT",
				listen);
			return -EINVAL;
		}
		end = colon;
		if (memchr(host, ':', (size_t)(end - host))) {
			set_error_text(err, errlen,
				"invalid --listen address '%s': put an IPv6 address in brackets, e.g. [::1]:9090",
				listen);
			return -EINVAL;
		}
	}
	hlen = (size_t)(end - host);
	if (ls->bracketed && !hlen) {
		set_error_text(err, errlen, "invalid --listen address '%s': empty IPv6 address",
			listen);
		return -EINVAL;
	}
	if (hlen >= sizeof(ls->host)) {
		set_error_text(err, errlen, "invalid --listen address '%.64s...': host name too long",
			listen);
		return -EINVAL;
	}
	memcpy(ls->host, host, hlen);
	ls->host[hlen] = '\0';
	return parse_port(listen, colon + 1, ls->port, sizeof(ls->port), err, errlen);
}

struct listen_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* ":PORT": IPv6 any with IPv4 mapped in, or IPv4 any where IPv6 is absent. */
static int all_addrs(const char *port, struct listen_addr *addrs)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addrs[0].ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&addrs[1].ss;
	uint16_t p = htons((uint16_t)atoi(port));

	memset(addrs, 0, 2 * sizeof(*addrs));
	in6->sin6_family = AF_INET6;
	in6->sin6_addr = in6addr_any;
	in6->sin6_port = p;
	addrs[0].len = sizeof(*in6);
	in4->sin_family = AF_INET;
	in4->sin_addr.s_addr = htonl(INADDR_ANY);
	in4->sin_port = p;
	addrs[1].len = sizeof(*in4);
	return 2;
}

static int resolve(const char *listen, const struct listen_spec *ls,
		   struct listen_addr *addrs, char *err, size_t errlen)
{
	struct addrinfo hints = { 0 }, *res, *ai;
	int n = 0, rc;

	hints.ai_family = ls->bracketed ? AF_INET6 : AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if (ls->bracketed)
		hints.ai_flags |= AI_NUMERICHOST;
	rc = getaddrinfo(ls->host, ls->port, &hints, &res);
	if (rc) {
		int e = errno;	/* for EAI_SYSTEM, before set_error_text() may clobber it */

		if (ls->bracketed) {
			set_error_text(err, errlen,
				"invalid --listen address '%s': '%s' is not an IPv6 address",
				listen, ls->host);
			return -EINVAL;
		}
		set_error_text(err, errlen, "cannot resolve --listen host '%s': %s", ls->host,
			rc == EAI_SYSTEM ? strerror(e) : gai_strerror(rc));
		switch (rc) {
		case EAI_AGAIN:
			return -EAGAIN;
		case EAI_MEMORY:
			return -ENOMEM;
		case EAI_SYSTEM:
			return e ? -e : -EINVAL;
		default:
			return -EINVAL;
		}
	}
	for (ai = res; ai && n < HTTP_MAX_ADDRS; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		if (ai->ai_addrlen > sizeof(addrs[n].ss))
			continue;
		memcpy(&addrs[n].ss, ai->ai_addr, ai->ai_addrlen);
		addrs[n].len = ai->ai_addrlen;
		n++;
	}
	freeaddrinfo(res);
	if (!n) {
		set_error_text(err, errlen, "cannot resolve --listen host '%s': no IPv4 or IPv6 address",
			ls->host);
		return -EINVAL;
	}
	return n;
}

static int is_ipv4_literal(const char *host)
{
	struct in_addr a;

	return inet_pton(AF_INET, host, &a) == 1;
}

static void format_addr(const struct listen_addr *a, char *buf, size_t cap)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getnameinfo((const struct sockaddr *)&a->ss, a->len, host, sizeof(host),
			serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(buf, cap, "?");
		return;
	}
	snprintf(buf, cap, a->ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

static int bind_one(const struct listen_addr *a, int dual_stack, int *fdp)
{
	int one = 1, zero = 0;
	int fd, e;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A restarted ksight must not wait for its old connections' TIME_WAIT. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		goto fail;
	if (dual_stack && a->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)))
		goto fail;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len))
		goto fail;
	if (listen(fd, HTTP_BACKLOG))
		goto fail;
	*fdp = fd;
	return 0;
fail:
	e = errno;
	close(fd);
	return -e;
}

/*
 * Whether a bind failure means "this address cannot exist here" (IPv6 off, a
 * family the host lacks), so that the next address of a name, or IPv4 after
 * IPv6 for ":PORT", is worth a try. A port in use or a permission problem
 * would be the same on the other addresses, and silently binding another
 * family instead would surprise.
 */
static int addr_unusable(int ret)
{
	return ret == -EAFNOSUPPORT || ret == -EADDRNOTAVAIL || ret == -EPROTONOSUPPORT;
}

static int open_listener(const char *listen, const struct listen_spec *ls, int *fdp,
			 int *portp, char *err, size_t errlen)
{
	struct listen_addr addrs[HTTP_MAX_ADDRS];
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	int all = !ls->host[0];
	int n, i, ret = 0;
	char what[NI_MAXHOST + 16], etext[128];

	n = all ? all_addrs(ls->port, addrs) : resolve(listen, ls, addrs, err, errlen);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		ret = bind_one(&addrs[i], all, fdp);
		if (!ret || !addr_unusable(ret))
			break;
	}
	if (ret) {
		errno_text(-ret, etext, sizeof(etext));
		if (all || ls->bracketed || is_ipv4_literal(ls->host)) {
			set_error_text(err, errlen, "cannot listen on %s: %s%s", listen, etext,
				bind_hint(-ret));
		} else {
			/* A host name: say which of its addresses failed. */
			format_addr(&addrs[i < n ? i : n - 1], what, sizeof(what));
			set_error_text(err, errlen, "cannot listen on %s (%s): %s%s", listen, what,
				etext, bind_hint(-ret));
		}
		return ret;
	}
	if (getsockname(*fdp, (struct sockaddr *)&bound, &blen)) {
		ret = -errno;
		errno_text(-ret, etext, sizeof(etext));
		set_error_text(err, errlen, "cannot listen on %s: getsockname: %s", listen, etext);
		close(*fdp);
		return ret;
	}
	*portp = ntohs(bound.ss_family == AF_INET6 ?
		       ((struct sockaddr_in6 *)&bound)->sin6_port :
		       ((struct sockaddr_in *)&bound)->sin_port);
	return 0;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http_server *srv = cls;
	size_t n;

	/* Runtime noise (client resets, timeouts) is not worth a log line. */
	if (!pthread_equal(pthread_self(), srv->starter) || !srv->capture_log)
		return;
	vsnprintf(srv->start_log, sizeof(srv->start_log), fmt, ap);
	n = strlen(srv->start_log);
	while (n && (srv->start_log[n - 1] == '\n' || srv->start_log[n - 1] == '.'))
		srv->start_log[--n] = '\0';
}

/* ---- the books on connections: deadlines and room ---- */

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
static void on_connection(void *cls, struct MHD_Connection *conn, void **ctx,
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
static void set_phase(struct http_server *srv, struct MHD_Connection *conn, bool waiting)
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
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
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

static int timer_start(struct http_server *srv)
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
static void timer_stop(struct http_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	arm_timer(srv);
	pthread_mutex_unlock(&srv->lock);
	pthread_join(srv->timer_thread, NULL);
	pthread_mutex_destroy(&srv->lock);
	close(srv->timer_fd);
}

enum {
	REPLY_CLOSE = 1,	/* a body may follow that we did not read: hang up */
	REPLY_ALLOW = 2,	/* 405: say which methods we do take */
};

/* Queue a response; with MHD_RESPMEM_MUST_FREE `body` becomes MHD's. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status,
			     const char *ctype, const char *body, size_t len,
			     enum MHD_ResponseMemoryMode mode, unsigned int flags)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, (void *)body, mode);
	if (!resp) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free((void *)body);
		return MHD_NO;
	}
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES ||
	    ((flags & REPLY_ALLOW) &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES) ||
	    ((flags & REPLY_CLOSE) &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);	/* drops our reference; MHD keeps its own */
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned int status,
				  const char *text, unsigned int flags)
{
	return reply(conn, status, TEXT_CONTENT_TYPE, text, strlen(text),
		     MHD_RESPMEM_PERSISTENT, flags);
}

/*
 * A fresh buffer per scrape handed to MHD: the body must outlive this call
 * until fully sent, and scrapes on other connections may overlap it.
 */
static enum MHD_Result reply_metrics(struct http_server *srv, struct MHD_Connection *conn)
{
	struct strbuf sb = STRBUF_INIT;
	int ret = 0;

	if (srv->reg)
		ret = metrics_render(srv->reg, &sb);
	if (ret || sb.oom) {
		strbuf_free(&sb);
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "cannot render metrics: out of memory\n", 0);
	}
	if (!sb.len) {
		strbuf_free(&sb);
		return reply(conn, MHD_HTTP_OK, METRICS_CONTENT_TYPE, "", 0,
			     MHD_RESPMEM_PERSISTENT, 0);
	}
	/* strbuf memory comes from realloc(), so MHD's free() may own it. */
	return reply(conn, MHD_HTTP_OK, METRICS_CONTENT_TYPE, sb.buf, sb.len,
		     MHD_RESPMEM_MUST_FREE, 0);
}

static int hex_value(char c)
{
	return isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
}

/*
 * MHD's default unescaping turns "%00" into a NUL that ends the path early,
 * so "/%00x" would be served as "/". Decode "%HH" as usual but keep "%00":
 * none of our paths contains it, so such requests get 404.
 */
static size_t unescape_url(void *cls, struct MHD_Connection *conn, char *s)
{
	const char *r = s;
	char *w = s;

	while (*r) {
		if (r[0] == '%' && isxdigit((unsigned char)r[1]) &&
		    isxdigit((unsigned char)r[2]) && !(r[1] == '0' && r[2] == '0')) {
			*w++ = (char)(hex_value(r[1]) << 4 | hex_value(r[2]));
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static int has_body(struct MHD_Connection *conn)
{
	const char *cl, *te;

	te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					 MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (te)
		return 1;
	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					 MHD_HTTP_HEADER_CONTENT_LENGTH);
	return cl && cl[strspn(cl, "0 \t")] != '\0';
}

/*
 * Called once when the request headers are in, then again once the (empty)
 * body is. MHD hands us the path without its query string, which we ignore.
 * Runs on the HTTP thread.
 */
static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn,
				      const char *url, const char *method,
				      const char *version, const char *upload_data,
				      size_t *upload_data_size, void **req_cls)
{
	static char headers_seen;
	struct http_server *srv = cls;

	if (!*req_cls) {
		/* The head is in: from here on the answer's deadline holds. */
		set_phase(srv, conn, false);
		/*
		 * Refuse here, before MHD reads any body: an answer queued now
		 * makes MHD close the connection afterwards instead of reading
		 * on. Method names are case-sensitive (RFC 9110 9.1).
		 */
		if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
			return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
					  "method not allowed: use GET or HEAD\n",
					  REPLY_CLOSE | REPLY_ALLOW);
		if (has_body(conn))
			return reply_text(conn, MHD_HTTP_CONTENT_TOO_LARGE,
					  "request bodies are not accepted\n", REPLY_CLOSE);
		/*
		 * Answer on the next call: for the same reason, an answer now
		 * would cost the scraper its keep-alive connection.
		 */
		*req_cls = &headers_seen;
		return MHD_YES;
	}
	if (*upload_data_size) {
		/* Unreachable (no body was announced); drop it, never keep it. */
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (!strcmp(url, "/metrics"))
		return reply_metrics(srv, conn);
	if (!strcmp(url, "/healthz")) {
		if (__atomic_load_n(&srv->ready, __ATOMIC_ACQUIRE))
			return reply_text(conn, MHD_HTTP_OK, "ok\n", 0);
		return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "starting\n", 0);
	}
	if (!strcmp(url, "/"))
		return reply(conn, MHD_HTTP_OK, HTML_CONTENT_TYPE, root_page,
			     sizeof(root_page) - 1, MHD_RESPMEM_PERSISTENT, 0);
	return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n", 0);
}

static void set_limits(struct http_limits *out, const struct http_limits *in)
{
	static const struct http_limits none;

	if (!in)
		in = &none;
	out->header_deadline_ms = in->header_deadline_ms ?: HTTP_HEADER_DEADLINE_MS;
	out->send_deadline_ms = in->send_deadline_ms ?: HTTP_SEND_DEADLINE_MS;
	out->conn_limit = in->conn_limit ?: HTTP_CONN_LIMIT;
	out->per_ip_limit = in->per_ip_limit ?: HTTP_PER_IP_LIMIT;
}

/*
 * Whether fd still is the socket we made. MHD closes a socket it was given
 * on some failure paths and not on others; the inode tells without risking a
 * close of a descriptor another thread got meanwhile.
 */
static int same_socket(int fd, const struct stat *was)
{
	struct stat st;

	return !fstat(fd, &st) && st.st_dev == was->st_dev && st.st_ino == was->st_ino;
}

int http_server_start(const char *listen, struct metrics_registry *reg,
		      struct http_server **out, char *err, size_t errlen)
{
	return http_server_start_limits(listen, reg, NULL, out, err, errlen);
}

int http_server_start_limits(const char *listen, struct metrics_registry *reg,
			     const struct http_limits *limits, struct http_server **out,
			     char *err, size_t errlen)
{
	int ret = http_server_bind(listen, reg, limits, out, err, errlen);

	if (ret)
		return ret;
	ret = http_server_serve(*out, err, errlen);
	if (ret) {
		http_server_stop(*out);
		*out = NULL;
	}
	return ret;
}

int http_server_bind(const char *listen, struct metrics_registry *reg, const struct http_limits *limits,
		     struct http_server **out, char *err, size_t errlen)
{
	struct listen_spec ls;
	struct http_server *srv;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (!out) {
		set_error_text(err, errlen, "http_server_start: no place to return the server");
		return -EINVAL;
	}
	*out = NULL;
	ret = parse_listen(listen, &ls, err, errlen);
	if (ret)
		return ret;
	srv = calloc(1, sizeof(*srv));
	if (!srv) {
		set_error_text(err, errlen, "cannot start the HTTP server on %s: out of memory", listen);
		return -ENOMEM;
	}
	srv->reg = reg;
	srv->listen_fd = -1;
	srv->timer_fd = -1;
	snprintf(srv->listen, sizeof(srv->listen), "%s", listen);
	set_limits(&srv->limits, limits);
	ret = open_listener(listen, &ls, &srv->listen_fd, &srv->port, err, errlen);
	if (ret) {
		free(srv);
		return ret;
	}
	if (fstat(srv->listen_fd, &srv->listen_st)) {
		ret = -errno;
		set_error_text(err, errlen, "cannot start the HTTP server on %s: fstat: %s", listen,
			strerror(-ret));
		close(srv->listen_fd);
		free(srv);
		return ret;
	}
	*out = srv;
	return 0;
}

int http_server_serve(struct http_server *srv, char *err, size_t errlen)
{
	unsigned int flags;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (!srv || srv->daemon || srv->listen_fd < 0)
		return -EINVAL;
	ret = timer_start(srv);
	if (ret) {
		set_error_text(err, errlen, "cannot start the HTTP server on %s: %s", srv->listen,
			strerror(-ret));
		return ret;
	}

	/* One thread serves every connection; epoll where the library has it. */
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
		flags |= MHD_USE_EPOLL;
	else if (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES)
		flags |= MHD_USE_POLL;

	srv->starter = pthread_self();
	srv->capture_log = 1;
	srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle_request, srv,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)srv->listen_fd,
		MHD_OPTION_UNESCAPE_CALLBACK, unescape_url, NULL,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
		MHD_OPTION_CONNECTION_LIMIT, srv->limits.conn_limit + HTTP_MHD_SPARE,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, srv->limits.per_ip_limit + HTTP_MHD_SPARE,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
		MHD_OPTION_END);
	srv->capture_log = 0;
	if (!srv->daemon) {
		timer_stop(srv);
		srv->timer_fd = -1;
		/* a daemon that failed may have closed the socket already */
		if (!same_socket(srv->listen_fd, &srv->listen_st))
			srv->listen_fd = -1;
		set_error_text(err, errlen, "cannot start the HTTP server on %s: %s", srv->listen,
			srv->start_log[0] ? srv->start_log : "libmicrohttpd failed to start");
		return -EIO;
	}
	srv->listen_fd = -1; /* the daemon's now: MHD_stop_daemon() closes it */
	return 0;
}

int http_server_port(const struct http_server *srv)
{
	return srv ? srv->port : 0;
}

void http_server_set_ready(struct http_server *srv, int ready)
{
	if (srv)
		__atomic_store_n(&srv->ready, !!ready, __ATOMIC_RELEASE);
}

void http_server_stop(struct http_server *srv)
{
	if (!srv)
		return;
	/* Joins the HTTP thread, closes every connection and the listening socket. */
	if (srv->daemon) {
		MHD_stop_daemon(srv->daemon);
		timer_stop(srv);
	} else if (srv->listen_fd >= 0) {
		close(srv->listen_fd); /* bound, never served */
	}
	free(srv);
}

int http_listen_validate(const char *listen, char *err, size_t errlen)
{
	struct listen_spec ls;

	return parse_listen(listen, &ls, err, errlen);
}
