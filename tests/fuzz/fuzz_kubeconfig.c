/*
 * k8s_config_from_kubeconfig() on any file content, then k8s_config_free().
 *
 * The input is written to <tmpdir>/kubeconfig; the directory also holds the
 * files a kubeconfig refers to by relative path (ca.crt, token, client.crt,
 * client.key, not-pem, and a subdirectory), so both the -data and the file
 * branches run.
 *
 * Checks: on failure the error text is set and NUL-terminated and *cfg is
 * all zero (k8s_config_free() on it is harmless); on success server is
 * https://..., without a trailing '/', every PEM buffer is NUL-terminated
 * at its length and holds a "-----BEGIN " line, a client certificate comes
 * with its key, the strings are terminated inside their arrays, and source
 * names the file. Leaks of the YAML document or of secrets show up through
 * LeakSanitizer.
 *
 * Absolute paths in the input can name anything: so that a FIFO, a tty or
 * /proc/kmsg cannot block the fuzzer, open() in user/k8s/k8s_config.c is
 * wrapped (-Wl,--wrap=open) to open non-blocking and refuse anything but
 * regular files and directories while the target runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "k8s_client.h"
#include "fuzz.h"

static char dir[64];
static char path[96];
static bool in_target;

int __real_open(const char *file, int flags, ...);

int __wrap_open(const char *file, int flags, ...)
{
	mode_t mode = 0;
	struct stat st;
	va_list ap;
	int fd;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (!in_target)
		return __real_open(file, flags, mode);
	fd = __real_open(file, flags | O_NONBLOCK | O_NOCTTY, mode);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
		close(fd);
		errno = EACCES;
		return -1;
	}
	return fd;
}

static const char pem_cert[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBdzCCAR2gAwIBAgIUFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzwCgYIKoZIzj0E\n"
	"-----END CERTIFICATE-----\n";
static const char pem_key[] =
	"-----BEGIN EC PRIVATE KEY-----\n"
	"MHcCAQEEIFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzoAoGCCqGSM49AwEH\n"
	"-----END EC PRIVATE KEY-----\n";

static void put(const char *name, const char *content)
{
	char p[128];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	if (!f || fputs(content, f) < 0 || fclose(f)) {
		perror(p);
		abort();
	}
}

static void cleanup(void)
{
	static const char *const names[] = { "kubeconfig", "ca.crt", "token", "client.crt",
					     "client.key", "not-pem", "sub/ca.crt" };
	char p[128];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/sub", dir);
	rmdir(p);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char p[128];

	(void)argc, (void)argv;
	snprintf(dir, sizeof(dir), "/tmp/ksight-fuzz-kubeconfig.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		abort();
	}
	snprintf(path, sizeof(path), "%s/kubeconfig", dir);
	snprintf(p, sizeof(p), "%s/sub", dir);
	mkdir(p, 0700);
	put("ca.crt", pem_cert);
	put("sub/ca.crt", pem_cert);
	put("client.crt", pem_cert);
	put("client.key", pem_key);
	put("token", "eyJhbGciOiJSUzI1NiJ9.fuzz.token\n");
	put("not-pem", "just some text\n");
	atexit(cleanup);
	return 0;
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--)
		if (*b++)
			return false;
	return true;
}

static void check_pem(const char *what, const char *pem, size_t len)
{
	if (!pem) {
		FUZZ_CHECK(len == 0, "%s: NULL with length %zu", what, len);
		return;
	}
	FUZZ_CHECK(pem[len] == '\0', "%s: not NUL-terminated at its length %zu", what, len);
	FUZZ_CHECK(memmem(pem, len, "-----BEGIN ", 11), "%s: accepted without a BEGIN line", what);
}

#define TERMINATED(arr) (strnlen((arr), sizeof(arr)) < sizeof(arr))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct k8s_config cfg;
	char err[512];
	int fd, rc;
	size_t len;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd)) {
		perror(path);
		abort();
	}

	memset(&cfg, 0x5a, sizeof(cfg));
	memset(err, 0x5a, sizeof(err));
	err[0] = '\0';
	in_target = true;
	rc = k8s_config_from_kubeconfig(&cfg, path, err, sizeof(err));
	in_target = false;

	FUZZ_CHECK(TERMINATED(err), "error text not NUL-terminated");
	if (fuzz_verbose())
		fprintf(stderr, "rc %d: %s server=%s ca_pem=%zu ca_file=%s token=%s token_file=%s cert=%zu key=%zu ns=%s\n",
			rc, err, rc ? "" : cfg.server, rc ? 0 : cfg.ca_pem_len, rc ? "" : cfg.ca_file,
			rc || !cfg.token ? "" : cfg.token, rc ? "" : cfg.token_file,
			rc ? 0 : cfg.client_cert_pem_len, rc ? 0 : cfg.client_key_pem_len, rc ? "" : cfg.namespace_);
	if (rc) {
		FUZZ_CHECK(rc < 0, "rc %d", rc);
		FUZZ_CHECK(err[0], "rc %d without an error text", rc);
		FUZZ_CHECK(all_zero(&cfg, sizeof(cfg)), "rc %d (%s) left *cfg non-zero", rc, err);
		k8s_config_free(&cfg);
		return 0;
	}

	FUZZ_CHECK(TERMINATED(cfg.server) && TERMINATED(cfg.ca_file) && TERMINATED(cfg.token_file) &&
			   TERMINATED(cfg.namespace_) && TERMINATED(cfg.source),
		   "a string field is not NUL-terminated");
	len = strlen(cfg.server);
	FUZZ_CHECK(len >= 8 && !strncasecmp(cfg.server, "https://", 8), "server \"%s\"", cfg.server);
	FUZZ_CHECK(len == 8 || cfg.server[len - 1] != '/', "server \"%s\" ends in '/'", cfg.server);
	check_pem("ca_pem", cfg.ca_pem, cfg.ca_pem_len);
	check_pem("client_cert_pem", cfg.client_cert_pem, cfg.client_cert_pem_len);
	check_pem("client_key_pem", cfg.client_key_pem, cfg.client_key_pem_len);
	FUZZ_CHECK(!cfg.client_cert_pem == !cfg.client_key_pem, "a client certificate without its key");
	FUZZ_CHECK(!cfg.ca_pem || !cfg.ca_file[0], "both CA data and a CA file");
	FUZZ_CHECK(!strncmp(cfg.source, "kubeconfig ", 11) && strstr(cfg.source, path),
		   "source \"%s\"", cfg.source);
	if (cfg.token)
		FUZZ_CHECK(cfg.token[0], "an empty token");

	k8s_config_free(&cfg);
	FUZZ_CHECK(!cfg.ca_pem && !cfg.token && !cfg.client_cert_pem && !cfg.client_key_pem,
		   "k8s_config_free left pointers behind");
	k8s_config_free(&cfg);	/* twice is harmless */
	return 0;
}
