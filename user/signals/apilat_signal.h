/* apilat's user half, the parts unit tests reach: endpoints, the ports' bitmap and bucket bounds. */
#ifndef KSIGHT_APILAT_SIGNAL_H
#define KSIGHT_APILAT_SIGNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "apilat.h"

/*
 * "ADDR:PORT" (IPv4) or "[ADDR]:PORT" (IPv6), numeric addresses only, port
 * 1..65535, into the kernel's key (IPv4 as ::ffff:a.b.c.d). 0 or -EINVAL.
 */
int apilat_parse_endpoint(const char *text, struct apilat_endpoint *out);

/* KUBERNETES_SERVICE_HOST (an IPv6 one without brackets) and _PORT. 0 or -EINVAL. */
int apilat_endpoint_from(const char *host, const char *port, struct apilat_endpoint *out);

/*
 * The endpoint set's ports as the BPF side's first test sees them
 * (APILAT_PORT_WORDS words, bit port % 64 of word port / 64).
 */
void apilat_ports_set(__u64 *ports, __u16 port);
bool apilat_ports_has(const __u64 *ports, __u16 port);

/* How the endpoint map changes, for apilat_ports_apply(): each 0 or -errno. */
struct apilat_map_ops {
	int (*del)(void *ctx, const struct apilat_endpoint *ep);
	int (*add)(void *ctx, const struct apilat_endpoint *ep);
};

/*
 * One change of the endpoint set reaching the kernel: set[0..n_set) is the
 * whole set after it, removed and added what changed in the map. The bitmap
 * `live` (the kernel's, read concurrently; NULL: none) first grows by the
 * set's ports, then removed leave the map and added enter it: at no moment
 * is an endpoint in the map without its port's bit. The bitmap never
 * shrinks: a connection followed on a port whose endpoints all left is
 * followed until it closes. The first error of ops, else 0 (every endpoint
 * is tried).
 */
int apilat_ports_apply(__u64 *live, const struct apilat_endpoint *set, size_t n_set,
		       const struct apilat_endpoint *removed, size_t n_removed,
		       const struct apilat_endpoint *added, size_t n_added,
		       const struct apilat_map_ops *ops, void *ctx);

/*
 * The bucket range from "LO:HI", exponents of two in nanoseconds
 * (APILAT_MIN_EXP <= LO < HI <= 40, at most APILAT_MAX_OCTAVES octaves). 0 or -EINVAL.
 */
int apilat_parse_range(const char *text, uint32_t *lo_exp, uint32_t *hi_exp);

/* The finite upper bounds in seconds, for metrics_family(): returns how many (<= cap). */
size_t apilat_bounds_seconds(uint32_t lo_exp, uint32_t hi_exp, double *out, size_t cap);

#endif
