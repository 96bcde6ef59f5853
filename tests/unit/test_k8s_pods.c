/*
 * Unit tests for the pod side of user/k8s/: Pod decoding and the pod-name
 * cache (pod_cache.c, whole and streamed re-lists), and the pod watcher
 * (pod_watcher.c over k8s_watch.c) against a scripted API server. The
 * stream decoders are tested in test_watch_decoder.c.
 *
 * The k8s_client functions are test doubles defined here (k8s_stream plays
 * a script of responses), so the watcher runs for real without a network,
 * and this binary links without user/k8s/k8s_client.c.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "k8s_client.h"
#include "k8s_pods.h"
#include "metrics.h"
#include "strbuf.h"

#define UID_A	"5f0c8c2e-1b7a-4d3e-9a6f-2c4b8d0e1f3a"
#define UID_B	"0b6e4d2c-91a7-4f3e-8d5c-7a2b9e1f4c60"
#define UID_C	"e47a1b93-2c8d-4e5f-a6b7-c8d9e0f1a2b3"
#define UID_D	"8f3c2a1e-5b7d-4c9a-9e21-3d4f6a8b0c1d"
#define UID_E	"a41b2cd5-5451-4bbc-b740-c908d58d652e"
#define UID_MIRROR  "3c9d7e2f-6a1b-4c8d-9e0f-1a2b3c4d5e6f"
#define UID_MIRROR2 "4d0e8f3a-7b2c-4d9e-8f1a-2b3c4d5e6f70"
#define CONFIG_HASH "6f1d2c3b4a5968778695a4b3c2d1e0f9"

#define CID_APP		"0f0ace7729716150acf57fcb9750f8199e8762c054912b944a3c436245cb9a43"
#define CID_APP_OLD	"7d1e5c3a9b2f4e6d8c0a1b3d5f7e9c2a4b6d8f0e1c3a5b7d9f2e4c6a8b0d1f3e"
#define CID_APP_OLDER	"2b4d6f8a0c2e4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4a6c8e0b2d4f6a8c0e2b4d"
#define CID_SIDECAR	"a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5"
#define CID_INIT	"1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef"
#define CID_DEBUG	"fedcba0987654321fedcba0987654321fedcba0987654321fedcba0987654321"
#define CID_UNKNOWN	"9999999999999999999999999999999999999999999999999999999999999999"

/* A Pod as the API server returns it: a Deployment's pod whose app was OOM-killed once. */
static const char full_pod[] =
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{"
	"\"name\":\"checkout-7d9c6b5f4-x2kqp\",\"generateName\":\"checkout-7d9c6b5f4-\","
	"\"namespace\":\"shop\",\"uid\":\"" UID_A "\",\"resourceVersion\":\"48213\","
	"\"creationTimestamp\":\"2026-09-30T10:00:00Z\","
	"\"labels\":{\"app\":\"checkout\",\"pod-template-hash\":\"7d9c6b5f4\"},"
	"\"annotations\":{\"kubectl.kubernetes.io/restartedAt\":\"2026-09-30T09:59:00Z\"},"
	"\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\","
	"\"name\":\"checkout-7d9c6b5f4\",\"uid\":\"11111111-2222-3333-4444-555555555555\","
	"\"controller\":true,\"blockOwnerDeletion\":true}],"
	"\"managedFields\":[{\"manager\":\"kubelet\",\"operation\":\"Update\",\"apiVersion\":\"v1\","
	"\"time\":\"2026-09-30T10:15:03Z\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:status\":"
	"{\"f:conditions\":{\"k:{\\\"type\\\":\\\"Ready\\\"}\":{\".\":{},\"f:lastProbeTime\":{},"
	"\"f:status\":{}}}}},\"subresource\":\"status\"}]},"
	"\"spec\":{\"nodeName\":\"node-1\",\"restartPolicy\":\"Always\","
	"\"initContainers\":[{\"name\":\"init-db\",\"image\":\"busybox:1.36\"}],"
	"\"containers\":[{\"name\":\"app\",\"image\":\"shop/checkout:2.1\","
	"\"resources\":{\"limits\":{\"memory\":\"256Mi\"}}},"
	"{\"name\":\"istio-proxy\",\"image\":\"istio/proxyv2:1.22\"}],"
	"\"ephemeralContainers\":[{\"name\":\"debugger-xk2p\",\"image\":\"busybox\"}]},"
	"\"status\":{\"phase\":\"Running\",\"hostIP\":\"10.0.0.5\",\"podIP\":\"10.244.1.17\","
	"\"startTime\":\"2026-09-30T10:00:00Z\",\"qosClass\":\"Burstable\","
	"\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],"
	"\"initContainerStatuses\":[{\"name\":\"init-db\",\"ready\":true,\"restartCount\":0,"
	"\"state\":{\"terminated\":{\"exitCode\":0,\"reason\":\"Completed\","
	"\"containerID\":\"containerd://" CID_INIT "\"}},"
	"\"lastState\":{},\"image\":\"docker.io/library/busybox:1.36\","
	"\"containerID\":\"containerd://" CID_INIT "\"}],"
	"\"containerStatuses\":[{\"name\":\"app\",\"ready\":true,\"restartCount\":1,"
	"\"state\":{\"running\":{\"startedAt\":\"2026-09-30T10:15:03Z\"}},"
	"\"lastState\":{\"terminated\":{\"exitCode\":137,\"reason\":\"OOMKilled\","
	"\"startedAt\":\"2026-09-30T10:00:05Z\",\"finishedAt\":\"2026-09-30T10:15:02Z\","
	"\"containerID\":\"containerd://" CID_APP_OLD "\"}},"
	"\"image\":\"shop/checkout:2.1\",\"containerID\":\"containerd://" CID_APP "\"},"
	"{\"name\":\"istio-proxy\",\"ready\":true,\"restartCount\":0,"
	"\"state\":{\"running\":{}},\"lastState\":{},"
	"\"containerID\":\"cri-o://" CID_SIDECAR "\"}],"
	"\"ephemeralContainerStatuses\":[{\"name\":\"debugger-xk2p\",\"ready\":false,"
	"\"state\":{\"running\":{}},\"lastState\":{},"
	"\"containerID\":\"docker://" CID_DEBUG "\"}]}}";

static json_object *parse(const char *s)
{
	json_object *o = json_tokener_parse(s);

	assert_non_null(o);
	return o;
}

static int apply_json(struct pod_cache *c, const char *type, const char *json, time_t now)
{
	json_object *o = parse(json);
	int ret = pod_cache_apply(c, type, o, now);

	json_object_put(o);
	return ret;
}

/* A small Pod: uid, namespace, name and zero or more "name=containerID" containers. */
static json_object *small_pod(const char *uid, const char *ns, const char *name, ...)
{
	json_object *pod = json_object_new_object();
	json_object *meta = json_object_new_object();
	json_object *status = json_object_new_object();
	json_object *list = json_object_new_array();
	const char *spec;
	va_list ap;

	json_object_object_add(meta, "uid", json_object_new_string(uid));
	json_object_object_add(meta, "namespace", json_object_new_string(ns));
	json_object_object_add(meta, "name", json_object_new_string(name));
	json_object_object_add(pod, "metadata", meta);
	va_start(ap, name);
	while ((spec = va_arg(ap, const char *))) {
		const char *eq = strchr(spec, '=');
		json_object *cs = json_object_new_object();

		assert_non_null(eq);
		json_object_object_add(cs, "name", json_object_new_string_len(spec, (int)(eq - spec)));
		json_object_object_add(cs, "containerID", json_object_new_string(eq + 1));
		json_object_array_add(list, cs);
	}
	va_end(ap);
	json_object_object_add(status, "containerStatuses", list);
	json_object_object_add(pod, "status", status);
	return pod;
}

#define SMALL_POD(...) small_pod(__VA_ARGS__, (const char *)NULL)

static int apply_pod(struct pod_cache *c, const char *type, json_object *pod, time_t now)
{
	int ret = pod_cache_apply(c, type, pod, now);

	json_object_put(pod);
	return ret;
}

static void assert_names(struct pod_cache *c, const char *uid, const char *cid,
			 const char *ns, const char *pod, const char *ctr)
{
	struct pod_names n;

	assert_true(pod_cache_lookup(c, uid, cid, &n));
	assert_string_equal(n.namespace_, ns);
	assert_string_equal(n.pod, pod);
	assert_string_equal(n.container, ctr);
}

static void assert_unknown(struct pod_cache *c, const char *uid)
{
	static const struct pod_names zero;
	struct pod_names n;

	memset(&n, 0xa5, sizeof(n));
	assert_false(pod_cache_lookup(c, uid, NULL, &n));
	assert_memory_equal(&n, &zero, sizeof(n));
}

static struct pod_cache_stats stats(struct pod_cache *c)
{
	struct pod_cache_stats st;

	pod_cache_get_stats(c, &st);
	return st;
}

/* ---- decoding and lookups ---- */

static void test_full_pod(void **state)
{
	struct pod_cache *c = pod_cache_new();

	assert_non_null(c);
	assert_int_equal(apply_json(c, "ADDED", full_pod, 100), 0);
	assert_names(c, UID_A, CID_APP, "shop", "checkout-7d9c6b5f4-x2kqp", "app");
	/* the OOM-killed previous instance, only in lastState.terminated */
	assert_names(c, UID_A, CID_APP_OLD, "shop", "checkout-7d9c6b5f4-x2kqp", "app");
	assert_names(c, UID_A, CID_SIDECAR, "shop", "checkout-7d9c6b5f4-x2kqp", "istio-proxy");
	assert_names(c, UID_A, CID_INIT, "shop", "checkout-7d9c6b5f4-x2kqp", "init-db");
	assert_names(c, UID_A, CID_DEBUG, "shop", "checkout-7d9c6b5f4-x2kqp", "debugger-xk2p");
	/* an unknown or absent container still names the pod */
	assert_names(c, UID_A, CID_UNKNOWN, "shop", "checkout-7d9c6b5f4-x2kqp", "");
	assert_names(c, UID_A, NULL, "shop", "checkout-7d9c6b5f4-x2kqp", "");
	assert_names(c, UID_A, "", "shop", "checkout-7d9c6b5f4-x2kqp", "");
	assert_names(c, UID_A, "not-an-id", "shop", "checkout-7d9c6b5f4-x2kqp", "");
	/* other spellings of the same keys */
	assert_names(c, "5F0C8C2E-1B7A-4D3E-9A6F-2C4B8D0E1F3A", "containerd://" CID_APP,
		     "shop", "checkout-7d9c6b5f4-x2kqp", "app");
	assert_names(c, "5f0c8c2e_1b7a_4d3e_9a6f_2c4b8d0e1f3a", NULL,
		     "shop", "checkout-7d9c6b5f4-x2kqp", "");
	assert_names(c, UID_A, "0F0ACE7729716150ACF57FCB9750F8199E8762C054912B944A3C436245CB9A43",
		     "shop", "checkout-7d9c6b5f4-x2kqp", "app");
	/* a container of one pod is not one of another's */
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_B, "shop", "other"), 100), 0);
	assert_names(c, UID_B, CID_APP, "shop", "other", "");

	assert_unknown(c, UID_C);
	assert_unknown(c, "");
	assert_false(pod_cache_lookup(c, NULL, NULL, &(struct pod_names){ 0 }));
	assert_false(pod_cache_lookup(c, UID_A, NULL, NULL));
	assert_int_equal(stats(c).live, 2);
	assert_int_equal(stats(c).malformed, 0);
	pod_cache_free(c);
}

static void test_missing_and_wrong_fields(void **state)
{
	/* each pod names itself; what is broken is only its container list */
	static const char *const pods[] = {
		"{\"metadata\":{\"uid\":\"u1\",\"namespace\":\"n\",\"name\":\"no-status\"}}",
		"{\"metadata\":{\"uid\":\"u2\",\"namespace\":\"n\",\"name\":\"status-array\"},\"status\":[]}",
		"{\"metadata\":{\"uid\":\"u3\",\"namespace\":\"n\",\"name\":\"statuses-object\"},"
		"\"status\":{\"containerStatuses\":{\"name\":\"x\"},\"initContainerStatuses\":\"x\","
		"\"ephemeralContainerStatuses\":null}}",
		"{\"metadata\":{\"uid\":\"u4\",\"namespace\":\"n\",\"name\":\"items-wrong\"},"
		"\"status\":{\"containerStatuses\":[1,\"s\",null,[],{},"
		"{\"name\":7,\"containerID\":\"containerd://" CID_APP "\"},"
		"{\"name\":\"no-id\"},"
		"{\"name\":\"id-number\",\"containerID\":12},"
		"{\"name\":\"id-empty\",\"containerID\":\"\"},"
		"{\"name\":\"id-scheme-only\",\"containerID\":\"containerd://\"},"
		"{\"name\":\"id-not-hex\",\"containerID\":\"containerd://xyz\"},"
		"{\"name\":\"last-wrong\",\"lastState\":[],\"state\":\"running\"},"
		"{\"name\":\"last-terminated-wrong\",\"lastState\":{\"terminated\":true}},"
		"{\"name\":\"last-id-wrong\",\"lastState\":{\"terminated\":{\"containerID\":{}}}},"
		"{\"name\":\"\",\"containerID\":\"containerd://" CID_SIDECAR "\"},"
		"{\"name\":\"good\",\"containerID\":\"containerd://" CID_DEBUG "\"}]}}",
		"{\"metadata\":{\"uid\":\"u5\",\"namespace\":\"n\",\"name\":\"annotations-wrong\","
		"\"annotations\":[\"kubernetes.io/config.hash\"]}}",
		"{\"metadata\":{\"uid\":\"u6\",\"namespace\":\"n\",\"name\":\"hash-number\","
		"\"annotations\":{\"kubernetes.io/config.hash\":5}}}",
	};
	struct pod_cache *c = pod_cache_new();
	size_t i;

	for (i = 0; i < sizeof(pods) / sizeof(pods[0]); i++)
		assert_int_equal(apply_json(c, "ADDED", pods[i], 1), 0);
	assert_names(c, "u1", CID_APP, "n", "no-status", "");
	assert_names(c, "u2", CID_APP, "n", "status-array", "");
	assert_names(c, "u3", NULL, "n", "statuses-object", "");
	assert_names(c, "u4", CID_APP, "n", "items-wrong", "");
	assert_names(c, "u4", CID_SIDECAR, "n", "items-wrong", "");
	assert_names(c, "u4", CID_DEBUG, "n", "items-wrong", "good");
	assert_names(c, "u5", NULL, "n", "annotations-wrong", "");
	assert_names(c, "u6", NULL, "n", "hash-number", "");
	assert_int_equal(stats(c).live, 6);
	assert_int_equal(stats(c).malformed, 0);
	pod_cache_free(c);
}

static void test_malformed_pods(void **state)
{
	static const char *const pods[] = {
		"{\"metadata\":{\"uid\":42,\"namespace\":\"n\",\"name\":\"p\"}}",
		"{\"metadata\":{\"uid\":null,\"namespace\":\"n\",\"name\":\"p\"}}",
		"{\"metadata\":{\"uid\":[\"x\"],\"namespace\":\"n\",\"name\":\"p\"}}",
		"{\"metadata\":{\"namespace\":\"n\",\"name\":\"p\"}}",
		"{\"metadata\":{\"uid\":\"\",\"namespace\":\"n\",\"name\":\"p\"}}",
		"{\"metadata\":{\"uid\":\"---\",\"namespace\":\"n\",\"name\":\"p\"}}",
		"{\"metadata\":{\"uid\":\"has space\",\"namespace\":\"n\",\"name\":\"p\"}}",
		"{\"metadata\":{\"uid\":\"u\",\"namespace\":\"n\"}}",
		"{\"metadata\":{\"uid\":\"u\",\"name\":\"p\"}}",
		"{\"metadata\":{\"uid\":\"u\",\"namespace\":\"n\",\"name\":true}}",
		"{\"metadata\":{\"uid\":\"u\",\"namespace\":\"\",\"name\":\"p\"}}",
		"{\"metadata\":{\"uid\":\"u\",\"namespace\":\"n\",\"name\":\"p\\u0000q\"}}",
		"{\"metadata\":[]}",
		"{\"metadata\":\"x\"}",
		"{}",
		"[]",
		"\"pod\"",
		"17",
	};
	struct pod_cache *c = pod_cache_new();
	size_t i;

	for (i = 0; i < sizeof(pods) / sizeof(pods[0]); i++)
		assert_int_equal(apply_json(c, "ADDED", pods[i], 1), -EBADMSG);
	assert_int_equal(stats(c).malformed, sizeof(pods) / sizeof(pods[0]));
	assert_int_equal(stats(c).live, 0);
	assert_unknown(c, "u");

	/* caller errors are not the pod's fault: not counted */
	assert_int_equal(apply_json(c, "BOOKMARK", full_pod, 1), -EINVAL);
	assert_int_equal(apply_json(c, "added", full_pod, 1), -EINVAL);
	assert_int_equal(pod_cache_apply(c, NULL, NULL, 1), -EINVAL);
	assert_int_equal(pod_cache_apply(c, "ADDED", NULL, 1), -EINVAL);
	assert_int_equal(pod_cache_apply(NULL, "ADDED", NULL, 1), -EINVAL);
	assert_int_equal(stats(c).malformed, sizeof(pods) / sizeof(pods[0]));
	assert_int_equal(stats(c).live, 0);
	pod_cache_free(c);
	pod_cache_free(NULL);
}

static char *repeat(char ch, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

static void test_huge_names(void **state)
{
	struct pod_cache *c = pod_cache_new();
	char *n253 = repeat('p', 253), *n254 = repeat('p', 254), *n100k = repeat('p', 100000);
	char *ns63 = repeat('n', 63), *ns64 = repeat('n', 64);
	char *c63 = repeat('c', 63), *c64 = repeat('c', 64);
	char *uid64 = repeat('a', 64), *uid65 = repeat('a', 65), *uid1000 = repeat('a', 1000);
	char ctr_ok[256], ctr_long[256], id65[256];

	/* the longest names Kubernetes allows fit */
	snprintf(ctr_ok, sizeof(ctr_ok), "%s=containerd://%s", c63, CID_APP);
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_A, ns63, n253, ctr_ok), 1), 0);
	assert_names(c, UID_A, CID_APP, ns63, n253, c63);

	/* one more is not a pod we could name correctly: skipped, not cut */
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_B, "n", n254), 1), -EBADMSG);
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_B, "n", n100k), 1), -EBADMSG);
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_B, ns64, "p"), 1), -EBADMSG);
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(uid65, "n", "p"), 1), -EBADMSG);
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(uid1000, "n", "p"), 1), -EBADMSG);
	assert_int_equal(stats(c).malformed, 5);
	assert_unknown(c, UID_B);
	assert_unknown(c, uid65);
	assert_unknown(c, uid1000);

	/* a too-long container name or ID loses that container, not the pod */
	snprintf(ctr_long, sizeof(ctr_long), "%s=containerd://%s", c64, CID_APP);
	snprintf(id65, sizeof(id65), "app=containerd://%s0", CID_APP);
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(uid64, "n", "p", ctr_long, id65,
							 "ok=docker://" CID_DEBUG), 1), 0);
	assert_names(c, uid64, CID_APP, "n", "p", "");
	assert_names(c, uid64, CID_DEBUG, "n", "p", "ok");
	assert_int_equal(stats(c).malformed, 5);
	assert_int_equal(stats(c).live, 2);

	free(n253); free(n254); free(n100k); free(ns63); free(ns64);
	free(c63); free(c64); free(uid64); free(uid65); free(uid1000);
	pod_cache_free(c);
}

static void test_container_cap(void **state)
{
	struct pod_cache *c = pod_cache_new();
	json_object *pod = SMALL_POD(UID_A, "n", "many");
	json_object *list = json_object_object_get(json_object_object_get(pod, "status"),
						   "containerStatuses");
	char id[65], name[16];
	int i;

	for (i = 0; i < POD_CACHE_MAX_CONTAINERS + 10; i++) {
		json_object *cs = json_object_new_object();
		char full[80];

		snprintf(id, sizeof(id), "%064x", i);
		snprintf(full, sizeof(full), "containerd://%s", id);
		snprintf(name, sizeof(name), "c%d", i);
		json_object_object_add(cs, "name", json_object_new_string(name));
		json_object_object_add(cs, "containerID", json_object_new_string(full));
		json_object_array_add(list, cs);
	}
	assert_int_equal(apply_pod(c, "ADDED", pod, 1), 0);
	snprintf(id, sizeof(id), "%064x", POD_CACHE_MAX_CONTAINERS - 1);
	assert_names(c, UID_A, id, "n", "many", "c255");
	snprintf(id, sizeof(id), "%064x", POD_CACHE_MAX_CONTAINERS);
	assert_names(c, UID_A, id, "n", "many", "");
	pod_cache_free(c);
}

static void test_static_pod_alias(void **state)
{
	static const char mirror[] =
		"{\"metadata\":{\"name\":\"kube-apiserver-node-1\",\"namespace\":\"kube-system\","
		"\"uid\":\"" UID_MIRROR "\",\"annotations\":{"
		"\"kubernetes.io/config.hash\":\"" CONFIG_HASH "\","
		"\"kubernetes.io/config.mirror\":\"" CONFIG_HASH "\","
		"\"kubernetes.io/config.source\":\"file\"},"
		"\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"name\":\"node-1\"}]},"
		"\"status\":{\"containerStatuses\":[{\"name\":\"kube-apiserver\","
		"\"containerID\":\"containerd://" CID_APP "\"}]}}";
	static const char recreated[] =
		"{\"metadata\":{\"name\":\"kube-apiserver-node-1\",\"namespace\":\"kube-system\","
		"\"uid\":\"" UID_MIRROR2 "\",\"annotations\":{"
		"\"kubernetes.io/config.hash\":\"" CONFIG_HASH "\"}},"
		"\"status\":{\"containerStatuses\":[{\"name\":\"kube-apiserver\","
		"\"containerID\":\"containerd://" CID_SIDECAR "\"}]}}";
	struct pod_cache *c = pod_cache_new();

	assert_int_equal(apply_json(c, "ADDED", mirror, 10), 0);
	/* the mirror pod's API UID, and kubelet's UID (the one in the cgroup path) */
	assert_names(c, UID_MIRROR, CID_APP, "kube-system", "kube-apiserver-node-1", "kube-apiserver");
	assert_names(c, CONFIG_HASH, CID_APP, "kube-system", "kube-apiserver-node-1", "kube-apiserver");
	assert_names(c, "6F1D2C3B4A5968778695A4B3C2D1E0F9", NULL, "kube-system",
		     "kube-apiserver-node-1", "");
	/* Events about a static pod name the mirror pod by its API UID */
	{
		struct pod_names n;

		assert_true(pod_cache_lookup(c, CONFIG_HASH, CID_APP, &n));
		assert_string_equal(n.uid, UID_MIRROR);
	}
	/* the same hash spelled as a UUID (should a parser ever format it so) */
	assert_names(c, "6f1d2c3b-4a59-6877-8695-a4b3c2d1e0f9", NULL, "kube-system",
		     "kube-apiserver-node-1", "");

	/* the mirror pod is deleted and kubelet recreates it: same hash, new UID */
	assert_int_equal(apply_json(c, "DELETED", mirror, 20), 0);
	assert_names(c, CONFIG_HASH, CID_APP, "kube-system", "kube-apiserver-node-1", "kube-apiserver");
	assert_int_equal(apply_json(c, "ADDED", recreated, 21), 0);
	/* the live one wins */
	assert_names(c, CONFIG_HASH, CID_SIDECAR, "kube-system", "kube-apiserver-node-1",
		     "kube-apiserver");
	assert_names(c, CONFIG_HASH, CID_APP, "kube-system", "kube-apiserver-node-1", "");
	assert_names(c, UID_MIRROR, CID_APP, "kube-system", "kube-apiserver-node-1", "kube-apiserver");
	/* both gone: the later tombstone wins */
	assert_int_equal(apply_json(c, "DELETED", recreated, 30), 0);
	assert_names(c, CONFIG_HASH, CID_SIDECAR, "kube-system", "kube-apiserver-node-1",
		     "kube-apiserver");
	pod_cache_expire(c, 20 + 600, 600);
	assert_unknown(c, UID_MIRROR);
	assert_names(c, CONFIG_HASH, CID_SIDECAR, "kube-system", "kube-apiserver-node-1",
		     "kube-apiserver");
	pod_cache_expire(c, 30 + 600, 600);
	assert_unknown(c, CONFIG_HASH);
	assert_unknown(c, UID_MIRROR2);
	pod_cache_free(c);
}

struct retired {
	int n;
	char names[8][96];
};

static void note_retired(void *arg, const char *namespace_, const char *name)
{
	struct retired *r = arg;

	if (r->n < 8)
		snprintf(r->names[r->n], sizeof(r->names[0]), "%s/%s", namespace_, name);
	r->n++;
}

/* a deleted pod's metrics go when its tombstone does, but not while a namesake lives */
static void test_retire_hook(void **state)
{
	static const char *const pod_labels[] = { "namespace", "pod", "container" };
	struct metrics_registry *reg = metrics_registry_new(0);
	struct metric_family *kills = metrics_family(reg, "kills_total", "h", METRIC_COUNTER, pod_labels, 3, NULL, 0);
	const char *a[3] = { "shop", "a", "app" }, *web[3] = { "db", "web-0", "pg" };
	struct pod_cache *c = pod_cache_new();
	struct retired r = { 0 };

	pod_cache_on_retire(c, note_retired, &r);
	metrics_counter_add(kills, a, 1);
	metrics_counter_add(kills, web, 1);
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_A, "shop", "a"), 100), 0);
	assert_int_equal(apply_pod(c, "DELETED", SMALL_POD(UID_A, "shop", "a"), 200), 0);
	/* a StatefulSet pod deleted and recreated under its name, with a new UID */
	assert_int_equal(apply_pod(c, "DELETED", SMALL_POD(UID_B, "db", "web-0"), 200), 0);
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_C, "db", "web-0"), 210), 0);
	pod_cache_expire(c, 200 + 599, 600);
	assert_int_equal(r.n, 0);
	pod_cache_expire(c, 200 + 600, 600);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.names[0], "shop/a");
	pod_cache_expire(c, 200 + 1200, 600);
	assert_int_equal(r.n, 1);

	/* the hook the agent installs: the pod's series leave the registry */
	pod_cache_on_retire(c, pod_cache_forget_metrics, reg);
	assert_int_equal(apply_pod(c, "DELETED", SMALL_POD(UID_C, "db", "web-0"), 2000), 0);
	assert_true(metrics_value(kills, web) == 1);
	pod_cache_expire(c, 2600, 600);
	assert_true(isnan(metrics_value(kills, web)));
	pod_cache_free(c);
	metrics_registry_free(reg);
}

static void test_bad_config_hash(void **state)
{
	static const char *const hashes[] = {
		"6f1d2c3b4a5968778695a4b3c2d1e0f",	/* 31 */
		"6f1d2c3b4a5968778695a4b3c2d1e0f9a",	/* 33 */
		"6f1d2c3b4a5968778695a4b3c2d1e0fz",	/* not hex */
	};
	struct pod_cache *c = pod_cache_new();
	size_t i;

	for (i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++) {
		char json[512], uid[8];

		snprintf(uid, sizeof(uid), "u%zu", i);
		snprintf(json, sizeof(json),
			 "{\"metadata\":{\"uid\":\"%s\",\"namespace\":\"n\",\"name\":\"p\","
			 "\"annotations\":{\"kubernetes.io/config.hash\":\"%s\"}}}", uid, hashes[i]);
		assert_int_equal(apply_json(c, "ADDED", json, 1), 0);
		assert_names(c, uid, NULL, "n", "p", "");
		assert_unknown(c, hashes[i]);
	}
	assert_int_equal(stats(c).malformed, 0);
	pod_cache_free(c);
}

static void test_delete_tombstone_expire(void **state)
{
	struct pod_cache *c = pod_cache_new();
	struct pod_cache_stats st;

	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_A, "shop", "a",
							 "app=containerd://" CID_APP), 100), 0);
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_B, "shop", "b"), 100), 0);
	/* the final status of a deleted pod can carry an ID we had not seen */
	assert_int_equal(apply_pod(c, "DELETED", SMALL_POD(UID_A, "shop", "a",
							   "app=containerd://" CID_APP_OLD), 200), 0);
	st = stats(c);
	assert_int_equal(st.live, 1);
	assert_int_equal(st.deleted, 1);
	assert_names(c, UID_A, CID_APP, "shop", "a", "app");
	assert_names(c, UID_A, CID_APP_OLD, "shop", "a", "app");

	/* a second DELETED does not restart the clock */
	assert_int_equal(apply_pod(c, "DELETED", SMALL_POD(UID_A, "shop", "a"), 300), 0);
	pod_cache_expire(c, 200 + 599, 600);
	assert_names(c, UID_A, CID_APP, "shop", "a", "app");
	pod_cache_expire(c, 200 + 600, 600);
	assert_unknown(c, UID_A);
	assert_names(c, UID_B, NULL, "shop", "b", "");
	st = stats(c);
	assert_int_equal(st.live, 1);
	assert_int_equal(st.deleted, 0);

	/* DELETED for a pod we never saw (its ADDED was before a missed window) */
	assert_int_equal(apply_pod(c, "DELETED", SMALL_POD(UID_C, "batch", "job-x",
							   "main=containerd://" CID_DEBUG), 1000), 0);
	assert_names(c, UID_C, CID_DEBUG, "batch", "job-x", "main");
	assert_int_equal(stats(c).deleted, 1);
	/* keep 0 and negative: forget at once */
	pod_cache_expire(c, 1000, -5);
	assert_unknown(c, UID_C);
	assert_names(c, UID_B, NULL, "shop", "b", "");
	pod_cache_free(c);
}

static void test_restarts_keep_old_ids(void **state)
{
	struct pod_cache *c = pod_cache_new();
	char json[1024];

#define RESTARTED(cur, last)									\
	(snprintf(json, sizeof(json),								\
		  "{\"metadata\":{\"uid\":\"" UID_A "\",\"namespace\":\"n\",\"name\":\"p\"},"	\
		  "\"status\":{\"containerStatuses\":[{\"name\":\"app\","			\
		  "\"containerID\":\"containerd://%s\",\"lastState\":{\"terminated\":"		\
		  "{\"reason\":\"OOMKilled\",\"containerID\":\"containerd://%s\"}}}]}}",		\
		  cur, last), json)

	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_A, "n", "p",
							 "app=containerd://" CID_APP_OLDER), 10), 0);
	assert_int_equal(apply_json(c, "MODIFIED", RESTARTED(CID_APP_OLD, CID_APP_OLDER), 20), 0);
	/* second restart: the first instance is in no status any more */
	assert_int_equal(apply_json(c, "MODIFIED", RESTARTED(CID_APP, CID_APP_OLD), 30), 0);
	assert_names(c, UID_A, CID_APP_OLDER, "n", "p", "app");
	assert_names(c, UID_A, CID_APP_OLD, "n", "p", "app");
	assert_names(c, UID_A, CID_APP, "n", "p", "app");
	/* an unchanged status does not refresh a retired ID */
	assert_int_equal(apply_json(c, "MODIFIED", RESTARTED(CID_APP, CID_APP_OLD), 500), 0);
	pod_cache_expire(c, 30 + 599, 600);
	assert_names(c, UID_A, CID_APP_OLDER, "n", "p", "app");
	pod_cache_expire(c, 30 + 600, 600);
	assert_names(c, UID_A, CID_APP_OLDER, "n", "p", "");
	/* the IDs in the status never age, however old the pod */
	pod_cache_expire(c, 100000, 600);
	assert_names(c, UID_A, CID_APP_OLD, "n", "p", "app");
	assert_names(c, UID_A, CID_APP, "n", "p", "app");
	assert_int_equal(stats(c).live, 1);
#undef RESTARTED
	pod_cache_free(c);
}

static void test_replace_all(void **state)
{
	struct pod_cache *c = pod_cache_new();
	json_object *items = json_object_new_array();
	struct pod_cache_stats st;

	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_A, "n", "a"), 10), 0);
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_B, "n", "b"), 10), 0);
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_C, "n", "c"), 10), 0);
	assert_int_equal(apply_pod(c, "DELETED", SMALL_POD(UID_C, "n", "c"), 50), 0);
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_E, "n", "e"), 10), 0);
	assert_int_equal(apply_pod(c, "DELETED", SMALL_POD(UID_E, "n", "e"), 60), 0);

	/* the new list: B (updated), D (new), E (tombstoned, yet listed), junk, B again */
	json_object_array_add(items, SMALL_POD(UID_B, "n", "b", "app=containerd://" CID_APP));
	json_object_array_add(items, SMALL_POD(UID_D, "n", "d"));
	json_object_array_add(items, SMALL_POD(UID_E, "n", "e"));
	json_object_array_add(items, json_object_new_string("not a pod"));
	json_object_array_add(items, NULL);
	json_object_array_add(items, SMALL_POD(UID_B, "n", "b", "side=containerd://" CID_SIDECAR));
	pod_cache_replace_all(c, items, 100);
	json_object_put(items);

	st = stats(c);
	assert_int_equal(st.live, 3);		/* B, D, E */
	assert_int_equal(st.deleted, 2);	/* A (now), C (since 50) */
	assert_int_equal(st.malformed, 2);
	assert_names(c, UID_A, NULL, "n", "a", "");
	assert_names(c, UID_B, CID_APP, "n", "b", "app");
	assert_names(c, UID_B, CID_SIDECAR, "n", "b", "side");
	assert_names(c, UID_D, NULL, "n", "d", "");
	/* C keeps its own deletion time, A got the list's */
	pod_cache_expire(c, 50 + 600, 600);
	assert_unknown(c, UID_C);
	assert_names(c, UID_A, NULL, "n", "a", "");
	assert_names(c, UID_E, NULL, "n", "e", "");
	pod_cache_expire(c, 100 + 600, 600);
	assert_unknown(c, UID_A);
	assert_names(c, UID_E, NULL, "n", "e", "");

	/* an empty list (or none) deletes every pod */
	pod_cache_replace_all(c, NULL, 1000);
	st = stats(c);
	assert_int_equal(st.live, 0);
	assert_int_equal(st.deleted, 3);
	items = json_object_new_object();	/* not an array: empty */
	pod_cache_replace_all(c, items, 1001);
	json_object_put(items);
	assert_int_equal(stats(c).deleted, 3);
	pod_cache_expire(c, 1600, 600);
	assert_int_equal(stats(c).deleted, 0);
	pod_cache_replace_all(NULL, NULL, 0);
	pod_cache_free(c);
}

static void test_relist_streamed(void **state)
{
	struct pod_cache *c = pod_cache_new();
	struct pod_relist rl;
	json_object *pod;

	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_A, "n", "a"), 10), 0);
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_B, "n", "b"), 10), 0);
	assert_false(pod_cache_has(c, UID_C));
	assert_true(pod_cache_has(c, UID_A));
	assert_false(pod_cache_has(c, ""));
	assert_false(pod_cache_has(NULL, UID_A));

	/* broken off: the known pod it updated stays updated, the new one never came, nothing is gone */
	pod_cache_relist_begin(c, &rl);
	pod = SMALL_POD(UID_A, "n", "a", "app=containerd://" CID_APP);
	assert_int_equal(pod_cache_relist_add(c, &rl, pod, 20), 0);
	json_object_put(pod);
	pod = SMALL_POD(UID_C, "n", "c");
	assert_int_equal(pod_cache_relist_add(c, &rl, pod, 20), 0);
	json_object_put(pod);
	/* known pods at once, new ones at the end */
	assert_names(c, UID_A, CID_APP, "n", "a", "app");
	assert_false(pod_cache_has(c, UID_C));
	pod_cache_relist_abort(c, &rl);
	assert_false(pod_cache_has(c, UID_C));
	assert_int_equal(stats(c).live, 2);
	assert_int_equal(stats(c).deleted, 0);
	assert_int_equal(pod_cache_relist_add(c, &rl, NULL, 20), -EINVAL);	/* no re-list going on */

	/* complete: C new, B gone */
	pod_cache_relist_begin(c, &rl);
	pod = SMALL_POD(UID_C, "n", "c");
	assert_int_equal(pod_cache_relist_add(c, &rl, pod, 30), 0);
	json_object_put(pod);
	pod = SMALL_POD(UID_A, "n", "a");
	assert_int_equal(pod_cache_relist_add(c, &rl, pod, 30), 0);
	json_object_put(pod);
	assert_int_equal(pod_cache_relist_add(c, &rl, NULL, 30), -EBADMSG);
	pod_cache_relist_end(c, &rl, 30);
	assert_int_equal(stats(c).live, 2);
	assert_int_equal(stats(c).deleted, 1);
	assert_true(pod_cache_has(c, UID_B));	/* a tombstone */
	assert_names(c, UID_C, NULL, "n", "c", "");
	pod_cache_free(c);
}

static void uid_of(int i, char out[37])
{
	snprintf(out, 37, "%08x-0000-4000-8000-%012x", (unsigned int)i, (unsigned int)i);
}

static void test_cache_bound(void **state)
{
	struct pod_cache *c = pod_cache_new();
	json_object *items;
	char uid[37], name[32];
	struct pod_cache_stats st;
	int i;

	for (i = 0; i < POD_CACHE_MAX_PODS; i++) {
		uid_of(i, uid);
		snprintf(name, sizeof(name), "p%d", i);
		assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(uid, "n", name), 1), 0);
	}
	uid_of(POD_CACHE_MAX_PODS, uid);
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(uid, "n", "one-too-many"), 2), -ENOSPC);
	assert_int_equal(apply_pod(c, "DELETED", SMALL_POD(uid, "n", "one-too-many"), 2), -ENOSPC);
	assert_unknown(c, uid);
	st = stats(c);
	assert_int_equal(st.live, POD_CACHE_MAX_PODS);
	assert_int_equal(st.refused, 2);
	/* updates of known pods still work when full */
	uid_of(7, uid);
	assert_int_equal(apply_pod(c, "MODIFIED", SMALL_POD(uid, "n", "p7",
							    "app=containerd://" CID_APP), 3), 0);
	assert_names(c, uid, CID_APP, "n", "p7", "app");

	/* a live pod pushes out the oldest tombstone, never a live pod */
	uid_of(1, uid);
	assert_int_equal(apply_pod(c, "DELETED", SMALL_POD(uid, "n", "p1"), 10), 0);
	uid_of(2, uid);
	assert_int_equal(apply_pod(c, "DELETED", SMALL_POD(uid, "n", "p2"), 20), 0);
	uid_of(POD_CACHE_MAX_PODS + 1, uid);
	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(uid, "n", "new"), 30), 0);
	assert_names(c, uid, NULL, "n", "new", "");
	uid_of(1, uid);
	assert_unknown(c, uid);
	uid_of(2, uid);
	assert_names(c, uid, NULL, "n", "p2", "");
	st = stats(c);
	assert_int_equal(st.live + st.deleted, POD_CACHE_MAX_PODS);
	assert_int_equal(st.evicted, 1);
	assert_int_equal(st.refused, 2);

	/* a re-list of 10,001 pods: the last one does not fit */
	items = json_object_new_array();
	for (i = 0; i <= POD_CACHE_MAX_PODS; i++) {
		uid_of(i + 20000, uid);
		json_object_array_add(items, SMALL_POD(uid, "n", "relisted"));
	}
	pod_cache_replace_all(c, items, 40);
	json_object_put(items);
	st = stats(c);
	assert_int_equal(st.live, POD_CACHE_MAX_PODS);
	assert_int_equal(st.deleted, 0);	/* all evicted for live pods */
	assert_int_equal(st.refused, 3);
	uid_of(20000, uid);
	assert_names(c, uid, NULL, "n", "relisted", "");
	pod_cache_free(c);
}

/* Readers and a writer at once: for the thread sanitizer and helgrind. */
struct reader_arg {
	struct pod_cache *c;
	int hits;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	struct pod_names n;
	int i;

	for (i = 0; i < 20000; i++)
		a->hits += pod_cache_lookup(a->c, UID_A, CID_APP, &n) && !strcmp(n.container, "app");
	return NULL;
}

static void test_concurrent_lookups(void **state)
{
	struct pod_cache *c = pod_cache_new();
	struct reader_arg a = { .c = c };
	pthread_t t;
	int i;

	assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_A, "n", "p",
							 "app=containerd://" CID_APP), 1), 0);
	assert_int_equal(pthread_create(&t, NULL, reader, &a), 0);
	for (i = 0; i < 200; i++) {
		assert_int_equal(apply_pod(c, "MODIFIED", SMALL_POD(UID_A, "n", "p",
								    "app=containerd://" CID_APP), i), 0);
		assert_int_equal(apply_pod(c, "ADDED", SMALL_POD(UID_B, "n", "q"), i), 0);
		pod_cache_expire(c, i, 600);
	}
	pthread_join(t, NULL);
	assert_int_equal(a.hits, 20000);
	pod_cache_free(c);
}

/* ---- the watcher against a scripted API server ---- */

struct fake_step {
	long status;
	int rc;			/* non-zero: a transport error, status 0 */
	long retry_after;
	const char *body;
	size_t chunk;		/* feed the body in pieces this big; 0: whole */
	bool block;		/* then hang until stopped */
};

#define FAKE_MAX_CALLS 32

static struct {
	pthread_mutex_t lock;
	const struct fake_step *steps;
	size_t n_steps;
	size_t calls;
	char paths[FAKE_MAX_CALLS][512];
	long idle[FAKE_MAX_CALLS];
	int clients;
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void fake_script(const struct fake_step *steps, size_t n)
{
	pthread_mutex_lock(&fake.lock);
	fake.steps = steps;
	fake.n_steps = n;
	fake.calls = 0;
	memset(fake.paths, 0, sizeof(fake.paths));
	pthread_mutex_unlock(&fake.lock);
}

static size_t fake_calls(void)
{
	size_t n;

	pthread_mutex_lock(&fake.lock);
	n = fake.calls;
	pthread_mutex_unlock(&fake.lock);
	return n;
}

struct k8s_client *k8s_client_new(const struct k8s_config *cfg, const char *user_agent)
{
	pthread_mutex_lock(&fake.lock);
	fake.clients++;
	pthread_mutex_unlock(&fake.lock);
	return malloc(1);
}

void k8s_client_free(struct k8s_client *c)
{
	pthread_mutex_lock(&fake.lock);
	fake.clients--;
	pthread_mutex_unlock(&fake.lock);
	free(c);
}

void k8s_response_free(struct k8s_response *resp)
{
	strbuf_free(&resp->body);
}

int k8s_request(struct k8s_client *c, const char *method, const char *path, const char *content_type,
		const char *body, size_t max_body, long timeout_ms, struct k8s_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	return -ENOSYS;
}

static void wait_stop(volatile int *stop)
{
	while (!__atomic_load_n(stop, __ATOMIC_ACQUIRE))
		usleep(2000);
}

/* Runs on the watcher thread: no cmocka asserts here, the test checks what it recorded. */
int k8s_stream(struct k8s_client *c, const char *path, k8s_stream_fn on_data, void *ctx,
	       long idle_timeout_s, volatile int *stop, struct k8s_response *resp)
{
	const struct fake_step *step = NULL;
	size_t idx, off, len;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after_s = -1;
	pthread_mutex_lock(&fake.lock);
	idx = fake.calls++;
	if (idx < FAKE_MAX_CALLS) {
		snprintf(fake.paths[idx], sizeof(fake.paths[idx]), "%s", path);
		fake.idle[idx] = idle_timeout_s;
	}
	if (idx < fake.n_steps)
		step = &fake.steps[idx];
	pthread_mutex_unlock(&fake.lock);

	if (!step) {
		wait_stop(stop);
		snprintf(resp->error, sizeof(resp->error), "stopped");
		return -ECANCELED;
	}
	if (step->rc) {
		snprintf(resp->error, sizeof(resp->error), "fake: connection reset by peer");
		return step->rc;
	}
	resp->status = step->status;
	resp->retry_after_s = step->retry_after;
	len = step->body ? strlen(step->body) : 0;
	if (step->status < 200 || step->status > 299) {
		strbuf_append(&resp->body, step->body ? step->body : "", len);
		return 0;
	}
	for (off = 0; off < len && !__atomic_load_n(stop, __ATOMIC_ACQUIRE);) {
		size_t n = step->chunk && step->chunk < len - off ? step->chunk : len - off;

		if (on_data(ctx, step->body + off, n))
			return 0;
		off += n;
	}
	if (step->block)
		wait_stop(stop);
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool wait_for(bool (*cond)(void *), void *arg)
{
	int64_t deadline = now_ms() + 10000;

	while (!cond(arg)) {
		if (now_ms() > deadline)
			return false;
		usleep(2000);
	}
	return true;
}

static double metric(struct metrics_registry *reg, const char *name, const char *label,
		     const char *value)
{
	const char *names[1] = { label };
	const char *values[1] = { value };
	struct metric_family *fam = metrics_family(reg, name, "", label ? METRIC_COUNTER : METRIC_GAUGE,
						   label ? names : NULL, label ? 1 : 0, NULL, 0);

	assert_non_null(fam);
	return metrics_value(fam, label ? values : NULL);
}

#define LIST_PATH "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1.example%2Bx"
#define NODE "node-1.example+x"

#define POD_JSON(uid, name, cid)							\
	"{\"metadata\":{\"uid\":\"" uid "\",\"namespace\":\"shop\",\"name\":\"" name "\","	\
	"\"resourceVersion\":\"1\"},\"status\":{\"containerStatuses\":[{\"name\":\"app\","	\
	"\"containerID\":\"containerd://" cid "\"}]}}"

struct watch_fixture {
	struct metrics_registry *reg;
	struct pod_cache *cache;
	struct k8s_config cfg;
	struct pod_watcher *w;
};

/*
 * One static fixture, so that a test that failed half-way (cmocka skips the
 * teardown then) leaves a watcher the next test's setup can still stop.
 */
static struct watch_fixture fx;
static struct watch_fixture *running;

static void fixture_start(struct watch_fixture *f, const struct fake_step *steps, size_t n)
{
	memset(f, 0, sizeof(*f));
	running = f;
	snprintf(f->cfg.source, sizeof(f->cfg.source), "test");
	f->reg = metrics_registry_new(0);
	f->cache = pod_cache_new();
	assert_non_null(f->reg);
	assert_non_null(f->cache);
	fake_script(steps, n);
	assert_int_equal(pod_watcher_start(&f->cfg, NODE, f->cache, f->reg, &f->w), 0);
	assert_non_null(f->w);
}

static int64_t fixture_stop(struct watch_fixture *f)
{
	int64_t t0 = now_ms();

	pod_watcher_stop(f->w);
	t0 = now_ms() - t0;
	pod_cache_free(f->cache);
	metrics_registry_free(f->reg);
	memset(f, 0, sizeof(*f));
	running = NULL;
	assert_int_equal(fake.clients, 0);
	return t0;
}

/* Before a watcher test: stop what a failed one left running. */
static int setup_watcher(void **state)
{
	if (running) {
		pod_watcher_stop(running->w);
		pod_cache_free(running->cache);
		metrics_registry_free(running->reg);
		memset(running, 0, sizeof(*running));
		running = NULL;
	}
	return 0;
}

struct until {
	struct watch_fixture *f;
	const char *uid;
	size_t calls;
	double pods;
	const char *metric;
	const char *label;
	const char *value;
};

static bool cond_ready(void *p)
{
	struct until *u = p;
	struct pod_names n;

	if (u->calls && fake_calls() < u->calls)
		return false;
	if (u->uid && !pod_cache_lookup(u->f->cache, u->uid, NULL, &n))
		return false;
	if (u->metric && !(metric(u->f->reg, u->metric, u->label, u->value) >= u->pods))
		return false;
	return true;
}

static long timeout_param(const char *path)
{
	const char *t = strstr(path, "&timeoutSeconds=");

	return t ? strtol(t + 16, NULL, 10) : -1;
}

static void test_watcher_list_watch_expire(void **state)
{
	static const struct fake_step steps[] = {
		{ .status = 200, .chunk = 7, .body =
		  "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"1000\"},"
		  "\"items\":[" POD_JSON(UID_A, "a", CID_APP) "," POD_JSON(UID_B, "b", CID_SIDECAR) "]}" },
		{ .status = 200, .chunk = 5, .body =
		  "{\"type\":\"MODIFIED\",\"object\":" POD_JSON(UID_A, "a", CID_APP_OLD) "}\n"
		  "{\"type\":\"DELETED\",\"object\":" POD_JSON(UID_B, "b", CID_SIDECAR) "}\n"
		  "{\"type\":\"ADDED\",\"object\":" POD_JSON(UID_C, "c", CID_DEBUG) "}\n"
		  "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":\"1500\"}}}\n"
		  "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
		  "\"message\":\"too old resource version: 1000 (1400)\",\"reason\":\"Expired\",\"code\":410}}\n" },
		{ .status = 200, .body =
		  "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"2000\"},\"items\":["
		  POD_JSON(UID_A, "a", CID_APP_OLD) "," POD_JSON(UID_C, "c", CID_DEBUG) ","
		  POD_JSON(UID_D, "d", CID_INIT) "]}\n" },
		{ .status = 200, .block = true, .body =
		  "{\"type\":\"ADDED\",\"object\":" POD_JSON(UID_E, "e", CID_UNKNOWN) "}\n" },
	};
	struct watch_fixture *f = &fx;
	struct until u;
	struct pod_cache_stats st;
	const char *want;
	long t;

	fixture_start(f, steps, 4);
	u = (struct until){ .f = f, .uid = UID_E, .calls = 4, .pods = 4, .metric = "ksight_k8s_pods" };
	assert_true(wait_for(cond_ready, &u));
	assert_true(pod_watcher_synced(f->w));

	assert_string_equal(fake.paths[0], LIST_PATH "&resourceVersion=0");
	t = timeout_param(fake.paths[1]);
	assert_true(t >= 270 && t <= 330);
	assert_int_equal(fake.idle[1], t + 30);
	want = LIST_PATH "&watch=1&allowWatchBookmarks=true&resourceVersion=1000&timeoutSeconds=";
	assert_memory_equal(fake.paths[1], want, strlen(want));
	/* after a 410 the list is a consistent read, not the (maybe lagging) cache */
	assert_string_equal(fake.paths[2], LIST_PATH);
	assert_non_null(strstr(fake.paths[3], "&resourceVersion=2000&"));

	assert_names(f->cache, UID_A, CID_APP_OLD, "shop", "a", "app");
	assert_names(f->cache, UID_A, CID_APP, "shop", "a", "app");	/* retired, kept */
	assert_names(f->cache, UID_B, CID_SIDECAR, "shop", "b", "app");	/* tombstone */
	assert_names(f->cache, UID_D, CID_INIT, "shop", "d", "app");
	assert_names(f->cache, UID_E, CID_UNKNOWN, "shop", "e", "app");
	st = stats(f->cache);
	assert_int_equal(st.live, 4);
	assert_int_equal(st.deleted, 1);
	assert_true(metric(f->reg, "ksight_k8s_watch_restarts_total", "reason", "expired") == 1);
	assert_true(metric(f->reg, "ksight_k8s_watch_restarts_total", "reason", "closed") == 0);
	assert_true(metric(f->reg, "ksight_k8s_watch_restarts_total", "reason", "error") == 0);
	assert_true(metric(f->reg, "ksight_k8s_api_errors_total", "op", "list") == 0);
	assert_true(metric(f->reg, "ksight_k8s_api_errors_total", "op", "watch") == 0);

	/* the stream hangs; stop does not wait for it */
	assert_true(fixture_stop(f) < 1500);
	assert_int_equal(fake_calls(), 4);
}

static void test_watcher_rewatch_error_relist(void **state)
{
	static const struct fake_step steps[] = {
		{ .status = 200, .body =
		  "{\"metadata\":{\"resourceVersion\":\"10\"},\"items\":[" POD_JSON(UID_A, "a", CID_APP) "]}" },
		/* the server's timeoutSeconds: closed, watch again from the last event */
		{ .status = 200, .body =
		  "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"uid\":\"" UID_B "\",\"namespace\":\"n\","
		  "\"name\":\"b\",\"resourceVersion\":\"11/x\"}}}\n" },
		/* connection reset: back off, watch again from the same point */
		{ .rc = -ECONNRESET },
		/* a line we cannot read is an event we missed: list again */
		{ .status = 200, .body = "this is not json\n{\"type\":\"ADDED\"}\n" },
		{ .status = 200, .body =
		  "{\"metadata\":{\"resourceVersion\":\"20\"},\"items\":[" POD_JSON(UID_C, "c", CID_APP) "]}" },
		{ .status = 200, .block = true, .body = "" },
	};
	struct watch_fixture *f = &fx;
	struct until u;

	fixture_start(f, steps, 6);
	u = (struct until){ .f = f, .uid = UID_C, .calls = 6 };
	assert_true(wait_for(cond_ready, &u));
	assert_non_null(strstr(fake.paths[2], "&resourceVersion=11%2Fx&"));
	assert_non_null(strstr(fake.paths[3], "&resourceVersion=11%2Fx&"));
	assert_string_equal(fake.paths[4], LIST_PATH "&resourceVersion=0");
	assert_non_null(strstr(fake.paths[5], "&resourceVersion=20&"));
	assert_true(metric(f->reg, "ksight_k8s_watch_restarts_total", "reason", "closed") == 1);
	assert_true(metric(f->reg, "ksight_k8s_watch_restarts_total", "reason", "error") == 1);
	assert_true(metric(f->reg, "ksight_k8s_watch_restarts_total", "reason", "relist") == 1);
	assert_true(metric(f->reg, "ksight_k8s_watch_restarts_total", "reason", "expired") == 0);
	assert_true(metric(f->reg, "ksight_k8s_api_errors_total", "op", "watch") == 1);
	assert_true(metric(f->reg, "ksight_k8s_watch_lines_dropped_total", "reason", "malformed") == 1);
	/* A and B were not in the re-list */
	assert_int_equal(stats(f->cache).live, 1);
	assert_int_equal(stats(f->cache).deleted, 2);
	assert_true(fixture_stop(f) < 1500);
}

static void test_watcher_forbidden(void **state)
{
	static const struct fake_step steps[] = {
		{ .status = 403, .body =
		  "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
		  "\"message\":\"pods is forbidden: User \\\"system:serviceaccount:kube-system:ksight\\\" "
		  "cannot list resource \\\"pods\\\" in API group \\\"\\\" at the cluster scope\","
		  "\"reason\":\"Forbidden\",\"details\":{\"kind\":\"pods\"},\"code\":403}" },
	};
	struct watch_fixture *f = &fx;
	struct until u;

	fixture_start(f, steps, 1);
	u = (struct until){ .f = f, .calls = 1, .pods = 1, .metric = "ksight_k8s_api_errors_total",
			    .label = "op", .value = "list" };
	assert_true(wait_for(cond_ready, &u));
	assert_false(pod_watcher_synced(f->w));
	/* stopped in the middle of the backoff, promptly */
	assert_true(fixture_stop(f) < 500);
	assert_int_equal(fake_calls(), 1);
}

/* Count the lines of `path` that contain `needle`. */
static int count_lines(const char *path, const char *needle)
{
	FILE *fp = fopen(path, "r");
	char line[1024];
	int n = 0;

	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp))
		n += strstr(line, needle) != NULL;
	fclose(fp);
	return n;
}

static void test_watcher_forbidden_logged_once(void **state)
{
	static const struct fake_step steps[] = {
		{ .status = 403, .body = "{\"kind\":\"Status\",\"message\":\"no\",\"code\":403}" },
		{ .status = 403, .body = "{\"kind\":\"Status\",\"message\":\"no\",\"code\":403}" },
		{ .status = 200, .body = "{\"metadata\":{\"resourceVersion\":\"5\"},\"items\":null}" },
		{ .status = 200, .block = true },
	};
	struct watch_fixture *f = &fx;
	char log_path[] = "/tmp/test_k8s_pods.XXXXXX";
	int fd = mkstemp(log_path), saved = dup(2);
	bool ready, synced;
	int64_t stop_ms;
	struct until u;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	fixture_start(f, steps, 4);
	u = (struct until){ .f = f, .calls = 4 };
	/* no assertion while stderr is redirected: cmocka reports there */
	ready = wait_for(cond_ready, &u);
	synced = pod_watcher_synced(f->w);
	stop_ms = fixture_stop(f);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	assert_true(ready);
	assert_true(synced);
	assert_true(stop_ms < 1500);
	assert_int_equal(count_lines(log_path, "pods list forbidden: the ServiceAccount needs get/list/watch on pods (deploy/rbac.yaml)"), 1);
	assert_int_equal(count_lines(log_path, "works again"), 1);
	unlink(log_path);
}

static void test_watcher_stop_during_list(void **state)
{
	struct watch_fixture *f = &fx;
	struct until u;

	/* no script: the list hangs */
	memset(f, 0, sizeof(*f));
	running = f;
	f->cache = pod_cache_new();
	fake_script(NULL, 0);
	assert_int_equal(pod_watcher_start(&f->cfg, "n", f->cache, NULL, &f->w), 0);
	u = (struct until){ .f = f, .calls = 1 };
	assert_true(wait_for(cond_ready, &u));
	assert_false(pod_watcher_synced(f->w));
	assert_true(fixture_stop(f) < 1500);
	assert_false(pod_watcher_synced(NULL));
	pod_watcher_stop(NULL);
}

/* A LIST that breaks off tombstones nothing and adds nothing: the next one decides. */
static void test_watcher_list_cut_short(void **state)
{
	static const struct fake_step steps[] = {
		{ .status = 200, .chunk = 11, .body =
		  "{\"metadata\":{\"resourceVersion\":\"10\"},\"items\":[" POD_JSON(UID_A, "a", CID_APP) ","
		  POD_JSON(UID_B, "b", CID_SIDECAR) "]}" },
		{ .status = 200, .body =
		  "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410}}\n" },
		/* neither A nor B, C complete, D cut in the middle */
		{ .status = 200, .chunk = 3, .body =
		  "{\"metadata\":{\"resourceVersion\":\"20\"},\"items\":[" POD_JSON(UID_C, "c", CID_DEBUG)
		  ",{\"metadata\":{\"uid\":\"" UID_D "\",\"namesp" },
	};
	struct watch_fixture *f = &fx;
	struct until u;

	fixture_start(f, steps, 3);
	/* the fourth call is the list again, after the backoff */
	u = (struct until){ .f = f, .calls = 4 };
	assert_true(wait_for(cond_ready, &u));
	assert_true(pod_watcher_synced(f->w));
	assert_string_equal(fake.paths[2], LIST_PATH);
	assert_true(metric(f->reg, "ksight_k8s_api_errors_total", "op", "list") == 1);
	assert_int_equal(stats(f->cache).live, 2);
	assert_int_equal(stats(f->cache).deleted, 0);
	assert_true(pod_cache_has(f->cache, UID_A));
	assert_false(pod_cache_has(f->cache, UID_C));
	assert_true(fixture_stop(f) < 1500);
}

static void test_watcher_args(void **state)
{
	struct pod_cache *c = pod_cache_new();
	struct k8s_config cfg = { 0 };
	struct pod_watcher *w = (void *)1;
	char *long_node = repeat('n', 254);

	assert_int_equal(pod_watcher_start(NULL, "n", c, NULL, &w), -EINVAL);
	assert_null(w);
	assert_int_equal(pod_watcher_start(&cfg, NULL, c, NULL, &w), -EINVAL);
	assert_int_equal(pod_watcher_start(&cfg, "", c, NULL, &w), -EINVAL);
	assert_int_equal(pod_watcher_start(&cfg, long_node, c, NULL, &w), -EINVAL);
	assert_int_equal(pod_watcher_start(&cfg, "n", NULL, NULL, &w), -EINVAL);
	assert_int_equal(pod_watcher_start(&cfg, "n", c, NULL, NULL), -EINVAL);
	assert_int_equal(fake.clients, 0);
	free(long_node);
	pod_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_pod),
		cmocka_unit_test(test_missing_and_wrong_fields),
		cmocka_unit_test(test_malformed_pods),
		cmocka_unit_test(test_huge_names),
		cmocka_unit_test(test_container_cap),
		cmocka_unit_test(test_static_pod_alias),
		cmocka_unit_test(test_bad_config_hash),
		cmocka_unit_test(test_delete_tombstone_expire),
		cmocka_unit_test(test_retire_hook),
		cmocka_unit_test(test_restarts_keep_old_ids),
		cmocka_unit_test(test_replace_all),
		cmocka_unit_test(test_relist_streamed),
		cmocka_unit_test(test_cache_bound),
		cmocka_unit_test(test_concurrent_lookups),
		cmocka_unit_test_setup(test_watcher_list_watch_expire, setup_watcher),
		cmocka_unit_test_setup(test_watcher_rewatch_error_relist, setup_watcher),
		cmocka_unit_test_setup(test_watcher_forbidden, setup_watcher),
		cmocka_unit_test_setup(test_watcher_forbidden_logged_once, setup_watcher),
		cmocka_unit_test_setup(test_watcher_stop_during_list, setup_watcher),
		cmocka_unit_test_setup(test_watcher_list_cut_short, setup_watcher),
		cmocka_unit_test_setup(test_watcher_args, setup_watcher),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
