/*
 * The Kubernetes Event recorder: a worker thread that posts Events
 * (k8s_event_body.h) about what ksight sees, e.g. an OOM kill on the
 * victim's Pod, node problems on the Node.
 *
 * event_recorder_record() never blocks on the network: it copies the event
 * into a bounded queue and returns. The worker, with its own k8s_client,
 * correlates occurrences (event_correlator.h: a repeat of the same object +
 * reason + key within 10 minutes PATCHes count, lastTimestamp and message;
 * a spam filter per object and reason), POSTs and PATCHes, and retries with
 * backoff. Every outcome is counted in ksight_k8s_events_total{result}.
 */
#ifndef KSIGHT_EVENT_RECORDER_H
#define KSIGHT_EVENT_RECORDER_H

#include <stddef.h>

#include "k8s_client.h"
#include "k8s_event_body.h"
#include "metrics.h"

#define K8S_EVENT_QUEUE_CAP         1000   /* client-go maxQueuedEvents */
#define K8S_EVENT_MAX_TRIES         12     /* client-go maxTriesPerEvent */
#define K8S_EVENT_BACKOFF_MIN_MS    1000
#define K8S_EVENT_BACKOFF_MAX_MS    60000
#define K8S_EVENT_RETRY_AFTER_MAX_S 300
#define K8S_EVENT_TIMEOUT_MS        10000  /* one request */

struct event_recorder;

/*
 * Start the worker. `component` is source.component and reportingComponent
 * ("ksight"), `host` source.host and reportingInstance (the node name).
 * `reg` may be NULL (no metrics); queue_cap 0 means K8S_EVENT_QUEUE_CAP.
 * NULL on failure (logged).
 */
struct event_recorder *event_recorder_start(const struct k8s_config *cfg, const char *component,
					    const char *host, struct metrics_registry *reg, size_t queue_cap);

struct event_log;

/*
 * --events-log: from now on, write one line (event_log.h) for every outcome
 * of an occurrence or Event object: created, patched, recreated, throttled,
 * queue_full, failed, rejected. Call before the first event_recorder_record();
 * `log` must outlive the recorder. NULL recorder or log: nothing.
 */
void event_recorder_set_log(struct event_recorder *r, struct event_log *log);

/*
 * Queue one occurrence; never blocks on I/O. When the queue (events waiting
 * plus Event objects not yet delivered) holds queue_cap, the occurrence is
 * dropped and counted as queue_full. An event without type, reason, object
 * kind or name, or with an invalid namespace, is counted as rejected.
 * A NULL recorder (not in a cluster) ignores everything.
 */
void event_recorder_record(struct event_recorder *r, const struct k8s_event *ev);

/*
 * Wait until everything queued was delivered or given up (events waiting
 * for a retry count as queued). 0, or -ETIMEDOUT; timeout_ms < 0 waits
 * for ever.
 */
int event_recorder_flush(struct event_recorder *r, int timeout_ms);

/*
 * Stop the worker (after the request in flight, at most
 * K8S_EVENT_TIMEOUT_MS) and free everything. What is still queued is
 * counted as failed: flush first to deliver it.
 */
void event_recorder_stop(struct event_recorder *r);

#endif
