/*
 * Kubernetes Event bodies, paths and verdicts (see k8s_event_body.h): pure
 * functions of their arguments, no I/O, no state. JSON through json-c, so
 * every string is escaped; times are metav1.Time (seconds, UTC).
 */
#include "k8s_event_body.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "util.h"

static bool nonempty(const char *s)
{
	return s && *s;
}

static bool alnum_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* RFC 1123 label: what a namespace must be. */
static bool dns_label(const char *s)
{
	size_t n = strlen(s), i;

	if (!n || n > 63 || !alnum_char(s[0]) || !alnum_char(s[n - 1]))
		return false;
	for (i = 0; i < n; i++)
		if (!alnum_char(s[i]) && s[i] != '-')
			return false;
	return true;
}

const char *k8s_event_namespace(const struct k8s_event *ev)
{
	/* legacy validation: a cluster-scoped object's Event may live in "" or "default" */
	return nonempty(ev->object.namespace_) ? ev->object.namespace_ : "default";
}

int k8s_event_check(const struct k8s_event *ev)
{
	if (!ev || !nonempty(ev->type) || !nonempty(ev->reason) || !nonempty(ev->object.kind) ||
	    !nonempty(ev->object.name))
		return -EINVAL;
	/* the namespace goes into the URL path */
	if (nonempty(ev->object.namespace_) && !dns_label(ev->object.namespace_))
		return -EINVAL;
	return 0;
}

int k8s_event_time(int64_t ns, char *buf, size_t len)
{
	int64_t sec = ns / NSEC_PER_SEC;
	time_t t;
	struct tm tm;

	if (len < 21)
		return -ENOSPC;
	if (ns % NSEC_PER_SEC < 0)
		sec--;  /* floor: metav1.Time truncates towards the past */
	t = (time_t)sec;
	if (!gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) != 20)
		return -EINVAL;
	return 0;
}

size_t k8s_utf8_prefix(const char *s, size_t len, size_t max)
{
	size_t n = max, back = 0;

	if (len <= max)
		return len;
	/*
	 * s[n] is the first byte cut off: if it continues a sequence, that
	 * sequence started at most 3 bytes earlier; drop it whole. More than
	 * 3 continuation bytes is not UTF-8: cut where asked.
	 */
	while (n > 0 && back < 3 && ((unsigned char)s[n] & 0xc0) == 0x80) {
		n--;
		back++;
	}
	if (((unsigned char)s[n] & 0xc0) == 0x80)
		return max;
	return n;
}

/* Add `v` under `key`; consumes `v` either way. */
static int jadd(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, key, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int jadd_str(struct json_object *o, const char *key, const char *s)
{
	return jadd(o, key, json_object_new_string(s ? s : ""));
}

/* Omit empty optional fields, as Go's omitempty does. */
static int jadd_opt(struct json_object *o, const char *key, const char *s)
{
	return nonempty(s) ? jadd_str(o, key, s) : 0;
}

static int jadd_time(struct json_object *o, const char *key, int64_t ns)
{
	char ts[32];

	if (k8s_event_time(ns, ts, sizeof(ts)))
		return -EINVAL;
	return jadd_str(o, key, ts);
}

static int jadd_message(struct json_object *o, const char *msg)
{
	size_t len = msg ? strlen(msg) : 0;

	return jadd(o, "message", json_object_new_string_len(msg ? msg : "",
							     (int)k8s_utf8_prefix(msg, len, K8S_EVENT_MESSAGE_MAX)));
}

static int render(struct json_object *root, struct strbuf *out)
{
	const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE);

	if (!s)
		return -ENOMEM;
	strbuf_puts(out, s);
	return out->oom ? -ENOMEM : 0;
}

int k8s_event_post_body(const struct k8s_event_object *o, struct strbuf *out)
{
	const struct k8s_event *ev = o->ev;
	struct json_object *root = json_object_new_object();
	struct json_object *meta = json_object_new_object();
	struct json_object *obj = json_object_new_object();
	struct json_object *src = json_object_new_object();
	char instance[K8S_EVENT_INSTANCE_MAX + 1];
	int err = 0;

	if (!root || !meta || !obj || !src) {
		json_object_put(root);
		json_object_put(meta);
		json_object_put(obj);
		json_object_put(src);
		return -ENOMEM;
	}
	/* the host is a node name (<= 253); reportingInstance allows 128 once eventTime is set */
	snprintf(instance, sizeof(instance), "%s", o->host ? o->host : "");

	err |= jadd_str(meta, "name", o->name);
	err |= jadd_str(meta, "namespace", k8s_event_namespace(ev));

	/* apiVersion and uid: without them kubectl events --for / describe miss the Event */
	err |= jadd_str(obj, "apiVersion", "v1");
	err |= jadd_str(obj, "kind", ev->object.kind);
	err |= jadd_opt(obj, "namespace", ev->object.namespace_);
	err |= jadd_str(obj, "name", ev->object.name);
	err |= jadd_opt(obj, "uid", ev->object.uid);
	err |= jadd_opt(obj, "fieldPath", ev->object.field_path);

	err |= jadd_str(src, "component", o->component);
	err |= jadd_opt(src, "host", o->host);

	err |= jadd_str(root, "apiVersion", "v1");
	err |= jadd_str(root, "kind", "Event");
	err |= jadd(root, "metadata", meta);
	err |= jadd(root, "involvedObject", obj);
	err |= jadd_str(root, "reason", ev->reason);
	err |= jadd_message(root, ev->message);
	err |= jadd(root, "source", src);
	err |= jadd_time(root, "firstTimestamp", o->first_ns);
	err |= jadd_time(root, "lastTimestamp", o->last_ns);
	err |= jadd(root, "count", json_object_new_int(o->count));
	err |= jadd_str(root, "type", ev->type);
	/* Go field ReportingController, JSON key reportingComponent; eventTime stays unset */
	err |= jadd_str(root, "reportingComponent", o->component);
	err |= jadd_str(root, "reportingInstance", instance);
	if (!err)
		err = render(root, out);
	json_object_put(root);
	return err ? -ENOMEM : 0;
}

int k8s_event_patch_body(int32_t count, int64_t last_ns, const char *message, struct strbuf *out)
{
	struct json_object *root = json_object_new_object();
	int err = 0;

	if (!root)
		return -ENOMEM;
	/* exactly what client-go's two-way merge patch of an Event contains */
	err |= jadd(root, "count", json_object_new_int(count));
	err |= jadd_time(root, "lastTimestamp", last_ns);
	err |= jadd_message(root, message);
	if (!err)
		err = render(root, out);
	json_object_put(root);
	return err ? -ENOMEM : 0;
}

/* Nothing that could change the URL's meaning: [a-z0-9.-] only. */
static bool path_safe(const char *s)
{
	if (!nonempty(s) || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (!alnum_char(*s) && *s != '-' && *s != '.')
			return false;
	return true;
}

int k8s_event_path(const char *ns, const char *name, char *buf, size_t len)
{
	int n;

	if (!path_safe(ns) || (name && !path_safe(name)))
		return -EINVAL;
	if (name)
		n = snprintf(buf, len, "/api/v1/namespaces/%s/events/%s", ns, name);
	else
		n = snprintf(buf, len, "/api/v1/namespaces/%s/events", ns);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

enum k8s_event_verdict k8s_event_verdict(int is_patch, int rc, long status)
{
	/* -EMSGSIZE: an answer arrived, only its body was too big; its status counts */
	if (rc < 0 && !(rc == -EMSGSIZE && status >= 100))
		return KEV_RETRY;
	if (status >= 200 && status < 300)
		return KEV_DONE;
	if (status == 404 && is_patch)
		return KEV_RECREATE;
	if (status == 409 && !is_patch)
		return KEV_RENAME;
	/*
	 * 401: k8s_request already re-read the token once; kubelet may not
	 * have rotated it yet. 429: APF or EventRateLimit throttling.
	 */
	if (status < 100 || status == 401 || status == 408 || status == 429 || status >= 500)
		return KEV_RETRY;
	return KEV_REJECT;
}
