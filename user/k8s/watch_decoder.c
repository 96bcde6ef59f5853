#include "watch_decoder.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "k8s_json.h"

/* A big item's or line's buffer is let go; a small one is kept for the next. */
#define KEEP_BUFFER		(64u << 10)

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* ---- watch stream (NDJSON) ---- */

void watch_decoder_init(struct watch_decoder *dec, size_t max_line)
{
	memset(dec, 0, sizeof(*dec));
	dec->max_line = max_line;
}

static size_t decoder_max(const struct watch_decoder *dec)
{
	size_t max = dec->max_line ? dec->max_line : WATCH_MAX_LINE;

	/* json_tokener_parse_ex() takes an int */
	return max < INT_MAX ? max : INT_MAX;
}

/* Let go of a big line's buffer; keep a small one for the next line. */
static void partial_clear(struct watch_decoder *dec)
{
	if (dec->partial.cap > KEEP_BUFFER)
		strbuf_free(&dec->partial);
	else
		strbuf_reset(&dec->partial);
}

/* One line without its '\n'. */
static int decode_line(struct watch_decoder *dec, const char *s, size_t len,
		       watch_line_fn cb, void *ctx)
{
	json_object *obj;
	size_t i, end;
	int ret;

	for (i = 0; i < len && is_space(s[i]); i++)
		;
	if (i == len)
		return 0;	/* blank: keep-alive or a stray CR */
	if (!dec->tok) {
		dec->tok = json_tokener_new_ex(K8S_JSON_DEPTH);
		if (!dec->tok) {
			dec->too_long++;
			return 0;
		}
	}
	json_tokener_reset(dec->tok);
	obj = json_tokener_parse_ex(dec->tok, s, (int)len);
	if (!obj) {
		/* json_tokener_continue here means the line ended mid-object */
		dec->malformed++;
		return 0;
	}
	for (end = json_tokener_get_parse_end(dec->tok); end < len && is_space(s[end]); end++)
		;
	if (end < len || !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		dec->malformed++;
		return 0;
	}
	dec->lines++;
	ret = cb(ctx, obj);
	json_object_put(obj);
	return ret;
}

int watch_decoder_feed(struct watch_decoder *dec, const char *data, size_t len,
		       watch_line_fn cb, void *ctx)
{
	size_t max = decoder_max(dec);

	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t seg = nl ? (size_t)(nl - data) : len;
		int ret = 0;

		if (dec->skipping) {
			if (!nl)
				return 0;
			dec->skipping = false;
		} else if (!nl) {
			/* an unfinished line: keep it, unless it is already too long */
			if (dec->partial.len + seg > max) {
				dec->too_long++;
				dec->skipping = true;
				partial_clear(dec);
				return 0;
			}
			strbuf_append(&dec->partial, data, seg);
			if (dec->partial.oom) {
				dec->too_long++;
				dec->skipping = true;
				strbuf_free(&dec->partial);
			}
			return 0;
		} else if (dec->partial.len) {
			if (dec->partial.len + seg > max) {
				dec->too_long++;
			} else {
				strbuf_append(&dec->partial, data, seg);
				if (dec->partial.oom)
					dec->too_long++;
				else
					ret = decode_line(dec, dec->partial.buf, dec->partial.len, cb, ctx);
			}
			partial_clear(dec);
		} else if (seg > max) {
			dec->too_long++;
		} else {
			/* the common case: a whole line inside the chunk, no copy */
			ret = decode_line(dec, data, seg, cb, ctx);
		}
		data += seg + 1;
		len -= seg + 1;
		if (ret)
			return ret;
	}
	return 0;
}

void watch_decoder_reset(struct watch_decoder *dec)
{
	strbuf_free(&dec->partial);
	dec->skipping = false;
}

void watch_decoder_free(struct watch_decoder *dec)
{
	if (!dec)
		return;
	strbuf_free(&dec->partial);
	if (dec->tok)
		json_tokener_free(dec->tok);
	dec->tok = NULL;
	dec->skipping = false;
}

/* ---- LIST body ---- */

enum list_state {
	LS_BEGIN,		/* before the top-level '{' */
	LS_KEY,			/* before a member's name (or the closing '}') */
	LS_KEY_STRING,		/* inside the name */
	LS_COLON,
	LS_VALUE,		/* before a member's value */
	LS_IN_VALUE,		/* inside a member's value (not items) */
	LS_AFTER_VALUE,		/* before ',' or '}' */
	LS_ITEMS_FIRST,		/* after "items":[ */
	LS_ITEM_START,		/* after a ',' in items */
	LS_IN_ITEM,
	LS_AFTER_ITEM,		/* before ',' or ']' */
	LS_DONE,		/* after the closing '}': whitespace only */
};

enum list_member { LM_OTHER, LM_ITEMS, LM_METADATA };

/*
 * Scan one JSON value from its first byte on. Returns how many bytes of `p`
 * belong to it; *done once it ended (a scalar ends before the delimiter
 * after it, which is not consumed). Brackets are counted, not matched:
 * json-c checks the bytes we keep, and the top level checks the rest.
 */
static size_t scan_value(struct json_value_scan *vs, const char *p, size_t n, bool *done)
{
	size_t i;

	*done = false;
	for (i = 0; i < n; i++) {
		char c = p[i];

		if (!vs->started) {
			vs->started = true;
			if (c == '{' || c == '[')
				vs->depth = 1;
			else if (c == '"')
				vs->in_string = true;
			else
				vs->scalar = true;
			continue;
		}
		if (vs->scalar) {
			if (c == ',' || c == '}' || c == ']' || is_space(c)) {
				*done = true;
				return i;
			}
			continue;
		}
		if (vs->in_string) {
			if (vs->escape)
				vs->escape = false;
			else if (c == '\\')
				vs->escape = true;
			else if (c == '"') {
				vs->in_string = false;
				if (vs->depth == 0) {
					*done = true;
					return i + 1;
				}
			}
			continue;
		}
		if (c == '"') {
			vs->in_string = true;
		} else if (c == '{' || c == '[') {
			if (vs->depth == UINT_MAX)
				vs->depth--;	/* nonsense json-c rejects; no wrap */
			vs->depth++;
		} else if (c == '}' || c == ']') {
			if (--vs->depth == 0) {
				*done = true;
				return i + 1;
			}
		}
	}
	return n;
}

void list_decoder_init(struct list_decoder *dec, size_t max_item)
{
	memset(dec, 0, sizeof(*dec));
	dec->max_item = max_item;
}

static size_t list_max(const struct list_decoder *dec)
{
	size_t max = dec->max_item ? dec->max_item : LIST_MAX_ITEM;

	return max < INT_MAX ? max : INT_MAX;
}

static int list_error(struct list_decoder *dec, const char *why)
{
	if (!dec->error)
		dec->error = why;
	return -EBADMSG;
}

static void buf_clear(struct list_decoder *dec)
{
	if (dec->buf.cap > KEEP_BUFFER)
		strbuf_free(&dec->buf);
	else
		strbuf_reset(&dec->buf);
	dec->skipping = false;
}

/* Keep `n` more bytes of the value, unless it is already over the bound. */
static void buf_keep(struct list_decoder *dec, const char *p, size_t n)
{
	if (dec->skipping)
		return;
	if (dec->buf.len + n > list_max(dec)) {
		dec->skipping = true;
		strbuf_free(&dec->buf);
		return;
	}
	strbuf_append(&dec->buf, p, n);
	if (dec->buf.oom) {
		dec->skipping = true;
		strbuf_free(&dec->buf);
	}
}

/* The kept bytes as one JSON object, or NULL. */
static json_object *buf_parse(struct list_decoder *dec)
{
	json_object *obj;

	if (dec->skipping || !dec->buf.len)
		return NULL;
	if (!dec->tok) {
		dec->tok = json_tokener_new_ex(K8S_JSON_DEPTH);
		if (!dec->tok)
			return NULL;
	}
	json_tokener_reset(dec->tok);
	obj = json_tokener_parse_ex(dec->tok, dec->buf.buf, (int)dec->buf.len);
	if (obj && (json_tokener_get_parse_end(dec->tok) != dec->buf.len ||
		    !json_object_is_type(obj, json_type_object))) {
		json_object_put(obj);
		obj = NULL;
	}
	return obj;
}

static int item_done(struct list_decoder *dec, list_item_fn cb, void *ctx)
{
	json_object *obj;
	int ret = 0;

	if (dec->skipping) {
		dec->too_long++;
	} else if (!(obj = buf_parse(dec))) {
		dec->malformed++;
	} else {
		dec->items++;
		ret = cb(ctx, obj);
		json_object_put(obj);
	}
	buf_clear(dec);
	return ret;
}

static void member_done(struct list_decoder *dec)
{
	if (dec->member == LM_METADATA) {
		json_object_put(dec->metadata);
		/* over the bound or not an object: no metadata, the caller says so */
		dec->metadata = buf_parse(dec);
	}
	buf_clear(dec);
}

static void key_done(struct list_decoder *dec)
{
	dec->member = LM_OTHER;
	if (dec->key_escaped)
		return;
	if (dec->key_len == 5 && !memcmp(dec->key, "items", 5))
		dec->member = LM_ITEMS;
	else if (dec->key_len == 8 && !memcmp(dec->key, "metadata", 8))
		dec->member = LM_METADATA;
}

int list_decoder_feed(struct list_decoder *dec, const char *data, size_t len,
		      list_item_fn cb, void *ctx)
{
	size_t i = 0, n;
	bool done;
	int ret;

	if (dec->error)
		return -EBADMSG;
	while (i < len) {
		char c = data[i];

		switch (dec->state) {
		case LS_IN_VALUE:
		case LS_IN_ITEM:
			n = scan_value(&dec->scan, data + i, len - i, &done);
			if (dec->state == LS_IN_ITEM || dec->member == LM_METADATA)
				buf_keep(dec, data + i, n);
			i += n;
			if (!done)
				break;
			if (dec->state == LS_IN_VALUE) {
				member_done(dec);
				dec->state = LS_AFTER_VALUE;
				break;
			}
			dec->state = LS_AFTER_ITEM;
			ret = item_done(dec, cb, ctx);
			if (ret)
				return ret;
			break;
		case LS_KEY_STRING:
			i++;
			if (dec->scan.escape) {
				dec->scan.escape = false;
			} else if (c == '\\') {
				dec->scan.escape = true;
				dec->key_escaped = true;
			} else if (c == '"') {
				key_done(dec);
				dec->state = LS_COLON;
			} else if (dec->key_len < sizeof(dec->key)) {
				dec->key[dec->key_len++] = c;
			} else {
				dec->key_escaped = true;	/* too long to be one of ours */
			}
			break;
		default:
			if (is_space(c)) {
				i++;
				break;
			}
			switch (dec->state) {
			case LS_BEGIN:
				if (c != '{')
					return list_error(dec, "the response is not a JSON object");
				dec->state = LS_KEY;
				break;
			case LS_KEY:
				if (c == '}') {
					dec->state = LS_DONE;
					break;
				}
				if (c != '"')
					return list_error(dec, "the response is not valid JSON");
				dec->key_len = 0;
				dec->key_escaped = false;
				dec->scan.escape = false;
				dec->state = LS_KEY_STRING;
				break;
			case LS_COLON:
				if (c != ':')
					return list_error(dec, "the response is not valid JSON");
				dec->state = LS_VALUE;
				break;
			case LS_VALUE:
				if (dec->member == LM_ITEMS && c == '[') {
					dec->have_items = true;
					dec->state = LS_ITEMS_FIRST;
					break;
				}
				if (dec->member == LM_ITEMS && c != 'n')
					return list_error(dec, "\"items\" is not an array");
				/* "items": null is an empty list */
				memset(&dec->scan, 0, sizeof(dec->scan));
				dec->state = LS_IN_VALUE;
				continue;	/* the scanner takes this byte */
			case LS_AFTER_VALUE:
				if (c == ',')
					dec->state = LS_KEY;
				else if (c == '}')
					dec->state = LS_DONE;
				else
					return list_error(dec, "the response is not valid JSON");
				break;
			case LS_ITEMS_FIRST:
				if (c == ']') {
					dec->state = LS_AFTER_VALUE;
					break;
				}
				/* fall through */
			case LS_ITEM_START:
				memset(&dec->scan, 0, sizeof(dec->scan));
				buf_clear(dec);
				dec->state = LS_IN_ITEM;
				continue;
			case LS_AFTER_ITEM:
				if (c == ',')
					dec->state = LS_ITEM_START;
				else if (c == ']')
					dec->state = LS_AFTER_VALUE;
				else
					return list_error(dec, "the response is not valid JSON");
				break;
			case LS_DONE:
				return list_error(dec, "data after the JSON object");
			}
			i++;
		}
	}
	return 0;
}

int list_decoder_finish(struct list_decoder *dec)
{
	if (dec->error)
		return -EBADMSG;
	/* a scalar value ends at the next byte, so one at the very end is cut short too */
	if (dec->state != LS_DONE)
		return list_error(dec, dec->state == LS_BEGIN ? "the response is empty" :
				  "the response is cut short");
	return 0;
}

json_object *list_decoder_metadata(const struct list_decoder *dec)
{
	return dec->metadata;
}

void list_decoder_free(struct list_decoder *dec)
{
	if (!dec)
		return;
	strbuf_free(&dec->buf);
	json_object_put(dec->metadata);
	dec->metadata = NULL;
	if (dec->tok)
		json_tokener_free(dec->tok);
	dec->tok = NULL;
}
