/* apilat: the API-server endpoint syntax, the ports' bitmap and the bucket bounds (pure). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apilat_signal.h"

static int parse_port(const char *s, __u16 *port)
{
	char *end;
	unsigned long n;

	if (!s[0] || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	n = strtoul(s, &end, 10);
	if (*end || n < 1 || n > 65535)
		return -EINVAL;
	*port = (__u16)n;
	return 0;
}

static int parse_addr(const char *s, struct apilat_endpoint *out)
{
	struct in_addr a4;

	memset(out->addr, 0, sizeof(out->addr));
	if (inet_pton(AF_INET, s, &a4) == 1) {
		out->addr[10] = 0xff;
		out->addr[11] = 0xff;
		memcpy(&out->addr[12], &a4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, out->addr) == 1)
		return 0;
	return -EINVAL;
}

int apilat_endpoint_from(const char *host, const char *port, struct apilat_endpoint *out)
{
	memset(out, 0, sizeof(*out));
	if (!host || !port || parse_port(port, &out->port))
		return -EINVAL;
	return parse_addr(host, out);
}

int apilat_parse_endpoint(const char *text, struct apilat_endpoint *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *start = text;
	size_t len;

	if (!text)
		return -EINVAL;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		start = text + 1;
		len = (size_t)(close - start);
		colon = close + 1;
	} else {
		colon = strrchr(text, ':');
		/* an IPv6 address needs its brackets: its colons are not a port's */
		if (!colon || strchr(text, ':') != colon)
			return -EINVAL;
		len = (size_t)(colon - text);
	}
	if (!len || len >= sizeof(host))
		return -EINVAL;
	memcpy(host, start, len);
	host[len] = '\0';
	if (text[0] == '[' && !strchr(host, ':'))
		return -EINVAL; /* brackets are for IPv6 */
	return apilat_endpoint_from(host, colon + 1, out);
}

int apilat_parse_range(const char *text, uint32_t *lo_exp, uint32_t *hi_exp)
{
	unsigned long lo, hi;
	char *end;

	if (!text || text[0] < '0' || text[0] > '9')
		return -EINVAL;
	lo = strtoul(text, &end, 10);
	if (*end != ':' || end[1] < '0' || end[1] > '9')
		return -EINVAL;
	hi = strtoul(end + 1, &end, 10);
	if (*end || lo < APILAT_MIN_EXP || hi <= lo || hi > 40 || hi - lo > APILAT_MAX_OCTAVES)
		return -EINVAL;
	*lo_exp = (uint32_t)lo;
	*hi_exp = (uint32_t)hi;
	return 0;
}

size_t apilat_bounds_seconds(uint32_t lo_exp, uint32_t hi_exp, double *out, size_t cap)
{
	size_t n = apilat_n_finite(lo_exp, hi_exp), j;

	if (n > cap)
		n = cap;
	for (j = 0; j < n; j++)
		out[j] = (double)apilat_bucket_upper_ns((__u32)j, lo_exp) / 1e9;
	return n;
}

/* ---- the ports' bitmap ---- */

void apilat_ports_set(__u64 *ports, __u16 port)
{
	ports[port / 64] |= 1ULL << (port % 64);
}

bool apilat_ports_has(const __u64 *ports, __u16 port)
{
	return ports[port / 64] & (1ULL << (port % 64));
}

/* Each word the kernel may be reading in one store, and only those that change. */
static void store(__u64 *live, const __u64 *want)
{
	size_t i;

	for (i = 0; i < APILAT_PORT_WORDS; i++) {
		__u64 cur = __atomic_load_n(&live[i], __ATOMIC_RELAXED);
		__u64 next = cur | want[i];

		if (next != cur)
			__atomic_store_n(&live[i], next, __ATOMIC_RELEASE);
	}
}

int apilat_ports_apply(__u64 *live, const struct apilat_endpoint *set, size_t n_set,
		       const struct apilat_endpoint *removed, size_t n_removed,
		       const struct apilat_endpoint *added, size_t n_added,
		       const struct apilat_map_ops *ops, void *ctx)
{
	__u64 want[APILAT_PORT_WORDS] = { 0 };
	size_t i;
	int err = 0, e;

	for (i = 0; i < n_set; i++)
		apilat_ports_set(want, set[i].port);
	/*
	 * old | new, and it stays so: never an endpoint in the map without its
	 * port, and a connection already followed is followed until it closes,
	 * also while no endpoint on its port is left (every API server not ready
	 * in an outage). The ports of a cluster's API servers are few.
	 */
	if (live)
		store(live, want);
	for (i = 0; i < n_removed; i++) {
		e = ops->del(ctx, &removed[i]);
		if (e && !err)
			err = e;
	}
	for (i = 0; i < n_added; i++) {
		e = ops->add(ctx, &added[i]);
		if (e && !err)
			err = e;
	}
	return err;
}
