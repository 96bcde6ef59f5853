/* apilat's user half, the parts unit tests reach: endpoints and bucket bounds. */
#ifndef KSIGHT_APILAT_SIGNAL_H
#define KSIGHT_APILAT_SIGNAL_H

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
 * The bucket range from "LO:HI", exponents of two in nanoseconds
 * (APILAT_MIN_EXP <= LO < HI <= 40, at most APILAT_MAX_OCTAVES octaves). 0 or -EINVAL.
 */
int apilat_parse_range(const char *text, uint32_t *lo_exp, uint32_t *hi_exp);

/* The finite upper bounds in seconds, for metrics_family(): returns how many (<= cap). */
size_t apilat_bounds_seconds(uint32_t lo_exp, uint32_t hi_exp, double *out, size_t cap);

#endif
