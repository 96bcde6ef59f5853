/*
 * The LIST body decoder (user/k8s/watch_decoder.c): items handed over one
 * at a time wherever the chunks are cut, with bounded memory, and every way
 * a body can fail to be a list. The NDJSON watch decoder is tested in
 * test_k8s_pods.c.
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

struct seen {
	int n;
	char names[16][64];
	int stop_at;	/* return 9 from this item (1-based), 0: never */
	size_t max_buf;	/* the decoder's largest buffer at any callback */
	struct list_decoder *dec;
};

static int collect(void *ctx, json_object *item)
{
	struct seen *s = ctx;
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

static void assert_body_seen(const struct seen *s, struct list_decoder *dec)
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
		struct seen s = { 0 };

		list_decoder_init(&dec, 0);
		assert_int_equal(list_decoder_feed(&dec, body, i, collect, &s), 0);
		assert_int_equal(list_decoder_feed(&dec, body + i, len - i, collect, &s), 0);
		assert_int_equal(list_decoder_finish(&dec), 0);
		assert_body_seen(&s, &dec);
		list_decoder_free(&dec);
	}
	/* a byte at a time */
	{
		struct list_decoder dec;
		struct seen s = { 0 };

		list_decoder_init(&dec, 0);
		for (j = 0; j < len; j++)
			assert_int_equal(list_decoder_feed(&dec, body + j, 1, collect, &s), 0);
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
	struct seen s = { .dec = &dec };
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

		assert_int_equal(list_decoder_feed(&dec, sb.buf + off, n, collect, &s), 0);
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

static int feed_all(struct list_decoder *dec, const char *s, struct seen *seen)
{
	int ret = list_decoder_feed(dec, s, strlen(s), collect, seen);

	return ret ? ret : list_decoder_finish(dec);
}

static void test_list_bad_items(void **state)
{
	struct list_decoder dec;
	struct seen s = { 0 };

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
	assert_int_equal(list_decoder_feed(&dec, body, sizeof(body) - 1, collect, &s), 9);
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
		struct seen s = { 0 };
		int ret;

		list_decoder_init(&dec, 0);
		ret = feed_all(&dec, cases[i].body, &s);
		if (ret != cases[i].ret || (cases[i].why && (!dec.error || strcmp(dec.error, cases[i].why))))
			fail_msg("%s: got %d (%s)", cases[i].body, ret, dec.error ? dec.error : "-");
		if (ret) {
			/* sticky */
			assert_int_equal(list_decoder_feed(&dec, "{}", 2, collect, &s), -EBADMSG);
			assert_int_equal(list_decoder_finish(&dec), -EBADMSG);
		}
		list_decoder_free(&dec);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_every_split),
		cmocka_unit_test(test_list_bounded_memory),
		cmocka_unit_test(test_list_bad_items),
		cmocka_unit_test(test_list_not_a_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
