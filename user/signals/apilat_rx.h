/*
 * recv=ingress (bpf/apilat.bpf.c): apilat_recv_ingress attached to the
 * cgroup of each API-server connection, and to no other cgroup, so that no
 * other socket's received segments run it. The kernel side asks once per
 * cgroup (a record in apilat_rx_asks, the cgroup in apilat_rx_cgroups); a
 * thread here attaches, says in the map what it did, and lets go of the
 * cgroups that were removed.
 */
#ifndef KSIGHT_APILAT_RX_H
#define KSIGHT_APILAT_RX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the cgroups asked for and what became of them (no kernel: unit-tested) ---- */

struct apilat_rx_ops {
	/* attach to cgroup v2 `id`: 0 and *link, or -errno (-ESTALE, -ENOENT: the cgroup is gone) */
	int (*attach)(void *ctx, uint64_t id, void **link);
	void (*detach)(void *ctx, void *link);
	/* is cgroup `id` still there? */
	bool (*alive)(void *ctx, uint64_t id);
	/* the kernel's entry for `id`: its state (enum apilat_rx_state), or 0 to delete it */
	void (*mark)(void *ctx, uint64_t id, uint32_t state);
};

struct apilat_rx_cgroup {
	uint64_t id;
	void *link; /* NULL: refused */
};

struct apilat_rx_table {
	struct apilat_rx_cgroup *v;
	size_t n, cap;     /* cgroups known, at most */
	size_t n_attached, max_attached;
	const struct apilat_rx_ops *ops;
	void *ctx;
	uint64_t attached, refused, gone; /* totals */
	int last_error;                   /* the last refusal's -errno */
};

/*
 * cap: at most this many cgroups known (the kernel map's size: a cgroup the
 * kernel could ask for has room here), max_attached of them with the hook.
 * 0 or -ENOMEM.
 */
int apilat_rx_table_init(struct apilat_rx_table *t, size_t cap, size_t max_attached, const struct apilat_rx_ops *ops,
			 void *ctx);

/*
 * A cgroup the kernel asked for: attached (APILAT_RX_ATTACHED), or refused
 * (APILAT_RX_REFUSED: the attach failed, kept until the cgroup goes; or
 * max_attached are, -ENOSPC: forgotten, asked again by its next connection;
 * t->last_error says which), or forgotten (0: the cgroup is already gone, or was asked for
 * before: its entry stands). The kernel's entry says the same.
 */
uint32_t apilat_rx_table_ask(struct apilat_rx_table *t, uint64_t id);

/* The cgroups removed since: detached, forgotten here and in the kernel. Returns how many. */
size_t apilat_rx_table_sweep(struct apilat_rx_table *t);

/* Everything detached (the kernel's entries stay: the map goes with the object). */
void apilat_rx_table_fini(struct apilat_rx_table *t);

/* ---- the thread ---- */

struct bpf_program;
struct apilat_rx;

/*
 * Start attaching `prog` (apilat_recv_ingress, loaded) where asked: the maps
 * apilat_rx_cgroups and apilat_rx_asks by fd, cgroup v2's root by path;
 * verbose: each attach (with how long after the connection it came) and
 * each sweep logged. 0 and *out, or -errno.
 */
int apilat_rx_start(struct bpf_program *prog, int cgroups_fd, int asks_fd, const char *cgroup_root, bool verbose,
		    struct apilat_rx **out);

/* The cgroups the receive hook is attached to, and those where it was refused, now (NULL: zeros). */
void apilat_rx_counts(struct apilat_rx *rx, uint64_t *attached, uint64_t *refused);

/*
 * Stop the thread and detach everything; the counts are zeros from then on
 * (a scrape may still read them). Again: nothing. NULL-safe.
 */
void apilat_rx_stop(struct apilat_rx *rx);

/* Stopped if it was not, and freed. NULL-safe. */
void apilat_rx_free(struct apilat_rx *rx);

#endif
