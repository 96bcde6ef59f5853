/*
 * --events-log: every Event ksight posts (and, without the Kubernetes API,
 * every Event it would post) as one JSON line, so that a log pipeline keeps
 * them past the API server's Event TTL (one hour by default):
 *
 *   {"timestamp":"2026-09-30T10:15:02.345Z","type":"Warning","reason":"ProcessOOMKilled",
 *    "message":"...","involvedObject":{"kind":"Pod","namespace":"shop","name":"cart-1",
 *    "uid":"...","fieldPath":"spec.containers{cart}"},"count":3,"node":"node-a",
 *    "outcome":"patched","event":{"namespace":"shop","name":"cart-1.18a2..."}}
 *
 * `outcome` is what became of it: created, patched, recreated, throttled,
 * queue_full, failed, rejected (the results of ksight_k8s_events_total), or
 * not_posted without the API. `count` is the Event object's count after this
 * occurrence (1 for one that never joined an Event object); `event` names the
 * Event object when there is one. Keys without a value (namespace and
 * fieldPath of a Node) are left out.
 *
 * event_log_line() is pure; event_log_write() may be called from any thread.
 */
#ifndef KSIGHT_EVENT_LOG_H
#define KSIGHT_EVENT_LOG_H

#include <stdint.h>

#include "k8s_event_body.h"
#include "strbuf.h"

struct event_log_entry {
	const struct k8s_event *ev;  /* type, reason, message, object */
	int64_t time_ns;             /* CLOCK_REALTIME of the occurrence */
	int32_t count;
	const char *node;            /* the node ksight runs on */
	const char *outcome;
	const char *event_name;      /* metadata.name of the Event object; NULL: none */
};

/*
 * Append the entry's JSON line, '\n' included, to `out`. Strings are escaped
 * for JSON; bytes that are not UTF-8 become U+FFFD. 0, -EINVAL (no event or
 * outcome, a negative time) or -ENOMEM.
 */
int event_log_line(const struct event_log_entry *e, struct strbuf *out);

struct event_log;

/* Open `path` for appending (created 0640), or "-" for standard output. 0 or -errno. */
int event_log_open(const char *path, struct event_log **out);

/* Write the entry as one line with a single write(2); a NULL log ignores it. Errors are logged once. */
void event_log_write(struct event_log *log, const struct event_log_entry *e);

/* Close the file (not standard output) and free the log; NULL is ignored. */
void event_log_close(struct event_log *log);

#endif
