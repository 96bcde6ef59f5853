/* netdrop's user half, the parts unit tests reach: names of protocol classes, netns labels, rows. */
#ifndef KSIGHT_NETDROP_SIGNAL_H
#define KSIGHT_NETDROP_SIGNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where a network namespace's counts go: empty pod labels until the pod resolver knows it. */
struct netns_labels {
	const char *namespace_;
	const char *pod;
	char netns[32];  /* "host", "net:[INODE]", "" when the pod is known, "unknown" for inode 0 */
	char names[2][256]; /* what namespace_ and pod point into when a pod is known */
};

/* "tcp", "udp", "icmp", "icmpv6", "sctp", "other" (IP), "arp", "vlan", "lldp", "other" (not IP) */
const char *netdrop_proto_name(uint32_t proto);

/* The labels of namespace `ino`, the host's being `host_ino`. */
/* A namespace's labels; `namespace_` and `pod` are the pod living in it when known (NULL or "": none). */
void netdrop_netns_labels(uint32_t host_ino, uint32_t ino, const char *namespace_, const char *pod,
			  struct netns_labels *out);

/*
 * Sum rows with equal label values, as series must be one value each (two
 * kernel keys can end up with one label set). Rows are `n_labels` strings
 * each; returns the number of rows left, merged in place (labels sorted).
 */
struct netdrop_row {
	char *labels[5];  /* malloc'd, owned by the row */
	uint64_t value;
};

size_t netdrop_rows_merge(struct netdrop_row *rows, size_t n, size_t n_labels);
void netdrop_rows_free(struct netdrop_row *rows, size_t n, size_t n_labels);

/*
 * The rows of `prev` that `cur` has not (both merged, so sorted): gone()
 * for each — their series go, as a namespace's labels changed (net:[INODE]
 * became its pod) or the namespace is gone. Returns how many.
 */
typedef void (*netdrop_row_fn)(const struct netdrop_row *row, void *arg);
size_t netdrop_rows_sweep(const struct netdrop_row *prev, size_t n_prev, const struct netdrop_row *cur,
			  size_t n_cur, size_t n_labels, netdrop_row_fn gone, void *arg);

/* Namespaces and the pod found living in each (a hash on the inode). */
struct netdrop_named_ns {
	uint32_t ino;
	bool used;
	char *namespace_, *pod;
};

struct netdrop_named {
	struct netdrop_named_ns *v;
	size_t n, cap;
};

/* Adds or replaces ino's entry: 0 or -ENOMEM. */
int netdrop_named_add(struct netdrop_named *set, uint32_t ino, const char *namespace_, const char *pod);
const struct netdrop_named_ns *netdrop_named_find(const struct netdrop_named *set, uint32_t ino);
void netdrop_named_free(struct netdrop_named *set);

#endif
