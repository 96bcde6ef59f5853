/*
 * The metrics HTTP endpoint (libmicrohttpd, one internal epoll thread, and
 * one that cuts connections past their deadline).
 *
 *   GET|HEAD /metrics   Prometheus text exposition 0.0.4 (metrics_render())
 *   GET|HEAD /healthz   200 "ok" while ready, 503 "starting" while not
 *   GET|HEAD /          a small page linking to /metrics
 *   anything else       404; methods other than GET/HEAD get 405
 *
 * Connections are bounded so that slow or hostile clients cannot starve a
 * scraper or the liveness probe (see struct http_limits): every request head
 * must be in within 5 s of the connection (or of the previous answer), every
 * answer out within 30 s, at most 4 connections per client address and 64 in
 * all; when that pool is full, the connection that has waited longest for
 * its request head makes room for the new one. 10 s idle timeout, 64 KiB per
 * connection; request bodies are refused unread.
 * /metrics renders on the HTTP thread, so a slow collector delays /healthz.
 */
#ifndef KSIGHT_HTTP_H
#define KSIGHT_HTTP_H

#include <stddef.h>

struct metrics_registry;
struct http_server;

/* 0 in a field: its default. */
struct http_limits {
	/* connect, or the previous answer, to the end of the request head (5000) */
	unsigned int header_deadline_ms;
	/* the end of the request head to the last byte of the answer (30000) */
	unsigned int send_deadline_ms;
	/* connections admitted before the longest-waiting one is dropped (64) */
	unsigned int conn_limit;
	/*
	 * connections per client address (4): one more cuts that address's
	 * longest-waiting connection, or is refused if all are being answered
	 */
	unsigned int per_ip_limit;
};

/*
 * Start serving `reg` (NULL: /metrics answers with an empty body).
 * listen: "ADDR:PORT", "[v6addr]:PORT" or ":PORT" (all addresses, IPv6 and
 * IPv4); ADDR may be a host name, which binds its first usable address.
 * Port 0 picks a free port (see http_server_port()).
 * Returns 0 and *out, or -errno (-EINVAL for a malformed `listen`,
 * -EADDRINUSE, -EACCES, ...) with one human sentence in err (may be NULL).
 */
int http_server_start(const char *listen, struct metrics_registry *reg,
		      struct http_server **out, char *err, size_t errlen);

/* The same with other limits (NULL: the defaults); tests use short deadlines. */
int http_server_start_limits(const char *listen, struct metrics_registry *reg,
			     const struct http_limits *limits, struct http_server **out,
			     char *err, size_t errlen);

/*
 * http_server_start_limits() in two steps. bind: the socket bound and
 * listening (a taken port fails here, before any slow work), nobody answered
 * yet — the kernel queues what connects, and serve answers it. serve: the
 * HTTP threads. A server that was only bound is stopped the same way.
 */
int http_server_bind(const char *listen, struct metrics_registry *reg, const struct http_limits *limits,
		     struct http_server **out, char *err, size_t errlen);
int http_server_serve(struct http_server *srv, char *err, size_t errlen);

/* Is `listen` well formed (as http_server_start takes it)? 0, or -EINVAL with why. Binds nothing. */
int http_listen_validate(const char *listen, char *err, size_t errlen);

/* The bound port (useful after asking for port 0); 0 for NULL. */
int http_server_port(const struct http_server *srv);

/* Stop serving, close the socket and free srv. NULL-safe. */
void http_server_stop(struct http_server *srv);

/*
 * /healthz answers 200 "ok" while ready != 0 and 503 "starting" while it is
 * 0, which it is from the start. `ready` is the caller's whole verdict: this
 * module knows nothing of signals or probes, so the caller decides what it
 * stands for (the agent: every signal it was asked for is attached) and may
 * take it back with 0. Thread-safe.
 */
void http_server_set_ready(struct http_server *srv, int ready);

#endif
