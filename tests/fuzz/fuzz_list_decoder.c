/*
 * A LIST body, cut into chunks anywhere, through list_decoder_feed()
 * (user/k8s/watch_decoder.c) into a pod_cache re-list, as the list+watch
 * thread and the pod watcher do.
 *
 * Input: a 5-byte header, then the body.
 *   byte 0  flags: 1 small max_item (1 + byte 1 * 8, to reach the skipping
 *           paths), 2 the callback stops the feed after 1 + (flags >> 4)
 *           items, 4 the re-list is aborted instead of ended
 *   byte 1  max_item seed
 *   2..4    chunk lengths, cycled: 1 + b bytes each; 255 means the rest
 *
 * Checks: return codes are the documented ones, and an error is sticky; the
 * decoder counts exactly the items it handed over, each an object; it never
 * holds more than about one item (its buffer stays within twice max_item,
 * or the small buffer it keeps); the cache never holds more than
 * POD_CACHE_MAX_PODS. Against json-c in strict mode as the reference, when
 * the whole body is a valid object: finish() accepts it, no item of its
 * "items" array is lost (with the default bound, every object item is
 * handed over; duplicate "items" keys may add more), and "metadata" is the
 * same object (unless a key is spelled with escapes, which the scanner does
 * not decode: the API server never writes them). Nothing leaks.
 */
#include <errno.h>

#include <json-c/json.h>

#include "k8s_pods.h"
#include "fuzz.h"

struct ctx {
	struct pod_cache *cache;
	struct pod_relist relist;
	struct list_decoder *dec;
	uint64_t calls;
	uint64_t stop_at;	/* 0: never */
	size_t max_buf;
};

static int on_item(void *arg, json_object *item)
{
	struct ctx *c = arg;
	int rc;

	FUZZ_CHECK(item && json_object_is_type(item, json_type_object), "the decoder handed over a non-object");
	c->calls++;
	if (c->dec->buf.cap > c->max_buf)
		c->max_buf = c->dec->buf.cap;
	rc = pod_cache_relist_add(c->cache, &c->relist, item, 100);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -ENOSPC, "relist_add gave %d", rc);
	return c->stop_at && c->calls == c->stop_at;
}

/* json-c's strict reading of the whole body: the object, or NULL. */
static json_object *reference(const char *s, size_t len)
{
	json_tokener *tok = json_tokener_new_ex(64);
	json_object *obj = NULL;
	size_t end;

	if (!tok || len > INT32_MAX)
		goto out;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, s, (int)len);
	if (!obj)
		goto out;
	for (end = json_tokener_get_parse_end(tok); end < len; end++) {
		if (s[end] != ' ' && s[end] != '\t' && s[end] != '\r' && s[end] != '\n') {
			json_object_put(obj);
			obj = NULL;
			goto out;
		}
	}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		obj = NULL;
	}
out:
	if (tok)
		json_tokener_free(tok);
	return obj;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct list_decoder dec;
	struct ctx c = { .dec = &dec };
	struct pod_cache_stats st;
	uint8_t flags, hdr[5] = { 0 };
	size_t chunk = 0, off, n, max_item;
	bool stopped = false, escaped;
	json_object *ref, *items = NULL, *meta = NULL;
	int rc = 0, fin;

	if (size < sizeof(hdr))
		return 0;
	memcpy(hdr, data, sizeof(hdr));
	data += sizeof(hdr);
	size -= sizeof(hdr);
	flags = hdr[0];
	if (flags & 2)
		c.stop_at = 1 + (flags >> 4);
	max_item = (flags & 1) ? 1 + (size_t)hdr[1] * 8 : 0;

	c.cache = pod_cache_new();
	FUZZ_CHECK(c.cache, "pod_cache_new");
	list_decoder_init(&dec, max_item);
	pod_cache_relist_begin(c.cache, &c.relist);

	for (off = 0; off < size; off += n, chunk++) {
		uint8_t b = hdr[2 + chunk % 3];

		n = b == 255 ? size - off : (size_t)b + 1;
		if (n > size - off)
			n = size - off;
		rc = list_decoder_feed(&dec, (const char *)data + off, n, on_item, &c);
		FUZZ_CHECK(rc == 0 || rc == 1 || rc == -EBADMSG, "feed returned %d", rc);
		FUZZ_CHECK(rc != -EBADMSG || dec.error, "-EBADMSG without a reason");
		FUZZ_CHECK(dec.buf.cap <= 2 * (max_item ? max_item : LIST_MAX_ITEM) + 128 || dec.buf.cap <= (64u << 10),
			   "holding %zu bytes, max_item %zu", dec.buf.cap, max_item);
		if (rc == 1) {
			FUZZ_CHECK(c.calls == c.stop_at, "feed stopped without the callback");
			stopped = true;
			break;
		}
		if (rc)
			break;
	}
	FUZZ_CHECK(dec.items == c.calls, "decoder counted %llu items, handed over %llu",
		   (unsigned long long)dec.items, (unsigned long long)c.calls);
	fin = stopped ? 0 : list_decoder_finish(&dec);
	FUZZ_CHECK(fin == 0 || fin == -EBADMSG, "finish returned %d", fin);
	if (rc == -EBADMSG)
		FUZZ_CHECK(fin == -EBADMSG && list_decoder_feed(&dec, "{}", 2, on_item, &c) == -EBADMSG,
			   "an error that did not stick");

	ref = stopped ? NULL : reference((const char *)data, size);
	escaped = memchr(data, '\\', size) != NULL;
	if (ref) {
		json_object_object_get_ex(ref, "items", &items);
		json_object_object_get_ex(ref, "metadata", &meta);
	}
	if (ref && !escaped && (!items || json_object_is_type(items, json_type_array) ||
				json_object_is_type(items, json_type_null))) {
		size_t i, objects = 0, len = items && json_object_is_type(items, json_type_array) ?
						       json_object_array_length(items) : 0;

		FUZZ_CHECK(fin == 0, "a valid list refused: %s", dec.error ? dec.error : "?");
		for (i = 0; i < len; i++)
			objects += json_object_is_type(json_object_array_get_idx(items, i), json_type_object);
		FUZZ_CHECK(dec.items + dec.too_long + dec.malformed >= len, "%zu items, %llu seen", len,
			   (unsigned long long)(dec.items + dec.too_long + dec.malformed));
		if (!max_item)
			FUZZ_CHECK(dec.items >= objects, "%zu object items, %llu handed over", objects,
				   (unsigned long long)dec.items);
		/* compared as text: json-c takes NaN even when strict, and NaN != NaN */
		if (meta && json_object_is_type(meta, json_type_object) && list_decoder_metadata(&dec))
			FUZZ_CHECK(!strcmp(json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN),
					   json_object_to_json_string_ext(list_decoder_metadata(&dec),
									  JSON_C_TO_STRING_PLAIN)),
				   "metadata differs");
		if (meta && json_object_is_type(meta, json_type_object) && !max_item)
			FUZZ_CHECK(list_decoder_metadata(&dec), "metadata lost");
	}
	if (fuzz_verbose())
		fprintf(stderr, "feed %d finish %d (%s); items %llu too_long %llu malformed %llu; reference %s\n",
			rc, fin, dec.error ? dec.error : "-", (unsigned long long)dec.items,
			(unsigned long long)dec.too_long, (unsigned long long)dec.malformed,
			ref ? "valid" : "not valid");
	json_object_put(ref);

	if ((flags & 4) || fin)
		pod_cache_relist_abort(c.cache, &c.relist);
	else
		pod_cache_relist_end(c.cache, &c.relist, 100);
	pod_cache_get_stats(c.cache, &st);
	FUZZ_CHECK(st.live + st.deleted <= POD_CACHE_MAX_PODS, "%zu + %zu pods", st.live, st.deleted);
	list_decoder_free(&dec);
	pod_cache_free(c.cache);
	return 0;
}
