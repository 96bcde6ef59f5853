/*
 * A small blocking HTTPS client for the Kubernetes API on libcurl.
 *
 * One easy handle per client, reset and set up again for every request:
 * curl_easy_reset() keeps live connections, so requests reuse the
 * keep-alive connection while no option of an earlier request (a method, a
 * body, a callback) can leak into the next one.
 *
 * A bearer token file is checked (stat) before every request and re-read
 * when it changed: the kubelet rotates projected service account tokens,
 * and a client that keeps the old one gets 401s once it expires. A 401
 * re-reads the file regardless (a rewrite may keep size and mtime) and the
 * request is sent once more.
 */
#include "k8s_client.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#define K8S_CONNECT_TIMEOUT_MS	5000
#define K8S_DEFAULT_TIMEOUT_MS	30000
/* max_body 0: a generous bound rather than none, so a bad server cannot exhaust memory */
#define K8S_DEFAULT_MAX_BODY	(8 * 1024 * 1024)
/* a non-2xx answer to a watch is a Status object: small */
#define K8S_STREAM_ERROR_BODY	(64 * 1024)
#define K8S_TOKEN_MAX		(64 * 1024)
/* as client-go's CA reload (notes §3.9): pick up a rotated ca.crt within 5 minutes */
#define K8S_CA_CACHE_S		300

/*
 * OpenSSL's X509_V_ERR_* values, as CURLINFO_SSL_VERIFYRESULT reports them
 * with libcurl's OpenSSL backend. Spelled out so this file does not need the
 * OpenSSL headers; with another backend they simply never match.
 */
#define X509_ERR_UNABLE_TO_GET_ISSUER_CERT		2
#define X509_ERR_CERT_NOT_YET_VALID			9
#define X509_ERR_CERT_HAS_EXPIRED			10
#define X509_ERR_DEPTH_ZERO_SELF_SIGNED_CERT		18
#define X509_ERR_SELF_SIGNED_CERT_IN_CHAIN		19
#define X509_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY	20
#define X509_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE	21

struct k8s_client {
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
	char server[512];
	char *user_agent;
	/* CA: PEM bytes, or a file, or neither (the system store) */
	char *ca_pem;
	size_t ca_pem_len;
	char ca_file[PATH_MAX];
	char ca_desc[PATH_MAX + 40];	/* where the CA came from, for TLS errors */
	bool ca_reload;			/* a verification failed: read ca_file afresh */
	char *client_cert_pem;
	size_t client_cert_pem_len;
	char *client_key_pem;
	size_t client_key_pem_len;
	/* the bearer token and, when it comes from a file, what the file was when read */
	char token_file[PATH_MAX];
	char *token;
	bool token_read;
	dev_t token_dev;
	ino_t token_ino;
	off_t token_size;
	struct timespec token_mtime;
};

/* One transfer's state, for the callbacks. */
struct xfer {
	struct k8s_client *c;
	struct k8s_response *resp;
	size_t max_body;
	/* streams */
	k8s_stream_fn on_data;
	void *ctx;
	volatile int *stop;
	long idle_timeout_s;
	struct timespec last_rx;
	bool consumer_ended;	/* on_data returned non-zero */
	bool stopped;		/* *stop became non-zero */
	bool idle;		/* idle_timeout_s passed without a byte */
	bool error_body_full;	/* a non-2xx body filled K8S_STREAM_ERROR_BODY */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void set_error(struct k8s_response *resp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(struct k8s_response *resp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(resp->error, sizeof(resp->error), fmt, ap);
	va_end(ap);
}

static char *memdup(const char *p, size_t len)
{
	char *q = malloc(len + 1);

	if (q) {
		memcpy(q, p, len);
		q[len] = '\0';
	}
	return q;
}

static double elapsed_s(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

/* ---- client ---- */

struct k8s_client *k8s_client_new(const struct k8s_config *cfg, const char *user_agent)
{
	struct k8s_client *c;

	pthread_once(&curl_once, curl_init_once);
	if (curl_init_result != CURLE_OK)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->curl = curl_easy_init();
	c->user_agent = strdup(user_agent ? user_agent : "ksight");
	if (!c->curl || !c->user_agent)
		goto fail;
	snprintf(c->server, sizeof(c->server), "%s", cfg->server);
	snprintf(c->ca_file, sizeof(c->ca_file), "%s", cfg->ca_file);
	snprintf(c->token_file, sizeof(c->token_file), "%s", cfg->token_file);
	/* the config may be freed while the client lives: keep copies */
	if (cfg->ca_pem) {
		c->ca_pem = memdup(cfg->ca_pem, cfg->ca_pem_len);
		c->ca_pem_len = cfg->ca_pem_len;
		if (!c->ca_pem)
			goto fail;
		snprintf(c->ca_desc, sizeof(c->ca_desc), "%s", cfg->source[0] ? cfg->source : "the kubeconfig");
	} else if (cfg->ca_file[0]) {
		snprintf(c->ca_desc, sizeof(c->ca_desc), "%s", cfg->ca_file);
	} else {
		snprintf(c->ca_desc, sizeof(c->ca_desc), "the system CA store");
	}
	if (cfg->client_cert_pem && cfg->client_key_pem) {
		c->client_cert_pem = memdup(cfg->client_cert_pem, cfg->client_cert_pem_len);
		c->client_cert_pem_len = cfg->client_cert_pem_len;
		c->client_key_pem = memdup(cfg->client_key_pem, cfg->client_key_pem_len);
		c->client_key_pem_len = cfg->client_key_pem_len;
		if (!c->client_cert_pem || !c->client_key_pem)
			goto fail;
	}
	if (!cfg->token_file[0] && cfg->token) {
		c->token = strdup(cfg->token);
		if (!c->token)
			goto fail;
	}
	return c;
fail:
	k8s_client_free(c);
	return NULL;
}

void k8s_client_free(struct k8s_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->user_agent);
	free(c->ca_pem);
	free(c->client_cert_pem);
	secret_free(&c->client_key_pem, c->client_key_pem_len);
	if (c->token)
		secret_free(&c->token, strlen(c->token));
	free(c);
}

void k8s_response_free(struct k8s_response *resp)
{
	strbuf_free(&resp->body);
}

static void response_init(struct k8s_response *resp)
{
	resp->status = 0;
	resp->retry_after_s = -1;
	resp->truncated = 0;
	resp->error[0] = '\0';
	strbuf_reset(&resp->body);
}

/* ---- token ---- */

static bool same_file(const struct k8s_client *c, const struct stat *st)
{
	return c->token_read && st->st_dev == c->token_dev && st->st_ino == c->token_ino &&
	       st->st_size == c->token_size && st->st_mtim.tv_sec == c->token_mtime.tv_sec &&
	       st->st_mtim.tv_nsec == c->token_mtime.tv_nsec;
}

static int read_token(struct k8s_client *c, struct k8s_response *resp)
{
	char *buf = NULL;
	struct stat st;
	size_t len = 0, start = 0, i;
	ssize_t n;
	int fd, ret = 0;

	fd = open(c->token_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	/* the identity of what we read, not of what a stat saw a moment before */
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out;
	}
	if (st.st_size > K8S_TOKEN_MAX) {
		ret = -EFBIG;
		goto out;
	}
	buf = malloc(K8S_TOKEN_MAX + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	while (len < K8S_TOKEN_MAX) {
		n = read(fd, buf + len, K8S_TOKEN_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	while (len && isspace((unsigned char)buf[len - 1]))
		len--;
	while (start < len && isspace((unsigned char)buf[start]))
		start++;
	if (start == len) {
		ret = -ENODATA;
		goto out;
	}
	/* it goes into a header line: no control characters */
	for (i = start; i < len; i++) {
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
			ret = -EINVAL;
			goto out;
		}
	}
	if (c->token)
		secret_free(&c->token, strlen(c->token));
	c->token = memdup(buf + start, len - start);
	if (!c->token) {
		ret = -ENOMEM;
		goto out;
	}
	c->token_read = true;
	c->token_dev = st.st_dev;
	c->token_ino = st.st_ino;
	c->token_size = st.st_size;
	c->token_mtime = st.st_mtim;
out:
	if (buf)
		secret_free(&buf, K8S_TOKEN_MAX + 1);
	if (fd >= 0)
		close(fd);
	if (ret) {
		/* keep using the token we have: a rotation in progress may be unreadable for a moment */
		c->token_read = false;
		if (c->token)
			return 0;
		if (ret == -ENODATA)
			set_error(resp, "the token file %s is empty", c->token_file);
		else if (ret == -EINVAL)
			set_error(resp, "the token file %s contains control characters", c->token_file);
		else
			set_error(resp, "cannot read the token file %s: %s", c->token_file, strerror(-ret));
	}
	return ret;
}

/* Re-read the token file if it changed since we read it (or `force`). */
static int refresh_token(struct k8s_client *c, bool force, struct k8s_response *resp)
{
	struct stat st;

	if (!c->token_file[0])
		return 0;
	if (!force && stat(c->token_file, &st) == 0 && same_file(c, &st))
		return 0;
	return read_token(c, resp);
}

/* ---- callbacks ---- */

/* "Retry-After: 120"; an HTTP-date gives -1, as does anything else. */
static long parse_retry_after(const char *v, size_t len)
{
	long secs = 0;
	size_t i = 0;

	while (i < len && (v[i] == ' ' || v[i] == '\t'))
		i++;
	if (i == len || !isdigit((unsigned char)v[i]))
		return -1;
	for (; i < len && isdigit((unsigned char)v[i]); i++) {
		if (secs > (LONG_MAX - 9) / 10)
			return -1;
		secs = secs * 10 + (v[i] - '0');
	}
	while (i < len && isspace((unsigned char)v[i]))
		i++;
	return i == len ? secs : -1;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *p)
{
	struct xfer *x = p;
	size_t n = size * nmemb;
	static const char name[] = "retry-after:";

	clock_gettime(CLOCK_MONOTONIC, &x->last_rx);
	/* a new status line starts a new header block (after a 100 Continue, say) */
	if (n >= 5 && !memcmp(data, "HTTP/", 5))
		x->resp->retry_after_s = -1;
	else if (n > sizeof(name) - 1 && !strncasecmp(data, name, sizeof(name) - 1))
		x->resp->retry_after_s = parse_retry_after(data + sizeof(name) - 1, n - (sizeof(name) - 1));
	return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *p)
{
	struct xfer *x = p;
	size_t n = size * nmemb;
	struct strbuf *body = &x->resp->body;

	if (body->len + n > x->max_body) {
		x->resp->truncated = 1;
		return 0; /* aborts the transfer */
	}
	strbuf_append(body, data, n);
	return body->oom ? 0 : n;
}

static size_t on_stream(char *data, size_t size, size_t nmemb, void *p)
{
	struct xfer *x = p;
	size_t n = size * nmemb, room;
	struct strbuf *body = &x->resp->body;
	long status = 0;

	clock_gettime(CLOCK_MONOTONIC, &x->last_rx);
	if (x->stop && *x->stop) {
		x->stopped = true;
		return 0;
	}
	curl_easy_getinfo(x->c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300) {
		if (x->on_data(x->ctx, data, n)) {
			x->consumer_ended = true;
			return 0;
		}
		return n;
	}
	/* an error answer: keep its start for the caller, do not wait for the rest */
	room = K8S_STREAM_ERROR_BODY - body->len;
	strbuf_append(body, data, n < room ? n : room);
	if (body->oom)
		return 0;
	if (n >= room) {
		x->resp->truncated = n > room;
		x->error_body_full = true;
		return 0;
	}
	return n;
}

static int on_progress(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct xfer *x = p;

	if (x->stop && *x->stop) {
		x->stopped = true;
		return 1;
	}
	if (x->idle_timeout_s > 0 && elapsed_s(&x->last_rx) >= (double)x->idle_timeout_s) {
		x->idle = true;
		return 1;
	}
	return 0;
}

/* ---- one transfer ---- */

static int setup(struct k8s_client *c, struct xfer *x, const char *path, struct curl_slist **headers)
{
	struct strbuf url = STRBUF_INIT, auth = STRBUF_INIT;
	struct curl_slist *h = NULL, *t;
	CURL *e = c->curl;
	struct curl_blob blob;
	int ret = 0;

	curl_easy_reset(e);
	c->errbuf[0] = '\0';
	strbuf_puts(&url, c->server);
	strbuf_puts(&url, path);
	if (url.oom) {
		ret = -ENOMEM;
		goto out;
	}
	curl_easy_setopt(e, CURLOPT_URL, url.buf);
	/* nothing but TLS, and no redirects: the token must not go anywhere else */
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
	/* no SIGALRM for DNS timeouts: other threads of the agent handle signals */
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)K8S_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);

	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_pem) {
		blob = (struct curl_blob){ .data = c->ca_pem, .len = c->ca_pem_len, .flags = CURL_BLOB_COPY };
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
	} else if (c->ca_file[0]) {
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
		curl_easy_setopt(e, CURLOPT_CA_CACHE_TIMEOUT, c->ca_reload ? 0L : (long)K8S_CA_CACHE_S);
		c->ca_reload = false;
	}
	if (c->client_cert_pem) {
		blob = (struct curl_blob){ .data = c->client_cert_pem, .len = c->client_cert_pem_len,
					   .flags = CURL_BLOB_COPY };
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
		blob = (struct curl_blob){ .data = c->client_key_pem, .len = c->client_key_pem_len,
					   .flags = CURL_BLOB_COPY };
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}

	if (c->token) {
		strbuf_printf(&auth, "Authorization: Bearer %s", c->token);
		if (auth.oom) {
			ret = -ENOMEM;
			goto out;
		}
		h = curl_slist_append(h, auth.buf);
		if (!h) {
			ret = -ENOMEM;
			goto out;
		}
	}
	t = curl_slist_append(h, "Accept: application/json");
	/* curl would wait for "100 Continue" before a large body; the API server does not need it */
	if (t)
		t = curl_slist_append(t, "Expect:");
	if (!t) {
		ret = -ENOMEM;
		goto out;
	}
	h = t;
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
out:
	strbuf_free(&url);
	if (auth.buf)
		explicit_bzero(auth.buf, auth.cap);
	strbuf_free(&auth);
	if (ret) {
		curl_slist_free_all(h);
		h = NULL;
	}
	*headers = h;
	return ret;
}

enum tls_problem { TLS_OTHER, TLS_UNKNOWN_CA, TLS_VALIDITY };

static enum tls_problem tls_verify_problem(long vr)
{
	switch (vr) {
	case X509_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		return TLS_UNKNOWN_CA;
	case X509_ERR_CERT_NOT_YET_VALID:
	case X509_ERR_CERT_HAS_EXPIRED:
		return TLS_VALIDITY;
	}
	/* 0 included: curl's own host name check failed, OpenSSL was content */
	return TLS_OTHER;
}

/* A failed transfer in words and as -errno. */
static int transfer_error(struct k8s_client *c, struct xfer *x, CURLcode rc)
{
	struct k8s_response *resp = x->resp;
	const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
	enum tls_problem problem;
	long os_errno = 0, verify = 0;

	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		set_error(resp, "cannot resolve the API server's host name in %s: %s", c->server, detail);
		return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno == EHOSTUNREACH || os_errno == ENETUNREACH) {
			set_error(resp, "cannot connect to %s: %s", c->server, strerror((int)os_errno));
			return -EHOSTUNREACH;
		}
		set_error(resp, "cannot connect to %s: connection refused", c->server);
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		set_error(resp, "%s did not answer in time: %s", c->server, detail);
		return -ETIMEDOUT;
	case CURLE_PEER_FAILED_VERIFICATION:
		c->ca_reload = true;
		curl_easy_getinfo(c->curl, CURLINFO_SSL_VERIFYRESULT, &verify);
		problem = tls_verify_problem(verify);
		if (problem == TLS_UNKNOWN_CA)
			set_error(resp, "TLS: the API server's certificate is not signed by the CA in %s "
				  "(wrong --kubeconfig or ca.crt?)", c->ca_desc);
		else if (problem == TLS_VALIDITY)
			set_error(resp, "TLS: the API server's certificate is expired or not yet valid "
				  "(is the clock right?): %s", detail);
		else if (strstr(detail, "target host name"))
			set_error(resp, "TLS: the API server's certificate is not valid for the host in %s "
				  "(connect by the name or address the certificate is for): %s", c->server, detail);
		else
			set_error(resp, "TLS: cannot verify the API server %s: %s", c->server, detail);
		return -EPROTO;
	case CURLE_SSL_CACERT_BADFILE:
		set_error(resp, "TLS: cannot load the CA certificate from %s: %s", c->ca_desc, detail);
		return -EINVAL;
	case CURLE_SSL_CERTPROBLEM:
		set_error(resp, "TLS: cannot use the client certificate: %s", detail);
		return -EINVAL;
	case CURLE_SSL_CONNECT_ERROR:
		set_error(resp, "TLS handshake with %s failed: %s", c->server, detail);
		return -EPROTO;
	case CURLE_FILESIZE_EXCEEDED:
		resp->truncated = 1;
		set_error(resp, "the response from %s is larger than %zu bytes", c->server, x->max_body);
		return -EMSGSIZE;
	case CURLE_WRITE_ERROR:
		if (resp->body.oom) {
			set_error(resp, "out of memory for the response from %s", c->server);
			return -ENOMEM;
		}
		if (resp->truncated) {
			set_error(resp, "the response from %s is larger than %zu bytes", c->server, x->max_body);
			return -EMSGSIZE;
		}
		break;
	case CURLE_OUT_OF_MEMORY:
		set_error(resp, "out of memory talking to %s", c->server);
		return -ENOMEM;
	case CURLE_GOT_NOTHING:
		set_error(resp, "%s closed the connection without answering", c->server);
		return -ECONNRESET;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		/* TLS 1.3 reports a refused client certificate only on the first read */
		if (strstr(detail, "alert") && strstr(detail, "certificate")) {
			set_error(resp, "TLS: the API server refused %s client certificate: %s",
				  c->client_cert_pem ? "our" : "to talk without a", detail);
			return -EPROTO;
		}
		/* fall through */
	case CURLE_PARTIAL_FILE:
		set_error(resp, "connection to %s broke: %s", c->server, detail);
		return -ECONNRESET;
	default:
		break;
	}
	set_error(resp, "request to %s failed: %s", c->server, detail);
	return -EIO;
}

/*
 * Send the prepared request; on a 401 with a token file, re-read it and
 * send once more. `prepare` sets the per-kind options after setup().
 */
typedef int (*prepare_fn)(struct k8s_client *c, struct xfer *x, struct curl_slist **headers, void *arg);

static int perform(struct k8s_client *c, struct xfer *x, const char *path, prepare_fn prepare, void *arg)
{
	struct k8s_response *resp = x->resp;
	struct curl_slist *headers = NULL;
	CURLcode rc = CURLE_OK;
	int attempt, ret;

	ret = refresh_token(c, false, resp);
	if (ret)
		return ret;
	for (attempt = 0; attempt < 2; attempt++) {
		response_init(resp);
		x->consumer_ended = x->stopped = x->idle = x->error_body_full = false;
		clock_gettime(CLOCK_MONOTONIC, &x->last_rx);
		ret = setup(c, x, path, &headers);
		if (!ret)
			ret = prepare(c, x, &headers, arg);
		if (ret) {
			curl_slist_free_all(headers);
			set_error(resp, "out of memory");
			return ret;
		}
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
		rc = curl_easy_perform(c->curl);
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &resp->status);
		/* the header list holds the token */
		curl_slist_free_all(headers);
		headers = NULL;
		if (rc == CURLE_OK && resp->status == 401 && c->token_file[0] && attempt == 0) {
			/* the token may have been rewritten in place, keeping size and mtime */
			ret = refresh_token(c, true, resp);
			if (ret)
				return ret;
			continue;
		}
		break;
	}
	if (!resp->body.buf)
		strbuf_append(&resp->body, "", 0); /* a body is always a string, maybe "" */
	if (rc == CURLE_OK)
		return resp->body.oom ? -ENOMEM : 0;
	/* a stream ended on purpose */
	if (x->consumer_ended || x->error_body_full)
		return 0;
	if (x->stopped) {
		set_error(resp, "stopped");
		return -ECANCELED;
	}
	if (x->idle) {
		set_error(resp, "no data from %s for %ld s", c->server, x->idle_timeout_s);
		return -ETIMEDOUT;
	}
	return transfer_error(c, x, rc);
}

/* ---- requests ---- */

struct request_args {
	const char *method;
	const char *content_type;
	const char *body;
	long timeout_ms;
};

static int prepare_request(struct k8s_client *c, struct xfer *x, struct curl_slist **headers, void *arg)
{
	const struct request_args *a = arg;
	struct strbuf ct = STRBUF_INIT;
	struct curl_slist *h;
	CURL *e = c->curl;

	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, a->timeout_ms);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	/* refuses a body announced larger than max_body before reading it */
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_body);
	if (!strcmp(a->method, "HEAD"))
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	else if (strcmp(a->method, "GET"))
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, a->method);
	if (a->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(a->body));
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, a->body);
		strbuf_printf(&ct, "Content-Type: %s", a->content_type ? a->content_type : "application/json");
		h = ct.oom ? NULL : curl_slist_append(*headers, ct.buf);
		strbuf_free(&ct);
		if (!h)
			return -ENOMEM;
		*headers = h;
	}
	return 0;
}

int k8s_request(struct k8s_client *c, const char *method, const char *path, const char *content_type,
		const char *body, size_t max_body, long timeout_ms, struct k8s_response *resp)
{
	struct request_args a = {
		.method = method,
		.content_type = content_type,
		.body = body,
		.timeout_ms = timeout_ms > 0 ? timeout_ms : K8S_DEFAULT_TIMEOUT_MS,
	};
	struct xfer x = {
		.c = c,
		.resp = resp,
		.max_body = max_body ? max_body : K8S_DEFAULT_MAX_BODY,
	};

	response_init(resp);
	if (!method || !path || path[0] != '/') {
		set_error(resp, "bad request: the path must start with '/'");
		return -EINVAL;
	}
	return perform(c, &x, path, prepare_request, &a);
}

static int prepare_stream(struct k8s_client *c, struct xfer *x, struct curl_slist **headers, void *arg)
{
	CURL *e = c->curl;

	/* a watch runs as long as it has news: only the idle check ends it */
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 0L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
	return 0;
}

int k8s_stream(struct k8s_client *c, const char *path, k8s_stream_fn on_data, void *ctx,
	       long idle_timeout_s, volatile int *stop, struct k8s_response *resp)
{
	struct xfer x = {
		.c = c,
		.resp = resp,
		.max_body = K8S_STREAM_ERROR_BODY,
		.on_data = on_data,
		.ctx = ctx,
		.stop = stop,
		.idle_timeout_s = idle_timeout_s,
	};

	response_init(resp);
	if (!path || path[0] != '/' || !on_data) {
		set_error(resp, "bad request: a path starting with '/' and a callback are needed");
		return -EINVAL;
	}
	if (stop && *stop) {
		set_error(resp, "stopped");
		return -ECANCELED;
	}
	return perform(c, &x, path, prepare_stream, NULL);
}
