/*
 * The metrics HTTP endpoint, spoken to with raw sockets so malformed and
 * hostile requests can be sent as bytes. metrics_render() is a fake below:
 * this test does not depend on metrics.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "metrics.h"
#include "strbuf.h"

#define FAKE_METRICS \
	"# HELP ksight_test_total A test counter.\n" \
	"# TYPE ksight_test_total counter\n" \
	"ksight_test_total{pod=\"a\"} 42\n"
#define METRICS_CTYPE "text/plain; version=0.0.4; charset=utf-8"
#define PER_IP_LIMIT 4
#define CONN_LIMIT 64

/* ---- fake registry ---- */

struct metrics_registry {
	const char *text;
	size_t repeat;	/* append text this many times (0: once) */
	int fail;	/* render returns -ENOMEM */
	int calls;
};

int metrics_render(struct metrics_registry *reg, struct strbuf *out)
{
	size_t i, n = reg->repeat ? reg->repeat : 1;

	__atomic_add_fetch(&reg->calls, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&reg->fail, __ATOMIC_SEQ_CST))
		return -ENOMEM;
	for (i = 0; i < n; i++)
		strbuf_puts(out, reg->text);
	return 0;
}

/* ---- raw HTTP client ---- */

struct resp {
	char *raw;
	size_t len;
	int status;		/* of the first status line; 0 if none */
	const char *body;	/* after the first blank line */
	size_t body_len;
	int reset;		/* the read ended with ECONNRESET */
	int timed_out;
};

static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own descriptor */
}

static int connect_from(int family, const char *addr, int port, const char *src,
			int timeout_ms)
{
	struct sockaddr_storage ss = { 0 };
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	socklen_t len;
	int fd;

	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		len = sizeof(*in6);
		if (src) {
			inet_pton(AF_INET6, src, &in6->sin6_addr);
			if (bind(fd, (struct sockaddr *)in6, len))
				goto fail;
		}
		in6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, addr, &in6->sin6_addr);
	} else {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;

		in4->sin_family = AF_INET;
		len = sizeof(*in4);
		if (src) {
			inet_pton(AF_INET, src, &in4->sin_addr);
			if (bind(fd, (struct sockaddr *)in4, len))
				goto fail;
		}
		in4->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, addr, &in4->sin_addr);
	}
	if (connect(fd, (struct sockaddr *)&ss, len))
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

static int connect_to(int port)
{
	return connect_from(AF_INET, "127.0.0.1", port, NULL, 5000);
}

/* 0, or -errno when the peer stopped taking bytes (EPIPE, ECONNRESET, timeout). */
static int send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void parse_resp(struct resp *r)
{
	const char *end;

	r->status = 0;
	if (r->len >= 12 && !memcmp(r->raw, "HTTP/1.", 7) && r->raw[8] == ' ')
		r->status = atoi(r->raw + 9);
	end = memmem(r->raw, r->len, "\r\n\r\n", 4);
	if (end) {
		r->body = end + 4;
		r->body_len = r->len - (size_t)(r->body - r->raw);
	} else {
		r->body = r->raw + r->len;
		r->body_len = 0;
	}
}

/* Read until the server closes (we always ask for Connection: close). */
static void read_resp(int fd, struct resp *r)
{
	size_t cap = 4096;

	memset(r, 0, sizeof(*r));
	r->raw = malloc(cap + 1);
	assert_non_null(r->raw);
	for (;;) {
		ssize_t n;

		if (r->len == cap) {
			cap *= 2;
			r->raw = realloc(r->raw, cap + 1);
			assert_non_null(r->raw);
		}
		n = recv(fd, r->raw + r->len, cap - r->len, 0);
		if (n > 0) {
			r->len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ECONNRESET)
			r->reset = 1;
		else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			r->timed_out = 1;
		break;
	}
	r->raw[r->len] = '\0';
	parse_resp(r);
}

static void resp_free(struct resp *r)
{
	free(r->raw);
	memset(r, 0, sizeof(*r));
}

/* Header value (case-insensitive name) of the first response, or NULL. */
static const char *resp_header(const struct resp *r, const char *name, char *out, size_t cap)
{
	const char *p = r->raw, *end = r->body, *eol, *v;
	size_t nlen = strlen(name);

	eol = memmem(p, (size_t)(end - p), "\r\n", 2);
	while (eol && eol + 2 < end) {
		p = eol + 2;
		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!eol)
			break;
		if ((size_t)(eol - p) > nlen && !strncasecmp(p, name, nlen) && p[nlen] == ':') {
			v = p + nlen + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			snprintf(out, cap, "%.*s", (int)(eol - v), v);
			return out;
		}
	}
	return NULL;
}

/* Send raw bytes (whatever the server lets in) and read the whole answer. */
static void http_raw(int port, const void *req, size_t len, struct resp *r)
{
	int fd = connect_to(port);

	assert_true(fd >= 0);
	send_all(fd, req, len);
	read_resp(fd, r);
	close(fd);
}

static void http_req(int port, const char *method, const char *target, struct resp *r)
{
	char req[512];
	int n;

	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n"
		     "Accept-Encoding: gzip\r\nConnection: close\r\n\r\n", method, target);
	http_raw(port, req, (size_t)n, r);
}

static void assert_metrics_ok(const struct resp *r)
{
	char v[128];

	assert_int_equal(r->status, 200);
	assert_non_null(resp_header(r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, METRICS_CTYPE);
	assert_int_equal(r->body_len, strlen(FAKE_METRICS));
	assert_memory_equal(r->body, FAKE_METRICS, r->body_len);
}

static void assert_alive(int port)
{
	struct resp r;

	http_req(port, "GET", "/metrics", &r);
	assert_metrics_ok(&r);
	resp_free(&r);
}

/*
 * After the test closed many connections at once: MHD may not have reaped
 * them (and their per-address slots) when the next connection arrives.
 */
static void assert_alive_soon(int port)
{
	struct resp r;
	int i;

	for (i = 0; i < 100; i++) {
		http_req(port, "GET", "/metrics", &r);
		if (r.status == 200)
			break;
		resp_free(&r);
		usleep(20 * 1000);
	}
	assert_metrics_ok(&r);
	resp_free(&r);
}

/* ---- fixture: a server on 127.0.0.1, a free port ---- */

struct fixture {
	struct metrics_registry reg;
	struct http_server *srv;
	int port;
	int fds_before;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	f->reg.text = FAKE_METRICS;
	f->fds_before = fd_count();
	assert_int_equal(http_server_start("127.0.0.1:0", &f->reg, &f->srv, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	f->port = http_server_port(f->srv);
	assert_true(f->port > 0 && f->port < 65536);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	http_server_stop(f->srv);
	/* Stopping closes the listening socket and every connection. */
	assert_int_equal(fd_count(), f->fds_before);
	free(f);
	return 0;
}

/* ---- endpoints ---- */

static void test_metrics(void **state)
{
	struct fixture *f = *state;
	struct resp r;
	char v[64];

	http_req(f->port, "GET", "/metrics", &r);
	assert_metrics_ok(&r);
	assert_non_null(resp_header(&r, "Content-Length", v, sizeof(v)));
	assert_int_equal(atoi(v), strlen(FAKE_METRICS));
	/* We do not compress, even when asked to. */
	assert_null(resp_header(&r, "Content-Encoding", v, sizeof(v)));
	resp_free(&r);
	assert_int_equal(f->reg.calls, 1);
}

static void test_metrics_head(void **state)
{
	struct fixture *f = *state;
	struct resp r;
	char v[128];

	http_req(f->port, "HEAD", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(resp_header(&r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, METRICS_CTYPE);
	assert_non_null(resp_header(&r, "Content-Length", v, sizeof(v)));
	assert_int_equal(atoi(v), strlen(FAKE_METRICS));
	assert_int_equal(r.body_len, 0);
	resp_free(&r);
}

static void test_metrics_large(void **state)
{
	struct fixture *f = *state;
	struct resp r;
	size_t i, one = strlen(FAKE_METRICS);
	char v[64];

	/* ~2.3 MB: far beyond the per-connection memory limit, sent from our buffer. */
	f->reg.repeat = 20000;
	http_req(f->port, "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, one * f->reg.repeat);
	assert_non_null(resp_header(&r, "Content-Length", v, sizeof(v)));
	assert_int_equal(strtoul(v, NULL, 10), one * f->reg.repeat);
	for (i = 0; i < f->reg.repeat; i += 997)
		assert_memory_equal(r.body + i * one, FAKE_METRICS, one);
	resp_free(&r);
}

static void test_metrics_render_fails(void **state)
{
	struct fixture *f = *state;
	struct resp r;

	f->reg.fail = 1;
	http_req(f->port, "GET", "/metrics", &r);
	assert_int_equal(r.status, 500);
	resp_free(&r);
	f->reg.fail = 0;
	assert_alive(f->port);
}

static void test_healthz(void **state)
{
	struct fixture *f = *state;
	struct resp r;

	http_req(f->port, "GET", "/healthz", &r);
	assert_int_equal(r.status, 503);
	assert_int_equal(r.body_len, strlen("starting\n"));
	assert_memory_equal(r.body, "starting\n", r.body_len);
	resp_free(&r);

	http_server_set_ready(f->srv, 1);
	http_req(f->port, "GET", "/healthz", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 3);
	assert_memory_equal(r.body, "ok\n", 3);
	resp_free(&r);

	http_req(f->port, "HEAD", "/healthz", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
	resp_free(&r);

	http_server_set_ready(f->srv, 0);
	http_req(f->port, "GET", "/healthz", &r);
	assert_int_equal(r.status, 503);
	resp_free(&r);
	/* Health checks do not render metrics. */
	assert_int_equal(f->reg.calls, 0);
}

static void test_root(void **state)
{
	struct fixture *f = *state;
	struct resp r;
	char v[128];

	http_req(f->port, "GET", "/", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(resp_header(&r, "Content-Type", v, sizeof(v)));
	assert_non_null(strstr(v, "text/"));
	assert_non_null(strstr(r.body, "href=\"/metrics\""));
	resp_free(&r);
}

static void test_not_found(void **state)
{
	static const char *const paths[] = {
		"/nope", "/metrics/", "/metricsx", "/METRICS", "/healthz/x", "//metrics",
		"/%00%ff", "/%00", "/metrics%00", "/metrics%00.txt", "*",
		"http://example.com/nope",
	};
	struct fixture *f = *state;
	struct resp r;
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		http_req(f->port, "GET", paths[i], &r);
		if (r.status != 404 && r.status != 400)
			fail_msg("GET %s: status %d, want 404", paths[i], r.status);
		resp_free(&r);
	}
	http_req(f->port, "GET", "/nope", &r);
	assert_int_equal(r.status, 404);
	resp_free(&r);
	assert_int_equal(f->reg.calls, 0);
	/* Percent-encoded paths are decoded. */
	http_req(f->port, "GET", "/%6detrics", &r);
	assert_metrics_ok(&r);
	resp_free(&r);
	assert_alive(f->port);
}

static void test_method_not_allowed(void **state)
{
	static const char *const methods[] = {
		"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "get", "FOO",
	};
	struct fixture *f = *state;
	struct resp r;
	char v[64];
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		http_req(f->port, methods[i], "/metrics", &r);
		if (r.status != 405)
			fail_msg("%s /metrics: status %d, want 405", methods[i], r.status);
		assert_non_null(resp_header(&r, "Allow", v, sizeof(v)));
		assert_string_equal(v, "GET, HEAD");
		resp_free(&r);
	}
	/* The method is checked before the path. */
	http_req(f->port, "DELETE", "/nope", &r);
	assert_int_equal(r.status, 405);
	resp_free(&r);
	assert_int_equal(f->reg.calls, 0);
}

static void test_query_string(void **state)
{
	struct fixture *f = *state;
	struct resp r;

	http_req(f->port, "GET", "/metrics?name[]=x&debug=1", &r);
	assert_metrics_ok(&r);
	resp_free(&r);
	http_req(f->port, "GET", "/metrics?", &r);
	assert_metrics_ok(&r);
	resp_free(&r);
	http_req(f->port, "GET", "/healthz?verbose", &r);
	assert_int_equal(r.status, 503);
	resp_free(&r);
	http_req(f->port, "GET", "/?x=%zz", &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
}

/* Read exactly one response with a Content-Length body off a kept-alive connection. */
static void read_one(int fd, struct resp *r)
{
	size_t cap = 1 << 16;
	char v[32];

	memset(r, 0, sizeof(*r));
	r->raw = malloc(cap + 1);
	assert_non_null(r->raw);
	for (;;) {
		ssize_t n = recv(fd, r->raw + r->len, cap - r->len, 0);

		assert_true(n > 0);
		r->len += (size_t)n;
		r->raw[r->len] = '\0';
		parse_resp(r);
		if (r->body != r->raw + r->len || memmem(r->raw, r->len, "\r\n\r\n", 4)) {
			if (!resp_header(r, "Content-Length", v, sizeof(v)))
				fail_msg("no Content-Length in '%s'", r->raw);
			if (r->body_len >= strtoul(v, NULL, 10))
				return;
		}
		assert_true(r->len < cap);
	}
}

static void test_keepalive(void **state)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char pipelined[] =
		"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
		"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct fixture *f = *state;
	const char *second;
	struct resp r;
	char v[64];
	int fd, i;

	/* A scraper keeps its connection: three requests on one. */
	fd = connect_to(f->port);
	assert_true(fd >= 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(send_all(fd, req, sizeof(req) - 1), 0);
		read_one(fd, &r);
		assert_metrics_ok(&r);
		if (resp_header(&r, "Connection", v, sizeof(v)))
			assert_string_not_equal(v, "close");
		resp_free(&r);
	}
	close(fd);

	/* Two pipelined requests, both answered in order. */
	http_raw(f->port, pipelined, sizeof(pipelined) - 1, &r);
	assert_int_equal(r.status, 503);
	second = strstr(r.raw + 1, "HTTP/1.1 200");
	assert_non_null(second);
	assert_non_null(strstr(second, FAKE_METRICS));
	resp_free(&r);
}

/* ---- hostile input ---- */

static void test_huge_header(void **state)
{
	struct fixture *f = *state;
	size_t big = 100 * 1024;
	char *req = malloc(big + 256);
	struct resp r;
	int n;

	assert_non_null(req);
	n = sprintf(req, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(req + n, 'a', big);
	n += (int)big;
	n += sprintf(req + n, "\r\nConnection: close\r\n\r\n");
	http_raw(f->port, req, (size_t)n, &r);
	/*
	 * MHD answers 431 and hangs up with our bytes unread, which may reach
	 * us as a reset that eats the answer. Either way: no 200, no metrics.
	 */
	if (r.status != 0 && r.status != 431 && r.status != 413 && r.status != 400)
		fail_msg("100 KB header: status %d", r.status);
	print_message("    100 KB header: status %d%s\n", r.status, r.reset ? " (reset)" : "");
	resp_free(&r);

	/* The same size as a request target. */
	n = sprintf(req, "GET /metrics?");
	memset(req + n, 'q', big);
	n += (int)big;
	n += sprintf(req + n, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	http_raw(f->port, req, (size_t)n, &r);
	if (r.status != 0 && r.status != 414 && r.status != 431 && r.status != 413 &&
	    r.status != 400)
		fail_msg("100 KB URL: status %d", r.status);
	print_message("    100 KB URL: status %d%s\n", r.status, r.reset ? " (reset)" : "");
	resp_free(&r);

	/* Many small headers adding up past the limit. */
	n = sprintf(req, "GET /metrics HTTP/1.1\r\nHost: x\r\n");
	while ((size_t)n < big)
		n += sprintf(req + n, "X-H%d: %040d\r\n", n, 0);
	n += sprintf(req + n, "\r\n");
	http_raw(f->port, req, (size_t)n, &r);
	if (r.status == 200)
		fail_msg("100 KB of headers accepted");
	resp_free(&r);
	free(req);

	assert_int_equal(f->reg.calls, 0);
	assert_alive(f->port);
}

static void test_garbage(void **state)
{
	static const struct {
		const char *bytes;
		size_t len;
	} cases[] = {
#define C(s) { s, sizeof(s) - 1 }
		C("\x00\xff\xfe\x01\x80\x7f\r\n\r\n"),
		C("\x00\x00\x00\x00\r\n\r\n"),
		C("GET\r\n\r\n"),
		C("GET /metrics\r\n\r\n"),
		C("GET  HTTP/1.1\r\n\r\n"),
		C("GET /metrics HTTP/9.9\r\n\r\n"),
		C("GET /metrics HTTP/1.1 extra\r\n\r\n"),
		C("GET /metrics FTP/1.0\r\n\r\n"),
		C("\r\n\r\n\r\n\r\n"),
		C(" GET /metrics HTTP/1.1\r\n\r\n"),
		C("GET /metrics HTTP/1.1\r\nno-colon-here\r\n\r\n"),
		C("GET /metrics HTTP/1.1\r\n: empty-name\r\nConnection: close\r\n\r\n"),
		C("GET /metrics HTTP/1.1\r\n continuation\r\n\r\n"),
		C("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
		C("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
		C("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
		C("GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
		C("GET /metrics HTTP/1.1\nHost: x\nConnection: close\n\n"),
		C("GET /metrics HTTP/1.1\r\nHost: x\0y\r\nConnection: close\r\n\r\n"),
		C("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
		C("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),	/* a TLS ClientHello */
#undef C
	};
	struct fixture *f = *state;
	unsigned char noise[4096];
	struct resp r;
	size_t i;
	int fd;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* Some are left waiting for more bytes: do not wait long for them. */
		fd = connect_from(AF_INET, "127.0.0.1", f->port, NULL, 700);
		assert_true(fd >= 0);
		send_all(fd, cases[i].bytes, cases[i].len);
		read_resp(fd, &r);
		close(fd);
		/* No answer (we gave up waiting, or it hung up) or a refusal. */
		if (r.status != 0 && r.status < 400 && r.status != 200)
			fail_msg("garbage case %zu: status %d", i, r.status);
		print_message("    garbage case %zu: status %d%s%s\n", i, r.status,
			      r.reset ? " (reset)" : "", r.timed_out ? " (no answer)" : "");
		resp_free(&r);
	}

	/* Random bytes, then a truncated request the client abandons. */
	srand(42);
	for (i = 0; i < sizeof(noise); i++)
		noise[i] = (unsigned char)rand();
	fd = connect_from(AF_INET, "127.0.0.1", f->port, NULL, 2000);
	assert_true(fd >= 0);
	send_all(fd, noise, sizeof(noise));
	read_resp(fd, &r);
	close(fd);
	if (r.status == 200)
		fail_msg("random bytes answered 200");
	resp_free(&r);
	fd = connect_to(f->port);
	assert_true(fd >= 0);
	send_all(fd, "GET /metr", 9);
	close(fd);

	assert_alive_soon(f->port);
}

static void test_post_with_body(void **state)
{
	static const char small[] =
		"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
		"Content-Length: 11\r\n\r\nhello world";
	static const char expect[] =
		"POST /metrics HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
		"Content-Length: 1000000\r\n\r\n";
	static const char chunked[] =
		"PUT /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		"5\r\nhello\r\n0\r\n\r\n";
	static const char get_body[] =
		"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
	static const char get_chunked[] =
		"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		"5\r\nhello\r\n0\r\n\r\n";
	static const char huge[] =
		"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n";
	struct fixture *f = *state;
	size_t chunk = 64 * 1024, sent = 0, limit = 64u << 20;
	char *buf, v[64];
	struct resp r;
	int fd, ret = 0;

	http_raw(f->port, small, sizeof(small) - 1, &r);
	assert_int_equal(r.status, 405);
	assert_non_null(resp_header(&r, "Allow", v, sizeof(v)));
	assert_string_equal(v, "GET, HEAD");
	resp_free(&r);

	/* Refused before the client sends the body: no "100 Continue" first. */
	http_raw(f->port, expect, sizeof(expect) - 1, &r);
	assert_int_equal(r.status, 405);
	resp_free(&r);

	http_raw(f->port, chunked, sizeof(chunked) - 1, &r);
	assert_int_equal(r.status, 405);
	resp_free(&r);

	http_raw(f->port, get_body, sizeof(get_body) - 1, &r);
	assert_int_equal(r.status, 413);
	resp_free(&r);

	http_raw(f->port, get_chunked, sizeof(get_chunked) - 1, &r);
	assert_int_equal(r.status, 413);
	resp_free(&r);

	/*
	 * A 1 GiB upload: the server must stop reading long before we could
	 * send it all, i.e. well below what socket buffers hold.
	 */
	fd = connect_to(f->port);
	assert_true(fd >= 0);
	assert_int_equal(send_all(fd, huge, sizeof(huge) - 1), 0);
	buf = calloc(1, chunk);
	assert_non_null(buf);
	while (sent < limit && !(ret = send_all(fd, buf, chunk)))
		sent += chunk;
	free(buf);
	read_resp(fd, &r);
	close(fd);
	print_message("    1 GiB upload: refused after %zu KiB sent (%s), status %d\n",
		      sent / 1024, strerror(-ret), r.status);
	assert_true(ret < 0);
	assert_true(sent < limit);
	if (r.status != 0 && r.status != 405)
		fail_msg("1 GiB upload: status %d", r.status);
	resp_free(&r);

	assert_int_equal(f->reg.calls, 0);
	assert_alive(f->port);
}

static void test_many_connections(void **state)
{
	struct fixture *f = *state;
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	int fds[50], ok = 0, refused = 0, i;
	struct resp r;

	/* Open all first, so they are concurrent, then ask on each. */
	for (i = 0; i < 50; i++) {
		fds[i] = connect_to(f->port);
		assert_true(fds[i] >= 0);
	}
	for (i = 0; i < 50; i++)
		send_all(fds[i], req, sizeof(req) - 1);
	for (i = 0; i < 50; i++) {
		read_resp(fds[i], &r);
		if (r.status == 200) {
			assert_int_equal(r.body_len, strlen(FAKE_METRICS));
			ok++;
		} else {
			assert_int_equal(r.status, 0);
			refused++;
		}
		resp_free(&r);
		close(fds[i]);
	}
	print_message("    50 connections from one address: %d served, %d refused\n", ok,
		      refused);
	assert_true(ok >= 1);
	assert_alive_soon(f->port);
}

/* ---- limits and deadlines ---- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Whether the server has cut fd: an EOF or a reset within timeout_ms (any
 * bytes before it, such as an error answer, are read and dropped).
 */
static int cut_within(int fd, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	char buf[4096];

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int left = (int)(end - now_ms());
		ssize_t n;

		if (left < 0 || poll(&pfd, 1, left) <= 0)
			return 0;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return 1;
	}
}

/* Whether fd is still open at the server: nothing to read, no EOF. */
static int still_open(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 0;
}

/* Whether the loopback answers on 127.0.0.x beyond .1 (Linux: all of 127/8). */
static int have_loopback_net(int port)
{
	int fd = connect_from(AF_INET, "127.0.0.1", port, "127.0.0.2", 2000);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

static const char slow_head[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaa"
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/*
 * One byte of a request head that never ends every interval_ms, until the
 * server cuts the connection: its age then in ms, or -1 if still open after
 * give_up_ms.
 */
static int64_t trickle_until_cut(int fd, int interval_ms, int give_up_ms)
{
	int64_t start = now_ms();
	size_t i = 0;

	while (now_ms() - start < give_up_ms) {
		if (send(fd, slow_head + i % (sizeof(slow_head) - 1), 1, MSG_NOSIGNAL) < 0)
			return now_ms() - start;
		i++;
		if (cut_within(fd, interval_ms))
			return now_ms() - start;
	}
	return -1;
}

#define FAST_HEADER_MS	400
#define FAST_SEND_MS	600

/* A server with short deadlines, so the tests of them take well under a second each. */
static int setup_fast(void **state)
{
	struct http_limits lim = {
		.header_deadline_ms = FAST_HEADER_MS,
		.send_deadline_ms = FAST_SEND_MS,
	};
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	f->reg.text = FAKE_METRICS;
	f->fds_before = fd_count();
	assert_int_equal(http_server_start_limits("127.0.0.1:0", &f->reg, &lim, &f->srv, err,
						  sizeof(err)), 0);
	f->port = http_server_port(f->srv);
	*state = f;
	return 0;
}

/* A byte every 50 ms keeps a connection active, but not past the deadline. */
static void test_header_deadline(void **state)
{
	struct fixture *f = *state;
	int64_t age;
	int fd;

	fd = connect_to(f->port);
	assert_true(fd >= 0);
	age = trickle_until_cut(fd, 50, 3 * FAST_HEADER_MS);
	close(fd);
	print_message("    a byte every 50 ms: cut after %lld ms (deadline %d ms)\n",
		      (long long)age, FAST_HEADER_MS);
	assert_true(age >= FAST_HEADER_MS - 50);
	assert_true(age <= FAST_HEADER_MS + 250);
	assert_alive(f->port);
}

/* The deadline is per request: a kept-alive scraper outlives it, an idle one does not. */
static void test_deadline_per_request(void **state)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	struct fixture *f = *state;
	int64_t start, answered = 0;
	struct resp r;
	int fd, i;

	fd = connect_to(f->port);
	assert_true(fd >= 0);
	start = now_ms();
	for (i = 0; i < 4; i++) {
		/* Half a head, a pause, the rest: slow, but within the deadline. */
		assert_int_equal(send_all(fd, req, 10), 0);
		usleep(FAST_HEADER_MS / 4 * 1000);
		assert_int_equal(send_all(fd, req + 10, sizeof(req) - 1 - 10), 0);
		read_one(fd, &r);
		answered = now_ms();
		assert_metrics_ok(&r);
		resp_free(&r);
		usleep(FAST_HEADER_MS / 4 * 1000);
	}
	assert_true(answered - start > FAST_HEADER_MS + FAST_HEADER_MS / 2);
	/* Idle since the last answer: cut a deadline later. */
	assert_true(cut_within(fd, FAST_HEADER_MS + 250));
	print_message("    4 requests over %lld ms on one connection; idle, cut %lld ms after the last answer\n",
		      (long long)(answered - start), (long long)(now_ms() - answered));
	assert_true(now_ms() - answered >= FAST_HEADER_MS - 50);
	close(fd);
}

/* A client that reads its answer a trickle at a time is cut when the send deadline passes. */
static void test_send_deadline(void **state)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct fixture *f = *state;
	int rcvbuf = 4096, fd, cut = 0;
	size_t got = 0, total = strlen(FAKE_METRICS) * 100000;
	int64_t start, age;
	char buf[1024];

	f->reg.repeat = 100000;	/* ~10 MB: more than the socket buffers hold */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	/* A small window, set before connecting, so the server cannot get ahead of us. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	a.sin_port = htons((uint16_t)f->port);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(send_all(fd, req, sizeof(req) - 1), 0);
	start = now_ms();
	while (now_ms() - start < 4 * FAST_SEND_MS) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			cut = 1;
			break;
		}
		if (n > 0)
			got += (size_t)n;
		usleep(10 * 1000);	/* ~100 KB/s */
	}
	age = now_ms() - start;
	close(fd);
	print_message("    slow reader: cut after %lld ms with %zu of %zu bytes (deadline %d ms)\n",
		      (long long)age, got, total, FAST_SEND_MS);
	assert_true(cut);
	assert_true(got < total);
	assert_true(age >= FAST_SEND_MS - 100);
	assert_true(age <= FAST_SEND_MS + 400);
	f->reg.repeat = 0;
	assert_alive(f->port);
}

/* One request on a fresh connection from 127.0.0.1: its status, and how long it took. */
static int timed_req(int port, const char *path, int64_t *ms)
{
	int64_t start = now_ms();
	struct resp r;
	int status;

	http_req(port, "GET", path, &r);
	*ms = now_ms() - start;
	status = r.status;
	resp_free(&r);
	return status;
}

/*
 * 100 slow clients, 20 from the probes' own address and 80 from 20 others
 * (more than the pool of 64): /healthz and /metrics still answer at once,
 * and every slow client is cut within the deadline.
 */
static void test_slow_flood(void **state)
{
	enum { SLOW = 100, SAME = 20, PER_ADDR = 4, DEADLINE = 1000, INTERVAL = 100 };
	static const char *const paths[] = { "/healthz", "/metrics" };
	struct http_limits lim = { .header_deadline_ms = DEADLINE };
	struct metrics_registry reg = { .text = FAKE_METRICS };
	int64_t born[SLOW], age[SLOW], next_send, start, ms, worst = 0;
	int fds[SLOW], i, open_left = SLOW, round = 0, status, port;
	struct pollfd pfd[SLOW];
	struct http_server *srv;
	size_t sent = 0;
	char src[32], err[256];

	assert_int_equal(http_server_start_limits("127.0.0.1:0", &reg, &lim, &srv, err,
						  sizeof(err)), 0);
	port = http_server_port(srv);
	http_server_set_ready(srv, 1);
	if (!have_loopback_net(port)) {
		http_server_stop(srv);
		skip();
		return;
	}
	for (i = 0; i < SLOW; i++) {
		if (i < SAME)
			snprintf(src, sizeof(src), "127.0.0.1");
		else
			snprintf(src, sizeof(src), "127.0.1.%d", 1 + (i - SAME) / PER_ADDR);
		fds[i] = connect_from(AF_INET, "127.0.0.1", port, src, 5000);
		assert_true(fds[i] >= 0);
		born[i] = now_ms();
		age[i] = -1;
		send(fds[i], slow_head, 1, MSG_NOSIGNAL);
	}
	start = now_ms();
	next_send = start + INTERVAL;
	while (open_left && now_ms() - start < 3 * DEADLINE) {
		int n = 0, k;

		/* Real clients, right away and halfway through the deadline. */
		if (round < 2 && now_ms() - start >= (round ? DEADLINE / 2 : 50)) {
			for (k = 0; k < 2; k++) {
				status = timed_req(port, paths[k], &ms);
				print_message("    %s during the flood: %d in %lld ms\n", paths[k],
					      status, (long long)ms);
				assert_int_equal(status, 200);
				assert_true(ms < 1000);
			}
			round++;
		}
		for (i = 0; i < SLOW; i++)
			if (age[i] < 0) {
				pfd[n].fd = fds[i];
				pfd[n++].events = POLLIN;
			}
		poll(pfd, (nfds_t)n, 10);
		for (k = 0; k < n; k++) {
			char buf[512];
			ssize_t got;

			if (!pfd[k].revents)
				continue;
			got = recv(pfd[k].fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (got > 0 || (got < 0 && errno == EAGAIN))
				continue;
			for (i = 0; fds[i] != pfd[k].fd; i++)
				;
			age[i] = now_ms() - born[i];
			open_left--;
		}
		if (now_ms() >= next_send) {
			sent++;
			for (i = 0; i < SLOW; i++)
				if (age[i] < 0)
					send(fds[i], slow_head + sent % (sizeof(slow_head) - 1), 1,
					     MSG_NOSIGNAL);
			next_send += INTERVAL;
		}
	}
	for (i = 0; i < SLOW; i++) {
		close(fds[i]);
		if (age[i] < 0)
			fail_msg("slow client %d (of %d) never cut", i, SLOW);
		if (age[i] > worst)
			worst = age[i];
	}
	print_message("    %d slow clients: the last cut after %lld ms (deadline %d ms)\n", SLOW,
		      (long long)worst, DEADLINE);
	assert_true(round == 2);
	assert_true(worst <= DEADLINE + 300);
	http_server_stop(srv);
}

/*
 * An address gets 4 connections; a 5th makes room by cutting the one that
 * has waited longest for its request head, so clients behind one address
 * (a node's probes and whatever else runs there) are not locked out.
 */
static void test_per_ip_limit(void **state)
{
	struct fixture *f = *state;
	int fds[PER_IP_LIMIT], i;
	struct resp r;

	for (i = 0; i < PER_IP_LIMIT; i++) {
		fds[i] = connect_to(f->port);
		assert_true(fds[i] >= 0);
		usleep(20 * 1000);	/* accepted in this order */
	}
	assert_alive(f->port);
	/* The oldest idle one was cut for it, the others were not. */
	assert_true(cut_within(fds[0], 500));
	for (i = 1; i < PER_IP_LIMIT; i++)
		assert_true(still_open(fds[i]));
	/* Three left: a 4th fits without a cut... */
	close(fds[0]);
	fds[0] = connect_to(f->port);
	assert_true(fds[0] >= 0);
	usleep(20 * 1000);
	for (i = 0; i < PER_IP_LIMIT; i++)
		assert_true(still_open(fds[i]));
	/* ...and a 5th cuts the one that now waited longest. */
	http_req(f->port, "GET", "/healthz", &r);
	assert_int_equal(r.status, 503);
	resp_free(&r);
	assert_true(cut_within(fds[1], 500));
	assert_true(still_open(fds[0]));
	for (i = 2; i < PER_IP_LIMIT; i++)
		assert_true(still_open(fds[i]));
	for (i = 0; i < PER_IP_LIMIT; i++)
		close(fds[i]);
	assert_alive_soon(f->port);
}

/* 4 connections of one address all being answered: a 5th is refused, none is cut. */
static void test_per_ip_limit_busy(void **state)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct fixture *f = *state;
	int fds[PER_IP_LIMIT], rcvbuf = 4096, extra, i;
	struct resp r;

	f->reg.repeat = 100000;	/* ~10 MB each, more than the socket buffers hold */
	a.sin_port = htons((uint16_t)f->port);
	for (i = 0; i < PER_IP_LIMIT; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(fds[i] >= 0);
		setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
		assert_int_equal(connect(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
		assert_int_equal(send_all(fds[i], req, sizeof(req) - 1), 0);
	}
	/* All four answers under way (none read): their heads are in. */
	for (i = 0; i < PER_IP_LIMIT; i++) {
		struct pollfd pfd = { .fd = fds[i], .events = POLLIN };

		assert_int_equal(poll(&pfd, 1, 5000), 1);
	}
	extra = connect_to(f->port);
	assert_true(extra >= 0);
	send_all(extra, req, sizeof(req) - 1);
	read_resp(extra, &r);
	close(extra);
	assert_false(r.timed_out);
	assert_int_equal(r.status, 0);
	resp_free(&r);
	for (i = 0; i < PER_IP_LIMIT; i++) {
		struct pollfd pfd = { .fd = fds[i], .events = POLLIN };
		char buf[16];

		/* The answer has started; no EOF behind it yet. */
		assert_int_equal(poll(&pfd, 1, 0), 1);
		assert_true(recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT) > 0);
		close(fds[i]);
	}
	f->reg.repeat = 0;
	assert_alive_soon(f->port);
}

/*
 * 64 idle connections from 16 addresses fill the pool: the 65th is answered
 * at once, and the oldest idle one is cut to make room.
 */
static void test_connection_limit(void **state)
{
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct fixture *f = *state;
	int fds[CONN_LIMIT], extra, i;
	struct pollfd pfd;
	struct resp r;
	char src[32];

	if (!have_loopback_net(f->port)) {
		skip();
		return;
	}
	usleep(50 * 1000);	/* let the probe connection be reaped */
	for (i = 0; i < CONN_LIMIT; i++) {
		snprintf(src, sizeof(src), "127.0.0.%d", 10 + i / PER_IP_LIMIT);
		fds[i] = connect_from(AF_INET, "127.0.0.1", f->port, src, 5000);
		assert_true(fds[i] >= 0);
		if (!i)
			usleep(20 * 1000);	/* the first is the oldest */
	}
	usleep(50 * 1000);	/* all accepted */
	extra = connect_from(AF_INET, "127.0.0.1", f->port, "127.0.0.200", 5000);
	assert_true(extra >= 0);
	assert_int_equal(send_all(extra, req, sizeof(req) - 1), 0);
	pfd.fd = extra;
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 500), 1);
	read_resp(extra, &r);
	assert_int_equal(r.status, 503);
	resp_free(&r);
	close(extra);
	assert_true(cut_within(fds[0], 500));
	for (i = 1; i < CONN_LIMIT; i++)
		assert_true(still_open(fds[i]));
	for (i = 0; i < CONN_LIMIT; i++)
		close(fds[i]);
	assert_alive_soon(f->port);
}

/* Context switches of this process's HTTP threads (MHD's and the deadline timer). */
static long http_thread_switches(int *threads)
{
	char path[300], comm[32], line[256];
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	long sum = 0, v;
	FILE *fp;

	assert_non_null(d);
	*threads = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		fp = fopen(path, "r");
		if (!fp || !fgets(comm, sizeof(comm), fp)) {
			if (fp)
				fclose(fp);
			continue;
		}
		fclose(fp);
		if (strncmp(comm, "MHD-", 4) && strncmp(comm, "http-", 5))
			continue;
		(*threads)++;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
		fp = fopen(path, "r");
		assert_non_null(fp);
		while (fgets(line, sizeof(line), fp))
			if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
			    sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
				sum += v;
		fclose(fp);
	}
	closedir(d);
	return sum;
}

/*
 * Served and idle, the HTTP threads sleep without a timeout: the deadlines
 * of connections that finished in time never wake anything.
 */
static void test_idle_no_wakeups(void **state)
{
	struct fixture *f = *state;
	long before, after;
	int threads;

	assert_alive(f->port);
	usleep(50 * 1000);	/* the connection is reaped */
	before = http_thread_switches(&threads);
	usleep((FAST_HEADER_MS + FAST_SEND_MS + 200) * 1000);
	after = http_thread_switches(&threads);
	print_message("    %d HTTP threads: %ld wakeups in %d ms idle\n", threads, after - before,
		      FAST_HEADER_MS + FAST_SEND_MS + 200);
	assert_true(threads >= 1);
	assert_int_equal(after - before, 0);
}

/* Idle connections are dropped after 10 s; slow, so only on request. */
static void test_idle_timeout(void **state)
{
	struct fixture *f = *state;
	struct resp r;
	int fd;

	if (!getenv("KSIGHT_SLOW_TESTS")) {
		skip();
		return;
	}
	fd = connect_from(AF_INET, "127.0.0.1", f->port, NULL, 15000);
	assert_true(fd >= 0);
	send_all(fd, "GET /metrics HTTP/1.1\r\n", 23);
	read_resp(fd, &r);
	close(fd);
	assert_false(r.timed_out);
	assert_int_equal(r.status, 0);
	resp_free(&r);
	assert_alive(f->port);
}

/* ---- start-up errors and address forms ---- */

static void test_port_in_use(void **state)
{
	struct fixture *f = *state;
	struct http_server *srv = (struct http_server *)0x1;
	char listen[64], err[512];
	int fds = fd_count(), ret;

	snprintf(listen, sizeof(listen), "127.0.0.1:%d", f->port);
	ret = http_server_start(listen, &f->reg, &srv, err, sizeof(err));
	assert_int_equal(ret, -EADDRINUSE);
	assert_null(srv);
	print_message("    %s\n", err);
	assert_non_null(strstr(err, "already in use"));
	assert_non_null(strstr(err, listen));
	assert_non_null(strstr(err, "--listen"));

	/* All addresses overlap 127.0.0.1: in use too, not a silent IPv4/IPv6 split. */
	snprintf(listen, sizeof(listen), ":%d", f->port);
	ret = http_server_start(listen, &f->reg, &srv, err, sizeof(err));
	assert_int_equal(ret, -EADDRINUSE);
	assert_non_null(strstr(err, "already in use"));

	/* NULL err is fine. */
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", f->port);
	assert_int_equal(http_server_start(listen, &f->reg, &srv, NULL, 0), -EADDRINUSE);
	assert_int_equal(fd_count(), fds);
	assert_alive(f->port);
}

static void test_address_not_here(void **state)
{
	struct metrics_registry reg = { .text = FAKE_METRICS };
	struct http_server *srv = NULL;
	char err[512];
	int ret;

	/* TEST-NET-1: no host has it. */
	ret = http_server_start("192.0.2.1:0", &reg, &srv, err, sizeof(err));
	assert_int_equal(ret, -EADDRNOTAVAIL);
	assert_null(srv);
	print_message("    %s\n", err);
	assert_non_null(strstr(err, "cannot listen on 192.0.2.1:0"));
}

static void test_invalid_listen(void **state)
{
	static const char *const bad[] = {
		"", "foo", "1.2.3.4", "1.2.3.4:99999", "[::1", ":abc", "[::1]", "[::1]:",
		"[]:80", "[foo]:80", "[1.2.3.4]:80", "::1:9090", "1.2.3.4:", ":", "host:-1",
		"host:+80", "host: 80", ":65536", ":18446744073709551617", "[::1]x:80",
	};
	struct metrics_registry reg = { .text = FAKE_METRICS };
	struct http_server *srv;
	int fds = fd_count();
	char err[512];
	size_t i;
	int ret;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		srv = (struct http_server *)0x1;
		strcpy(err, "untouched");
		ret = http_server_start(bad[i], &reg, &srv, err, sizeof(err));
		if (ret != -EINVAL)
			fail_msg("'%s': got %d (%s), want -EINVAL", bad[i], ret, err);
		assert_null(srv);
		if (!strstr(err, "invalid --listen address"))
			fail_msg("'%s': unclear message '%s'", bad[i], err);
		print_message("    %s\n", err);
	}
	assert_int_equal(http_server_start(NULL, &reg, &srv, err, sizeof(err)), -EINVAL);
	assert_int_equal(http_server_start("127.0.0.1:0", &reg, NULL, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(http_server_start("foo", &reg, &srv, NULL, 0), -EINVAL);
	/* A tiny err buffer is truncated, not overrun. */
	memset(err, 'x', sizeof(err));
	assert_int_equal(http_server_start("foo", &reg, &srv, err, 8), -EINVAL);
	assert_int_equal(strlen(err), 7);
	assert_int_equal(err[8], 'x');
	assert_int_equal(fd_count(), fds);
}

static int have_ipv6_loopback(void)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	if (fd < 0)
		return 0;
	ok = !bind(fd, (struct sockaddr *)&a, sizeof(a));
	close(fd);
	return ok;
}

static void get_metrics_via(int family, const char *addr, int port)
{
	struct resp r;
	int fd = connect_from(family, addr, port, NULL, 5000);
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

	if (fd < 0)
		fail_msg("cannot connect to %s port %d: %s", addr, port, strerror(errno));
	send_all(fd, req, sizeof(req) - 1);
	read_resp(fd, &r);
	close(fd);
	assert_metrics_ok(&r);
	resp_free(&r);
}

static void test_ipv6(void **state)
{
	struct metrics_registry reg = { .text = FAKE_METRICS };
	struct http_server *srv = NULL;
	char err[256];

	if (!have_ipv6_loopback()) {
		skip();
		return;
	}
	assert_int_equal(http_server_start("[::1]:0", &reg, &srv, err, sizeof(err)), 0);
	get_metrics_via(AF_INET6, "::1", http_server_port(srv));
	/* ::1 only: not on IPv4. */
	assert_true(connect_from(AF_INET, "127.0.0.1", http_server_port(srv), NULL, 1000) < 0);
	http_server_stop(srv);
}

static void test_all_addresses(void **state)
{
	struct metrics_registry reg = { .text = FAKE_METRICS };
	struct http_server *srv = NULL;
	char err[256];
	int port;

	assert_int_equal(http_server_start(":0", &reg, &srv, err, sizeof(err)), 0);
	port = http_server_port(srv);
	assert_true(port > 0);
	get_metrics_via(AF_INET, "127.0.0.1", port);
	if (have_ipv6_loopback())
		get_metrics_via(AF_INET6, "::1", port);
	http_server_stop(srv);

	assert_int_equal(http_server_start("0.0.0.0:0", &reg, &srv, err, sizeof(err)), 0);
	get_metrics_via(AF_INET, "127.0.0.1", http_server_port(srv));
	http_server_stop(srv);
}

static void test_hostname(void **state)
{
	struct metrics_registry reg = { .text = FAKE_METRICS };
	struct http_server *srv = NULL;
	char err[256];
	int port, fd;

	assert_int_equal(http_server_start("localhost:0", &reg, &srv, err, sizeof(err)), 0);
	port = http_server_port(srv);
	assert_true(port > 0);
	/* localhost may resolve to ::1 or 127.0.0.1 first; one of them listens. */
	fd = connect_from(AF_INET, "127.0.0.1", port, NULL, 2000);
	if (fd >= 0) {
		close(fd);
		get_metrics_via(AF_INET, "127.0.0.1", port);
	} else {
		get_metrics_via(AF_INET6, "::1", port);
	}
	http_server_stop(srv);
}

static void test_stop_null(void **state)
{
	http_server_stop(NULL);
	http_server_set_ready(NULL, 1);
	assert_int_equal(http_server_port(NULL), 0);
}

static void test_restart_same_port(void **state)
{
	struct metrics_registry reg = { .text = FAKE_METRICS };
	struct http_server *srv = NULL;
	char listen[64], err[256];
	int port, fd;

	/* A connection in TIME_WAIT on the port must not block a restart. */
	assert_int_equal(http_server_start("127.0.0.1:0", &reg, &srv, err, sizeof(err)), 0);
	port = http_server_port(srv);
	get_metrics_via(AF_INET, "127.0.0.1", port);
	http_server_stop(srv);
	fd = connect_from(AF_INET, "127.0.0.1", port, NULL, 1000);
	assert_true(fd < 0);	/* stopped means closed */
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	assert_int_equal(http_server_start(listen, &reg, &srv, err, sizeof(err)), 0);
	assert_int_equal(http_server_port(srv), port);
	get_metrics_via(AF_INET, "127.0.0.1", port);
	http_server_stop(srv);
}

/*
 * Bound but not served: a client connects (the kernel queues it) and its
 * request is answered once serving starts, with what ready says then.
 */
static void test_bind_then_serve(void **state)
{
	struct metrics_registry reg = { .text = FAKE_METRICS };
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct http_server *srv = NULL;
	char err[256], listen[64];
	struct pollfd pfd;
	struct resp r;
	int fds = fd_count(), fd;

	(void)state;
	assert_int_equal(http_server_bind("127.0.0.1:0", &reg, NULL, &srv, err, sizeof(err)), 0);
	assert_true(http_server_port(srv) > 0);
	fd = connect_to(http_server_port(srv));
	assert_true(fd >= 0);
	assert_int_equal(send_all(fd, req, sizeof(req) - 1), 0);
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 200), 0); /* nobody answers yet */

	/* a taken port fails at bind */
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", http_server_port(srv));
	{
		struct http_server *other = NULL;

		assert_int_equal(http_server_bind(listen, &reg, NULL, &other, err, sizeof(err)), -EADDRINUSE);
		assert_null(other);
	}

	http_server_set_ready(srv, 1);
	assert_int_equal(http_server_serve(srv, err, sizeof(err)), 0);
	assert_int_equal(http_server_serve(srv, err, sizeof(err)), -EINVAL); /* once */
	read_resp(fd, &r);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, "ok\n", 3);
	resp_free(&r);
	close(fd);
	http_server_stop(srv);

	/* bound and stopped without serving: the socket is closed, nothing leaks */
	assert_int_equal(http_server_bind("127.0.0.1:0", &reg, NULL, &srv, err, sizeof(err)), 0);
	http_server_stop(srv);
	assert_int_equal(fd_count(), fds);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_metrics),
		T(test_metrics_head),
		T(test_metrics_large),
		T(test_metrics_render_fails),
		T(test_healthz),
		cmocka_unit_test(test_bind_then_serve),
		T(test_root),
		T(test_not_found),
		T(test_method_not_allowed),
		T(test_query_string),
		T(test_keepalive),
		T(test_huge_header),
		T(test_garbage),
		T(test_post_with_body),
		T(test_many_connections),
		T(test_per_ip_limit),
		T(test_per_ip_limit_busy),
		T(test_connection_limit),
		cmocka_unit_test_setup_teardown(test_header_deadline, setup_fast, teardown),
		cmocka_unit_test_setup_teardown(test_deadline_per_request, setup_fast, teardown),
		cmocka_unit_test_setup_teardown(test_send_deadline, setup_fast, teardown),
		cmocka_unit_test_setup_teardown(test_idle_no_wakeups, setup_fast, teardown),
		cmocka_unit_test(test_slow_flood),
		T(test_idle_timeout),
		T(test_port_in_use),
		cmocka_unit_test(test_address_not_here),
		cmocka_unit_test(test_invalid_listen),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_all_addresses),
		cmocka_unit_test(test_hostname),
		cmocka_unit_test(test_stop_null),
		cmocka_unit_test(test_restart_same_port),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
