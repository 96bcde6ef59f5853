/*
 * apilat's API-server endpoint set, the pure parts: the endpoints one
 * EndpointSlice of the `default/kubernetes` Service names, a kubeconfig
 * server URL's host and port, and the set itself (the union of its sources,
 * with what enters and what leaves it at each change, so the BPF map is
 * updated by difference).
 */
#ifndef KSIGHT_APILAT_SLICES_H
#define KSIGHT_APILAT_SLICES_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "apilat_signal.h"

/*
 * The endpoints of one EndpointSlice (discovery.k8s.io/v1): every address of
 * every endpoint that is ready (conditions.ready true or absent: the API
 * says to read "unknown" as ready) × the TCP port named "https", or the
 * slice's only TCP port when none is named so. addressType FQDN, a missing
 * or malformed port, an address that is not numeric: nothing from it.
 * Writes at most `cap` into `out`, the number found (maybe more) in *n.
 * 0, or -EINVAL when `slice` is not an EndpointSlice-shaped object.
 */
int apilat_slice_endpoints(json_object *slice, struct apilat_endpoint *out, size_t cap, size_t *n);

/* The same from JSON text: -EINVAL also for malformed JSON. */
int apilat_slice_endpoints_text(const char *json, size_t len, struct apilat_endpoint *out, size_t cap,
				size_t *n);

/*
 * A kubeconfig cluster's server, "https://HOST[:PORT][/path]" (HOST a name,
 * an IPv4 address or a bracketed IPv6 one; port 443 when absent): HOST
 * without brackets into host[cap] and the port. 0 or -EINVAL.
 */
int apilat_server_url_split(const char *url, char *host, size_t cap, uint16_t *port);

/* "ADDR:PORT" or "[ADDR]:PORT" for messages and labels. */
void apilat_endpoint_format(const struct apilat_endpoint *ep, char *out, size_t len);

/* Where an endpoint of the set comes from. */
enum apilat_source {
	APILAT_SOURCE_FLAG = 0,     /* --apiserver */
	APILAT_SOURCE_SERVICE_ENV,  /* KUBERNETES_SERVICE_HOST/PORT */
	APILAT_SOURCE_KUBECONFIG,   /* the server of the configuration the agent uses */
	APILAT_SOURCE_SLICES,       /* default/kubernetes EndpointSlices */
	APILAT_SOURCE_NR,
};

/* "flag", "service_env", "kubeconfig", "endpointslices": the metric's label values. */
const char *apilat_source_name(enum apilat_source src);

struct apilat_epset {
	struct {
		struct apilat_endpoint ep;
		uint32_t sources;    /* bit (1 << enum apilat_source) */
	} e[APILAT_MAX_ENDPOINTS];
	size_t n;
};

/*
 * Make `src`'s part of the set exactly list[0..n) (duplicates allowed). An
 * endpoint that enters the union goes to added[], one that no source names
 * any more to removed[] (each of room APILAT_MAX_ENDPOINTS), counted in
 * *n_added, *n_removed. When the union would exceed APILAT_MAX_ENDPOINTS,
 * the endpoints beyond it are left out and -ENOSPC is returned (the rest
 * is applied).
 */
int apilat_epset_replace(struct apilat_epset *s, enum apilat_source src, const struct apilat_endpoint *list,
			 size_t n, struct apilat_endpoint *added, size_t *n_added, struct apilat_endpoint *removed,
			 size_t *n_removed);

/* How many endpoints `src` names. */
size_t apilat_epset_count(const struct apilat_epset *s, enum apilat_source src);

#endif
