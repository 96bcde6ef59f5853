/*
 * Events held for a pod the cache does not know yet (see event_hold.h): a
 * FIFO list, small (EVENT_HOLD_MAX) so every operation simply walks it.
 */
#include "event_hold.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct event_hold {
	struct held_event *head, **tail;
	size_t len, cap;
	int64_t max_ns;
};

struct event_hold *event_hold_new(size_t cap, int64_t max_ns)
{
	struct event_hold *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->tail = &h->head;
	h->cap = cap ? cap : EVENT_HOLD_MAX;
	h->max_ns = max_ns ? max_ns : EVENT_HOLD_MAX_NS;
	return h;
}

void event_hold_free(struct event_hold *h)
{
	struct held_event *e;

	if (!h)
		return;
	while ((e = h->head)) {
		h->head = e->next;
		free(e);
	}
	free(h);
}

/* One allocation: the entry, then its strings. */
static struct held_event *held_copy(const struct held_event *src, int64_t now_ns)
{
	const char *in[] = { src->type, src->reason, src->message ? src->message : "", src->key };
	enum { N = sizeof(in) / sizeof(in[0]) };
	const char *out[N] = { NULL };
	size_t len[N], total = 0, i;
	struct held_event *e;
	char *p;

	for (i = 0; i < N; i++) {
		len[i] = in[i] ? strlen(in[i]) + 1 : 0;
		total += len[i];
	}
	e = malloc(sizeof(*e) + total);
	if (!e)
		return NULL;
	*e = *src;
	p = e->data;
	for (i = 0; i < N; i++) {
		if (!in[i])
			continue;
		memcpy(p, in[i], len[i]);
		out[i] = p;
		p += len[i];
	}
	e->next = NULL;
	e->type = out[0];
	e->reason = out[1];
	e->message = out[2];
	e->key = out[3];  /* NULL stays NULL: "the container" */
	e->held_ns = now_ns;
	return e;
}

int event_hold_add(struct event_hold *h, const struct held_event *ev, int64_t now_ns)
{
	struct held_event *e;

	if (!ev || !ev->type || !ev->type[0] || !ev->reason || !ev->reason[0] || !ev->pod_uid[0])
		return -EINVAL;
	if (h->len >= h->cap)
		return -ENOSPC;
	e = held_copy(ev, now_ns);
	if (!e)
		return -ENOMEM;
	*h->tail = e;
	h->tail = &e->next;
	h->len++;
	return 0;
}

bool event_hold_has_pod(const struct event_hold *h, const char *pod_uid)
{
	const struct held_event *e;

	for (e = h->head; e; e = e->next)
		if (!strcmp(e->pod_uid, pod_uid))
			return true;
	return false;
}

size_t event_hold_len(const struct event_hold *h)
{
	return h->len;
}

int64_t event_hold_deadline(const struct event_hold *h)
{
	/* FIFO: the head was held first */
	return h->head ? h->head->held_ns + h->max_ns : INT64_MAX;
}

/* Unlink `e`; `pp` points at the link that points at it. */
static struct held_event *unlink_at(struct event_hold *h, struct held_event **pp)
{
	struct held_event *e = *pp;

	*pp = e->next;
	if (h->tail == &e->next)
		h->tail = pp;
	e->next = NULL;
	h->len--;
	return e;
}

struct held_event *event_hold_take(struct event_hold *h, int64_t now_ns, bool stopping,
				   event_hold_known_fn known, void *ctx, enum event_hold_outcome *outcome)
{
	struct held_event **pp, **first;
	const char *uid;

	for (pp = &h->head; *pp; pp = &(*pp)->next) {
		if (known(ctx, (*pp)->pod_uid))
			*outcome = EVENT_HOLD_RESOLVED;
		else if (now_ns - (*pp)->held_ns >= h->max_ns)
			*outcome = EVENT_HOLD_TIMEOUT;
		else if (stopping)
			*outcome = EVENT_HOLD_SHUTDOWN;
		else
			continue;
		/*
		 * The pod's oldest entry goes first: the cache may have learnt
		 * the pod between the answers for an earlier entry and this one,
		 * and one pod's Events must not overtake each other. What lets
		 * this one go lets that one go too (same pod, held earlier).
		 */
		uid = (*pp)->pod_uid;
		for (first = &h->head; strcmp((*first)->pod_uid, uid); first = &(*first)->next)
			;
		return unlink_at(h, first);
	}
	return NULL;
}
