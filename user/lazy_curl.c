/*
 * libcurl, loaded on first use. The binary is not linked against it: these
 * definitions of the few curl_* functions the Kubernetes client calls take
 * their place, and the first one opens libcurl.so.4. An agent with no
 * Kubernetes API configured (--no-k8s, or outside a cluster) never does, so
 * it never maps libcurl and its TLS, Kerberos, LDAP, SSH and HTTP/2 stacks:
 * about 3 MiB of RSS and a good part of the dynamic linking at exec.
 *
 * If the library cannot be opened every call fails the way libcurl reports
 * its own failures (CURLE_FAILED_INIT, NULL), with one log line.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

/* the real prototypes, not curl.h's type-checking macros of the same names */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include "log.h"

#define LAZY_CURL_SONAME "libcurl.so.4"

static struct {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *curl);
	void (*easy_reset)(CURL *curl);
	CURLcode (*easy_perform)(CURL *curl);
	CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
	CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode code);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *string);
	void (*slist_free_all)(struct curl_slist *list);
} fn;

static pthread_once_t opened = PTHREAD_ONCE_INIT;
static int usable;

static void open_curl(void)
{
	void *h = dlopen(LAZY_CURL_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		log_warn("cannot load %s (%s; Debian: apt-get install libcurl4): no Kubernetes API calls",
			 LAZY_CURL_SONAME, dlerror());
		return;
	}
	/* object-to-function pointer casts through the union dlsym's users rely on (POSIX) */
#define BIND(field, name) (*(void **)&fn.field = dlsym(h, name))
	if (!BIND(global_init, "curl_global_init") || !BIND(easy_init, "curl_easy_init") ||
	    !BIND(easy_cleanup, "curl_easy_cleanup") || !BIND(easy_reset, "curl_easy_reset") ||
	    !BIND(easy_perform, "curl_easy_perform") || !BIND(easy_setopt, "curl_easy_setopt") ||
	    !BIND(easy_getinfo, "curl_easy_getinfo") || !BIND(easy_strerror, "curl_easy_strerror") ||
	    !BIND(slist_append, "curl_slist_append") || !BIND(slist_free_all, "curl_slist_free_all")) {
		log_warn("%s lacks a function ksight calls: no Kubernetes API calls", LAZY_CURL_SONAME);
		return; /* left open: a half-bound library is never called */
	}
#undef BIND
	usable = 1;
}

static int have_curl(void)
{
	pthread_once(&opened, open_curl);
	return usable;
}

CURLcode curl_global_init(long flags)
{
	return have_curl() ? fn.global_init(flags) : CURLE_FAILED_INIT;
}

CURL *curl_easy_init(void)
{
	return have_curl() ? fn.easy_init() : NULL;
}

/* The calls below need a handle or a list, which only a loaded libcurl hands out. */
void curl_easy_cleanup(CURL *curl)
{
	if (curl && have_curl())
		fn.easy_cleanup(curl);
}

void curl_easy_reset(CURL *curl)
{
	if (curl && have_curl())
		fn.easy_reset(curl);
}

CURLcode curl_easy_perform(CURL *curl)
{
	return have_curl() ? fn.easy_perform(curl) : CURLE_FAILED_INIT;
}

/*
 * The one argument after the option has the type the option's number range
 * says (curl.h's CURLOPTTYPE_* bases), as libcurl itself reads it.
 */
CURLcode curl_easy_setopt(CURL *curl, CURLoption option, ...)
{
	CURLcode rc = CURLE_FAILED_INIT;
	va_list ap;

	if (!have_curl())
		return rc;
	va_start(ap, option);
	if (option < CURLOPTTYPE_OBJECTPOINT)
		rc = fn.easy_setopt(curl, option, va_arg(ap, long));
	else if (option < CURLOPTTYPE_FUNCTIONPOINT)
		rc = fn.easy_setopt(curl, option, va_arg(ap, void *));
	else if (option < CURLOPTTYPE_OFF_T)
		rc = fn.easy_setopt(curl, option, va_arg(ap, void (*)(void)));
	else if (option < CURLOPTTYPE_BLOB)
		rc = fn.easy_setopt(curl, option, va_arg(ap, curl_off_t));
	else
		rc = fn.easy_setopt(curl, option, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

/* Every CURLINFO_* takes one pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *curl, CURLINFO info, ...)
{
	CURLcode rc = CURLE_FAILED_INIT;
	va_list ap;

	if (!have_curl())
		return rc;
	va_start(ap, info);
	rc = fn.easy_getinfo(curl, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

const char *curl_easy_strerror(CURLcode code)
{
	return have_curl() ? fn.easy_strerror(code) : "libcurl could not be loaded";
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *string)
{
	return have_curl() ? fn.slist_append(list, string) : NULL;
}

void curl_slist_free_all(struct curl_slist *list)
{
	if (list && have_curl())
		fn.slist_free_all(list);
}
