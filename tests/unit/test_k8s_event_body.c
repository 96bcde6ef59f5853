/*
 * Unit tests for the pure half of Kubernetes Events (k8s_event_body.h): POST
 * and PATCH bodies compared as parsed JSON (a Pod, a Node, a namespaced
 * PersistentVolumeClaim), timestamps, UTF-8 truncation, checks, paths and
 * status verdicts.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "k8s_event_body.h"
#include "strbuf.h"

#include "k8s_event_fixtures.h"


/* ---- body builders ---- */

static void test_post_body_pod(void **state)
{
	struct k8s_event ev = pod_ev("Container app: process python (pid 4249) was killed by the OOM killer.");
	struct k8s_event_object o = {
		.ev = &ev, .name = POD ".18da11bc3c83fc00", .component = "ksight", .host = "node-1",
		.count = 4, .first_ns = T0, .last_ns = T0 + 428 * SEC + 999999999,
	};
	struct strbuf sb = STRBUF_INIT;

	assert_int_equal(k8s_event_post_body(&o, &sb), 0);
	assert_json_equal(sb.buf,
		"{\"apiVersion\":\"v1\",\"kind\":\"Event\","
		"\"metadata\":{\"name\":\"" POD ".18da11bc3c83fc00\",\"namespace\":\"shop\"},"
		"\"involvedObject\":{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"namespace\":\"shop\","
		"\"name\":\"" POD "\",\"uid\":\"" UID "\",\"fieldPath\":\"spec.containers{app}\"},"
		"\"reason\":\"ProcessOOMKilled\","
		"\"message\":\"Container app: process python (pid 4249) was killed by the OOM killer.\","
		"\"source\":{\"component\":\"ksight\",\"host\":\"node-1\"},"
		"\"firstTimestamp\":\"2026-09-30T10:15:02Z\",\"lastTimestamp\":\"2026-09-30T10:22:10Z\","
		"\"count\":4,\"type\":\"Warning\","
		"\"reportingComponent\":\"ksight\",\"reportingInstance\":\"node-1\"}");
	/* the Go field name is not the JSON key; eventTime unset keeps legacy validation */
	assert_null(strstr(sb.buf, "reportingController"));
	assert_null(strstr(sb.buf, "eventTime"));
	assert_null(strstr(sb.buf, "\\/"));
	strbuf_free(&sb);
}

/* A Node is cluster-scoped: the Event lives in "default", involvedObject has no namespace. */
static void test_post_body_node(void **state)
{
	struct k8s_event ev = node_ev("EXT4-fs error on device nvme1n1p1");
	struct k8s_event_object o = {
		.ev = &ev, .name = "node-1.18da11bc3c83fc00", .component = "ksight", .host = "node-1",
		.count = 1, .first_ns = T0, .last_ns = T0,
	};
	struct strbuf sb = STRBUF_INIT;

	assert_string_equal(k8s_event_namespace(&ev), "default");
	ev.object.namespace_ = NULL;
	assert_string_equal(k8s_event_namespace(&ev), "default");
	assert_int_equal(k8s_event_post_body(&o, &sb), 0);
	assert_json_equal(sb.buf,
		"{\"apiVersion\":\"v1\",\"kind\":\"Event\","
		"\"metadata\":{\"name\":\"node-1.18da11bc3c83fc00\",\"namespace\":\"default\"},"
		"\"involvedObject\":{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"name\":\"node-1\",\"uid\":\"" NUID "\"},"
		"\"reason\":\"Ext4Error\",\"message\":\"EXT4-fs error on device nvme1n1p1\","
		"\"source\":{\"component\":\"ksight\",\"host\":\"node-1\"},"
		"\"firstTimestamp\":\"2026-09-30T10:15:02Z\",\"lastTimestamp\":\"2026-09-30T10:15:02Z\","
		"\"count\":1,\"type\":\"Warning\","
		"\"reportingComponent\":\"ksight\",\"reportingInstance\":\"node-1\"}");
	strbuf_free(&sb);
}

/* Any namespaced kind: a PersistentVolumeClaim's Event lives in its namespace, without fieldPath. */
static void test_post_body_pvc(void **state)
{
	struct k8s_event ev = {
		.type = "Warning", .reason = "VolumeIOErrors", .message = "I/O errors on /dev/rbd0",
		.object = { .kind = "PersistentVolumeClaim", .namespace_ = "data", .name = "pg-data-0",
			    .uid = UID },
		.time_ns = T0,
	};
	struct k8s_event_object o = {
		.ev = &ev, .name = "pg-data-0.18da11bc3c83fc00", .component = "ksight", .host = "node-1",
		.count = 1, .first_ns = T0, .last_ns = T0,
	};
	struct strbuf sb = STRBUF_INIT;
	char path[128];

	assert_int_equal(k8s_event_check(&ev), 0);
	assert_string_equal(k8s_event_namespace(&ev), "data");
	assert_int_equal(k8s_event_path(k8s_event_namespace(&ev), NULL, path, sizeof(path)), 0);
	assert_string_equal(path, "/api/v1/namespaces/data/events");
	assert_int_equal(k8s_event_post_body(&o, &sb), 0);
	assert_json_equal(sb.buf,
		"{\"apiVersion\":\"v1\",\"kind\":\"Event\","
		"\"metadata\":{\"name\":\"pg-data-0.18da11bc3c83fc00\",\"namespace\":\"data\"},"
		"\"involvedObject\":{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\","
		"\"namespace\":\"data\",\"name\":\"pg-data-0\",\"uid\":\"" UID "\"},"
		"\"reason\":\"VolumeIOErrors\",\"message\":\"I/O errors on /dev/rbd0\","
		"\"source\":{\"component\":\"ksight\",\"host\":\"node-1\"},"
		"\"firstTimestamp\":\"2026-09-30T10:15:02Z\",\"lastTimestamp\":\"2026-09-30T10:15:02Z\","
		"\"count\":1,\"type\":\"Warning\","
		"\"reportingComponent\":\"ksight\",\"reportingInstance\":\"node-1\"}");
	strbuf_free(&sb);
}

/* Quotes, control characters and non-ASCII survive; reportingInstance is cut to 128. */
static void test_post_body_escaping_and_instance(void **state)
{
	struct k8s_event ev = pod_ev("a \"quoted\"\nline\tand caf\xc3\xa9 / done");
	char host[201];
	struct k8s_event_object o = {
		.ev = &ev, .name = "n.1", .component = "ksight", .host = host, .count = 1,
		.first_ns = T0, .last_ns = T0,
	};
	struct strbuf sb = STRBUF_INIT;

	memset(host, 'h', 200);
	host[200] = '\0';
	assert_int_equal(k8s_event_post_body(&o, &sb), 0);
	assert_string_equal(jp(sb.buf, "/message"), "a \"quoted\"\nline\tand caf\xc3\xa9 / done");
	assert_int_equal(strlen(jp(sb.buf, "/reportingInstance")), 128);
	assert_int_equal(strlen(jp(sb.buf, "/source/host")), 200);
	/* no fieldPath, no uid: omitted, not empty */
	ev.object.field_path = NULL;
	ev.object.uid = "";
	strbuf_reset(&sb);
	assert_int_equal(k8s_event_post_body(&o, &sb), 0);
	assert_false(jhas(sb.buf, "/involvedObject/fieldPath"));
	assert_false(jhas(sb.buf, "/involvedObject/uid"));
	assert_true(jhas(sb.buf, "/involvedObject/namespace"));
	strbuf_free(&sb);
}

static void test_patch_body(void **state)
{
	struct strbuf sb = STRBUF_INIT;

	assert_int_equal(k8s_event_patch_body(5, T0 + 428 * SEC, "4 kills since 10:15:02Z", &sb), 0);
	assert_json_equal(sb.buf, "{\"count\":5,\"lastTimestamp\":\"2026-09-30T10:22:10Z\","
				  "\"message\":\"4 kills since 10:15:02Z\"}");
	/* exactly these three keys, in client-go's order */
	assert_string_equal(sb.buf, "{\"count\":5,\"lastTimestamp\":\"2026-09-30T10:22:10Z\","
				    "\"message\":\"4 kills since 10:15:02Z\"}");
	strbuf_reset(&sb);
	assert_int_equal(k8s_event_patch_body(2, T0, NULL, &sb), 0);
	assert_string_equal(sb.buf, "{\"count\":2,\"lastTimestamp\":\"2026-09-30T10:15:02Z\",\"message\":\"\"}");
	strbuf_free(&sb);
}

static void test_time_format(void **state)
{
	char buf[32];

	assert_int_equal(k8s_event_time(T0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2026-09-30T10:15:02Z");
	/* seconds, truncated: metav1.Time has no fraction */
	assert_int_equal(k8s_event_time(T0 + 999999999, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2026-09-30T10:15:02Z");
	assert_int_equal(k8s_event_time(0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1970-01-01T00:00:00Z");
	assert_int_equal(k8s_event_time(-1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1969-12-31T23:59:59Z");
	assert_int_equal(k8s_event_time(951782400LL * SEC, buf, sizeof(buf)), 0);  /* leap day */
	assert_string_equal(buf, "2000-02-29T00:00:00Z");
	assert_int_equal(k8s_event_time(T0, buf, 21), 0);
	assert_int_equal(k8s_event_time(T0, buf, 20), -ENOSPC);
}

static void test_utf8_prefix(void **state)
{
	char s[2100];

	assert_int_equal(k8s_utf8_prefix("abc", 3, 1024), 3);
	assert_int_equal(k8s_utf8_prefix("abc", 3, 2), 2);
	assert_int_equal(k8s_utf8_prefix(NULL, 0, 1024), 0);

	/* 2-byte é across the limit: dropped whole */
	memset(s, 'a', 1023);
	memcpy(s + 1023, "\xc3\xa9", 3);
	assert_int_equal(k8s_utf8_prefix(s, 1025, 1024), 1023);
	/* ends exactly at the limit: kept */
	memset(s, 'a', 1022);
	memcpy(s + 1022, "\xc3\xa9z", 4);
	assert_int_equal(k8s_utf8_prefix(s, 1025, 1024), 1024);
	/* 3-byte € starting 1 or 2 bytes before the limit */
	memset(s, 'a', 1022);
	memcpy(s + 1022, "\xe2\x82\xac", 4);
	assert_int_equal(k8s_utf8_prefix(s, 1025, 1024), 1022);
	memset(s, 'a', 1023);
	memcpy(s + 1023, "\xe2\x82\xac", 4);
	assert_int_equal(k8s_utf8_prefix(s, 1026, 1024), 1023);
	/* 4-byte emoji: every split point */
	memset(s, 'a', 1021);
	memcpy(s + 1021, "\xf0\x9f\x98\x80", 5);
	assert_int_equal(k8s_utf8_prefix(s, 1025, 1024), 1021);
	memset(s, 'a', 1020);
	memcpy(s + 1020, "\xf0\x9f\x98\x80z", 6);
	assert_int_equal(k8s_utf8_prefix(s, 1025, 1024), 1024);
	/* not UTF-8 (a run of continuation bytes): cut where asked */
	memset(s, 0x80, 2000);
	assert_int_equal(k8s_utf8_prefix(s, 2000, 1024), 1024);
}

/* The message in both bodies is cut to 1024 bytes on a character boundary. */
static void test_message_truncated_in_bodies(void **state)
{
	char msg[1200];
	struct k8s_event ev = pod_ev(msg);
	struct k8s_event_object o = {
		.ev = &ev, .name = "n.1", .component = "ksight", .host = "node-1", .count = 1,
		.first_ns = T0, .last_ns = T0,
	};
	struct strbuf sb = STRBUF_INIT;
	const char *got;

	memset(msg, 'x', 1022);
	memcpy(msg + 1022, "\xe2\x82\xac tail", 9);  /* € at bytes 1022..1024 */
	assert_int_equal(k8s_event_post_body(&o, &sb), 0);
	got = jp(sb.buf, "/message");
	assert_int_equal(strlen(got), 1022);
	assert_int_equal(strspn(got, "x"), 1022);

	strbuf_reset(&sb);
	assert_int_equal(k8s_event_patch_body(2, T0, msg, &sb), 0);
	assert_int_equal(strlen(jp(sb.buf, "/message")), 1022);

	/* exactly 1024 bytes: untouched */
	memset(msg, 'y', 1024);
	msg[1024] = '\0';
	strbuf_reset(&sb);
	assert_int_equal(k8s_event_patch_body(2, T0, msg, &sb), 0);
	assert_int_equal(strlen(jp(sb.buf, "/message")), 1024);
	strbuf_free(&sb);
}

static void test_check_and_path(void **state)
{
	struct k8s_event ev = pod_ev("m");
	char path[128];

	assert_int_equal(k8s_event_check(&ev), 0);
	ev.object.namespace_ = "Shop";
	assert_int_equal(k8s_event_check(&ev), -EINVAL);
	ev.object.namespace_ = "a/b";
	assert_int_equal(k8s_event_check(&ev), -EINVAL);
	ev.object.namespace_ = "-a";
	assert_int_equal(k8s_event_check(&ev), -EINVAL);
	ev = pod_ev("m");
	ev.object.kind = NULL;
	assert_int_equal(k8s_event_check(&ev), -EINVAL);
	ev = pod_ev("m");
	ev.reason = "";
	assert_int_equal(k8s_event_check(&ev), -EINVAL);
	ev = node_ev("m");
	assert_int_equal(k8s_event_check(&ev), 0);
	ev.type = NULL;
	assert_int_equal(k8s_event_check(&ev), -EINVAL);
	assert_int_equal(k8s_event_check(NULL), -EINVAL);

	assert_int_equal(k8s_event_path("shop", NULL, path, sizeof(path)), 0);
	assert_string_equal(path, "/api/v1/namespaces/shop/events");
	assert_int_equal(k8s_event_path("default", "node-1.18da11bc3c83fc00", path, sizeof(path)), 0);
	assert_string_equal(path, "/api/v1/namespaces/default/events/node-1.18da11bc3c83fc00");
	assert_int_equal(k8s_event_path("shop", "..", path, sizeof(path)), -EINVAL);
	assert_int_equal(k8s_event_path("shop", "a?b", path, sizeof(path)), -EINVAL);
	assert_int_equal(k8s_event_path("", NULL, path, sizeof(path)), -EINVAL);
	assert_int_equal(k8s_event_path("shop", "x", path, 20), -ENOSPC);
}

static void test_verdict(void **state)
{
	/* success */
	assert_int_equal(k8s_event_verdict(0, 0, 201), KEV_DONE);
	assert_int_equal(k8s_event_verdict(1, 0, 200), KEV_DONE);
	/* transport errors */
	assert_int_equal(k8s_event_verdict(0, -ECONNREFUSED, 0), KEV_RETRY);
	assert_int_equal(k8s_event_verdict(1, -ETIMEDOUT, 0), KEV_RETRY);
	assert_int_equal(k8s_event_verdict(0, -EPROTO, 0), KEV_RETRY);
	/* a too-big answer still carries its status */
	assert_int_equal(k8s_event_verdict(0, -EMSGSIZE, 201), KEV_DONE);
	assert_int_equal(k8s_event_verdict(0, -EMSGSIZE, 0), KEV_RETRY);
	/* throttling and server errors */
	assert_int_equal(k8s_event_verdict(0, 0, 429), KEV_RETRY);
	assert_int_equal(k8s_event_verdict(1, 0, 500), KEV_RETRY);
	assert_int_equal(k8s_event_verdict(0, 0, 503), KEV_RETRY);
	assert_int_equal(k8s_event_verdict(0, 0, 401), KEV_RETRY);
	assert_int_equal(k8s_event_verdict(0, 0, 408), KEV_RETRY);
	assert_int_equal(k8s_event_verdict(0, 0, 0), KEV_RETRY);
	/* 404 and 409 depend on the verb */
	assert_int_equal(k8s_event_verdict(1, 0, 404), KEV_RECREATE);
	assert_int_equal(k8s_event_verdict(0, 0, 404), KEV_REJECT);  /* no such namespace */
	assert_int_equal(k8s_event_verdict(0, 0, 409), KEV_RENAME);
	assert_int_equal(k8s_event_verdict(1, 0, 409), KEV_REJECT);
	/* other client errors are dropped */
	assert_int_equal(k8s_event_verdict(0, 0, 400), KEV_REJECT);
	assert_int_equal(k8s_event_verdict(0, 0, 403), KEV_REJECT);
	assert_int_equal(k8s_event_verdict(1, 0, 422), KEV_REJECT);
	assert_int_equal(k8s_event_verdict(0, 0, 302), KEV_REJECT);
}
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_post_body_pod),
		cmocka_unit_test(test_post_body_node),
		cmocka_unit_test(test_post_body_pvc),
		cmocka_unit_test(test_post_body_escaping_and_instance),
		cmocka_unit_test(test_patch_body),
		cmocka_unit_test(test_time_format),
		cmocka_unit_test(test_utf8_prefix),
		cmocka_unit_test(test_message_truncated_in_bodies),
		cmocka_unit_test(test_check_and_path),
		cmocka_unit_test(test_verdict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
