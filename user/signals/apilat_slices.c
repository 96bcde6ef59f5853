/* apilat's endpoint set, the pure parts (apilat_slices.h). */
#include "apilat_slices.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "k8s_json.h"

/* ---- one EndpointSlice ---- */

/* A port entry's number when it is TCP (the default) and in range, else 0. */
static uint16_t tcp_port(json_object *p)
{
	json_object *num = k8s_json_member(p, "port", json_type_int);
	size_t len = 0;
	const char *proto = k8s_json_string(p, "protocol", &len);
	int64_t v;

	if (!num || (proto && strcmp(proto, "TCP")))
		return 0;
	v = json_object_get_int64(num);
	return v >= 1 && v <= 65535 ? (uint16_t)v : 0;
}

/* The API server's port among the slice's: the one named https, else the only one. 0: none. */
static uint16_t api_port(json_object *ports)
{
	size_t i, n = ports ? json_object_array_length(ports) : 0, len;

	for (i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(ports, i);
		const char *name = k8s_json_string(p, "name", &len);

		if (name && !strcmp(name, "https"))
			return tcp_port(p);
	}
	return n == 1 ? tcp_port(json_object_array_get_idx(ports, 0)) : 0;
}

/* conditions.ready: true or absent ("unknown", which the API says to read as ready). */
static bool endpoint_ready(json_object *endpoint)
{
	json_object *cond = k8s_json_member(endpoint, "conditions", json_type_object), *ready;

	if (!cond || !json_object_object_get_ex(cond, "ready", &ready) || !ready)
		return true;
	return json_object_is_type(ready, json_type_boolean) && json_object_get_boolean(ready);
}

/* A JSON array member, or NULL when it is absent or null; -EINVAL in *bad for another type. */
static json_object *array_or_null(json_object *obj, const char *key, bool *bad)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !v)
		return NULL;
	if (!json_object_is_type(v, json_type_array)) {
		*bad = true;
		return NULL;
	}
	return v;
}

int apilat_slice_endpoints(json_object *slice, struct apilat_endpoint *out, size_t cap, size_t *n)
{
	json_object *endpoints, *ports;
	size_t i, j, len, found = 0;
	const char *type;
	bool bad = false, v6;
	char port_text[8];
	uint16_t port;

	*n = 0;
	if (!slice || !json_object_is_type(slice, json_type_object))
		return -EINVAL;
	endpoints = array_or_null(slice, "endpoints", &bad);
	ports = array_or_null(slice, "ports", &bad);
	if (bad)
		return -EINVAL;
	type = k8s_json_string(slice, "addressType", &len);
	/* FQDN slices name hosts: not what a socket's address is compared with */
	if (type && strcmp(type, "IPv4") && strcmp(type, "IPv6"))
		return 0;
	v6 = type && !strcmp(type, "IPv6");
	port = api_port(ports);
	if (!port || !endpoints)
		return 0;
	snprintf(port_text, sizeof(port_text), "%u", port);
	for (i = 0; i < json_object_array_length(endpoints); i++) {
		json_object *e = json_object_array_get_idx(endpoints, i);
		json_object *addrs = k8s_json_member(e, "addresses", json_type_array);

		if (!addrs || !endpoint_ready(e))
			continue;
		for (j = 0; j < json_object_array_length(addrs); j++) {
			json_object *a = json_object_array_get_idx(addrs, j);
			struct apilat_endpoint ep;
			const char *text;

			if (!json_object_is_type(a, json_type_string))
				continue;
			text = json_object_get_string(a);
			/* an address of the other family is not this slice's */
			if (!text || (strchr(text, ':') != NULL) != v6 || apilat_endpoint_from(text, port_text, &ep))
				continue;
			if (found < cap)
				out[found] = ep;
			found++;
		}
	}
	*n = found;
	return 0;
}

int apilat_slice_endpoints_text(const char *json, size_t len, struct apilat_endpoint *out, size_t cap,
				size_t *n)
{
	json_tokener *tok;
	json_object *obj = NULL;
	int err = -EINVAL;

	*n = 0;
	if (!json || !len || len >= INT_MAX)
		return -EINVAL;
	tok = json_tokener_new_ex(K8S_JSON_DEPTH);
	if (!tok)
		return -ENOMEM;
	obj = json_tokener_parse_ex(tok, json, (int)len);
	/* one whole object and nothing after it but blanks */
	if (obj && json_tokener_get_error(tok) == json_tokener_success &&
	    strspn(json + json_tokener_get_parse_end(tok), " \t\r\n") == len - json_tokener_get_parse_end(tok))
		err = apilat_slice_endpoints(obj, out, cap, n);
	json_object_put(obj);
	json_tokener_free(tok);
	return err;
}

/* ---- kubeconfig servers ---- */

static int parse_port_text(const char *s, size_t len, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	if (!len || len > 5)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int apilat_server_url_split(const char *url, char *host, size_t cap, uint16_t *port)
{
	const char *h, *end, *host_end, *colon = NULL;
	uint16_t default_port;
	size_t hlen;

	if (!url)
		return -EINVAL;
	if (!strncasecmp(url, "https://", 8)) {
		h = url + 8;
		default_port = 443;
	} else if (!strncasecmp(url, "http://", 7)) {
		h = url + 7;
		default_port = 80;
	} else {
		return -EINVAL;
	}
	end = h + strcspn(h, "/?#");
	if (memchr(h, '@', (size_t)(end - h)))
		return -EINVAL; /* user info has no place in a cluster's server */
	if (*h == '[') {
		const char *close = memchr(h, ']', (size_t)(end - h));

		if (!close)
			return -EINVAL;
		h++;
		host_end = close;
		if (close + 1 < end) {
			if (close[1] != ':')
				return -EINVAL;
			colon = close + 1;
		}
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		host_end = colon ? colon : end;
		/* more colons: an IPv6 address without its brackets */
		if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
			return -EINVAL;
	}
	hlen = (size_t)(host_end - h);
	if (!hlen || hlen >= cap)
		return -EINVAL;
	if (colon) {
		if (parse_port_text(colon + 1, (size_t)(end - colon - 1), port))
			return -EINVAL;
	} else {
		*port = default_port;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	return 0;
}

void apilat_endpoint_format(const struct apilat_endpoint *ep, char *out, size_t len)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	char addr[INET6_ADDRSTRLEN];

	if (!memcmp(ep->addr, mapped, sizeof(mapped))) {
		inet_ntop(AF_INET, &ep->addr[12], addr, sizeof(addr));
		snprintf(out, len, "%s:%u", addr, ep->port);
	} else {
		inet_ntop(AF_INET6, ep->addr, addr, sizeof(addr));
		snprintf(out, len, "[%s]:%u", addr, ep->port);
	}
}

/* ---- the union ---- */

const char *apilat_source_name(enum apilat_source src)
{
	static const char *const names[APILAT_SOURCE_NR] = {
		[APILAT_SOURCE_FLAG] = "flag",
		[APILAT_SOURCE_SERVICE_ENV] = "service_env",
		[APILAT_SOURCE_KUBECONFIG] = "kubeconfig",
		[APILAT_SOURCE_SLICES] = "endpointslices",
	};

	return src < APILAT_SOURCE_NR ? names[src] : "";
}

static bool same(const struct apilat_endpoint *a, const struct apilat_endpoint *b)
{
	return a->port == b->port && !memcmp(a->addr, b->addr, sizeof(a->addr));
}

static ssize_t find(const struct apilat_epset *s, const struct apilat_endpoint *ep)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (same(&s->e[i].ep, ep))
			return (ssize_t)i;
	return -1;
}

int apilat_epset_replace(struct apilat_epset *s, enum apilat_source src, const struct apilat_endpoint *list,
			 size_t n, struct apilat_endpoint *added, size_t *n_added, struct apilat_endpoint *removed,
			 size_t *n_removed)
{
	uint32_t bit = 1u << src;
	size_t i, kept = 0;
	int err = 0;

	*n_added = *n_removed = 0;
	if (src >= APILAT_SOURCE_NR)
		return -EINVAL;
	/* first what leaves, so that its room is there for what comes */
	for (i = 0; i < s->n; i++) {
		size_t j;
		bool still = false;

		for (j = 0; j < n && !still; j++)
			still = same(&s->e[i].ep, &list[j]);
		if (!still)
			s->e[i].sources &= ~bit;
		if (!s->e[i].sources) {
			removed[(*n_removed)++] = s->e[i].ep;
			continue;
		}
		s->e[kept++] = s->e[i];
	}
	s->n = kept;
	for (i = 0; i < n; i++) {
		ssize_t at = find(s, &list[i]);

		if (at >= 0) {
			s->e[at].sources |= bit;
			continue;
		}
		if (s->n == APILAT_MAX_ENDPOINTS) {
			err = -ENOSPC;
			continue;
		}
		s->e[s->n].ep = list[i];
		s->e[s->n].sources = bit;
		s->n++;
		added[(*n_added)++] = list[i];
	}
	return err;
}

size_t apilat_epset_count(const struct apilat_epset *s, enum apilat_source src)
{
	size_t i, n = 0;

	for (i = 0; i < s->n; i++)
		n += !!(s->e[i].sources & (1u << src));
	return n;
}
