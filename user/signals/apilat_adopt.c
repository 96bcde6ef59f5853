#include "apilat_adopt.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "apilat.h"
#include "bpf_maps.h"
#include "log.h"

struct apilat_adopt {
	struct bpf_link *owners, *sockets;
	int ctl_fd, owners_fd;
	pthread_mutex_t lock;
	bool refused_logged;
};

int apilat_adopt_new(struct bpf_link *owners, struct bpf_link *sockets, int ctl_fd, int owners_fd,
		     uint32_t cb_flags, bool by_acks, struct apilat_adopt **out)
{
	struct apilat_adopt_ctl ctl = { .cb_flags = cb_flags, .by_acks = by_acks };
	struct apilat_adopt *a;
	__u32 zero = 0;

	*out = NULL;
	if (bpf_map_update_elem(ctl_fd, &zero, &ctl, BPF_ANY))
		return -errno;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->owners = owners;
	a->sockets = sockets;
	a->ctl_fd = ctl_fd;
	a->owners_fd = owners_fd;
	pthread_mutex_init(&a->lock, NULL);
	*out = a;
	return 0;
}

/* An iterator's program runs on every object while its fd is read to the end. */
static int run_iter(struct bpf_link *link)
{
	char buf[256];
	ssize_t n;
	int fd = bpf_iter_create(bpf_link__fd(link)), err = 0;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
	}
	close(fd);
	return err;
}

/* The owners pass's results are for one run only. */
static void clear_owners(int fd)
{
	__u64 key;

	while (bpf_map_get_next_key(fd, NULL, &key) == 0)
		if (bpf_map_delete_elem(fd, &key))
			break;
}

/* The network namespaces the owners pass found sockets in, each with a process in it. */
struct netns_set {
	struct { __u32 inum, pid; } *v;
	size_t n, cap;
};

static int visit_owner(const void *key, const void *value, void *arg)
{
	const struct apilat_owner *o = value;
	struct netns_set *set = arg;
	size_t i;

	(void)key;
	for (i = 0; i < set->n; i++)
		if (set->v[i].inum == o->netns)
			return 0;
	if (set->n == set->cap) {
		size_t cap = set->cap ? 2 * set->cap : 16;
		void *v = realloc(set->v, cap * sizeof(set->v[0]));

		if (!v)
			return -ENOMEM;
		set->v = v;
		set->cap = cap;
	}
	set->v[set->n].inum = o->netns;
	set->v[set->n].pid = o->pid;
	set->n++;
	return 0;
}

static __u32 own_netns(void)
{
	struct stat st;

	return stat("/proc/self/ns/net", &st) ? 0 : (__u32)st.st_ino;
}

struct netns_pass {
	struct bpf_link *sockets;
	const struct netns_set *set;
	__u32 own;
	unsigned missed; /* namespaces that could not be entered (their process gone, or no right to) */
};

/*
 * On a thread of its own, which enters each namespace (setns() moves only
 * the calling thread): a tcp iterator walks the namespace it is made in.
 */
static void *tcp_passes(void *arg)
{
	struct netns_pass *np = arg;
	char path[64];
	struct stat st;
	size_t i;
	int fd;

	for (i = 0; i < np->set->n; i++) {
		if (np->set->v[i].inum == np->own)
			continue;
		snprintf(path, sizeof(path), "/proc/%u/ns/net", np->set->v[i].pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		/* the process may have gone and its pid be another's since: the inode says */
		if (fd < 0 || fstat(fd, &st) || (__u32)st.st_ino != np->set->v[i].inum || setns(fd, CLONE_NEWNET) ||
		    run_iter(np->sockets)) {
			np->missed++;
		}
		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

/* The tcp pass in this process's namespace, then in every other one the owners pass found. */
static int run_tcp_passes(struct apilat_adopt *a)
{
	struct netns_set set = { 0 };
	struct netns_pass np = { .sockets = a->sockets, .set = &set, .own = own_netns() };
	pthread_t t;
	int err = run_iter(a->sockets);

	if (!err)
		err = bpf_map_walk(a->owners_fd, visit_owner, &set);
	if (!err && set.n) {
		err = -pthread_create(&t, NULL, tcp_passes, &np);
		if (!err)
			pthread_join(t, NULL);
	}
	if (np.missed)
		log_warn("apilat: %u network namespaces with API-server connections open before ksight started could "
			 "not be entered: their connections are followed from their next connect", np.missed);
	free(set.v);
	return err;
}

int apilat_adopt_run(struct apilat_adopt *a)
{
	struct apilat_adopt_ctl before, after;
	__u32 zero = 0, n;
	int err;

	pthread_mutex_lock(&a->lock);
	err = bpf_map_lookup_elem(a->ctl_fd, &zero, &before) ? -errno : 0;
	if (!err)
		err = run_iter(a->owners);
	if (!err)
		err = run_tcp_passes(a);
	clear_owners(a->owners_fd);
	if (!err)
		err = bpf_map_lookup_elem(a->ctl_fd, &zero, &after) ? -errno : 0;
	if (err) {
		pthread_mutex_unlock(&a->lock);
		log_warn("apilat: cannot look for API-server connections open before ksight started: %s", strerror(-err));
		return err;
	}
	n = after.adopted - before.adopted;
	if (n)
		log_info("apilat: following %u API-server connection%s open before ksight started", n, n == 1 ? "" : "s");
	n = after.refused - before.refused;
	if (n && !a->refused_logged) {
		log_warn("apilat: %u API-server connection%s open before ksight started %s not followed: this kernel "
			 "does not let a program ask an open connection for callbacks (TCP_BPF_SOCK_OPS_CB_FLAGS, 6.10+); "
			 "a connection is followed from its next connect", n, n == 1 ? "" : "s", n == 1 ? "is" : "are");
		a->refused_logged = true;
	}
	pthread_mutex_unlock(&a->lock);
	return (int)(after.adopted - before.adopted);
}

void apilat_adopt_free(struct apilat_adopt *a)
{
	if (!a)
		return;
	pthread_mutex_destroy(&a->lock);
	free(a);
}
