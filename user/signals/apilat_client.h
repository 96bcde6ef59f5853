/* Who an apilat client is, for the trace and the Events: its pod (names when the cache has them) or comm. */
#ifndef KSIGHT_APILAT_CLIENT_H
#define KSIGHT_APILAT_CLIENT_H

#include <stddef.h>

#include <linux/types.h>

#include "apilat.h"
#include "event.h"

struct agent;
struct pod_ref;

/*
 * Fill ev's cgroup, pod identity and names from the client's cgroup id (the
 * strings point into `ref`, which must outlive ev), and comm (into
 * comm[KSIGHT_COMM_LEN + 1]).
 */
void apilat_client_event(struct agent *agent, const struct apilat_client *c, struct event_common *ev,
			 struct pod_ref *ref, char *comm);

/*
 * One line naming the client, "pod shop/cart-1 container cart", "pod UID
 * 7a1c... (not listed yet)" or "host process kubelet", and a key that tells
 * clients apart the way the metrics' label sets do.
 */
void apilat_client_describe(const struct event_common *ev, char *text, size_t text_len, char *key, size_t key_len);

#endif
