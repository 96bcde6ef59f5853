/*
 * libmicrohttpd, loaded on a thread of its own while the agent starts. The
 * binary is not linked against it: these definitions of the MHD_* functions
 * the metrics endpoint calls take their place. Debian's libmicrohttpd
 * brings GnuTLS and eight more libraries, whose relocation and constructors
 * took ~1.1 ms of every exec before main(); `run` now opens it on a second
 * thread (lazy_mhd_prefetch) while it loads the BPF objects, and `trace`
 * and `probes`, which serve nothing, never do.
 *
 * If the library cannot be opened every call fails the way libmicrohttpd
 * reports its own failures (NULL, MHD_NO), with one log line.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>

#include <microhttpd.h>

#include "lazy_mhd.h"
#include "log.h"

#define LAZY_MHD_SONAME "libmicrohttpd.so.12"

static struct {
	struct MHD_Daemon *(*start_daemon_va)(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc,
					      void *apc_cls, MHD_AccessHandlerCallback dh, void *dh_cls, va_list ap);
	void (*stop_daemon)(struct MHD_Daemon *daemon);
	const char *(*lookup_connection_value)(struct MHD_Connection *connection, enum MHD_ValueKind kind,
					       const char *key);
	enum MHD_Result (*queue_response)(struct MHD_Connection *connection, unsigned int status_code,
					  struct MHD_Response *response);
	struct MHD_Response *(*create_response_from_buffer)(size_t size, void *buffer,
							    enum MHD_ResponseMemoryMode mode);
	void (*destroy_response)(struct MHD_Response *response);
	enum MHD_Result (*add_response_header)(struct MHD_Response *response, const char *header,
					       const char *content);
	const union MHD_ConnectionInfo *(*get_connection_info)(struct MHD_Connection *connection,
							       enum MHD_ConnectionInfoType info_type, ...);
	enum MHD_Result (*is_feature_supported)(enum MHD_FEATURE feature);
} fn;

static pthread_once_t opened = PTHREAD_ONCE_INIT;
static int usable;

static void open_mhd(void)
{
	void *h = dlopen(LAZY_MHD_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		log_warn("cannot load %s (%s; Debian: apt-get install libmicrohttpd12): no metrics endpoint",
			 LAZY_MHD_SONAME, dlerror());
		return;
	}
	/* object-to-function pointer casts through the union dlsym's users rely on (POSIX) */
#define BIND(field, name) (*(void **)&fn.field = dlsym(h, name))
	if (!BIND(start_daemon_va, "MHD_start_daemon_va") || !BIND(stop_daemon, "MHD_stop_daemon") ||
	    !BIND(lookup_connection_value, "MHD_lookup_connection_value") ||
	    !BIND(queue_response, "MHD_queue_response") ||
	    !BIND(create_response_from_buffer, "MHD_create_response_from_buffer") ||
	    !BIND(destroy_response, "MHD_destroy_response") ||
	    !BIND(add_response_header, "MHD_add_response_header") ||
	    !BIND(get_connection_info, "MHD_get_connection_info") ||
	    !BIND(is_feature_supported, "MHD_is_feature_supported")) {
		log_warn("%s lacks a function ksight calls: no metrics endpoint", LAZY_MHD_SONAME);
		return; /* left open: a half-bound library is never called */
	}
#undef BIND
	usable = 1;
}

static int have_mhd(void)
{
	pthread_once(&opened, open_mhd);
	return usable;
}

static void *prefetch(void *arg)
{
	(void)arg;
	have_mhd();
	return NULL;
}

void lazy_mhd_prefetch(void)
{
	pthread_attr_t attr;
	pthread_t t;

	/* a thread that cannot start leaves the opening to the first call */
	if (pthread_attr_init(&attr))
		return;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_create(&t, &attr, prefetch, NULL);
	pthread_attr_destroy(&attr);
}

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc,
				    void *apc_cls, MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	struct MHD_Daemon *d;
	va_list ap;

	if (!have_mhd())
		return NULL;
	va_start(ap, dh_cls);
	d = fn.start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return d;
}

/* The calls below need a daemon, a connection or a response, which only a loaded library hands out. */
void MHD_stop_daemon(struct MHD_Daemon *daemon)
{
	if (daemon && have_mhd())
		fn.stop_daemon(daemon);
}

const char *MHD_lookup_connection_value(struct MHD_Connection *connection, enum MHD_ValueKind kind,
					const char *key)
{
	return have_mhd() ? fn.lookup_connection_value(connection, kind, key) : NULL;
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *connection, unsigned int status_code,
				   struct MHD_Response *response)
{
	return have_mhd() ? fn.queue_response(connection, status_code, response) : MHD_NO;
}

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer, enum MHD_ResponseMemoryMode mode)
{
	return have_mhd() ? fn.create_response_from_buffer(size, buffer, mode) : NULL;
}

void MHD_destroy_response(struct MHD_Response *response)
{
	if (response && have_mhd())
		fn.destroy_response(response);
}

enum MHD_Result MHD_add_response_header(struct MHD_Response *response, const char *header, const char *content)
{
	return have_mhd() ? fn.add_response_header(response, header, content) : MHD_NO;
}

/* The kinds ksight asks for (the fd, the client's address, the socket context) take no argument. */
const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *connection,
							enum MHD_ConnectionInfoType info_type, ...)
{
	return have_mhd() ? fn.get_connection_info(connection, info_type) : NULL;
}

enum MHD_Result MHD_is_feature_supported(enum MHD_FEATURE feature)
{
	return have_mhd() ? fn.is_feature_supported(feature) : MHD_NO;
}
