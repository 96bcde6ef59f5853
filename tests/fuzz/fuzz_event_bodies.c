/*
 * The Kubernetes Event body builders of user/k8s/k8s_event_body.h on any strings:
 * k8s_event_post_body(), k8s_event_patch_body(), k8s_utf8_prefix(), and
 * around them k8s_event_check(), k8s_event_path(), k8s_event_time().
 *
 * Input: byte 0 flags (1: raw timestamps, else within +-73 years of 2026;
 * 2: missing fields are NULL rather than ""), bytes 1..4 count, 5..12 and
 * 13..20 the first and last timestamps, then NUL-separated strings: type,
 * reason, message, key, kind, namespace, name, uid, fieldPath, the Event's
 * name, component, host.
 *
 * Checks: a body is produced unless a timestamp is out of range; it is one
 * JSON object that json-c parses back; every string field reads back
 * exactly as given (reportingInstance: the host cut to 128 bytes); count
 * and the timestamps match; the message is a prefix of the input of at most
 * K8S_EVENT_MESSAGE_MAX bytes, and valid UTF-8 whenever the input was (then
 * cut at most 3 bytes short of the limit). k8s_utf8_prefix() keeps those
 * promises for every limit.
 */
#include <errno.h>

#include <json-c/json.h>

#include "k8s_event_body.h"
#include "fuzz.h"

#define T0 (1790763302LL * 1000000000LL)	/* 2026-09-30T10:15:02Z */

enum { F_TYPE, F_REASON, F_MESSAGE, F_KEY, F_KIND, F_NS, F_NAME, F_UID, F_FIELD_PATH,
       F_EVENT_NAME, F_COMPONENT, F_HOST, F_N };

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!o || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* Parse a whole body: exactly one JSON object and nothing after it. */
static json_object *parse_body(const struct strbuf *sb)
{
	json_tokener *tok = json_tokener_new();
	json_object *obj;

	FUZZ_CHECK(tok, "json_tokener_new");
	FUZZ_CHECK(sb->buf && sb->len == strlen(sb->buf), "body has a NUL inside or is missing");
	obj = json_tokener_parse_ex(tok, sb->buf, (int)sb->len);
	FUZZ_CHECK(obj && json_object_is_type(obj, json_type_object),
		   "body does not parse back (%s): %.300s", json_tokener_error_desc(json_tokener_get_error(tok)),
		   sb->buf);
	FUZZ_CHECK(json_tokener_get_parse_end(tok) == sb->len, "trailing bytes after the body");
	json_tokener_free(tok);
	return obj;
}

static void expect_str(json_object *o, const char *key, const char *want, size_t want_len)
{
	json_object *v = get(o, key);

	FUZZ_CHECK(v && json_object_is_type(v, json_type_string), "\"%s\" missing or not a string", key);
	FUZZ_CHECK((size_t)json_object_get_string_len(v) == want_len &&
			   !memcmp(json_object_get_string(v), want, want_len),
		   "\"%s\" reads back as \"%s\", not \"%.*s\"", key, json_object_get_string(v),
		   (int)want_len, want);
}

static void expect_s(json_object *o, const char *key, const char *want)
{
	want = want ? want : "";
	expect_str(o, key, want, strlen(want));
}

/* Omitted when empty (omitempty), else exact. */
static void expect_opt(json_object *o, const char *key, const char *want)
{
	if (!want || !*want)
		FUZZ_CHECK(!get(o, key), "\"%s\" present though empty", key);
	else
		expect_s(o, key, want);
}

static void expect_time(json_object *o, const char *key, int64_t ns)
{
	char ts[32];

	FUZZ_CHECK(k8s_event_time(ns, ts, sizeof(ts)) == 0, "time");
	FUZZ_CHECK(strlen(ts) == 20 && ts[4] == '-' && ts[10] == 'T' && ts[19] == 'Z', "time \"%s\"", ts);
	expect_s(o, key, ts);
}

static void check_message(json_object *o, const char *msg)
{
	json_object *v = get(o, "message");
	size_t in_len = msg ? strlen(msg) : 0, len;
	const char *got;

	FUZZ_CHECK(v && json_object_is_type(v, json_type_string), "message missing");
	got = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	FUZZ_CHECK(len <= K8S_EVENT_MESSAGE_MAX, "message is %zu bytes", len);
	FUZZ_CHECK(len <= in_len && (!len || !memcmp(got, msg, len)), "message is not a prefix of the input");
	FUZZ_CHECK(len == k8s_utf8_prefix(msg ? msg : "", in_len, K8S_EVENT_MESSAGE_MAX),
		   "message cut at %zu, k8s_utf8_prefix says otherwise", len);
	if (in_len <= K8S_EVENT_MESSAGE_MAX)
		FUZZ_CHECK(len == in_len, "a short message was cut (%zu of %zu)", len, in_len);
	if (fuzz_utf8_valid(msg ? msg : "", in_len)) {
		FUZZ_CHECK(fuzz_utf8_valid(got, len), "valid UTF-8 in, invalid out (%zu of %zu bytes)", len,
			   in_len);
		FUZZ_CHECK(len + 3 >= (in_len < K8S_EVENT_MESSAGE_MAX ? in_len : K8S_EVENT_MESSAGE_MAX),
			   "cut %zu bytes short", K8S_EVENT_MESSAGE_MAX - len);
	}
}

static void check_prefix(const char *s, size_t len, size_t max)
{
	size_t n = k8s_utf8_prefix(s, len, max);

	FUZZ_CHECK(n <= len && n <= max, "prefix %zu of %zu, max %zu", n, len, max);
	if (len <= max)
		FUZZ_CHECK(n == len, "cut %zu though it fits in %zu", len, max);
	if (fuzz_utf8_valid(s, len)) {
		FUZZ_CHECK(fuzz_utf8_valid(s, n), "prefix %zu (max %zu) splits a character", n, max);
		FUZZ_CHECK(n + 3 >= (len < max ? len : max), "prefix %zu for max %zu", n, max);
	}
}

static bool time_ok(int64_t ns)
{
	char ts[32];

	return k8s_event_time(ns, ts, sizeof(ts)) == 0;
}

static int64_t timestamp(uint64_t raw, bool raw_mode)
{
	if (raw_mode)
		return (int64_t)raw;
	return T0 + (int64_t)(raw % (1ULL << 62)) - (1LL << 61);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	char *f[F_N] = { 0 }, *copy;
	struct strbuf sb = STRBUF_INIT;
	struct k8s_event ev;
	struct k8s_event_object o;
	uint8_t flags = fuzz_u8(&in);
	int32_t count = (int32_t)(uint32_t)fuzz_u64(&in, 4);
	int64_t first = timestamp(fuzz_u64(&in, 8), flags & 1);
	int64_t last = timestamp(fuzz_u64(&in, 8), flags & 1);
	char instance[K8S_EVENT_INSTANCE_MAX + 1], pathbuf[256];
	size_t i, n, pos = 0, msg_len;
	json_object *body;
	int rc;

	/* split the rest on NUL */
	copy = fuzz_dup(in.p, in.n);
	for (i = 0; i < F_N; i++) {
		if (pos > in.n) {
			f[i] = (flags & 2) ? NULL : copy + in.n;	/* "" */
			continue;
		}
		f[i] = copy + pos;
		pos += strlen(copy + pos) + 1;
	}

	ev = (struct k8s_event){
		.type = f[F_TYPE], .reason = f[F_REASON], .message = f[F_MESSAGE], .key = f[F_KEY],
		.object = { .kind = f[F_KIND], .namespace_ = f[F_NS], .name = f[F_NAME], .uid = f[F_UID],
			    .field_path = f[F_FIELD_PATH] },
		.time_ns = first,
	};

	/* validation and URL paths */
	rc = k8s_event_check(&ev);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL, "check %d", rc);
	rc = k8s_event_path(k8s_event_namespace(&ev), f[F_EVENT_NAME], pathbuf, 1 + (size_t)(flags >> 2) * 4);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOSPC, "path %d", rc);
	if (rc == 0) {
		FUZZ_CHECK(!strncmp(pathbuf, "/api/v1/namespaces/", 19), "path \"%s\"", pathbuf);
		/* nothing that changes the URL: no query, no escapes, no "." or ".." segment */
		FUZZ_CHECK(!strchr(pathbuf, '?') && !strchr(pathbuf, '%') && !strchr(pathbuf, '#') &&
				   !strstr(pathbuf, "//") && !strstr(pathbuf, "/./") && !strstr(pathbuf, "/../"),
			   "path \"%s\"", pathbuf);
		n = strlen(pathbuf);
		FUZZ_CHECK(strcmp(pathbuf + n - 2, "/.") && (n < 3 || strcmp(pathbuf + n - 3, "/..")),
			   "path \"%s\"", pathbuf);
	}

	/* UTF-8 prefixes at every small limit and a few from the input */
	msg_len = f[F_MESSAGE] ? strlen(f[F_MESSAGE]) : 0;
	for (i = 0; i <= 8; i++)
		check_prefix(f[F_MESSAGE] ? f[F_MESSAGE] : "", msg_len, i);
	check_prefix(f[F_MESSAGE] ? f[F_MESSAGE] : "", msg_len, (size_t)count & 0xffff);
	check_prefix(f[F_MESSAGE] ? f[F_MESSAGE] : "", msg_len, K8S_EVENT_MESSAGE_MAX);

	/* POST */
	o = (struct k8s_event_object){ .ev = &ev, .name = f[F_EVENT_NAME], .component = f[F_COMPONENT],
				       .host = f[F_HOST], .count = count, .first_ns = first, .last_ns = last };
	rc = k8s_event_post_body(&o, &sb);
	if (!time_ok(first) || !time_ok(last)) {
		FUZZ_CHECK(rc != 0, "a body with an unrepresentable timestamp");
	} else {
		FUZZ_CHECK(rc == 0, "post body failed: %d", rc);
		if (fuzz_verbose())
			fprintf(stderr, "POST %s\n", sb.buf);
		body = parse_body(&sb);
		expect_s(body, "apiVersion", "v1");
		expect_s(body, "kind", "Event");
		expect_s(get(body, "metadata"), "name", f[F_EVENT_NAME]);
		expect_s(get(body, "metadata"), "namespace", k8s_event_namespace(&ev));
		expect_s(get(body, "involvedObject"), "apiVersion", "v1");
		expect_s(get(body, "involvedObject"), "kind", f[F_KIND]);
		expect_opt(get(body, "involvedObject"), "namespace", f[F_NS]);
		expect_s(get(body, "involvedObject"), "name", f[F_NAME]);
		expect_opt(get(body, "involvedObject"), "uid", f[F_UID]);
		expect_opt(get(body, "involvedObject"), "fieldPath", f[F_FIELD_PATH]);
		expect_s(get(body, "source"), "component", f[F_COMPONENT]);
		expect_opt(get(body, "source"), "host", f[F_HOST]);
		expect_s(body, "reason", f[F_REASON]);
		expect_s(body, "type", f[F_TYPE]);
		expect_s(body, "reportingComponent", f[F_COMPONENT]);
		snprintf(instance, sizeof(instance), "%s", f[F_HOST] ? f[F_HOST] : "");
		expect_s(body, "reportingInstance", instance);
		expect_time(body, "firstTimestamp", first);
		expect_time(body, "lastTimestamp", last);
		FUZZ_CHECK(get(body, "count") && json_object_get_int(get(body, "count")) == count, "count");
		FUZZ_CHECK(!get(body, "eventTime"), "eventTime set");
		check_message(body, f[F_MESSAGE]);
		json_object_put(body);
	}

	/* PATCH */
	strbuf_reset(&sb);
	rc = k8s_event_patch_body(count, last, f[F_MESSAGE], &sb);
	if (!time_ok(last)) {
		FUZZ_CHECK(rc != 0, "a patch with an unrepresentable timestamp");
	} else {
		FUZZ_CHECK(rc == 0, "patch body failed: %d", rc);
		if (fuzz_verbose())
			fprintf(stderr, "PATCH %s\n", sb.buf);
		body = parse_body(&sb);
		FUZZ_CHECK(json_object_object_length(body) == 3, "patch has %d keys",
			   json_object_object_length(body));
		FUZZ_CHECK(get(body, "count") && json_object_get_int(get(body, "count")) == count, "count");
		expect_time(body, "lastTimestamp", last);
		check_message(body, f[F_MESSAGE]);
		json_object_put(body);
	}

	strbuf_free(&sb);
	free(copy);
	return 0;
}
