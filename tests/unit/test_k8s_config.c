/*
 * Kubernetes API configuration: base64, the in-cluster service account
 * (a temporary service account directory and the environment), and
 * kubeconfig files written to a temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base64.h"
#include "k8s_client.h"

#define CA_PEM \
	"-----BEGIN CERTIFICATE-----\n" \
	"MIIBfakeCAcertificateForTestsOnly0123456789abcdefghijklmnopqrstuv\n" \
	"-----END CERTIFICATE-----\n"
#define CERT_PEM \
	"-----BEGIN CERTIFICATE-----\n" \
	"MIIBfakeClientCertificate0123456789\n" \
	"-----END CERTIFICATE-----\n"
#define KEY_PEM \
	"-----BEGIN PRIVATE KEY-----\n" \
	"MIGHfakeClientKey0123456789\n" \
	"-----END PRIVATE KEY-----\n"

static char tmpdir[64];

/* ---- helpers ---- */

static void write_file(const char *name, const char *content)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(content, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void make_dir(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	assert_int_equal(mkdir(path, 0755), 0);
}

static char *tmp_path(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int setup_tmpdir(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ksight-k8s-config-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	/* the permission test drops to an unprivileged user that must get in */
	return chmod(tmpdir, 0755);
}

static int teardown_tmpdir(void **state)
{
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *b64_encode(const unsigned char *in, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(len / 3 * 4 + 5), *p = out;
	size_t i;

	assert_non_null(out);
	for (i = 0; i + 2 < len; i += 3) {
		*p++ = tab[in[i] >> 2];
		*p++ = tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		*p++ = tab[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		*p++ = tab[in[i + 2] & 63];
	}
	if (len - i == 1) {
		*p++ = tab[in[i] >> 2];
		*p++ = tab[(in[i] & 3) << 4];
		*p++ = '=';
		*p++ = '=';
	} else if (len - i == 2) {
		*p++ = tab[in[i] >> 2];
		*p++ = tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		*p++ = tab[(in[i + 1] & 15) << 2];
		*p++ = '=';
	}
	*p = '\0';
	return out;
}

static char *b64s(const char *s)
{
	return b64_encode((const unsigned char *)s, strlen(s));
}

/* ---- base64 ---- */

static void expect_decode(const char *in, const char *want)
{
	char *out = NULL;
	size_t len = 99;

	assert_int_equal(base64_decode(in, strlen(in), &out, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	assert_int_equal(out[len], '\0');
	free(out);
}

static void expect_invalid(const char *in)
{
	char *out = (char *)1;
	size_t len = 99;

	assert_int_equal(base64_decode(in, strlen(in), &out, &len), -EINVAL);
	assert_null(out);
	assert_int_equal(len, 0);
}

static void test_base64_rfc4648(void **state)
{
	/* RFC 4648 section 10 */
	expect_decode("", "");
	expect_decode("Zg==", "f");
	expect_decode("Zm8=", "fo");
	expect_decode("Zm9v", "foo");
	expect_decode("Zm9vYg==", "foob");
	expect_decode("Zm9vYmE=", "fooba");
	expect_decode("Zm9vYmFy", "foobar");
}

static void test_base64_lenient(void **state)
{
	/* padding is optional */
	expect_decode("Zg", "f");
	expect_decode("Zm8", "fo");
	expect_decode("Zm9vYg", "foob");
	expect_decode("Zm9vYmE", "fooba");
	/* line breaks as in PEM and kubeconfigs wrapped by hand */
	expect_decode("Zm9v\nYmFy\n", "foobar");
	expect_decode("  Zm 9v\tYg==\r\n", "foob");
	expect_decode("Zm9vYg=\n=", "foob");
	expect_decode("\n\n", "");
}

static void test_base64_invalid(void **state)
{
	char *out = NULL;
	size_t len;

	expect_invalid("Zm9v!");
	expect_invalid("Z");		/* 6 bits */
	expect_invalid("Zm9vY");	/* 30 bits */
	expect_invalid("Zg=");		/* too little padding */
	expect_invalid("Zg===");	/* too much */
	expect_invalid("Zm9v=");	/* padding where none belongs */
	expect_invalid("Zg==Zg==");	/* data after padding */
	expect_invalid("=");
	expect_invalid("-_8=");		/* the URL-safe alphabet is not this one */
	expect_invalid("Zm9v\x80");
	/* an embedded NUL is not whitespace */
	assert_int_equal(base64_decode("Zm\0v", 4, &out, &len), -EINVAL);
	/* inlen bounds the input: what follows is not read */
	assert_int_equal(base64_decode("Zm9v!!!!", 4, &out, &len), 0);
	assert_string_equal(out, "foo");
	free(out);
}

static void test_base64_roundtrip(void **state)
{
	unsigned char in[300];
	char *enc, *out;
	size_t i, n, len;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 37 + 11);
	for (n = 0; n <= sizeof(in); n += 7) {
		enc = b64_encode(in, n);
		assert_int_equal(base64_decode(enc, strlen(enc), &out, &len), 0);
		assert_int_equal(len, n);
		if (n)
			assert_memory_equal(out, in, n);
		free(out);
		free(enc);
	}
}

/* ---- in-cluster ---- */

static void make_sa_dir(const char *name, int token, int ca, const char *ns)
{
	char path[128];

	make_dir(name);
	if (token) {
		snprintf(path, sizeof(path), "%s/token", name);
		write_file(path, "eyJhbGciOiJSUzI1NiJ9.payload.sig\n");
		assert_int_equal(chmod(tmp_path(path), 0600), 0);
	}
	if (ca) {
		snprintf(path, sizeof(path), "%s/ca.crt", name);
		write_file(path, CA_PEM);
	}
	if (ns) {
		snprintf(path, sizeof(path), "%s/namespace", name);
		write_file(path, ns);
	}
}

static void set_service_env(const char *host, const char *port)
{
	if (host)
		setenv("KUBERNETES_SERVICE_HOST", host, 1);
	else
		unsetenv("KUBERNETES_SERVICE_HOST");
	if (port)
		setenv("KUBERNETES_SERVICE_PORT", port, 1);
	else
		unsetenv("KUBERNETES_SERVICE_PORT");
}

static void test_in_cluster_ipv4(void **state)
{
	struct k8s_config cfg;
	char err[512] = "", want[PATH_MAX];
	char *sa;

	make_sa_dir("sa4", 1, 1, "kube-system\n");
	sa = strdup(tmp_path("sa4"));
	set_service_env("10.96.0.1", "443");
	assert_int_equal(k8s_config_in_cluster(&cfg, sa, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(cfg.server, "https://10.96.0.1:443");
	snprintf(want, sizeof(want), "%s/token", sa);
	assert_string_equal(cfg.token_file, want);
	snprintf(want, sizeof(want), "%s/ca.crt", sa);
	assert_string_equal(cfg.ca_file, want);
	assert_null(cfg.token);
	assert_null(cfg.ca_pem);
	assert_null(cfg.client_cert_pem);
	assert_string_equal(cfg.namespace_, "kube-system");
	assert_string_equal(cfg.source, "in-cluster");
	k8s_config_free(&cfg);
	free(sa);
}

static void test_in_cluster_ipv6(void **state)
{
	struct k8s_config cfg;
	char err[512] = "";
	char *sa;

	make_sa_dir("sa6", 1, 1, NULL);
	sa = strdup(tmp_path("sa6"));
	set_service_env("fd00:10:96::1", "6443");
	assert_int_equal(k8s_config_in_cluster(&cfg, sa, err, sizeof(err)), 0);
	assert_string_equal(cfg.server, "https://[fd00:10:96::1]:6443");
	/* the namespace file is optional */
	assert_string_equal(cfg.namespace_, "");
	k8s_config_free(&cfg);

	/* already bracketed: not twice */
	set_service_env("[::1]", "443");
	assert_int_equal(k8s_config_in_cluster(&cfg, sa, err, sizeof(err)), 0);
	assert_string_equal(cfg.server, "https://[::1]:443");
	k8s_config_free(&cfg);
	free(sa);
}

static void test_in_cluster_not_in_cluster(void **state)
{
	struct k8s_config cfg;
	char err[512] = "";

	/* not even the service account directory is looked at */
	set_service_env(NULL, NULL);
	assert_int_equal(k8s_config_in_cluster(&cfg, "/nonexistent", err, sizeof(err)), -ENOENT);
	set_service_env("10.96.0.1", NULL);
	assert_int_equal(k8s_config_in_cluster(&cfg, "/nonexistent", err, sizeof(err)), -ENOENT);
	set_service_env(NULL, "443");
	assert_int_equal(k8s_config_in_cluster(&cfg, "/nonexistent", err, sizeof(err)), -ENOENT);
	set_service_env("", "443");
	assert_int_equal(k8s_config_in_cluster(&cfg, "/nonexistent", err, sizeof(err)), -ENOENT);
	set_service_env("10.96.0.1", "");
	assert_int_equal(k8s_config_in_cluster(&cfg, "/nonexistent", err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "");
}

static void test_in_cluster_missing_token(void **state)
{
	struct k8s_config cfg;
	char err[512] = "", want[PATH_MAX];
	char *sa;
	int ret;

	make_sa_dir("sa-notoken", 0, 1, "default");
	sa = strdup(tmp_path("sa-notoken"));
	set_service_env("10.96.0.1", "443");
	ret = k8s_config_in_cluster(&cfg, sa, err, sizeof(err));
	/* not -ENOENT: that would read as "not in a cluster" and lose the message */
	assert_int_equal(ret, -EACCES);
	snprintf(want, sizeof(want), "%s/token", sa);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "does not exist"));
	assert_non_null(strstr(err, "is automountServiceAccountToken disabled?"));
	assert_string_equal(cfg.server, "");
	free(sa);
}

static void test_in_cluster_missing_ca(void **state)
{
	struct k8s_config cfg;
	char err[512] = "", want[PATH_MAX];
	char *sa;

	make_sa_dir("sa-noca", 1, 0, NULL);
	sa = strdup(tmp_path("sa-noca"));
	set_service_env("10.96.0.1", "443");
	assert_int_equal(k8s_config_in_cluster(&cfg, sa, err, sizeof(err)), -EACCES);
	snprintf(want, sizeof(want), "%s/ca.crt", sa);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "CA certificate"));
	free(sa);
}

static void test_in_cluster_unreadable_token(void **state)
{
	char err[512] = "", msg[600], sa[256];
	int pfd[2], status, ret;
	ssize_t n;
	pid_t pid;

	make_sa_dir("sa-perm", 1, 1, NULL);
	/* not on the heap: the child exits without freeing */
	snprintf(sa, sizeof(sa), "%s", tmp_path("sa-perm"));
	assert_int_equal(chmod(tmp_path("sa-perm"), 0755), 0);
	set_service_env("10.96.0.1", "443");
	if (geteuid() != 0) {
		struct k8s_config cfg;

		assert_int_equal(chmod(tmp_path("sa-perm/token"), 0), 0);
		assert_int_equal(k8s_config_in_cluster(&cfg, sa, err, sizeof(err)), -EACCES);
		assert_non_null(strstr(err, "/sa-perm/token"));
		assert_non_null(strstr(err, "permission denied"));
		return;
	}
	/* root reads anything: try as nobody in a child */
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct k8s_config cfg;

		close(pfd[0]);
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(2);
		ret = k8s_config_in_cluster(&cfg, sa, err, sizeof(err));
		snprintf(msg, sizeof(msg), "%d %s", ret, err);
		if (write(pfd[1], msg, strlen(msg) + 1) < 0)
			_exit(3);
		_exit(0);
	}
	close(pfd[1]);
	n = read(pfd[0], msg, sizeof(msg) - 1);
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(n > 0);
	msg[n] = '\0';
	assert_int_equal(atoi(msg), -EACCES);
	assert_non_null(strstr(msg, "/sa-perm/token"));
	assert_non_null(strstr(msg, "permission denied"));
}

static void test_in_cluster_bad_env(void **state)
{
	struct k8s_config cfg;
	char err[512] = "";

	set_service_env("10.96.0.1", "https");
	assert_int_equal(k8s_config_in_cluster(&cfg, "/nonexistent", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "KUBERNETES_SERVICE_PORT=\"https\""));
	set_service_env("10.96.0.1", "70000");
	assert_int_equal(k8s_config_in_cluster(&cfg, "/nonexistent", err, sizeof(err)), -EINVAL);
	set_service_env("evil/host", "443");
	assert_int_equal(k8s_config_in_cluster(&cfg, "/nonexistent", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));
}

/* ---- kubeconfig ---- */

/* A kubeconfig with one context; `cluster` and `user` are the indented bodies. */
static void write_kubeconfig(const char *name, const char *cluster, const char *user)
{
	char buf[8192];

	snprintf(buf, sizeof(buf),
		 "apiVersion: v1\n"
		 "kind: Config\n"
		 "clusters:\n"
		 "- name: c1\n"
		 "  cluster:\n"
		 "%s"
		 "contexts:\n"
		 "- name: ctx1\n"
		 "  context:\n"
		 "    cluster: c1\n"
		 "    user: u1\n"
		 "    namespace: monitoring\n"
		 "current-context: ctx1\n"
		 "users:\n"
		 "- name: u1\n"
		 "  user:\n"
		 "%s",
		 cluster, user);
	write_file(name, buf);
}

static int load(const char *name, struct k8s_config *cfg, char *err, size_t errlen)
{
	err[0] = '\0';
	return k8s_config_from_kubeconfig(cfg, tmp_path(name), err, errlen);
}

static void test_kubeconfig_token_ca_file(void **state)
{
	struct k8s_config cfg;
	char err[512], want[PATH_MAX + 32];

	write_file("ca.pem", CA_PEM);
	write_kubeconfig("kc-token",
			 "    server: https://api.example.com:6443/\n"
			 "    certificate-authority: ca.pem\n"
			 "    insecure-skip-tls-verify: false\n",
			 "    token: abc.def.ghi\n");
	assert_int_equal(load("kc-token", &cfg, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	/* no trailing slash: paths are appended */
	assert_string_equal(cfg.server, "https://api.example.com:6443");
	/* relative to the kubeconfig's directory */
	assert_string_equal(cfg.ca_file, tmp_path("ca.pem"));
	assert_null(cfg.ca_pem);
	assert_string_equal(cfg.token, "abc.def.ghi");
	assert_string_equal(cfg.token_file, "");
	assert_null(cfg.client_cert_pem);
	assert_null(cfg.client_key_pem);
	assert_string_equal(cfg.namespace_, "monitoring");
	snprintf(want, sizeof(want), "kubeconfig %s", tmp_path("kc-token"));
	assert_string_equal(cfg.source, want);
	k8s_config_free(&cfg);
	assert_null(cfg.token);
}

static void test_kubeconfig_data_fields(void **state)
{
	struct k8s_config cfg;
	char err[512], cluster[2048], user[2048];
	char *ca = b64s(CA_PEM), *cert = b64s(CERT_PEM), *key = b64s(KEY_PEM);

	snprintf(cluster, sizeof(cluster),
		 "    server: https://10.0.0.1\n"
		 "    certificate-authority-data: %s\n"
		 "    certificate-authority: /nonexistent/the-data-wins.pem\n", ca);
	snprintf(user, sizeof(user),
		 "    client-certificate-data: %s\n"
		 "    client-key-data: \"%s\"\n", cert, key);
	write_kubeconfig("kc-data", cluster, user);
	assert_int_equal(load("kc-data", &cfg, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(cfg.server, "https://10.0.0.1");
	assert_int_equal(cfg.ca_pem_len, strlen(CA_PEM));
	assert_string_equal(cfg.ca_pem, CA_PEM);
	assert_string_equal(cfg.ca_file, "");
	assert_int_equal(cfg.client_cert_pem_len, strlen(CERT_PEM));
	assert_string_equal(cfg.client_cert_pem, CERT_PEM);
	assert_int_equal(cfg.client_key_pem_len, strlen(KEY_PEM));
	assert_string_equal(cfg.client_key_pem, KEY_PEM);
	assert_null(cfg.token);
	k8s_config_free(&cfg);
	free(ca);
	free(cert);
	free(key);
}

static void test_kubeconfig_cert_files(void **state)
{
	struct k8s_config cfg;
	char err[512], user[2048];

	make_dir("certs");
	write_file("certs/client.crt", CERT_PEM);
	write_file("certs/client.key", KEY_PEM);
	write_file("certs/ca.crt", CA_PEM);
	snprintf(user, sizeof(user),
		 "    client-certificate: certs/client.crt\n"
		 "    client-key: %s\n", tmp_path("certs/client.key"));
	write_kubeconfig("kc-certs",
			 "    server: https://[fd00::1]:6443\n"
			 "    certificate-authority: ./certs/ca.crt\n", user);
	assert_int_equal(load("kc-certs", &cfg, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(cfg.server, "https://[fd00::1]:6443");
	assert_string_equal(cfg.ca_file, tmp_path("./certs/ca.crt"));
	assert_string_equal(cfg.client_cert_pem, CERT_PEM);
	assert_int_equal(cfg.client_cert_pem_len, strlen(CERT_PEM));
	assert_string_equal(cfg.client_key_pem, KEY_PEM);
	k8s_config_free(&cfg);

	/* a certificate without its key */
	write_kubeconfig("kc-nokey", "    server: https://a\n", "    client-certificate: certs/client.crt\n");
	assert_int_equal(load("kc-nokey", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "client certificate but no client key"));

	/* a missing file is named */
	write_kubeconfig("kc-missing", "    server: https://a\n",
			 "    client-certificate: certs/nope.crt\n    client-key: certs/client.key\n");
	assert_int_equal(load("kc-missing", &cfg, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, tmp_path("certs/nope.crt")));

	/* not PEM */
	write_file("certs/der.crt", "\x30\x82\x01\x0a");
	write_kubeconfig("kc-der", "    server: https://a\n    certificate-authority: certs/der.crt\n",
			 "    client-certificate: certs/der.crt\n    client-key: certs/client.key\n");
	assert_int_equal(load("kc-der", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not PEM"));
}

static void test_kubeconfig_relative_path(void **state)
{
	struct k8s_config cfg;
	char err[512], cwd[PATH_MAX];

	make_dir("rel");
	make_dir("rel/sub");
	write_file("rel/sub/ca.crt", CA_PEM);
	write_kubeconfig("rel/config", "    server: https://a:1\n    certificate-authority: sub/ca.crt\n",
			 "    token: t\n");
	/* a kubeconfig given by a relative path: the CA path still ends up absolute */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tmpdir), 0);
	assert_int_equal(k8s_config_from_kubeconfig(&cfg, "rel/config", err, sizeof(err)), 0);
	assert_int_equal(chdir(cwd), 0);
	assert_string_equal(cfg.ca_file, tmp_path("rel/sub/ca.crt"));
	k8s_config_free(&cfg);
}

static void test_kubeconfig_token_file(void **state)
{
	struct k8s_config cfg;
	char err[512];

	write_file("kc-token-file", "the-token\n");
	write_kubeconfig("kc-tokenfile", "    server: https://a\n",
			 "    token: fixed\n    tokenFile: kc-token-file\n");
	assert_int_equal(load("kc-tokenfile", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.token_file, tmp_path("kc-token-file"));
	/* both kept: the client prefers the file, as client-go does */
	assert_string_equal(cfg.token, "fixed");
	k8s_config_free(&cfg);

	write_kubeconfig("kc-tokenfile-missing", "    server: https://a\n", "    tokenFile: /nonexistent/token\n");
	assert_int_equal(load("kc-tokenfile-missing", &cfg, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "tokenFile /nonexistent/token"));
}

static void test_kubeconfig_exec_rejected(void **state)
{
	struct k8s_config cfg;
	char err[512];

	write_kubeconfig("kc-exec", "    server: https://a\n",
			 "    exec:\n"
			 "      apiVersion: client.authentication.k8s.io/v1beta1\n"
			 "      command: aws\n"
			 "      args: [eks, get-token, --cluster-name, prod]\n");
	assert_int_equal(load("kc-exec", &cfg, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "exec credential plugins are not supported; use a token or client certificate"));
	assert_non_null(strstr(err, "user \"u1\""));
	assert_null(cfg.token);

	write_kubeconfig("kc-authprovider", "    server: https://a\n",
			 "    auth-provider:\n      name: gcp\n");
	assert_int_equal(load("kc-authprovider", &cfg, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "auth-provider plugins are not supported"));

	write_kubeconfig("kc-basic", "    server: https://a\n", "    username: admin\n    password: x\n");
	assert_int_equal(load("kc-basic", &cfg, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "basic authentication"));
}

static void test_kubeconfig_insecure_rejected(void **state)
{
	struct k8s_config cfg;
	char err[512];

	write_kubeconfig("kc-insecure", "    server: https://a\n    insecure-skip-tls-verify: true\n",
			 "    token: t\n");
	assert_int_equal(load("kc-insecure", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "insecure-skip-tls-verify"));
	assert_non_null(strstr(err, "always verifies"));

	write_kubeconfig("kc-tlsname", "    server: https://10.0.0.1\n    tls-server-name: kubernetes\n",
			 "    token: t\n");
	assert_int_equal(load("kc-tlsname", &cfg, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "tls-server-name, which is not supported"));

	write_kubeconfig("kc-proxy", "    server: https://a\n    proxy-url: http://proxy:3128\n", "    token: t\n");
	assert_int_equal(load("kc-proxy", &cfg, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "HTTPS_PROXY"));

	write_kubeconfig("kc-http", "    server: http://a:8080\n", "    token: t\n");
	assert_int_equal(load("kc-http", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not https://"));

	write_kubeconfig("kc-noserver", "    certificate-authority-data: eA==\n", "    token: t\n");
	assert_int_equal(load("kc-noserver", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "cluster \"c1\" has no server"));

	write_kubeconfig("kc-badb64", "    server: https://a\n    certificate-authority-data: \"not base64!\"\n",
			 "    token: t\n");
	assert_int_equal(load("kc-badb64", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "certificate-authority-data is not valid base64"));
}

static void test_kubeconfig_contexts(void **state)
{
	struct k8s_config cfg;
	char err[512];

	write_file("kc-multi",
		   "apiVersion: v1\n"
		   "kind: Config\n"
		   "preferences: {}\n"
		   "clusters:\n"
		   "- name: dev\n"
		   "  cluster: {server: 'https://dev:6443'}\n"
		   "- name: prod\n"
		   "  cluster:\n"
		   "    server: https://prod:6443\n"
		   "users:\n"
		   "- name: dev-user\n"
		   "  user: {token: dev-token}\n"
		   "- name: prod-user\n"
		   "  user:\n"
		   "    token: prod-token\n"
		   "contexts:\n"
		   "- name: dev\n"
		   "  context: {cluster: dev, user: dev-user, namespace: dev-ns}\n"
		   "- name: prod\n"
		   "  context:\n"
		   "    cluster: prod\n"
		   "    user: prod-user\n"
		   "current-context: \"prod\"\n");
	assert_int_equal(load("kc-multi", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.server, "https://prod:6443");
	assert_string_equal(cfg.token, "prod-token");
	assert_string_equal(cfg.namespace_, "");
	assert_null(cfg.ca_pem);
	assert_string_equal(cfg.ca_file, "");
	k8s_config_free(&cfg);
}

static void test_kubeconfig_missing_names(void **state)
{
	struct k8s_config cfg;
	char err[512];

	write_file("kc-nocurrent",
		   "clusters:\n- name: a\n  cluster: {server: https://a}\n"
		   "contexts:\n- name: a\n  context: {cluster: a}\n");
	assert_int_equal(load("kc-nocurrent", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no current-context"));
	assert_non_null(strstr(err, tmp_path("kc-nocurrent")));

	write_file("kc-nullcurrent", "current-context: ~\ncontexts: []\n");
	assert_int_equal(load("kc-nullcurrent", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no current-context"));

	write_file("kc-nocontext",
		   "current-context: staging\n"
		   "contexts:\n- name: prod\n  context: {cluster: a}\n");
	assert_int_equal(load("kc-nocontext", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "current-context is \"staging\", but there is no context of that name"));

	write_file("kc-nocluster",
		   "current-context: a\n"
		   "contexts:\n- name: a\n  context: {cluster: gone, user: u}\n"
		   "clusters:\n- name: other\n  cluster: {server: https://a}\n");
	assert_int_equal(load("kc-nocluster", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "cluster \"gone\", which is not in clusters"));

	write_file("kc-nouser",
		   "current-context: a\n"
		   "contexts:\n- name: a\n  context: {cluster: c, user: gone}\n"
		   "clusters:\n- name: c\n  cluster: {server: https://a}\n"
		   "users:\n- name: other\n  user: {token: t}\n");
	assert_int_equal(load("kc-nouser", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "user \"gone\", which is not in users"));
	/* nothing half-filled is left behind */
	assert_string_equal(cfg.server, "");

	/* a context without a user is anonymous */
	write_file("kc-anon",
		   "current-context: a\n"
		   "contexts:\n- name: a\n  context: {cluster: c}\n"
		   "clusters:\n- name: c\n  cluster: {server: https://a}\n");
	assert_int_equal(load("kc-anon", &cfg, err, sizeof(err)), 0);
	assert_null(cfg.token);
	k8s_config_free(&cfg);
}

static void test_kubeconfig_bad_files(void **state)
{
	struct k8s_config cfg;
	char err[512];

	assert_int_equal(load("does-not-exist", &cfg, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "does not exist"));
	assert_non_null(strstr(err, tmp_path("does-not-exist")));

	write_file("kc-badyaml",
		   "apiVersion: v1\n"
		   "clusters:\n"
		   "- name: a\n"
		   "  cluster: {server: https://a\n"
		   "current-context: a\n");
	assert_int_equal(load("kc-badyaml", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not valid YAML: line "));

	write_file("kc-badyaml2", "apiVersion: v1\nkind: Config\n  users: x\n");
	assert_int_equal(load("kc-badyaml2", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not valid YAML: line 3 "));

	write_file("kc-empty", "");
	assert_int_equal(load("kc-empty", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "empty"));

	write_file("kc-list", "- a\n- b\n");
	assert_int_equal(load("kc-list", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a kubeconfig"));

	write_file("kc-wrongtype", "current-context: [a, b]\n");
	assert_int_equal(load("kc-wrongtype", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "current-context must be a string"));

	/* a directory is not a file */
	assert_int_equal(load("certs", &cfg, err, sizeof(err)) < 0, 1);
	assert_string_not_equal(err, "");
}

int main(void)
{
	const struct CMUnitTest base64_tests[] = {
		cmocka_unit_test(test_base64_rfc4648),
		cmocka_unit_test(test_base64_lenient),
		cmocka_unit_test(test_base64_invalid),
		cmocka_unit_test(test_base64_roundtrip),
	};
	const struct CMUnitTest in_cluster_tests[] = {
		cmocka_unit_test(test_in_cluster_ipv4),
		cmocka_unit_test(test_in_cluster_ipv6),
		cmocka_unit_test(test_in_cluster_not_in_cluster),
		cmocka_unit_test(test_in_cluster_missing_token),
		cmocka_unit_test(test_in_cluster_missing_ca),
		cmocka_unit_test(test_in_cluster_unreadable_token),
		cmocka_unit_test(test_in_cluster_bad_env),
	};
	const struct CMUnitTest kubeconfig_tests[] = {
		cmocka_unit_test(test_kubeconfig_token_ca_file),
		cmocka_unit_test(test_kubeconfig_data_fields),
		cmocka_unit_test(test_kubeconfig_cert_files),
		cmocka_unit_test(test_kubeconfig_relative_path),
		cmocka_unit_test(test_kubeconfig_token_file),
		cmocka_unit_test(test_kubeconfig_exec_rejected),
		cmocka_unit_test(test_kubeconfig_insecure_rejected),
		cmocka_unit_test(test_kubeconfig_contexts),
		cmocka_unit_test(test_kubeconfig_missing_names),
		cmocka_unit_test(test_kubeconfig_bad_files),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("k8s_config base64", base64_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("k8s_config in-cluster", in_cluster_tests, setup_tmpdir, teardown_tmpdir);
	failed += cmocka_run_group_tests_name("k8s_config kubeconfig", kubeconfig_tests, setup_tmpdir, teardown_tmpdir);
	return failed ? 1 : 0;
}
