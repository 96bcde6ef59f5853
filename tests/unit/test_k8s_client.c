/*
 * The Kubernetes API client against a small HTTPS server in this process
 * (OpenSSL, a thread per connection). Certificates are made with the openssl
 * CLI into a temporary directory when the tests start: a CA, a server
 * certificate for 127.0.0.1, a client certificate, and for the failure
 * cases another CA and a certificate for the wrong host.
 *
 * Each test gives the server a handler that answers requests as the test
 * needs: status codes, chunked streams, silence.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "k8s_client.h"
#include "strbuf.h"

#define MAX_CONNS 32

static char certdir[64];

/* ---- the test server ---- */

struct request {
	char method[16];
	char path[256];
	char authorization[256];
	char accept[128];
	char user_agent[128];
	char content_type[128];
	bool expect;
	char body[4096];
	size_t body_len;
};

struct conn;
/* Answer one request; return true to keep the connection for the next one. */
typedef bool (*handler_fn)(struct conn *cn, const struct request *req);

struct server {
	SSL_CTX *ctx;
	int lfd;
	int port;
	pthread_t acceptor;
	volatile int stopping;
	handler_fn handler;
	pthread_mutex_t lock;
	struct conn *conns[MAX_CONNS];
	int nconns;
	/* what the tests look at, under lock */
	int requests;
	int unauthorized;
	int handshake_failures;
	struct request last;
	char client_cn[128];
};

struct conn {
	struct server *srv;
	int fd;
	SSL *ssl;
	pthread_t thread;
	char buf[16384];
	size_t len;
};

static struct server srv;

static void make_path(char *out, size_t outlen, const char *name)
{
	snprintf(out, outlen, "%s/%s", certdir, name);
}

static bool conn_write(struct conn *cn, const char *data, size_t len)
{
	while (len) {
		int n = SSL_write(cn->ssl, data, (int)len);

		if (n <= 0)
			return false;
		data += n;
		len -= (size_t)n;
	}
	return true;
}

static bool conn_printf(struct conn *cn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool conn_printf(struct conn *cn, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return n > 0 && (size_t)n < sizeof(buf) && conn_write(cn, buf, (size_t)n);
}

static bool respond(struct conn *cn, int status, const char *extra_headers, const char *body)
{
	return conn_printf(cn, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n",
			   status, strlen(body), extra_headers ? extra_headers : "") &&
	       conn_write(cn, body, strlen(body));
}

static bool chunk(struct conn *cn, const char *data)
{
	return conn_printf(cn, "%zx\r\n%s\r\n", strlen(data), data);
}

/* Hold the connection until the client closes it or the server stops. */
static void wait_for_close(struct conn *cn, int max_ms)
{
	struct pollfd p = { .fd = cn->fd, .events = POLLIN };
	char c;
	int waited;

	for (waited = 0; waited < max_ms && !srv.stopping; waited += 50) {
		if (poll(&p, 1, 50) > 0) {
			if (SSL_read(cn->ssl, &c, 1) <= 0)
				return;
		}
	}
}

static void header_value(const char *headers, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name);
	const char *p = headers, *eol;

	out[0] = '\0';
	while ((p = strstr(p, "\r\n"))) {
		p += 2;
		if (!strncasecmp(p, name, nlen) && p[nlen] == ':') {
			p += nlen + 1;
			while (*p == ' ')
				p++;
			eol = strstr(p, "\r\n");
			snprintf(out, outlen, "%.*s", (int)(eol ? eol - p : (long)strlen(p)), p);
			return;
		}
	}
}

/* Read one request; false when the client went away. */
static bool read_request(struct conn *cn, struct request *req)
{
	char *end, tmp[64];
	size_t hlen, clen;
	int n;

	memset(req, 0, sizeof(*req));
	for (;;) {
		end = memmem(cn->buf, cn->len, "\r\n\r\n", 4);
		if (end)
			break;
		if (cn->len >= sizeof(cn->buf) - 1)
			return false;
		n = SSL_read(cn->ssl, cn->buf + cn->len, (int)(sizeof(cn->buf) - 1 - cn->len));
		if (n <= 0)
			return false;
		cn->len += (size_t)n;
	}
	hlen = (size_t)(end - cn->buf) + 4;
	*end = '\0';
	sscanf(cn->buf, "%15s %255s", req->method, req->path);
	header_value(cn->buf, "Authorization", req->authorization, sizeof(req->authorization));
	header_value(cn->buf, "Accept", req->accept, sizeof(req->accept));
	header_value(cn->buf, "User-Agent", req->user_agent, sizeof(req->user_agent));
	header_value(cn->buf, "Content-Type", req->content_type, sizeof(req->content_type));
	header_value(cn->buf, "Expect", tmp, sizeof(tmp));
	req->expect = tmp[0] != '\0';
	header_value(cn->buf, "Content-Length", tmp, sizeof(tmp));
	clen = (size_t)strtoul(tmp, NULL, 10);
	if (clen >= sizeof(req->body))
		return false;
	while (cn->len < hlen + clen) {
		n = SSL_read(cn->ssl, cn->buf + cn->len, (int)(sizeof(cn->buf) - 1 - cn->len));
		if (n <= 0)
			return false;
		cn->len += (size_t)n;
	}
	memcpy(req->body, cn->buf + hlen, clen);
	req->body_len = clen;
	memmove(cn->buf, cn->buf + hlen + clen, cn->len - hlen - clen);
	cn->len -= hlen + clen;
	return true;
}

static void *conn_main(void *arg)
{
	struct conn *cn = arg;
	struct request req;
	X509 *peer;

	if (SSL_accept(cn->ssl) != 1) {
		pthread_mutex_lock(&srv.lock);
		srv.handshake_failures++;
		pthread_mutex_unlock(&srv.lock);
		return NULL;
	}
	peer = SSL_get1_peer_certificate(cn->ssl);
	if (peer) {
		pthread_mutex_lock(&srv.lock);
		X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, srv.client_cn,
					  sizeof(srv.client_cn));
		pthread_mutex_unlock(&srv.lock);
		X509_free(peer);
	}
	while (!srv.stopping && read_request(cn, &req)) {
		pthread_mutex_lock(&srv.lock);
		srv.requests++;
		srv.last = req;
		pthread_mutex_unlock(&srv.lock);
		if (!srv.handler(cn, &req))
			break;
	}
	SSL_shutdown(cn->ssl);
	return NULL;
}

static void *acceptor_main(void *arg)
{
	struct pollfd p = { .fd = srv.lfd, .events = POLLIN };
	struct timeval tv = { .tv_sec = 10 };
	struct conn *cn;
	int fd;

	while (!srv.stopping) {
		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept(srv.lfd, NULL, NULL);
		if (fd < 0)
			continue;
		/* a test that goes wrong must not hang the suite */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		cn = calloc(1, sizeof(*cn));
		pthread_mutex_lock(&srv.lock);
		if (!cn || srv.nconns == MAX_CONNS) {
			pthread_mutex_unlock(&srv.lock);
			free(cn);
			close(fd);
			continue;
		}
		cn->srv = &srv;
		cn->fd = fd;
		cn->ssl = SSL_new(srv.ctx);
		SSL_set_fd(cn->ssl, fd);
		srv.conns[srv.nconns++] = cn;
		pthread_mutex_unlock(&srv.lock);
		pthread_create(&cn->thread, NULL, conn_main, cn);
	}
	return NULL;
}

static int listen_any_port(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t slen = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&sa, &slen)) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Start serving with `cert`/`key` (names in certdir); require a client certificate if asked. */
static void server_start(handler_fn handler, const char *cert, const char *key, bool want_client_cert)
{
	char path[256];

	memset(&srv, 0, sizeof(srv));
	pthread_mutex_init(&srv.lock, NULL);
	srv.handler = handler;
	srv.ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(srv.ctx);
	make_path(path, sizeof(path), cert);
	assert_int_equal(SSL_CTX_use_certificate_chain_file(srv.ctx, path), 1);
	make_path(path, sizeof(path), key);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(srv.ctx, path, SSL_FILETYPE_PEM), 1);
	if (want_client_cert) {
		make_path(path, sizeof(path), "ca.crt");
		assert_int_equal(SSL_CTX_load_verify_locations(srv.ctx, path, NULL), 1);
		SSL_CTX_set_verify(srv.ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	srv.lfd = listen_any_port(&srv.port);
	assert_true(srv.lfd >= 0);
	assert_int_equal(pthread_create(&srv.acceptor, NULL, acceptor_main, NULL), 0);
}

static void server_stop(void)
{
	int i;

	srv.stopping = 1;
	pthread_join(srv.acceptor, NULL);
	/* wake connection threads blocked in SSL_read */
	for (i = 0; i < srv.nconns; i++)
		shutdown(srv.conns[i]->fd, SHUT_RDWR);
	for (i = 0; i < srv.nconns; i++) {
		pthread_join(srv.conns[i]->thread, NULL);
		SSL_free(srv.conns[i]->ssl);
		close(srv.conns[i]->fd);
		free(srv.conns[i]);
	}
	close(srv.lfd);
	SSL_CTX_free(srv.ctx);
	pthread_mutex_destroy(&srv.lock);
}

static int server_count(int *field)
{
	int v;

	pthread_mutex_lock(&srv.lock);
	v = *field;
	pthread_mutex_unlock(&srv.lock);
	return v;
}

/* ---- certificates ---- */

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int write_text(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	make_path(path, sizeof(path), name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

#define EC_KEY_OPTS "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

/* A CA, and a certificate `name` signed by it with the extensions in `ext`. */
static int make_ca(const char *name)
{
	return run("cd %s && openssl req -x509 " EC_KEY_OPTS " -keyout %s.key -out %s.crt -days 2 "
		   "-subj /CN=%s -addext basicConstraints=critical,CA:TRUE "
		   "-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null",
		   certdir, name, name, name);
}

static int make_cert(const char *name, const char *ca, const char *cn, const char *ext)
{
	char extname[64];

	snprintf(extname, sizeof(extname), "%s.ext", name);
	if (write_text(extname, ext))
		return -1;
	return run("cd %s && openssl req " EC_KEY_OPTS " -keyout %s.key -out %s.csr -subj /CN=%s 2>/dev/null && "
		   "openssl x509 -req -in %s.csr -CA %s.crt -CAkey %s.key -set_serial %d -days 2 "
		   "-extfile %s -out %s.crt 2>/dev/null",
		   certdir, name, name, cn, name, ca, ca, (int)(random() % 100000) + 2, extname, name);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int setup_certs(void **state)
{
	snprintf(certdir, sizeof(certdir), "/tmp/ksight-k8s-client-XXXXXX");
	if (!mkdtemp(certdir))
		return -1;
	srandom((unsigned int)getpid());
	if (make_ca("ca") || make_ca("other-ca") ||
	    make_cert("server", "ca", "127.0.0.1",
		      "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n") ||
	    make_cert("wronghost", "ca", "api.example.com",
		      "subjectAltName=DNS:api.example.com\nextendedKeyUsage=serverAuth\n") ||
	    make_cert("client", "ca", "ksight-client", "extendedKeyUsage=clientAuth\n")) {
		fprintf(stderr, "cannot make test certificates with the openssl CLI in %s\n", certdir);
		return -1;
	}
	return 0;
}

static int teardown_certs(void **state)
{
	return nftw(certdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- client side helpers ---- */

static char *slurp(const char *name, size_t *len)
{
	char path[256], *buf;
	FILE *f;
	long n;

	make_path(path, sizeof(path), name);
	f = fopen(path, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* A config for the running server: CA from certdir, token from a file. */
static void config_for(struct k8s_config *cfg, const char *ca, const char *token)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->server, sizeof(cfg->server), "https://127.0.0.1:%d", srv.port);
	make_path(cfg->ca_file, sizeof(cfg->ca_file), ca);
	if (token) {
		make_path(cfg->token_file, sizeof(cfg->token_file), "token");
		assert_int_equal(write_text("token", token), 0);
	}
	snprintf(cfg->source, sizeof(cfg->source), "in-cluster");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- handlers ---- */

static const char *expected_token;

static bool h_ok(struct conn *cn, const struct request *req)
{
	if (!strcmp(req->path, "/echo"))
		return conn_printf(cn, "HTTP/1.1 201 Created\r\nContent-Length: %zu\r\n\r\n%.*s",
				   req->body_len, (int)req->body_len, req->body);
	if (!strcmp(req->path, "/empty"))
		return respond(cn, 200, NULL, "");
	return respond(cn, 200, NULL, "{\"kind\":\"PodList\",\"items\":[]}");
}

static bool h_retry_after(struct conn *cn, const struct request *req)
{
	if (!strcmp(req->path, "/seconds"))
		return respond(cn, 429, "Retry-After: 7\r\n", "{\"reason\":\"TooManyRequests\"}");
	if (!strcmp(req->path, "/spaces"))
		return respond(cn, 503, "retry-after:   120  \r\n", "{}");
	if (!strcmp(req->path, "/date"))
		return respond(cn, 503, "Retry-After: Fri, 31 Dec 1999 23:59:59 GMT\r\n", "{}");
	if (!strcmp(req->path, "/garbage"))
		return respond(cn, 503, "Retry-After: 12abc\r\n", "{}");
	return respond(cn, 200, NULL, "{}");
}

/* Rewrite the token file in place with the same size and times: only a re-read after a 401 sees it. */
static void rotate_in_place(const char *token)
{
	char path[256];
	struct stat st;
	struct timespec times[2];
	int fd;

	make_path(path, sizeof(path), "token");
	assert_int_equal(stat(path, &st), 0);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, token, strlen(token), 0), (ssize_t)strlen(token));
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	assert_int_equal(futimens(fd, times), 0);
	close(fd);
}

static const char *rotate_to;

static bool h_auth(struct conn *cn, const struct request *req)
{
	char want[300];

	snprintf(want, sizeof(want), "Bearer %s", expected_token);
	if (strcmp(req->authorization, want)) {
		pthread_mutex_lock(&srv.lock);
		srv.unauthorized++;
		pthread_mutex_unlock(&srv.lock);
		if (rotate_to) {
			rotate_in_place(rotate_to);
			rotate_to = NULL;
		}
		return respond(cn, 401, NULL, "{\"kind\":\"Status\",\"code\":401,\"reason\":\"Unauthorized\"}");
	}
	return respond(cn, 200, NULL, "{\"ok\":true}");
}

static bool h_big(struct conn *cn, const struct request *req)
{
	static char body[100 * 1024 + 1];
	int i;

	if (!body[0])
		memset(body, 'x', sizeof(body) - 1);
	if (!strcmp(req->path, "/exact"))
		return respond(cn, 200, NULL, body + sizeof(body) - 1 - 1024);
	if (!strcmp(req->path, "/chunked")) {
		/* no Content-Length: only counting the bytes can stop it */
		if (!conn_printf(cn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
			return false;
		for (i = 0; i < 100; i++)
			if (!chunk(cn, body + sizeof(body) - 1 - 1024))
				return false;
		conn_printf(cn, "0\r\n\r\n");
		return false;
	}
	respond(cn, 200, NULL, body);
	return false;
}

static bool h_silent(struct conn *cn, const struct request *req)
{
	wait_for_close(cn, 5000);
	return false;
}

static const char *const stream_chunks[] = {
	"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n",
	"{\"type\":\"MODIFIED\",",
	"\"object\":{\"metadata\":{\"name\":\"a\"}}}\n{\"type\":\"DELETED\",\"object\":{}}\n",
};

static bool h_stream(struct conn *cn, const struct request *req)
{
	size_t i;

	if (!strcmp(req->path, "/gone"))
		return respond(cn, 410, NULL, "{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}");
	if (!conn_printf(cn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			 "Transfer-Encoding: chunked\r\n\r\n"))
		return false;
	if (!strcmp(req->path, "/hang")) {
		/* one event, then a watch with nothing to say */
		chunk(cn, stream_chunks[0]);
		wait_for_close(cn, 10000);
		return false;
	}
	for (i = 0; i < sizeof(stream_chunks) / sizeof(stream_chunks[0]); i++) {
		if (!chunk(cn, stream_chunks[i]))
			return false;
		usleep(50 * 1000);
	}
	conn_printf(cn, "0\r\n\r\n");
	return true;
}

/* ---- requests ---- */

static void test_get_ok(void **state)
{
	struct k8s_response resp = { 0 };
	struct k8s_config cfg;
	struct k8s_client *c;
	int i;

	server_start(h_ok, "server.crt", "server.key", false);
	config_for(&cfg, "ca.crt", "tok-1\n");
	c = k8s_client_new(&cfg, "ksight-test/1.0");
	assert_non_null(c);
	/* the client keeps what it needs: the config may go */
	k8s_config_free(&cfg);
	memset(&cfg, 0xff, sizeof(cfg.server));

	for (i = 0; i < 3; i++) {
		assert_int_equal(k8s_request(c, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1", NULL, NULL,
					     1 << 20, 5000, &resp), 0);
		assert_int_equal(resp.status, 200);
		assert_string_equal(resp.body.buf, "{\"kind\":\"PodList\",\"items\":[]}");
		assert_int_equal(resp.retry_after_s, -1);
		assert_int_equal(resp.truncated, 0);
		assert_string_equal(resp.error, "");
	}
	assert_string_equal(srv.last.method, "GET");
	assert_string_equal(srv.last.path, "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1");
	assert_string_equal(srv.last.authorization, "Bearer tok-1");
	assert_string_equal(srv.last.accept, "application/json");
	assert_string_equal(srv.last.user_agent, "ksight-test/1.0");
	/* keep-alive: one connection for all three */
	assert_int_equal(server_count(&srv.nconns), 1);

	/* an empty body is still a string */
	assert_int_equal(k8s_request(c, "GET", "/empty", NULL, NULL, 0, 0, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_non_null(resp.body.buf);
	assert_string_equal(resp.body.buf, "");

	assert_int_equal(k8s_request(c, "GET", "no-slash", NULL, NULL, 0, 0, &resp), -EINVAL);
	k8s_response_free(&resp);
	k8s_client_free(c);
	server_stop();
}

static void test_post_body(void **state)
{
	static const char event[] = "{\"kind\":\"Event\",\"reason\":\"OOMKilled\"}";
	struct k8s_response resp = { 0 };
	struct k8s_config cfg;
	struct k8s_client *c;

	server_start(h_ok, "server.crt", "server.key", false);
	config_for(&cfg, "ca.crt", NULL);
	cfg.token = strdup("fixed-token");
	c = k8s_client_new(&cfg, NULL);
	assert_non_null(c);

	assert_int_equal(k8s_request(c, "POST", "/echo", "application/json", event, 4096, 5000, &resp), 0);
	assert_int_equal(resp.status, 201);
	assert_string_equal(resp.body.buf, event);
	assert_string_equal(srv.last.method, "POST");
	assert_string_equal(srv.last.content_type, "application/json");
	assert_string_equal(srv.last.authorization, "Bearer fixed-token");
	assert_false(srv.last.expect);

	assert_int_equal(k8s_request(c, "PATCH", "/echo", "application/strategic-merge-patch+json", "{}", 4096,
				     5000, &resp), 0);
	assert_string_equal(srv.last.method, "PATCH");
	assert_string_equal(srv.last.content_type, "application/strategic-merge-patch+json");
	assert_string_equal(resp.body.buf, "{}");

	/* after a body, a GET is a GET again (the handle is reused) */
	assert_int_equal(k8s_request(c, "GET", "/x", NULL, NULL, 4096, 5000, &resp), 0);
	assert_string_equal(srv.last.method, "GET");
	assert_int_equal(srv.last.body_len, 0);
	assert_string_equal(srv.last.user_agent, "ksight");

	k8s_response_free(&resp);
	k8s_client_free(c);
	k8s_config_free(&cfg);
	server_stop();
}

static void test_retry_after(void **state)
{
	struct k8s_response resp = { 0 };
	struct k8s_config cfg;
	struct k8s_client *c;

	server_start(h_retry_after, "server.crt", "server.key", false);
	config_for(&cfg, "ca.crt", "t");
	c = k8s_client_new(&cfg, "t");
	assert_non_null(c);

	assert_int_equal(k8s_request(c, "GET", "/seconds", NULL, NULL, 4096, 5000, &resp), 0);
	assert_int_equal(resp.status, 429);
	assert_int_equal(resp.retry_after_s, 7);
	assert_string_equal(resp.body.buf, "{\"reason\":\"TooManyRequests\"}");

	assert_int_equal(k8s_request(c, "GET", "/spaces", NULL, NULL, 4096, 5000, &resp), 0);
	assert_int_equal(resp.status, 503);
	assert_int_equal(resp.retry_after_s, 120);

	/* the HTTP-date form is not used by the API server: ignored */
	assert_int_equal(k8s_request(c, "GET", "/date", NULL, NULL, 4096, 5000, &resp), 0);
	assert_int_equal(resp.retry_after_s, -1);
	assert_int_equal(k8s_request(c, "GET", "/garbage", NULL, NULL, 4096, 5000, &resp), 0);
	assert_int_equal(resp.retry_after_s, -1);

	/* none: -1, not what the previous response said */
	assert_int_equal(k8s_request(c, "GET", "/seconds", NULL, NULL, 4096, 5000, &resp), 0);
	assert_int_equal(k8s_request(c, "GET", "/none", NULL, NULL, 4096, 5000, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.retry_after_s, -1);

	k8s_response_free(&resp);
	k8s_client_free(c);
	server_stop();
}

static void test_token_rotation(void **state)
{
	struct k8s_response resp = { 0 };
	struct k8s_config cfg;
	struct k8s_client *c;
	char path[256], tmp[256];

	server_start(h_auth, "server.crt", "server.key", false);
	config_for(&cfg, "ca.crt", "token-AAAA\n");
	c = k8s_client_new(&cfg, "t");
	assert_non_null(c);

	/* 1. the server wants a token the file does not have yet; its 401 rotates the file in place */
	expected_token = "token-BBBB";
	rotate_to = "token-BBBB\n";
	assert_int_equal(k8s_request(c, "GET", "/a", NULL, NULL, 4096, 5000, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.body.buf, "{\"ok\":true}");
	assert_int_equal(server_count(&srv.unauthorized), 1);
	assert_int_equal(server_count(&srv.requests), 2);

	/* 2. a kubelet-style rotation (a new file renamed over): seen before the request, no 401 */
	expected_token = "token-CCCC-longer";
	make_path(path, sizeof(path), "token");
	make_path(tmp, sizeof(tmp), "token.new");
	assert_int_equal(write_text("token.new", "token-CCCC-longer\n"), 0);
	assert_int_equal(rename(tmp, path), 0);
	assert_int_equal(k8s_request(c, "GET", "/b", NULL, NULL, 4096, 5000, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(server_count(&srv.unauthorized), 1);
	assert_int_equal(server_count(&srv.requests), 3);

	/* 3. a token the server never accepts: one retry, then the 401 is the answer */
	expected_token = "something-else";
	assert_int_equal(k8s_request(c, "GET", "/c", NULL, NULL, 4096, 5000, &resp), 0);
	assert_int_equal(resp.status, 401);
	assert_non_null(strstr(resp.body.buf, "Unauthorized"));
	assert_int_equal(server_count(&srv.requests), 5);

	/* 4. the file changes after a 401, but not to what the server wants: still one retry */
	expected_token = "token-DDDD";
	rotate_to = "token-DDDD-longer\n"; /* deliberately not what is expected: stays 401 */
	assert_int_equal(k8s_request(c, "GET", "/d", NULL, NULL, 4096, 5000, &resp), 0);
	assert_int_equal(resp.status, 401);
	assert_int_equal(server_count(&srv.requests), 7);

	/* 5. the token file vanishes: the last token read is still used */
	assert_int_equal(unlink(path), 0);
	expected_token = "token-DDDD-longer";
	assert_int_equal(k8s_request(c, "GET", "/e", NULL, NULL, 4096, 5000, &resp), 0);
	assert_int_equal(resp.status, 200);

	k8s_response_free(&resp);
	k8s_client_free(c);
	k8s_config_free(&cfg);

	/* 6. no token file at all from the start: a clear error, no request */
	config_for(&cfg, "ca.crt", NULL);
	make_path(cfg.token_file, sizeof(cfg.token_file), "no-such-token");
	c = k8s_client_new(&cfg, "t");
	assert_non_null(c);
	assert_int_equal(k8s_request(c, "GET", "/f", NULL, NULL, 4096, 5000, &resp), -ENOENT);
	assert_non_null(strstr(resp.error, "no-such-token"));
	assert_int_equal(resp.status, 0);
	k8s_response_free(&resp);
	k8s_client_free(c);
	server_stop();
}

static void test_fixed_token_no_retry(void **state)
{
	struct k8s_response resp = { 0 };
	struct k8s_config cfg;
	struct k8s_client *c;

	server_start(h_auth, "server.crt", "server.key", false);
	config_for(&cfg, "ca.crt", NULL);
	cfg.token = strdup("wrong");
	c = k8s_client_new(&cfg, "t");
	expected_token = "right";
	rotate_to = NULL;
	/* nothing to re-read: the 401 is final */
	assert_int_equal(k8s_request(c, "GET", "/a", NULL, NULL, 4096, 5000, &resp), 0);
	assert_int_equal(resp.status, 401);
	assert_int_equal(server_count(&srv.requests), 1);
	k8s_response_free(&resp);
	k8s_client_free(c);
	k8s_config_free(&cfg);
	server_stop();
}

static void test_max_body(void **state)
{
	struct k8s_response resp = { 0 };
	struct k8s_config cfg;
	struct k8s_client *c;

	server_start(h_big, "server.crt", "server.key", false);
	config_for(&cfg, "ca.crt", "t");
	c = k8s_client_new(&cfg, "t");

	/* announced by Content-Length */
	assert_int_equal(k8s_request(c, "GET", "/big", NULL, NULL, 1024, 5000, &resp), -EMSGSIZE);
	assert_int_equal(resp.truncated, 1);
	assert_true(resp.body.len <= 1024);
	assert_non_null(strstr(resp.error, "larger than 1024 bytes"));

	/* chunked: counted as it arrives */
	assert_int_equal(k8s_request(c, "GET", "/chunked", NULL, NULL, 10000, 5000, &resp), -EMSGSIZE);
	assert_int_equal(resp.truncated, 1);
	assert_true(resp.body.len <= 10000);

	/* exactly max_body fits */
	assert_int_equal(k8s_request(c, "GET", "/exact", NULL, NULL, 1024, 5000, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.body.len, 1024);
	assert_int_equal(resp.truncated, 0);

	k8s_response_free(&resp);
	k8s_client_free(c);
	server_stop();
}

/* ---- transport and TLS failures ---- */

static void test_wrong_ca(void **state)
{
	struct k8s_response resp = { 0 };
	struct k8s_config cfg;
	struct k8s_client *c;
	char want[PATH_MAX + 128];

	server_start(h_ok, "server.crt", "server.key", false);

	/* a CA file that did not sign the server's certificate */
	config_for(&cfg, "other-ca.crt", "t");
	c = k8s_client_new(&cfg, "t");
	assert_int_equal(k8s_request(c, "GET", "/a", NULL, NULL, 4096, 5000, &resp), -EPROTO);
	snprintf(want, sizeof(want), "TLS: the API server's certificate is not signed by the CA in %s "
		 "(wrong --kubeconfig or ca.crt?)", cfg.ca_file);
	assert_string_equal(resp.error, want);
	assert_int_equal(resp.status, 0);
	k8s_client_free(c);

	/* the CA from a kubeconfig's certificate-authority-data */
	config_for(&cfg, "ca.crt", "t");
	cfg.ca_file[0] = '\0';
	cfg.ca_pem = slurp("other-ca.crt", &cfg.ca_pem_len);
	snprintf(cfg.source, sizeof(cfg.source), "kubeconfig /home/me/.kube/config");
	c = k8s_client_new(&cfg, "t");
	assert_int_equal(k8s_request(c, "GET", "/a", NULL, NULL, 4096, 5000, &resp), -EPROTO);
	assert_string_equal(resp.error, "TLS: the API server's certificate is not signed by the CA in "
			    "kubeconfig /home/me/.kube/config (wrong --kubeconfig or ca.crt?)");
	k8s_client_free(c);
	k8s_config_free(&cfg);

	/* the right CA as PEM bytes works */
	config_for(&cfg, "ca.crt", "t");
	cfg.ca_file[0] = '\0';
	cfg.ca_pem = slurp("ca.crt", &cfg.ca_pem_len);
	c = k8s_client_new(&cfg, "t");
	assert_int_equal(k8s_request(c, "GET", "/a", NULL, NULL, 4096, 5000, &resp), 0);
	assert_int_equal(resp.status, 200);
	k8s_client_free(c);
	k8s_config_free(&cfg);

	k8s_response_free(&resp);
	server_stop();
}

static void test_wrong_host(void **state)
{
	struct k8s_response resp = { 0 };
	struct k8s_config cfg;
	struct k8s_client *c;

	/* signed by the right CA, but for another name */
	server_start(h_ok, "wronghost.crt", "wronghost.key", false);
	config_for(&cfg, "ca.crt", "t");
	c = k8s_client_new(&cfg, "t");
	assert_int_equal(k8s_request(c, "GET", "/a", NULL, NULL, 4096, 5000, &resp), -EPROTO);
	assert_non_null(strstr(resp.error, "TLS: the API server's certificate is not valid for the host in "
				 "https://127.0.0.1:"));
	assert_int_equal(server_count(&srv.requests), 0);
	k8s_response_free(&resp);
	k8s_client_free(c);
	server_stop();
}

static void test_client_cert(void **state)
{
	struct k8s_response resp = { 0 };
	struct k8s_config cfg;
	struct k8s_client *c;

	server_start(h_ok, "server.crt", "server.key", true);
	config_for(&cfg, "ca.crt", NULL);
	cfg.client_cert_pem = slurp("client.crt", &cfg.client_cert_pem_len);
	cfg.client_key_pem = slurp("client.key", &cfg.client_key_pem_len);
	c = k8s_client_new(&cfg, "t");
	assert_non_null(c);
	k8s_config_free(&cfg);
	assert_int_equal(k8s_request(c, "GET", "/a", NULL, NULL, 4096, 5000, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(srv.client_cn, "ksight-client");
	/* no token: no Authorization header */
	assert_string_equal(srv.last.authorization, "");
	k8s_client_free(c);

	/* without one the server refuses the handshake */
	config_for(&cfg, "ca.crt", "t");
	c = k8s_client_new(&cfg, "t");
	assert_int_equal(k8s_request(c, "GET", "/a", NULL, NULL, 4096, 5000, &resp), -EPROTO);
	assert_non_null(strstr(resp.error, "TLS: the API server refused to talk without a client certificate"));
	assert_int_equal(server_count(&srv.requests), 1);
	k8s_client_free(c);

	k8s_response_free(&resp);
	server_stop();
}

static int never_called(void *ctx, const char *data, size_t len)
{
	fail();
	return 1;
}

static void test_connection_refused(void **state)
{
	struct k8s_response resp = { 0 };
	struct k8s_config cfg;
	struct k8s_client *c;
	char want[128];
	int fd, port;

	/* a port that was free a moment ago */
	fd = listen_any_port(&port);
	assert_true(fd >= 0);
	close(fd);
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.server, sizeof(cfg.server), "https://127.0.0.1:%d", port);
	cfg.token = strdup("t");
	c = k8s_client_new(&cfg, "t");
	assert_int_equal(k8s_request(c, "GET", "/a", NULL, NULL, 4096, 5000, &resp), -ECONNREFUSED);
	snprintf(want, sizeof(want), "cannot connect to https://127.0.0.1:%d: connection refused", port);
	assert_string_equal(resp.error, want);
	assert_int_equal(resp.status, 0);
	assert_int_equal(k8s_stream(c, "/w", never_called, NULL, 5, NULL, &resp), -ECONNREFUSED);
	k8s_response_free(&resp);
	k8s_client_free(c);
	k8s_config_free(&cfg);
}

static void test_unresolvable(void **state)
{
	struct k8s_response resp = { 0 };
	struct k8s_config cfg;
	struct k8s_client *c;
	int ret;

	memset(&cfg, 0, sizeof(cfg));
	/* .invalid never resolves (RFC 2606) */
	snprintf(cfg.server, sizeof(cfg.server), "https://kubernetes.invalid:6443");
	c = k8s_client_new(&cfg, "t");
	ret = k8s_request(c, "GET", "/a", NULL, NULL, 4096, 5000, &resp);
	k8s_client_free(c);
	if (ret == -ETIMEDOUT) {
		/* no DNS server reachable here: the resolver timed out instead */
		k8s_response_free(&resp);
		skip();
	}
	assert_int_equal(ret, -EHOSTUNREACH);
	assert_non_null(strstr(resp.error, "cannot resolve"));
	k8s_response_free(&resp);
}

static void test_timeout(void **state)
{
	struct k8s_response resp = { 0 };
	struct k8s_config cfg;
	struct k8s_client *c;
	double t0;

	server_start(h_silent, "server.crt", "server.key", false);
	config_for(&cfg, "ca.crt", "t");
	c = k8s_client_new(&cfg, "t");
	t0 = now_s();
	assert_int_equal(k8s_request(c, "GET", "/a", NULL, NULL, 4096, 300, &resp), -ETIMEDOUT);
	assert_true(now_s() - t0 < 3.0);
	assert_non_null(strstr(resp.error, "did not answer in time"));
	k8s_response_free(&resp);
	k8s_client_free(c);
	server_stop();
}

/* ---- streams ---- */

struct collected {
	struct strbuf data;
	int calls;
	int end_after;		/* return 1 after this many calls (0: never) */
	volatile int *stop;	/* set after the first call */
};

static int collect(void *ctx, const char *data, size_t len)
{
	struct collected *col = ctx;

	strbuf_append(&col->data, data, len);
	col->calls++;
	if (col->stop)
		*col->stop = 1;
	return col->end_after && col->calls >= col->end_after;
}

static void test_stream_chunks(void **state)
{
	struct k8s_response resp = { 0 };
	struct collected col = { .data = STRBUF_INIT };
	struct k8s_config cfg;
	struct k8s_client *c;
	volatile int stop = 0;
	size_t i;
	char all[512] = "";

	server_start(h_stream, "server.crt", "server.key", false);
	config_for(&cfg, "ca.crt", "t");
	c = k8s_client_new(&cfg, "t");
	assert_int_equal(k8s_stream(c, "/api/v1/pods?watch=1", collect, &col, 5, &stop, &resp), 0);
	assert_int_equal(resp.status, 200);
	for (i = 0; i < sizeof(stream_chunks) / sizeof(stream_chunks[0]); i++)
		strcat(all, stream_chunks[i]);
	assert_string_equal(col.data.buf, all);
	assert_true(col.calls >= 3);
	assert_int_equal(resp.body.len, 0);
	assert_string_equal(srv.last.authorization, "Bearer t");
	assert_string_equal(srv.last.accept, "application/json");

	/* a request on the same handle after a stream is a plain request */
	assert_int_equal(k8s_request(c, "GET", "/gone", NULL, NULL, 4096, 5000, &resp), 0);
	assert_int_equal(resp.status, 410);

	strbuf_free(&col.data);
	k8s_response_free(&resp);
	k8s_client_free(c);
	server_stop();
}

static void test_stream_stop(void **state)
{
	struct k8s_response resp = { 0 };
	struct collected col = { .data = STRBUF_INIT };
	struct k8s_config cfg;
	struct k8s_client *c;
	volatile int stop = 0;
	double t0;

	server_start(h_stream, "server.crt", "server.key", false);
	config_for(&cfg, "ca.crt", "t");
	c = k8s_client_new(&cfg, "t");

	/* the first event sets the flag; the server then says nothing */
	col.stop = &stop;
	t0 = now_s();
	assert_int_equal(k8s_stream(c, "/hang", collect, &col, 0, &stop, &resp), -ECANCELED);
	assert_true(now_s() - t0 < 2.5);
	assert_string_equal(col.data.buf, stream_chunks[0]);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.error, "stopped");

	/* already stopped: no request at all */
	assert_int_equal(k8s_stream(c, "/hang", collect, &col, 0, &stop, &resp), -ECANCELED);
	assert_int_equal(server_count(&srv.requests), 1);

	/* on_data ending the stream is not an error */
	stop = 0;
	col.stop = NULL;
	col.calls = 0;
	col.end_after = 1;
	assert_int_equal(k8s_stream(c, "/hang", collect, &col, 0, &stop, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(col.calls, 1);

	strbuf_free(&col.data);
	k8s_response_free(&resp);
	k8s_client_free(c);
	server_stop();
}

static void test_stream_idle_timeout(void **state)
{
	struct k8s_response resp = { 0 };
	struct collected col = { .data = STRBUF_INIT };
	struct k8s_config cfg;
	struct k8s_client *c;
	double t0, took;

	server_start(h_stream, "server.crt", "server.key", false);
	config_for(&cfg, "ca.crt", "t");
	c = k8s_client_new(&cfg, "t");
	t0 = now_s();
	assert_int_equal(k8s_stream(c, "/hang", collect, &col, 1, NULL, &resp), -ETIMEDOUT);
	took = now_s() - t0;
	assert_true(took >= 0.9 && took < 3.5);
	assert_string_equal(col.data.buf, stream_chunks[0]);
	assert_non_null(strstr(resp.error, "no data from https://127.0.0.1:"));
	strbuf_free(&col.data);
	k8s_response_free(&resp);
	k8s_client_free(c);
	server_stop();
}

static void test_stream_error_status(void **state)
{
	struct k8s_response resp = { 0 };
	struct collected col = { .data = STRBUF_INIT };
	struct k8s_config cfg;
	struct k8s_client *c;

	server_start(h_stream, "server.crt", "server.key", false);
	config_for(&cfg, "ca.crt", "t");
	c = k8s_client_new(&cfg, "t");
	assert_int_equal(k8s_stream(c, "/gone", collect, &col, 5, NULL, &resp), 0);
	assert_int_equal(resp.status, 410);
	assert_int_equal(col.calls, 0);
	assert_string_equal(resp.body.buf, "{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}");
	assert_int_equal(resp.truncated, 0);
	k8s_response_free(&resp);
	k8s_client_free(c);
	server_stop();

	/* a 401 on a watch re-reads the token and tries again, like a request */
	server_start(h_auth, "server.crt", "server.key", false);
	config_for(&cfg, "ca.crt", "token-EEEE\n");
	c = k8s_client_new(&cfg, "t");
	expected_token = "token-FFFF";
	rotate_to = "token-FFFF\n";
	assert_int_equal(k8s_stream(c, "/w", collect, &col, 5, NULL, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(col.data.buf, "{\"ok\":true}");
	assert_int_equal(server_count(&srv.unauthorized), 1);
	strbuf_free(&col.data);
	k8s_response_free(&resp);
	k8s_client_free(c);
	server_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_ok),
		cmocka_unit_test(test_post_body),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_token_rotation),
		cmocka_unit_test(test_fixed_token_no_retry),
		cmocka_unit_test(test_max_body),
		cmocka_unit_test(test_wrong_ca),
		cmocka_unit_test(test_wrong_host),
		cmocka_unit_test(test_client_cert),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_unresolvable),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_stream_chunks),
		cmocka_unit_test(test_stream_stop),
		cmocka_unit_test(test_stream_idle_timeout),
		cmocka_unit_test(test_stream_error_status),
	};

	/* a client that goes away mid-response must not kill the server with SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("k8s_client", tests, setup_certs, teardown_certs);
}
