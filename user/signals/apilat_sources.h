/*
 * apilat's API-server endpoint set, kept in the BPF map apilat_endpoints:
 * the union of --apiserver, KUBERNETES_SERVICE_HOST/PORT, the server of the
 * Kubernetes configuration the agent uses (--kubeconfig, else in-cluster; a
 * host name resolved at start and again every APILAT_RESOLVE_EVERY_S), and
 * the ready endpoints of the default/kubernetes EndpointSlices, watched.
 * An endpoint enters the map when a source names it and leaves when none
 * does any more. A connection already followed stays so until it closes
 * (the kernel side's first test, a bitmap of the ports, only ever grows).
 * Exported as ksight_apiserver_endpoints{source} and
 * ksight_apiserver_endpoint_info{endpoint,source}.
 */
#ifndef KSIGHT_APILAT_SOURCES_H
#define KSIGHT_APILAT_SOURCES_H

#include <stddef.h>
#include <stdint.h>

#include "apilat_signal.h"

#define APILAT_RESOLVE_EVERY_S 60

struct agent;
struct apilat_sources;

/*
 * The sources known at once (--apiserver, the environment) into the map
 * `map_fd` (kept, not closed) and the BPF side's ports' bitmap, the
 * APILAT_PORT_WORDS words at `ports_off` in the value of the array map
 * `ports_fd` (its .bss; mapped here, kept; -1: none). 0 and *out, -EINVAL
 * (a bad --apiserver, which the CLI refuses first), -ENOMEM, or the
 * mapping's -errno.
 */
int apilat_sources_new(struct agent *agent, int map_fd, int ports_fd, size_t ports_off, struct apilat_sources **out);

/*
 * Once the agent is ready (it may block on DNS): the configuration's server,
 * and the EndpointSlices watch (unless --no-k8s or without an API).
 */
void apilat_sources_watch(struct apilat_sources *s);

/*
 * Every address `host` names (numeric, or resolved now: it may block), with
 * `port`, each once, at most `cap`. The count; 0 with *gai_err (getaddrinfo's)
 * set when it cannot be resolved.
 */
size_t apilat_resolve(const char *host, uint16_t port, struct apilat_endpoint *out, size_t cap, int *gai_err);

/*
 * Call fn(ctx) after every change that added an endpoint to the map (on the
 * thread that made it, never after apilat_sources_stop returned). Before
 * apilat_sources_watch.
 */
void apilat_sources_on_added(struct apilat_sources *s, void (*fn)(void *ctx), void *ctx);

/* Stop the watch and the re-resolving; idempotent, NULL-safe. The map is not touched afterwards. */
void apilat_sources_stop(struct apilat_sources *s);

/* Stop and free. NULL-safe. */
void apilat_sources_free(struct apilat_sources *s);

#endif
