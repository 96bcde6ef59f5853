/*
 * Where the Kubernetes API server is and how to authenticate to it: the
 * in-cluster service account, or a kubeconfig's current context.
 *
 * Only what a node agent needs is supported: bearer tokens (fixed or from a
 * file) and client certificates. Anything that would mean running code
 * (exec plugins, auth providers) or not verifying TLS is refused with a
 * sentence saying so, rather than ignored: an ignored setting would surface
 * later as a puzzling 401 or TLS error.
 */
#include "k8s_client.h"
#include "log.h"
#include "base64.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

/* A PEM certificate bundle or key larger than this is not a kubeconfig's. */
#define K8S_PEM_MAX		(1024 * 1024)
/* Namespace names are DNS labels (63); the file is read with some slack. */
#define K8S_NS_FILE_MAX		1024

/* ---- files ---- */

/*
 * Read a whole (small) file into a NUL-terminated buffer. -EFBIG when it is
 * larger than `max`.
 */
static int read_file(const char *path, size_t max, char **out, size_t *outlen)
{
	struct strbuf sb = STRBUF_INIT;
	char chunk[4096];
	ssize_t n;
	int fd, ret = 0;

	*out = NULL;
	*outlen = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		if (sb.len + (size_t)n > max) {
			ret = -EFBIG;
			break;
		}
		strbuf_append(&sb, chunk, (size_t)n);
	}
	close(fd);
	if (!ret && sb.oom)
		ret = -ENOMEM;
	if (!ret && !sb.buf)
		strbuf_append(&sb, "", 0);
	if (!ret && sb.oom)
		ret = -ENOMEM;
	if (ret) {
		strbuf_free(&sb);
		return ret;
	}
	*out = sb.buf;
	*outlen = sb.len;
	return 0;
}

static int join_path(char *out, size_t outlen, const char *dir, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

void k8s_config_free(struct k8s_config *cfg)
{
	free(cfg->ca_pem);
	cfg->ca_pem = NULL;
	cfg->ca_pem_len = 0;
	if (cfg->token)
		secret_free(&cfg->token, strlen(cfg->token));
	free(cfg->client_cert_pem);
	cfg->client_cert_pem = NULL;
	cfg->client_cert_pem_len = 0;
	secret_free(&cfg->client_key_pem, cfg->client_key_pem_len);
	cfg->client_key_pem_len = 0;
}

/* ---- in-cluster ---- */

static bool valid_host(const char *host)
{
	const char *p;

	for (p = host; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-:%[]_", *p))
			return false;
	return true;
}

static bool valid_port(const char *port)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)port[0]))
		return false;
	errno = 0;
	v = strtol(port, &end, 10);
	return !errno && !*end && v > 0 && v <= 65535;
}

/*
 * A service account file the agent cannot work without. Never -ENOENT: the
 * caller takes -ENOENT to mean "not in a cluster" and would drop the message,
 * while here we are in a cluster with the credentials missing.
 */
static int check_sa_file(const char *path, const char *what, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int e;

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	e = errno;
	if (e == ENOENT) {
		set_error_text(err, errlen, "in a cluster, but the service account %s %s does not exist: "
		       "is automountServiceAccountToken disabled? Enable it for ksight's pod or "
		       "service account", what, path);
		return -EACCES;
	}
	if (e == EACCES) {
		set_error_text(err, errlen, "cannot read the service account %s %s: permission denied "
		       "(running as uid %u); run ksight as root or give its pod an fsGroup that "
		       "can read the token", what, path, (unsigned int)geteuid());
		return -EACCES;
	}
	set_error_text(err, errlen, "cannot read the service account %s %s: %s", what, path, strerror(e));
	return -e;
}

int k8s_config_in_cluster(struct k8s_config *cfg, const char *sa_dir, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char ns_path[PATH_MAX];
	char *ns = NULL;
	size_t ns_len, i;
	bool bracket;
	int n, ret;

	memset(cfg, 0, sizeof(*cfg));
	if (!host || !host[0] || !port || !port[0])
		return -ENOENT;
	if (!sa_dir)
		sa_dir = K8S_SA_DIR;

	if (!valid_host(host)) {
		set_error_text(err, errlen, "KUBERNETES_SERVICE_HOST=\"%s\" is not a host name or address", host);
		return -EINVAL;
	}
	if (!valid_port(port)) {
		set_error_text(err, errlen, "KUBERNETES_SERVICE_PORT=\"%s\" is not a port number (1-65535)", port);
		return -EINVAL;
	}
	/* as net.JoinHostPort: an IPv6 address needs brackets before ":port" */
	bracket = strchr(host, ':') && host[0] != '[';
	n = snprintf(cfg->server, sizeof(cfg->server), "https://%s%s%s:%s",
		     bracket ? "[" : "", host, bracket ? "]" : "", port);
	if (n < 0 || (size_t)n >= sizeof(cfg->server)) {
		set_error_text(err, errlen, "KUBERNETES_SERVICE_HOST is too long (%zu characters)", strlen(host));
		ret = -ENAMETOOLONG;
		goto fail;
	}

	if (join_path(cfg->token_file, sizeof(cfg->token_file), sa_dir, "token") ||
	    join_path(cfg->ca_file, sizeof(cfg->ca_file), sa_dir, "ca.crt") ||
	    join_path(ns_path, sizeof(ns_path), sa_dir, "namespace")) {
		set_error_text(err, errlen, "service account directory path is too long: %s", sa_dir);
		ret = -ENAMETOOLONG;
		goto fail;
	}
	ret = check_sa_file(cfg->token_file, "token", err, errlen);
	if (ret)
		goto fail;
	ret = check_sa_file(cfg->ca_file, "CA certificate", err, errlen);
	if (ret)
		goto fail;

	/* the namespace file is a convenience: without it, namespace_ stays "" */
	if (read_file(ns_path, K8S_NS_FILE_MAX, &ns, &ns_len) == 0) {
		while (ns_len && isspace((unsigned char)ns[ns_len - 1]))
			ns_len--;
		for (i = 0; i < ns_len && !isspace((unsigned char)ns[i]); i++)
			;
		if (i == ns_len && ns_len < sizeof(cfg->namespace_)) {
			memcpy(cfg->namespace_, ns, ns_len);
			cfg->namespace_[ns_len] = '\0';
		}
		free(ns);
	}
	snprintf(cfg->source, sizeof(cfg->source), "in-cluster");
	return 0;
fail:
	memset(cfg, 0, sizeof(*cfg));
	return ret;
}

/* ---- kubeconfig ---- */

struct kubeconfig {
	const char *path;
	char dir[PATH_MAX];	/* absolute: curl may open the CA file after a chdir */
	yaml_document_t doc;
	char *err;
	size_t errlen;
};

static void kc_err(struct kubeconfig *kc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "kubeconfig PATH: <what>" */
static void kc_err(struct kubeconfig *kc, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_error_text(kc->err, kc->errlen, "kubeconfig %s: %s", kc->path, msg);
}

/* A plain ~ or null is YAML's null: the same as the key being absent. */
static bool scalar_is_null(const yaml_node_t *n)
{
	const char *v = (const char *)n->data.scalar.value;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* The value node of `key` in a mapping node; NULL when absent or null. */
static yaml_node_t *kc_get(struct kubeconfig *kc, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *pair;
	yaml_node_t *k, *v;

	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
		k = yaml_document_get_node(&kc->doc, pair->key);
		if (!k || k->type != YAML_SCALAR_NODE || strcmp((const char *)k->data.scalar.value, key))
			continue;
		v = yaml_document_get_node(&kc->doc, pair->value);
		if (v && v->type == YAML_SCALAR_NODE && scalar_is_null(v))
			return NULL;
		return v;
	}
	return NULL;
}

/*
 * The string value of `key`: *out NULL when absent, null or "". -EINVAL with
 * a message when it is not a string. `where` names the map for messages.
 */
static int kc_str(struct kubeconfig *kc, yaml_node_t *map, const char *key, const char *where,
		  const char **out)
{
	yaml_node_t *v = kc_get(kc, map, key);

	*out = NULL;
	if (!v)
		return 0;
	if (v->type != YAML_SCALAR_NODE) {
		kc_err(kc, "%s%s%s must be a string", where, where[0] ? ": " : "", key);
		return -EINVAL;
	}
	/* an escaped \0 would silently cut the value short */
	if (strlen((const char *)v->data.scalar.value) != v->data.scalar.length) {
		kc_err(kc, "%s%s%s contains a NUL character", where, where[0] ? ": " : "", key);
		return -EINVAL;
	}
	if (v->data.scalar.length)
		*out = (const char *)v->data.scalar.value;
	return 0;
}

static bool yaml_true(const char *v)
{
	/* what go-yaml (YAML 1.1), which kubectl uses, reads as true */
	static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "YES",
					   "on", "On", "ON", "y", "Y" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!strcmp(v, yes[i]))
			return true;
	return false;
}

/*
 * The entry of a named list (contexts, clusters, users: "- name: N\n  X: {...}")
 * whose name is `name`, returning its `field` mapping. NULL when not found.
 */
static yaml_node_t *kc_find(struct kubeconfig *kc, const char *list, const char *field, const char *name)
{
	yaml_node_t *root = yaml_document_get_root_node(&kc->doc);
	yaml_node_t *seq = kc_get(kc, root, list);
	yaml_node_item_t *item;
	yaml_node_t *entry, *n, *v;

	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return NULL;
	for (item = seq->data.sequence.items.start; item < seq->data.sequence.items.top; item++) {
		entry = yaml_document_get_node(&kc->doc, *item);
		n = kc_get(kc, entry, "name");
		if (!n || n->type != YAML_SCALAR_NODE || strcmp((const char *)n->data.scalar.value, name))
			continue;
		v = kc_get(kc, entry, field);
		/* "- name: N" with no body is an empty entry, not a missing one */
		if (!v)
			return entry;
		return v;
	}
	return NULL;
}

/* Relative paths in a kubeconfig are relative to its directory, as kubectl does. */
static int kc_path(struct kubeconfig *kc, const char *where, const char *key, const char *p,
		   char *out, size_t outlen)
{
	int n;

	if (p[0] == '/')
		n = snprintf(out, outlen, "%s", p);
	else
		n = snprintf(out, outlen, "%s/%s", kc->dir, p);
	if (n < 0 || (size_t)n >= outlen) {
		kc_err(kc, "%s: %s path is too long", where, key);
		return -ENAMETOOLONG;
	}
	return 0;
}

static bool looks_like_pem(const char *buf, size_t len)
{
	return memmem(buf, len, "-----BEGIN ", 11) != NULL;
}

/*
 * PEM bytes from `key`-data (base64) or `key` (a file), the -data winning as
 * in client-go. *out stays NULL when neither is set.
 */
static int kc_pem(struct kubeconfig *kc, yaml_node_t *map, const char *where, const char *key,
		  char **out, size_t *outlen)
{
	char data_key[64], path[PATH_MAX];
	const char *data, *file;
	int ret;

	*out = NULL;
	*outlen = 0;
	snprintf(data_key, sizeof(data_key), "%s-data", key);
	ret = kc_str(kc, map, data_key, where, &data);
	if (!ret)
		ret = kc_str(kc, map, key, where, &file);
	if (ret)
		return ret;
	if (data) {
		ret = base64_decode(data, strlen(data), out, outlen);
		if (ret == -ENOMEM) {
			kc_err(kc, "%s: %s: out of memory", where, data_key);
			return ret;
		}
		if (ret) {
			kc_err(kc, "%s: %s is not valid base64", where, data_key);
			return ret;
		}
		if (!looks_like_pem(*out, *outlen)) {
			kc_err(kc, "%s: %s does not decode to PEM (no \"-----BEGIN\" line)", where, data_key);
			goto bad;
		}
		return 0;
	}
	if (!file)
		return 0;
	ret = kc_path(kc, where, key, file, path, sizeof(path));
	if (ret)
		return ret;
	ret = read_file(path, K8S_PEM_MAX, out, outlen);
	if (ret == -EFBIG) {
		kc_err(kc, "%s: %s %s is larger than %d bytes: not a PEM file", where, key, path, K8S_PEM_MAX);
		return ret;
	}
	if (ret) {
		kc_err(kc, "%s: cannot read %s %s: %s", where, key, path, strerror(-ret));
		return ret;
	}
	if (!looks_like_pem(*out, *outlen)) {
		kc_err(kc, "%s: %s %s is not PEM (no \"-----BEGIN\" line)", where, key, path);
		goto bad;
	}
	return 0;
bad:
	secret_free(out, *outlen);
	*outlen = 0;
	return -EINVAL;
}

static int kc_cluster(struct kubeconfig *kc, struct k8s_config *cfg, const char *name)
{
	yaml_node_t *cl = kc_find(kc, "clusters", "cluster", name);
	const char *server, *ca_file, *ca_data, *insecure;
	char where[300];
	size_t len;
	int ret;

	if (!cl) {
		kc_err(kc, "the current context names cluster \"%s\", which is not in clusters", name);
		return -EINVAL;
	}
	snprintf(where, sizeof(where), "cluster \"%s\"", name);
	ret = kc_str(kc, cl, "insecure-skip-tls-verify", where, &insecure);
	if (ret)
		return ret;
	if (insecure && yaml_true(insecure)) {
		kc_err(kc, "%s sets insecure-skip-tls-verify, but ksight always verifies the API "
		       "server's TLS certificate; remove it and set certificate-authority or "
		       "certificate-authority-data", where);
		return -EINVAL;
	}
	/* ignoring these would turn into a puzzling TLS or connection error later */
	if (kc_get(kc, cl, "tls-server-name")) {
		kc_err(kc, "%s sets tls-server-name, which is not supported; set server to a name "
		       "the API server's certificate is for", where);
		return -ENOTSUP;
	}
	if (kc_get(kc, cl, "proxy-url")) {
		kc_err(kc, "%s sets proxy-url, which is not supported; use the HTTPS_PROXY "
		       "environment variable instead", where);
		return -ENOTSUP;
	}
	ret = kc_str(kc, cl, "server", where, &server);
	if (ret)
		return ret;
	if (!server) {
		kc_err(kc, "%s has no server", where);
		return -EINVAL;
	}
	if (strncasecmp(server, "https://", 8)) {
		kc_err(kc, "%s: server \"%s\" is not https://; ksight only talks to the API server "
		       "over verified TLS", where, server);
		return -EINVAL;
	}
	len = strlen(server);
	while (len > 8 && server[len - 1] == '/')
		len--;
	if (len >= sizeof(cfg->server)) {
		kc_err(kc, "%s: server URL is too long", where);
		return -ENAMETOOLONG;
	}
	memcpy(cfg->server, server, len);
	cfg->server[len] = '\0';

	ret = kc_str(kc, cl, "certificate-authority-data", where, &ca_data);
	if (!ret)
		ret = kc_str(kc, cl, "certificate-authority", where, &ca_file);
	if (ret)
		return ret;
	if (ca_data)
		return kc_pem(kc, cl, where, "certificate-authority", &cfg->ca_pem, &cfg->ca_pem_len);
	if (!ca_file)
		return 0; /* the system CA store: an API server with a public certificate */
	ret = kc_path(kc, where, "certificate-authority", ca_file, cfg->ca_file, sizeof(cfg->ca_file));
	if (ret)
		return ret;
	/* curl opens it on each new connection; say now if it cannot */
	if (access(cfg->ca_file, R_OK)) {
		ret = -errno;
		kc_err(kc, "%s: cannot read certificate-authority %s: %s", where, cfg->ca_file, strerror(-ret));
		return ret;
	}
	return 0;
}

static int kc_user(struct kubeconfig *kc, struct k8s_config *cfg, const char *name)
{
	yaml_node_t *u = kc_find(kc, "users", "user", name);
	const char *token, *token_file, *s;
	char where[300];
	int ret;

	if (!u) {
		kc_err(kc, "the current context names user \"%s\", which is not in users", name);
		return -EINVAL;
	}
	snprintf(where, sizeof(where), "user \"%s\"", name);
	if (kc_get(kc, u, "exec")) {
		kc_err(kc, "%s runs an exec credential plugin: exec credential plugins are not "
		       "supported; use a token or client certificate", where);
		return -ENOTSUP;
	}
	if (kc_get(kc, u, "auth-provider")) {
		kc_err(kc, "%s uses an auth-provider: auth-provider plugins are not supported; "
		       "use a token or client certificate", where);
		return -ENOTSUP;
	}
	ret = kc_str(kc, u, "username", where, &s);
	if (ret)
		return ret;
	if (s) {
		kc_err(kc, "%s uses basic authentication (username/password), which is not "
		       "supported; use a token or client certificate", where);
		return -ENOTSUP;
	}

	ret = kc_str(kc, u, "token", where, &token);
	if (!ret)
		ret = kc_str(kc, u, "tokenFile", where, &token_file);
	if (ret)
		return ret;
	if (token) {
		cfg->token = strdup(token);
		if (!cfg->token) {
			kc_err(kc, "out of memory");
			return -ENOMEM;
		}
	}
	/* as client-go: a tokenFile is re-read and wins over a fixed token */
	if (token_file) {
		ret = kc_path(kc, where, "tokenFile", token_file, cfg->token_file, sizeof(cfg->token_file));
		if (ret)
			return ret;
		if (access(cfg->token_file, R_OK)) {
			ret = -errno;
			kc_err(kc, "%s: cannot read tokenFile %s: %s", where, cfg->token_file, strerror(-ret));
			return ret;
		}
	}

	ret = kc_pem(kc, u, where, "client-certificate", &cfg->client_cert_pem, &cfg->client_cert_pem_len);
	if (ret)
		return ret;
	ret = kc_pem(kc, u, where, "client-key", &cfg->client_key_pem, &cfg->client_key_pem_len);
	if (ret)
		return ret;
	if (!cfg->client_cert_pem != !cfg->client_key_pem) {
		kc_err(kc, "%s has a client %s but no client %s; both are needed", where,
		       cfg->client_cert_pem ? "certificate" : "key",
		       cfg->client_cert_pem ? "key" : "certificate");
		return -EINVAL;
	}
	return 0;
}

static int kc_dir(struct kubeconfig *kc)
{
	char cwd[PATH_MAX];
	const char *slash = strrchr(kc->path, '/');
	int n;

	if (slash == kc->path) {
		snprintf(kc->dir, sizeof(kc->dir), "/");
		return 0;
	}
	if (kc->path[0] == '/') {
		n = snprintf(kc->dir, sizeof(kc->dir), "%.*s", (int)(slash - kc->path), kc->path);
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return -errno;
		if (slash)
			n = snprintf(kc->dir, sizeof(kc->dir), "%s/%.*s", cwd, (int)(slash - kc->path), kc->path);
		else
			n = snprintf(kc->dir, sizeof(kc->dir), "%s", cwd);
	}
	return n < 0 || (size_t)n >= sizeof(kc->dir) ? -ENAMETOOLONG : 0;
}

static int kc_load(struct kubeconfig *kc, struct k8s_config *cfg)
{
	yaml_node_t *root, *ctx;
	const char *current, *cluster, *user, *ns;
	char where[300];
	int ret;

	root = yaml_document_get_root_node(&kc->doc);
	if (!root) {
		kc_err(kc, "the file is empty");
		return -EINVAL;
	}
	if (root->type != YAML_MAPPING_NODE) {
		kc_err(kc, "not a kubeconfig (the top level is not a mapping)");
		return -EINVAL;
	}
	ret = kc_str(kc, root, "current-context", "", &current);
	if (ret)
		return ret;
	if (!current) {
		kc_err(kc, "no current-context is set; pick one with "
		       "`kubectl config use-context NAME --kubeconfig FILE`");
		return -EINVAL;
	}
	ctx = kc_find(kc, "contexts", "context", current);
	if (!ctx) {
		kc_err(kc, "current-context is \"%s\", but there is no context of that name", current);
		return -EINVAL;
	}
	snprintf(where, sizeof(where), "context \"%s\"", current);
	ret = kc_str(kc, ctx, "cluster", where, &cluster);
	if (!ret)
		ret = kc_str(kc, ctx, "user", where, &user);
	if (!ret)
		ret = kc_str(kc, ctx, "namespace", where, &ns);
	if (ret)
		return ret;
	if (!cluster) {
		kc_err(kc, "%s names no cluster", where);
		return -EINVAL;
	}
	if (ns && strlen(ns) >= sizeof(cfg->namespace_)) {
		kc_err(kc, "%s: namespace is too long", where);
		return -EINVAL;
	}
	if (ns)
		snprintf(cfg->namespace_, sizeof(cfg->namespace_), "%s", ns);
	ret = kc_cluster(kc, cfg, cluster);
	if (ret)
		return ret;
	/* a context without a user is anonymous: allowed, the server decides */
	if (user)
		ret = kc_user(kc, cfg, user);
	return ret;
}

int k8s_config_from_kubeconfig(struct k8s_config *cfg, const char *path, char *err, size_t errlen)
{
	struct kubeconfig kc = { .path = path, .err = err, .errlen = errlen };
	yaml_parser_t parser;
	FILE *f;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		if (ret == -ENOENT)
			set_error_text(err, errlen, "kubeconfig %s does not exist", path);
		else
			set_error_text(err, errlen, "cannot read kubeconfig %s: %s", path, strerror(-ret));
		return ret;
	}
	ret = kc_dir(&kc);
	if (ret) {
		fclose(f);
		set_error_text(err, errlen, "kubeconfig %s: cannot make its directory absolute: %s", path, strerror(-ret));
		return ret;
	}
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		set_error_text(err, errlen, "kubeconfig %s: out of memory", path);
		return -ENOMEM;
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &kc.doc)) {
		if (parser.error == YAML_MEMORY_ERROR) {
			set_error_text(err, errlen, "kubeconfig %s: out of memory", path);
			ret = -ENOMEM;
		} else if (parser.error == YAML_READER_ERROR) {
			set_error_text(err, errlen, "kubeconfig %s is not valid YAML: %s at byte %zu", path,
			       parser.problem ? parser.problem : "unreadable", parser.problem_offset);
			ret = -EINVAL;
		} else {
			char ctx[160] = "";

			/* where the unclosed thing began is often where the mistake is */
			if (parser.context)
				snprintf(ctx, sizeof(ctx), " %s that starts at line %zu", parser.context,
					 parser.context_mark.line + 1);
			set_error_text(err, errlen, "kubeconfig %s is not valid YAML: line %zu column %zu: %s%s",
			       path, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			       parser.problem ? parser.problem : "syntax error", ctx);
			ret = -EINVAL;
		}
		yaml_parser_delete(&parser);
		fclose(f);
		return ret;
	}
	yaml_parser_delete(&parser);
	fclose(f);

	ret = kc_load(&kc, cfg);
	yaml_document_delete(&kc.doc);
	if (ret) {
		k8s_config_free(cfg);
		memset(cfg, 0, sizeof(*cfg));
		return ret;
	}
	snprintf(cfg->source, sizeof(cfg->source), "kubeconfig %s", path);
	return 0;
}
