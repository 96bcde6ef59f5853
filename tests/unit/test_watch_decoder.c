/*
 * The stream decoders (user/k8s/watch_decoder.c). Watch: NDJSON lines cut
 * anywhere, too long, malformed, reset. LIST: items handed over one at a
 * time wherever the chunks are cut, with bounded memory, and every way a
 * body can fail to be a list.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "k8s_json.h"
#include "strbuf.h"
#include "watch_decoder.h"

/* ---- watch stream (NDJSON) ---- */

struct seen {
	int n;
	char text[16][96];	/* "TYPE name" per line */
	int stop_at;		/* return 7 from this line (1-based), 0: never */
};

static int collect(void *ctx, json_object *obj)
{
	struct seen *s = ctx;
	json_object *type = json_object_object_get(obj, "type");
	json_object *o = json_object_object_get(obj, "object");
	json_object *meta = json_object_object_get(o, "metadata");
	json_object *name = json_object_object_get(meta, "name");

	if (s->n < 16)
		snprintf(s->text[s->n], sizeof(s->text[0]), "%s %s",
			 type ? json_object_get_string(type) : "-",
			 name ? json_object_get_string(name) : "-");
	s->n++;
	return s->stop_at && s->n == s->stop_at ? 7 : 0;
}

static int feed_str(struct watch_decoder *dec, const char *s, struct seen *seen)
{
	return watch_decoder_feed(dec, s, strlen(s), collect, seen);
}

static const char stream[] =
	"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n"
	"\n"
	"{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\\n\\u00e9}{\"}}}\r\n"
	"   \n"
	"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"42\"}}}\n"
	"{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"c\"}}}\n"
	"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"na";	/* cut off */

static void assert_stream_seen(const struct seen *s)
{
	assert_int_equal(s->n, 4);
	assert_string_equal(s->text[0], "ADDED a");
	assert_string_equal(s->text[1], "MODIFIED b\n\xc3\xa9}{");
	assert_string_equal(s->text[2], "BOOKMARK -");
	assert_string_equal(s->text[3], "DELETED c");
}

static void test_decoder_every_split(void **state)
{
	size_t len = sizeof(stream) - 1, i, j;

	for (i = 0; i <= len; i++) {
		struct watch_decoder dec = { 0 };
		struct seen s = { 0 };

		assert_int_equal(watch_decoder_feed(&dec, stream, i, collect, &s), 0);
		assert_int_equal(watch_decoder_feed(&dec, stream + i, len - i, collect, &s), 0);
		assert_stream_seen(&s);
		assert_int_equal(dec.lines, 4);
		assert_int_equal(dec.malformed, 0);
		assert_int_equal(dec.too_long, 0);
		/* the stream ends: the cut-off event is gone, the next stream starts clean */
		watch_decoder_reset(&dec);
		assert_int_equal(feed_str(&dec, "{\"type\":\"X\"}\n", &s), 0);
		assert_int_equal(s.n, 5);
		assert_string_equal(s.text[4], "X -");
		assert_int_equal(dec.malformed, 0);
		watch_decoder_free(&dec);
	}

	/* a byte at a time */
	{
		struct watch_decoder dec;
		struct seen s = { 0 };

		watch_decoder_init(&dec, 0);
		for (j = 0; j < len; j++)
			assert_int_equal(watch_decoder_feed(&dec, stream + j, 1, collect, &s), 0);
		assert_stream_seen(&s);
		watch_decoder_free(&dec);
	}
	/* zero-length feeds are no-ops */
	{
		struct watch_decoder dec = { 0 };
		struct seen s = { 0 };

		assert_int_equal(watch_decoder_feed(&dec, NULL, 0, collect, &s), 0);
		assert_int_equal(s.n, 0);
		watch_decoder_free(&dec);
	}
}

static void test_decoder_many_lines(void **state)
{
	struct watch_decoder dec = { 0 };
	struct strbuf sb = STRBUF_INIT;
	struct seen s = { 0 };
	int i;

	for (i = 0; i < 1000; i++)
		strbuf_printf(&sb, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"p%d\"}}}\n", i);
	assert_int_equal(watch_decoder_feed(&dec, sb.buf, sb.len, collect, &s), 0);
	assert_int_equal(s.n, 1000);
	assert_string_equal(s.text[0], "ADDED p0");
	assert_string_equal(s.text[15], "ADDED p15");
	assert_int_equal(dec.lines, 1000);
	strbuf_free(&sb);
	watch_decoder_free(&dec);
}

static void test_decoder_too_long(void **state)
{
	static const char ok[] = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"ok\"}}}\n";
	struct watch_decoder dec;
	struct seen s = { 0 };
	char line[256];
	size_t n, i;

	/* a small bound: a line of exactly max_line passes, one more byte does not */
	watch_decoder_init(&dec, 64);
	n = (size_t)snprintf(line, sizeof(line), "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"%s\"}}}\n",
			     "xxxxxxxxxxxxxx");
	assert_int_equal(n - 1, 64);
	assert_int_equal(watch_decoder_feed(&dec, line, n, collect, &s), 0);
	assert_int_equal(s.n, 1);
	n = (size_t)snprintf(line, sizeof(line), "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"%s\"}}}\n",
			     "xxxxxxxxxxxxxxx");
	/* in one chunk, then split at every position: dropped once, the next line fine */
	for (i = 0; i <= n; i++) {
		uint64_t before = dec.too_long;

		s.n = 0;
		assert_int_equal(watch_decoder_feed(&dec, line, i, collect, &s), 0);
		assert_int_equal(watch_decoder_feed(&dec, line + i, n - i, collect, &s), 0);
		assert_int_equal(watch_decoder_feed(&dec, ok, sizeof(ok) - 1, collect, &s), 0);
		assert_int_equal(dec.too_long, before + 1);
		assert_int_equal(s.n, 1);
		assert_string_equal(s.text[0], "ADDED ok");
	}
	assert_int_equal(dec.malformed, 0);
	watch_decoder_free(&dec);

	/* the real bound: a 9 MiB line in 64 KiB chunks, never buffered whole */
	{
		size_t big = 9u << 20, chunk = 64u << 10, off;
		char *data = malloc(chunk);

		assert_non_null(data);
		memset(data, 'x', chunk);
		memcpy(data, "{\"type\":\"ADDED\",\"x\":\"", 21);
		watch_decoder_init(&dec, 0);
		s.n = 0;
		for (off = 0; off < big; off += chunk) {
			assert_int_equal(watch_decoder_feed(&dec, data, chunk, collect, &s), 0);
			assert_true(dec.partial.cap <= (size_t)WATCH_MAX_LINE * 2);
			memset(data, 'x', 21);
		}
		assert_int_equal(dec.too_long, 1);
		assert_null(dec.partial.buf);
		assert_int_equal(feed_str(&dec, "\"}\n", &s), 0);
		assert_int_equal(watch_decoder_feed(&dec, ok, sizeof(ok) - 1, collect, &s), 0);
		assert_int_equal(s.n, 1);
		assert_int_equal(dec.too_long, 1);
		assert_int_equal(dec.malformed, 0);
		watch_decoder_free(&dec);
		free(data);
	}
}

static void test_decoder_malformed(void **state)
{
	static const char *const bad[] = {
		"{\"type\":\"ADDED\"\n",		/* cut short */
		"not json\n",
		"[1,2]\n",				/* JSON, but not an object */
		"\"ADDED\"\n",
		"17\n",
		"null\n",
		"{\"a\":1} {\"b\":2}\n",		/* two objects on one line */
		"{\"a\":1}x\n",
		"{\"a\":\"\x01\"\n",
		"}\n",
	};
	static const char ok[] = "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"z\"}}}\n";
	struct watch_decoder dec = { 0 };
	struct seen s = { 0 };
	size_t i;
	char deep[200];

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(watch_decoder_feed(&dec, bad[i], strlen(bad[i]), collect, &s), 0);
	/* nested deeper than the tokener's limit */
	memset(deep, '[', 150);
	snprintf(deep + 150, sizeof(deep) - 150, "\n");
	assert_int_equal(watch_decoder_feed(&dec, deep, strlen(deep), collect, &s), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(dec.malformed, sizeof(bad) / sizeof(bad[0]) + 1);
	assert_int_equal(watch_decoder_feed(&dec, ok, sizeof(ok) - 1, collect, &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.text[0], "DELETED z");
	/* trailing whitespace and CR are fine */
	assert_int_equal(feed_str(&dec, "{\"type\":\"T\"}  \t\r\n", &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(dec.malformed, sizeof(bad) / sizeof(bad[0]) + 1);
	assert_int_equal(dec.lines, 2);
	watch_decoder_free(&dec);
}

static void test_decoder_reset_and_stop(void **state)
{
	struct watch_decoder dec = { 0 };
	struct seen s = { 0 };
	static const char three[] = "{\"type\":\"1\"}\n{\"type\":\"2\"}\n{\"type\":\"3\"}\n";

	/* a partial line at stream end never reaches the callback, nor the next stream */
	assert_int_equal(feed_str(&dec, "{\"type\":\"ADDED\"", &s), 0);
	watch_decoder_reset(&dec);
	assert_int_equal(feed_str(&dec, ",\"x\":1}\n", &s), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(dec.malformed, 1);	/* the orphaned tail */
	/* reset while skipping an over-long line: the next stream is read normally */
	dec.max_line = 8;
	assert_int_equal(feed_str(&dec, "{\"type\":\"very long\"", &s), 0);
	assert_true(dec.skipping);
	watch_decoder_reset(&dec);
	assert_false(dec.skipping);
	assert_int_equal(feed_str(&dec, "{\"a\":1}\n", &s), 0);
	assert_int_equal(s.n, 1);
	dec.max_line = 0;

	/* the callback stops the feed */
	s.n = 0;
	s.stop_at = 2;
	assert_int_equal(watch_decoder_feed(&dec, three, sizeof(three) - 1, collect, &s), 7);
	assert_int_equal(s.n, 2);
	watch_decoder_reset(&dec);
	watch_decoder_free(&dec);
	watch_decoder_free(NULL);
}

/* ---- LIST body ---- */

struct seen_items {
	int n;
	char names[16][64];
	int stop_at;	/* return 9 from this item (1-based), 0: never */
	size_t max_buf;	/* the decoder's largest buffer at any callback */
	struct list_decoder *dec;
};

static int collect_item(void *ctx, json_object *item)
{
	struct seen_items *s = ctx;
	size_t len = 0;
	const char *name = k8s_json_string(k8s_json_member(item, "metadata", json_type_object),
					   "name", &len);

	if (s->n < 16)
		snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name ? name : "-");
	s->n++;
	if (s->dec && s->dec->buf.cap > s->max_buf)
		s->max_buf = s->dec->buf.cap;
	return s->stop_at && s->n == s->stop_at ? 9 : 0;
}

/* metadata after the items, strings holding brackets, quotes and escapes, a nested list */
static const char body[] =
	" {\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"weird\\\"key\":[1,{\"items\":[2]}],"
	"\"items\":[ {\"metadata\":{\"name\":\"a\"}},\n"
	"{\"metadata\":{\"name\":\"b]}\\\"{[\\\\\"},\"spec\":{\"x\":[[],{}],\"n\":-1.5e3,\"t\":true}} ,"
	"{\"metadata\":{\"name\":\"c\"},\"status\":null}],"
	"\"metadata\":{\"resourceVersion\":\"12345\",\"continue\":\"\"}}\r\n";

static void assert_body_seen(const struct seen_items *s, struct list_decoder *dec)
{
	size_t len = 0;

	assert_int_equal(s->n, 3);
	assert_string_equal(s->names[0], "a");
	assert_string_equal(s->names[1], "b]}\"{[\\");
	assert_string_equal(s->names[2], "c");
	assert_int_equal(dec->items, 3);
	assert_int_equal(dec->malformed, 0);
	assert_int_equal(dec->too_long, 0);
	assert_string_equal(k8s_json_string(list_decoder_metadata(dec), "resourceVersion", &len), "12345");
}

static void test_list_every_split(void **state)
{
	size_t len = sizeof(body) - 1, i, j;

	for (i = 0; i <= len; i++) {
		struct list_decoder dec;
		struct seen_items s = { 0 };

		list_decoder_init(&dec, 0);
		assert_int_equal(list_decoder_feed(&dec, body, i, collect_item, &s), 0);
		assert_int_equal(list_decoder_feed(&dec, body + i, len - i, collect_item, &s), 0);
		assert_int_equal(list_decoder_finish(&dec), 0);
		assert_body_seen(&s, &dec);
		list_decoder_free(&dec);
	}
	/* a byte at a time */
	{
		struct list_decoder dec;
		struct seen_items s = { 0 };

		list_decoder_init(&dec, 0);
		for (j = 0; j < len; j++)
			assert_int_equal(list_decoder_feed(&dec, body + j, 1, collect_item, &s), 0);
		assert_int_equal(list_decoder_finish(&dec), 0);
		assert_body_seen(&s, &dec);
		list_decoder_free(&dec);
	}
}

/* A node's worth of big items: the decoder never holds more than about one. */
static void test_list_bounded_memory(void **state)
{
	struct strbuf sb = STRBUF_INIT, pad = STRBUF_INIT;
	struct list_decoder dec;
	struct seen_items s = { .dec = &dec };
	size_t off, item_len;
	int i;

	for (i = 0; i < 8000; i++)
		strbuf_putc(&pad, 'x');
	strbuf_printf(&sb, "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"7\"},\"items\":[");
	for (i = 0; i < 1000; i++)
		strbuf_printf(&sb, "%s{\"metadata\":{\"name\":\"p%d\"},\"pad\":\"%s\"}", i ? "," : "", i, pad.buf);
	strbuf_printf(&sb, "]}");
	assert_false(sb.oom);
	item_len = pad.len + 40;

	list_decoder_init(&dec, 0);
	/* in 16 KiB chunks, as curl hands them over */
	for (off = 0; off < sb.len; off += 16384) {
		size_t n = sb.len - off < 16384 ? sb.len - off : 16384;

		assert_int_equal(list_decoder_feed(&dec, sb.buf + off, n, collect_item, &s), 0);
		assert_true(dec.buf.cap <= 4 * item_len);
	}
	assert_int_equal(list_decoder_finish(&dec), 0);
	assert_int_equal(s.n, 1000);
	assert_string_equal(s.names[15], "p15");
	/* ~8 MiB went through; one item's worth was held at a time */
	assert_true(sb.len > 1000 * pad.len);
	assert_true(s.max_buf <= 4 * item_len);
	list_decoder_free(&dec);
	strbuf_free(&sb);
	strbuf_free(&pad);
}

static int feed_all(struct list_decoder *dec, const char *s, struct seen_items *seen)
{
	int ret = list_decoder_feed(dec, s, strlen(s), collect_item, seen);

	return ret ? ret : list_decoder_finish(dec);
}

static void test_list_bad_items(void **state)
{
	struct list_decoder dec;
	struct seen_items s = { 0 };

	/* an item over the bound and items that are not objects: skipped, counted, the list goes on */
	list_decoder_init(&dec, 40);
	assert_int_equal(feed_all(&dec, "{\"items\":[{\"metadata\":{\"name\":\"a\"}},"
				  "{\"metadata\":{\"name\":\"far-too-long-for-forty-bytes-of-item\"}},"
				  "\"str\",17,null,[1],{\"bad\":,},{\"metadata\":{\"name\":\"b\"}}],"
				  "\"metadata\":{\"resourceVersion\":\"1\"}}", &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.names[0], "a");
	assert_string_equal(s.names[1], "b");
	assert_int_equal(dec.too_long, 1);
	assert_int_equal(dec.malformed, 5);
	assert_non_null(list_decoder_metadata(&dec));
	list_decoder_free(&dec);

	/* metadata over the bound: none, the caller refuses the list */
	list_decoder_init(&dec, 20);
	assert_int_equal(feed_all(&dec, "{\"metadata\":{\"resourceVersion\":\"123456789\"},\"items\":[]}", &s), 0);
	assert_null(list_decoder_metadata(&dec));
	list_decoder_free(&dec);

	/* the callback stops the feed */
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	list_decoder_init(&dec, 0);
	assert_int_equal(list_decoder_feed(&dec, body, sizeof(body) - 1, collect_item, &s), 9);
	assert_int_equal(s.n, 2);
	list_decoder_free(&dec);
}

static void test_list_not_a_list(void **state)
{
	static const struct {
		const char *body;
		int ret;
		const char *why;
	} cases[] = {
		{ "{\"items\":[],\"metadata\":{}}", 0, NULL },
		{ "{\"items\":null,\"metadata\":{}}", 0, NULL },
		{ "{}", 0, NULL },
		{ "", -EBADMSG, "the response is empty" },
		{ "   \n", -EBADMSG, "the response is empty" },
		{ "[]", -EBADMSG, "the response is not a JSON object" },
		{ "null", -EBADMSG, "the response is not a JSON object" },
		{ "{\"items\":{}}", -EBADMSG, "\"items\" is not an array" },
		{ "{\"items\":\"x\"}", -EBADMSG, "\"items\" is not an array" },
		{ "{\"items\":[{}", -EBADMSG, "the response is cut short" },
		{ "{\"items\":[{\"a\":\"}]}", -EBADMSG, "the response is cut short" },
		{ "{\"items\":[]", -EBADMSG, "the response is cut short" },
		{ "{\"kind\":\"PodList\"", -EBADMSG, "the response is cut short" },
		{ "{\"kind\":1", -EBADMSG, "the response is cut short" },
		{ "{\"items\":[] \"x\":1}", -EBADMSG, "the response is not valid JSON" },
		{ "{\"items\" []}", -EBADMSG, "the response is not valid JSON" },
		{ "{items:[]}", -EBADMSG, "the response is not valid JSON" },
		{ "{\"items\":[{} {}]}", -EBADMSG, "the response is not valid JSON" },
		{ "{\"items\":[]}{}", -EBADMSG, "data after the JSON object" },
		{ "{\"items\":[]}x", -EBADMSG, "data after the JSON object" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct list_decoder dec;
		struct seen_items s = { 0 };
		int ret;

		list_decoder_init(&dec, 0);
		ret = feed_all(&dec, cases[i].body, &s);
		if (ret != cases[i].ret || (cases[i].why && (!dec.error || strcmp(dec.error, cases[i].why))))
			fail_msg("%s: got %d (%s)", cases[i].body, ret, dec.error ? dec.error : "-");
		if (ret) {
			/* sticky */
			assert_int_equal(list_decoder_feed(&dec, "{}", 2, collect_item, &s), -EBADMSG);
			assert_int_equal(list_decoder_finish(&dec), -EBADMSG);
		}
		list_decoder_free(&dec);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decoder_every_split),
		cmocka_unit_test(test_decoder_many_lines),
		cmocka_unit_test(test_decoder_too_long),
		cmocka_unit_test(test_decoder_malformed),
		cmocka_unit_test(test_decoder_reset_and_stop),
		cmocka_unit_test(test_list_every_split),
		cmocka_unit_test(test_list_bounded_memory),
		cmocka_unit_test(test_list_bad_items),
		cmocka_unit_test(test_list_not_a_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
