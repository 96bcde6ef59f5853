/*
 * Decoding API response bodies as they stream in, with bounded memory. Pure:
 * no I/O, no locks; one decoder per stream.
 *
 * A watch body is NDJSON: one event object per '\n'-terminated line.
 *
 * A LIST body is one object, {"kind":"PodList","metadata":{...},"items":[...]},
 * which can be tens of MiB on a full node; json-c would build a tree of all
 * of it (about ten times the body's size). The list decoder instead scans
 * the top level itself, finds each item's bytes (string, escape and bracket
 * state), and hands them to json-c one item at a time: it holds at most one
 * item and "metadata".
 */
#ifndef KSIGHT_WATCH_DECODER_H
#define KSIGHT_WATCH_DECODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "strbuf.h"

/* ---- watch stream (NDJSON) ---- */

/* Longest watch event line we accept; a Pod is far smaller. */
#define WATCH_MAX_LINE		(8u << 20)

/*
 * Splits a watch response body, one JSON object per '\n'-terminated line,
 * into parsed objects. Pure: no I/O, no locks. Zero-initialise, or use
 * watch_decoder_init() for another bound.
 */
struct watch_decoder {
	size_t max_line;	/* 0: WATCH_MAX_LINE */
	struct strbuf partial;	/* the unfinished line so far */
	bool skipping;		/* the current line is over max_line: drop up to '\n' */
	struct json_tokener *tok;
	uint64_t lines;		/* objects handed to the callback */
	uint64_t too_long;	/* lines dropped: over max_line (or out of memory) */
	uint64_t malformed;	/* lines dropped: not one JSON object */
};

/*
 * Called once per complete line with its object, which the decoder releases
 * afterwards (json_object_get() to keep it). Non-zero stops the feed.
 */
typedef int (*watch_line_fn)(void *ctx, json_object *obj);

void watch_decoder_init(struct watch_decoder *dec, size_t max_line);

/*
 * Feed any chunk of the stream. Returns 0, or the callback's non-zero value
 * (the rest of the chunk is then not looked at: reset before feeding again).
 * Blank lines are skipped; a '\r' before the '\n' is fine.
 */
int watch_decoder_feed(struct watch_decoder *dec, const char *data, size_t len,
		       watch_line_fn cb, void *ctx);

/* The stream ended: drop any partial line (not counted), keep the counters. */
void watch_decoder_reset(struct watch_decoder *dec);

void watch_decoder_free(struct watch_decoder *dec);	/* frees buffers, not dec */

/* ---- LIST body ---- */

/* Longest LIST item (or "metadata") we accept; a Pod is 5-20 KiB. */
#define LIST_MAX_ITEM		WATCH_MAX_LINE

/* Where a JSON value ends: the scanner's state inside one value. */
struct json_value_scan {
	unsigned int depth;	/* open '{' and '[' */
	bool started;
	bool in_string;
	bool escape;
	bool scalar;		/* a number, true, false or null: ends before a delimiter */
};

/*
 * Zero-initialise, or use list_decoder_init() for another bound. An item
 * over max_item is skipped (counted in too_long), one that is not a JSON
 * object is skipped (malformed); the list goes on.
 */
struct list_decoder {
	size_t max_item;	/* 0: LIST_MAX_ITEM */
	int state;
	int member;		/* the top-level member whose value we are in */
	char key[16];		/* the member's name, when short and without escapes */
	size_t key_len;
	bool key_escaped;
	struct json_value_scan scan;
	struct strbuf buf;	/* the item (or metadata) so far */
	bool skipping;		/* the item is over max_item: scan, do not keep */
	struct json_tokener *tok;
	json_object *metadata;	/* the list's "metadata", once seen */
	bool have_items;	/* an "items" array was seen */
	const char *error;	/* why the body is not a list; sticky */
	uint64_t items;		/* objects handed to the callback */
	uint64_t too_long;
	uint64_t malformed;
};

/* Called per item with its object, released afterwards; non-zero stops the feed. */
typedef int (*list_item_fn)(void *ctx, json_object *item);

void list_decoder_init(struct list_decoder *dec, size_t max_item);

/*
 * Feed any chunk of the body. Returns 0, the callback's non-zero value, or
 * -EBADMSG when the body is not a JSON object with an "items" array
 * (dec->error says why; feeding more returns it again).
 */
int list_decoder_feed(struct list_decoder *dec, const char *data, size_t len,
		      list_item_fn cb, void *ctx);

/*
 * The body ended: 0 when it was one complete list object, -EBADMSG when it
 * was cut short or is not a list (dec->error says why).
 */
int list_decoder_finish(struct list_decoder *dec);

/* The list's "metadata" object (borrowed, valid until free), or NULL. */
json_object *list_decoder_metadata(const struct list_decoder *dec);

void list_decoder_free(struct list_decoder *dec);	/* frees buffers, not dec */

#endif
