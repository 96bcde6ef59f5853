/*
 * The metrics HTTP endpoint on libmicrohttpd: the daemon's start, serve and
 * stop, and the request handler. The listening socket is made in
 * http_listen.c, the connections' deadlines and room kept in http_limits.c.
 *
 * We never need a request body: a request that announces one is refused as
 * soon as its headers are in, before MHD reads any of it, and the connection
 * is closed after the answer. Nothing of an upload is ever buffered.
 */
#include "http_internal.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "metrics.h"
#include "log.h"
#include "strbuf.h"

/*
 * MHD's own limits, above ours: room for the connections we cut and MHD has
 * not closed yet (it accepts up to 10 at a time before it reads any).
 */
#define HTTP_MHD_SPARE		32
/* Inactivity, under the deadlines: a client that stops reading goes after 10 s. */
#define HTTP_TIMEOUT_S		10
#define HTTP_CONN_MEMORY	(64 * 1024)

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
