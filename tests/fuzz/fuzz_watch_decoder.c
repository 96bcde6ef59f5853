/*
 * A pod watch stream, cut into chunks anywhere, through
 * watch_decoder_feed() into a pod_cache (user/k8s/pod_cache.c), as the watcher
 * thread does, then lookups.
 *
 * Input: a 6-byte header, then the stream.
 *   byte 0  flags: 1 small max_line (1 + byte 1 * 4, to reach the too-long
 *           paths), 2 the callback stops the feed after 1 + (flags >> 4)
 *           objects (then the decoder is reset, as after a stream ends),
 *           4 a reset after the third chunk (a stream cut mid-line),
 *           8 expire everything at the end
 *   byte 1  max_line seed
 *   2..5    chunk lengths, cycled: 1 + b bytes each; 255 means the rest
 *
 * Each decoded object: {"type":T,"object":O} applies O with type T (any
 * string: other types must give -EINVAL); an object without "type" is
 * itself applied as a Pod, as ADDED, MODIFIED or DELETED in turn; an
 * "items" array goes through pod_cache_replace_all() (a re-list).
 *
 * Checks: return codes are the documented ones; after a successful apply
 * the pod's UID (also upper-cased and with '_' for '-', as systemd spells
 * it) and its config-hash alias look it up, with the pod's name and
 * namespace; lookups of anything never overflow struct pod_names; the
 * decoder counts exactly the objects it handed over; the cache never holds
 * more than POD_CACHE_MAX_PODS; nothing leaks.
 */
#include <ctype.h>
#include <errno.h>

#include <json-c/json.h>

#include "k8s_pods.h"
#include "fuzz.h"

struct ctx {
	struct pod_cache *cache;
	time_t now;
	uint64_t calls;
	uint64_t stop_at;	/* 0: never */
	uint64_t applied;
};

/* A string member without NUL bytes, or NULL. */
static const char *str_member(json_object *obj, const char *key)
{
	json_object *v;

	if (!obj || !json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
		return NULL;
	return json_object_get_string(v);
}

static json_object *member(json_object *obj, const char *key)
{
	json_object *v;

	if (!obj || !json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, key, &v))
		return NULL;
	return v;
}

static void check_names(const struct pod_names *n)
{
	FUZZ_CHECK(strnlen(n->namespace_, sizeof(n->namespace_)) < sizeof(n->namespace_) &&
			   strnlen(n->pod, sizeof(n->pod)) < sizeof(n->pod) &&
			   strnlen(n->container, sizeof(n->container)) < sizeof(n->container) &&
			   strnlen(n->uid, sizeof(n->uid)) < sizeof(n->uid),
		   "pod_names not NUL-terminated");
}

static bool lookup(struct ctx *c, const char *uid, const char *cid, struct pod_names *out)
{
	bool found = pod_cache_lookup(c->cache, uid, cid, out);

	check_names(out);
	if (!found) {
		FUZZ_CHECK(!out->namespace_[0] && !out->pod[0] && !out->container[0] && !out->uid[0],
			   "a miss left names in *out");
	}
	return found;
}

/* Lookups after pod_cache_apply() of `pod` returned `rc`. */
static void check_pod(struct ctx *c, json_object *pod, int rc)
{
	json_object *meta = member(pod, "metadata"), *status = member(pod, "status");
	const char *uid = str_member(meta, "uid");
	const char *name = str_member(meta, "name");
	const char *ns = str_member(meta, "namespace");
	const char *hash = str_member(member(meta, "annotations"), "kubernetes.io/config.hash");
	json_object *list = member(status, "containerStatuses");
	struct pod_names out;
	char *variant;
	size_t i;

	if (uid)
		lookup(c, uid, NULL, &out);
	if (rc != 0 || !uid)
		return;
	FUZZ_CHECK(name && ns, "applied a pod without name or namespace");
	FUZZ_CHECK(lookup(c, uid, NULL, &out), "pod uid \"%s\" applied but not found", uid);
	FUZZ_CHECK(!strcmp(out.pod, name) && !strcmp(out.namespace_, ns),
		   "uid \"%s\": got %s/%s, applied %s/%s", uid, out.namespace_, out.pod, ns, name);

	/* systemd's spelling: '_' for '-', and any case */
	variant = strdup(uid);
	if (!variant)
		abort();
	for (i = 0; variant[i]; i++)
		variant[i] = variant[i] == '-' ? '_' : (char)toupper((unsigned char)variant[i]);
	FUZZ_CHECK(lookup(c, variant, NULL, &out), "uid \"%s\" not found as \"%s\"", uid, variant);
	free(variant);

	if (hash && strlen(hash) == 32) {
		for (i = 0; i < 32 && isxdigit((unsigned char)hash[i]); i++)
			;
		if (i == 32)
			FUZZ_CHECK(lookup(c, hash, NULL, &out), "config hash %s not found", hash);
	}
	if (list && json_object_is_type(list, json_type_array)) {
		for (i = 0; i < json_object_array_length(list) && i < 8; i++) {
			const char *cid = str_member(json_object_array_get_idx(list, i), "containerID");

			if (cid)
				FUZZ_CHECK(lookup(c, uid, cid, &out), "pod lost with container \"%s\"", cid);
		}
	}
}

static const char *const types[] = { "ADDED", "MODIFIED", "DELETED" };

static void apply(struct ctx *c, const char *type, json_object *pod)
{
	bool known = false;
	size_t i;
	int rc;

	for (i = 0; i < 3; i++)
		known |= !strcmp(type, types[i]);
	rc = pod_cache_apply(c->cache, type, pod, c->now);
	if (fuzz_verbose())
		fprintf(stderr, "apply %s: %d\n", type, rc);
	if (!known)
		FUZZ_CHECK(rc == -EINVAL, "type \"%s\" gave %d", type, rc);
	else
		FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -ENOSPC, "%s gave %d", type, rc);
	if (rc == 0)
		c->applied++;
	check_pod(c, pod, rc);
}

static int on_line(void *arg, json_object *obj)
{
	struct ctx *c = arg;
	json_object *pod = member(obj, "object"), *items = member(obj, "items");
	const char *type = str_member(obj, "type");
	struct pod_cache_stats st;

	FUZZ_CHECK(obj && json_object_is_type(obj, json_type_object), "the decoder handed over a non-object");
	c->calls++;
	c->now++;
	if (items)
		pod_cache_replace_all(c->cache, items, c->now);
	if (type && pod)
		apply(c, type, pod);
	else if (!items)
		apply(c, types[c->calls % 3], obj);

	pod_cache_get_stats(c->cache, &st);
	FUZZ_CHECK(st.live + st.deleted <= POD_CACHE_MAX_PODS, "%zu + %zu pods", st.live, st.deleted);
	return c->stop_at && c->calls == c->stop_at;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctx c = { .now = 1000 };
	struct watch_decoder dec;
	struct pod_names out;
	struct pod_cache_stats st;
	uint8_t flags, hdr[6] = { 0 };
	size_t chunk = 0, off, n;
	uint64_t handed = 0, lines_before;
	int rc;

	if (size < sizeof(hdr))
		return 0;
	memcpy(hdr, data, sizeof(hdr));
	data += sizeof(hdr);
	size -= sizeof(hdr);
	flags = hdr[0];
	if (flags & 2)
		c.stop_at = 1 + (flags >> 4);

	c.cache = pod_cache_new();
	FUZZ_CHECK(c.cache, "pod_cache_new");
	watch_decoder_init(&dec, (flags & 1) ? 1 + (size_t)hdr[1] * 4 : 0);

	for (off = 0; off < size; off += n, chunk++) {
		uint8_t b = hdr[2 + chunk % 4];

		n = b == 255 ? size - off : (size_t)b + 1;
		if (n > size - off)
			n = size - off;
		lines_before = dec.lines;
		rc = watch_decoder_feed(&dec, (const char *)data + off, n, on_line, &c);
		FUZZ_CHECK(rc == 0 || rc == 1, "feed returned %d", rc);
		FUZZ_CHECK(dec.lines >= lines_before, "lines went down");
		if (rc) {
			/* the callback stopped it: the rest of this chunk is dropped */
			FUZZ_CHECK(c.calls == c.stop_at, "feed stopped without the callback");
			watch_decoder_reset(&dec);
			c.stop_at = 0;
		}
		if ((flags & 4) && chunk == 2)
			watch_decoder_reset(&dec);
	}
	handed = c.calls;
	FUZZ_CHECK(dec.lines == handed, "decoder counted %llu objects, handed over %llu",
		   (unsigned long long)dec.lines, (unsigned long long)handed);

	/* lookups of whatever the fuzzer spelled */
	lookup(&c, "", NULL, &out);
	lookup(&c, "5f0c8c2e-1b7a-4d3e-9a6f-2c4b8d0e1f3a", "containerd://0f0a", &out);
	lookup(&c, "6f1d2c3b4a5968778695a4b3c2d1e0f9", "", &out);
	if (size) {
		char *s = fuzz_dup(data, size > 100 ? 100 : size);

		lookup(&c, s, s, &out);
		free(s);
	}

	pod_cache_expire(c.cache, (flags & 8) ? c.now + 601 : c.now, 600);
	pod_cache_get_stats(c.cache, &st);
	FUZZ_CHECK(st.live + st.deleted <= POD_CACHE_MAX_PODS, "%zu + %zu pods", st.live, st.deleted);
	if (fuzz_verbose())
		fprintf(stderr, "lines %llu too_long %llu malformed %llu; pods %zu live, %zu deleted, %llu malformed\n",
			(unsigned long long)dec.lines, (unsigned long long)dec.too_long,
			(unsigned long long)dec.malformed, st.live, st.deleted, (unsigned long long)st.malformed);
	if (flags & 8)
		FUZZ_CHECK(st.deleted == 0, "%zu tombstones after expiring them all", st.deleted);

	watch_decoder_reset(&dec);
	watch_decoder_free(&dec);
	pod_cache_free(c.cache);
	return 0;
}
