/*
 * The metrics HTTP endpoint (libmicrohttpd, one internal epoll thread).
 *
 *   GET|HEAD /metrics   Prometheus text exposition 0.0.4 (metrics_render())
 *   GET|HEAD /healthz   200 "ok" once ready, 503 "starting" before
 *   GET|HEAD /          a small page linking to /metrics
 *   anything else       404; methods other than GET/HEAD get 405
 *
 * Requests are bounded (64 connections, 16 per client address, 10 s idle
 * timeout, 64 KiB per connection) and request bodies are refused unread.
 * /metrics renders on the HTTP thread, so a slow collector delays /healthz.
 */
#ifndef KSIGHT_HTTP_H
#define KSIGHT_HTTP_H

#include <stddef.h>

struct metrics_registry;
struct http_server;

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

/* Is `listen` well formed (as http_server_start takes it)? 0, or -EINVAL with why. Binds nothing. */
int http_listen_validate(const char *listen, char *err, size_t errlen);

/* The bound port (useful after asking for port 0); 0 for NULL. */
int http_server_port(const struct http_server *srv);

/* Stop serving, close the socket and free srv. NULL-safe. */
void http_server_stop(struct http_server *srv);

/* /healthz answers 503 until this is called with ready != 0. Thread-safe. */
void http_server_set_ready(struct http_server *srv, int ready);

#endif
