/*
 * What the three parts of the metrics HTTP endpoint share: http.c (the
 * daemon and the request handler), http_listen.c (the listening socket) and
 * http_limits.c (the books on connections and the deadline timer). Not an
 * interface: that is http.h, and nothing outside these files includes this one.
 */
#ifndef KSIGHT_HTTP_INTERNAL_H
#define KSIGHT_HTTP_INTERNAL_H

#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <microhttpd.h>

#include "http.h"

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

/* http_listen.c */
int parse_listen(const char *listen, struct listen_spec *ls, char *err, size_t errlen);
int open_listener(const char *listen, const struct listen_spec *ls, int *fdp,
		  int *portp, char *err, size_t errlen);

/* http_limits.c: the books, kept from MHD's notifications and the request handler */
void set_limits(struct http_limits *out, const struct http_limits *in);
void on_connection(void *cls, struct MHD_Connection *conn, void **ctx,
		   enum MHD_ConnectionNotificationCode what);
void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
		  enum MHD_RequestTerminationCode why);
void set_phase(struct http_server *srv, struct MHD_Connection *conn, bool waiting);
int timer_start(struct http_server *srv);
void timer_stop(struct http_server *srv);

#endif
