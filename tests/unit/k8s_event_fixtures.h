/*
 * What the Event body and recorder unit tests share: a Pod's and a Node's
 * Event, and JSON checks on the bodies. Included by those tests only.
 */
#ifndef KSIGHT_TEST_K8S_EVENT_FIXTURES_H
#define KSIGHT_TEST_K8S_EVENT_FIXTURES_H

#include <stdbool.h>
#include <stdio.h>

#include <json-c/json.h>

#include "k8s_event_body.h"

#define SEC   1000000000LL
#define T0    (1790763302LL * SEC)  /* 2026-09-30T10:15:02Z */
#define POD   "checkout-7d9c6b5f4-x2kqp"
#define UID   "a41b2cd5-5451-4bbc-b740-c908d58d652e"
#define NUID  "66cedd99-0823-46bf-a36d-5db3fa6f28cd"

static inline struct k8s_event pod_ev(const char *message)
{
	return (struct k8s_event){
		.type = "Warning", .reason = "ProcessOOMKilled", .message = message, .key = "app",
		.object = { .kind = "Pod", .namespace_ = "shop", .name = POD, .uid = UID,
			    .field_path = "spec.containers{app}" },
		.time_ns = T0,
	};
}

static inline struct k8s_event node_ev(const char *message)
{
	return (struct k8s_event){
		.type = "Warning", .reason = "Ext4Error", .message = message,
		.object = { .kind = "Node", .namespace_ = "", .name = "node-1", .uid = NUID },
		.time_ns = T0,
	};
}

static inline struct json_object *parse(const char *s)
{
	struct json_object *o = json_tokener_parse(s);

	if (!o)
		fail_msg("not JSON: %s", s);
	return o;
}

static inline void assert_json_equal(const char *got, const char *want)
{
	struct json_object *g = parse(got), *w = parse(want);

	if (!json_object_equal(g, w))
		fail_msg("JSON differs\n got: %s\nwant: %s", got, want);
	json_object_put(g);
	json_object_put(w);
}

/* A string or int at a JSON pointer, as text ("" if absent); static buffer. */
static inline const char *jp(const char *json, const char *pointer)
{
	static char buf[2048];
	struct json_object *root = parse(json), *v;

	buf[0] = '\0';
	if (!json_pointer_get(root, pointer, &v))
		snprintf(buf, sizeof(buf), "%s", json_object_get_string(v));
	json_object_put(root);
	return buf;
}

static inline bool jhas(const char *json, const char *pointer)
{
	struct json_object *root = parse(json), *v;
	bool has = !json_pointer_get(root, pointer, &v);

	json_object_put(root);
	return has;
}

#endif
