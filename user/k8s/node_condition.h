/*
 * A Node condition of ksight's own (--node-conditions), written to
 * nodes/NAME/status the way kubelet and node-problem-detector do: a
 * strategic-merge PATCH whose `conditions` list is merged by `type`, so the
 * other conditions of the Node are left alone.
 *
 * The body builder and the parser of a Node's condition are pure; the
 * sender is a thread of its own: node_condition_set() copies the wanted
 * state under a mutex and wakes it, it PATCHes when the state changed,
 * re-asserts it every NODE_CONDITION_RESYNC_S (lastHeartbeatTime), and
 * after a failure retries with backoff. lastTransitionTime moves only when
 * the status flips; at start-up a condition the Node already has with the
 * same status keeps its time.
 */
#ifndef KSIGHT_NODE_CONDITION_H
#define KSIGHT_NODE_CONDITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* fserr's condition: True while a mounted filesystem has reported corruption or a shutdown since its mount. */
#define NODE_CONDITION_FS_TYPE "KsightFilesystemCorruption"

#define NODE_CONDITION_RESYNC_S    300
#define NODE_CONDITION_TIMEOUT_MS  10000
#define NODE_CONDITION_BACKOFF_MIN_MS 500
#define NODE_CONDITION_BACKOFF_MAX_MS 60000
#define NODE_CONDITION_MESSAGE_MAX 1024

struct node_condition {
	const char *type;
	bool status;           /* "True" / "False" */
	const char *reason;    /* UpperCamelCase */
	const char *message;   /* any bytes: made UTF-8, cut at NODE_CONDITION_MESSAGE_MAX */
	int64_t heartbeat_ns;  /* CLOCK_REALTIME */
	int64_t transition_ns;
};

/* {"status":{"conditions":[{type, status, reason, message, lastHeartbeatTime, lastTransitionTime}]}} */
int node_condition_patch_body(const struct node_condition *c, struct strbuf *out);

/* "/api/v1/nodes/NAME/status"; -EINVAL for a name that is not one (empty, '/', '?', ...). */
int node_condition_path(const char *node, char *out, size_t len);

/*
 * In a Node object's JSON (GET nodes/NAME/status): condition `type`'s
 * status and lastTransitionTime (0 when absent or unparsable). 0, -ENOENT
 * when the Node has no such condition, -EINVAL when it is not a Node.
 */
int node_condition_find(const char *json, size_t len, const char *type, bool *status, int64_t *transition_ns);

struct k8s_config;
struct metrics_registry;
struct node_condition_sender;

/*
 * Start the sender of condition `type` on Node `node`; it writes once the
 * first node_condition_set() says what. Counted in
 * ksight_k8s_node_condition_updates_total{result}. NULL with a logged
 * reason on failure.
 */
struct node_condition_sender *node_condition_start(const struct k8s_config *cfg, const char *node,
						   const char *type, struct metrics_registry *reg);
/* The state wanted from now on (written at once when it changed). Never blocks on the network. */
void node_condition_set(struct node_condition_sender *s, bool status, const char *reason, const char *message);
/* Stop (a request in flight ends first, bounded by NODE_CONDITION_TIMEOUT_MS); the Node keeps the last state. */
void node_condition_stop(struct node_condition_sender *s);

#endif
