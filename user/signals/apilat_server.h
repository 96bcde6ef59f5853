/*
 * apilat's server side in user space: the handshakes the kernel dropped at a
 * listener on an API-server address (accept queue or SYN queue full). No
 * tracepoint sees them all: a SYN refused because the accept queue is full
 * is freed by consume_skb(), without a drop reason; only the
 * handshake-completing ACK gets SKB_DROP_REASON_TCP_LISTEN_OVERFLOW. Each
 * such drop, whatever its path, goes through tcp_listendrop(), which adds 1
 * to both the netns's ListenDrops and the listener's own sk_drops; sock_diag
 * gives that per-socket count (SK_MEMINFO_DROPS), read at scrape time.
 */
#ifndef KSIGHT_APILAT_SERVER_H
#define KSIGHT_APILAT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "apilat.h"

#define APILAT_MAX_LISTENERS 32

/*
 * Does a listener bound to `l` (address, port) take connections for one of
 * the endpoints? Yes if bound to one of them exactly, or bound to the
 * wildcard address (0.0.0.0 for IPv4 endpoints, :: for both) on an endpoint's
 * port when that endpoint's address is one of this node's (`local`, ports 0).
 */
bool apilat_listener_serves(const struct apilat_endpoint *l, const struct apilat_endpoint *eps, size_t n_eps,
			    const struct apilat_endpoint *local, size_t n_local);

/* The listeners last seen and what they had dropped; the total since ksight started watching. */
struct apilat_listen_drops {
	struct {
		uint64_t inode;
		uint64_t drops;
	} seen[APILAT_MAX_LISTENERS];
	size_t n;
	uint64_t total;
};

/*
 * The listeners found now, by socket inode, with their sk_drops: each adds
 * what it dropped since it was last seen (all of it when it is new); the
 * ones not found are forgotten (closed: their drops stay in the total).
 */
void apilat_listen_drops_update(struct apilat_listen_drops *t, const uint64_t *inodes, const uint64_t *drops,
				size_t n);

/*
 * Ask sock_diag for this network namespace's listening TCP sockets (IPv4 and
 * IPv6) and update t with those serving the endpoints. 0 or -errno.
 */
int apilat_listen_drops_read(struct apilat_listen_drops *t, const struct apilat_endpoint *eps, size_t n_eps);

#endif
