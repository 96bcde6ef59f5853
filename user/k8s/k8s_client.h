/*
 * Kubernetes API access: where the API server is and how to authenticate
 * (in-cluster service account, or a kubeconfig), and a small blocking HTTPS
 * client on libcurl. TLS is always verified.
 *
 * A struct k8s_client is used by one thread at a time: the pod watcher and
 * the event recorder each make their own from the same struct k8s_config.
 */
#ifndef KSIGHT_K8S_CLIENT_H
#define KSIGHT_K8S_CLIENT_H

#include <limits.h>
#include <stddef.h>

#include "strbuf.h"

#define K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct k8s_config {
	char server[512];          /* "https://host:port", no trailing slash; IPv6 bracketed */
	/* CA: PEM bytes (kubeconfig certificate-authority-data) or a file */
	char *ca_pem;
	size_t ca_pem_len;
	char ca_file[PATH_MAX];
	/* bearer token: a file re-read when it changes and after a 401, or a fixed token */
	char token_file[PATH_MAX];
	char *token;
	/* client certificate auth (kubeconfig), PEM bytes */
	char *client_cert_pem;
	size_t client_cert_pem_len;
	char *client_key_pem;
	size_t client_key_pem_len;
	char namespace_[254];      /* the service account's namespace, or the context's; "" if none */
	char source[PATH_MAX + 32];/* "in-cluster" or "kubeconfig /path": for messages */
};

/*
 * In-cluster: $KUBERNETES_SERVICE_HOST/PORT and sa_dir (K8S_SA_DIR when NULL)
 * with token, ca.crt and namespace. -ENOENT when not in a cluster (the
 * variables are unset); other -errno with `err` saying what is wrong.
 */
int k8s_config_in_cluster(struct k8s_config *cfg, const char *sa_dir, char *err, size_t errlen);

/*
 * A kubeconfig's current context: cluster server, certificate-authority or
 * -data, user token, tokenFile, or client-certificate/-key (files or -data).
 * Relative file paths are relative to the kubeconfig's directory.
 */
int k8s_config_from_kubeconfig(struct k8s_config *cfg, const char *path, char *err, size_t errlen);

void k8s_config_free(struct k8s_config *cfg);

struct k8s_client;

struct k8s_response {
	long status;          /* HTTP status, 0 when the request did not complete */
	long retry_after_s;   /* Retry-After header in seconds, -1 if absent */
	struct strbuf body;   /* response body (bounded by max_body) */
	int truncated;        /* the body was larger than max_body (request failed) */
	char error[256];      /* transport / TLS / auth error in words, "" on success */
};

/* user_agent e.g. "ksight/0.1.0". NULL on allocation failure. */
struct k8s_client *k8s_client_new(const struct k8s_config *cfg, const char *user_agent);
void k8s_client_free(struct k8s_client *c);

void k8s_response_free(struct k8s_response *resp);

/*
 * One request to `path` ("/api/v1/..."; query string included). `body` may be
 * NULL; `content_type` then ignored. A 401 re-reads the token file and
 * retries once. Returns 0 when an HTTP response arrived (any status: check
 * resp->status), -errno on transport failure (resp->error says what), e.g.
 * -ECONNREFUSED, -ETIMEDOUT, -EPROTO (TLS verification), -EMSGSIZE (body
 * over max_body).
 */
int k8s_request(struct k8s_client *c, const char *method, const char *path, const char *content_type,
		const char *body, size_t max_body, long timeout_ms, struct k8s_response *resp);

/*
 * A streaming GET (watch): `on_data` gets the body as it arrives, in chunks of
 * any size; returning non-zero from it ends the stream. Ends when the server
 * closes, after idle_timeout_s without a byte, when *stop becomes non-zero
 * (checked at least every second), or on error. A non-2xx status's body is
 * not passed to on_data but kept in resp->body (bounded). Returns like
 * k8s_request.
 */
typedef int (*k8s_stream_fn)(void *ctx, const char *data, size_t len);
int k8s_stream(struct k8s_client *c, const char *path, k8s_stream_fn on_data, void *ctx,
	       long idle_timeout_s, volatile int *stop, struct k8s_response *resp);


#endif
