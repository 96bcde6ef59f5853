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
	/*
	 * the iterators' links, duplicated: the runtime destroys its bpf_links
	 * when it detaches, and an endpoint may still join the set then
	 */
	int owners_fd, sockets_fd;
	int ctl_fd, map_fd; /* apilat_adopt_ctl, apilat_owners */
	pthread_mutex_t lock;
	bool ran;           /* the first run (the agent's warm-up) is over */
	bool refused_logged, missed_logged;
};

int apilat_adopt_new(struct bpf_link *owners, struct bpf_link *sockets, int ctl_fd, int owners_fd,
		     uint32_t cb_flags, bool by_acks, struct apilat_adopt **out)
{
	struct apilat_adopt_ctl ctl = { .cb_flags = cb_flags, .by_acks = by_acks };
	struct apilat_adopt *a;
	__u32 zero = 0;
	int err;

	*out = NULL;
	if (bpf_map_update_elem(ctl_fd, &zero, &ctl, BPF_ANY))
		return -errno;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->owners_fd = fcntl(bpf_link__fd(owners), F_DUPFD_CLOEXEC, 0);
	a->sockets_fd = a->owners_fd < 0 ? -1 : fcntl(bpf_link__fd(sockets), F_DUPFD_CLOEXEC, 0);
	if (a->sockets_fd < 0) {
		err = -errno;
		if (a->owners_fd >= 0)
			close(a->owners_fd);
		free(a);
		return err;
	}
	a->ctl_fd = ctl_fd;
	a->map_fd = owners_fd;
	pthread_mutex_init(&a->lock, NULL);
	*out = a;
	return 0;
}

/*
 * An iterator's program runs on every object while an iterator made from
 * its link is read to the end. A read that visited a million objects
 * without output returns EAGAIN: the next one goes on from there.
 */
static int run_iter(int link_fd)
{
	char buf[256];
	ssize_t n;
	int fd = bpf_iter_create(link_fd), err = 0;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
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

/* Each network namespace the owners pass found a socket in, and a process there per socket. */
struct netns_seen {
	struct { __u32 inum, pid; } *v;
	size_t n, cap;
};

static int visit_owner(const void *key, const void *value, void *arg)
{
	const struct apilat_owner *o = value;
	struct netns_seen *seen = arg;
	size_t i;

	(void)key;
	for (i = 0; i < seen->n; i++)
		if (seen->v[i].inum == o->netns && seen->v[i].pid == o->pid)
			return 0;
	if (seen->n == seen->cap) {
		size_t cap = seen->cap ? 2 * seen->cap : 16;
		void *v = realloc(seen->v, cap * sizeof(seen->v[0]));

		if (!v)
			return -ENOMEM;
		seen->v = v;
		seen->cap = cap;
	}
	seen->v[seen->n].inum = o->netns;
	seen->v[seen->n].pid = o->pid;
	seen->n++;
	return 0;
}

static __u32 own_netns(void)
{
	struct stat st;

	return stat("/proc/self/ns/net", &st) ? 0 : (__u32)st.st_ino;
}

struct netns_pass {
	int sockets_fd;
	struct netns_seen *seen;
	__u32 own;
	unsigned missed; /* namespaces none of whose processes' /proc/PID/ns/net could be entered */
	unsigned failed; /* entered, but the iterator failed there */
};

/* Enter the namespace `inum` through process `pid`'s: the process may be gone, its pid another's. */
static bool enter(__u32 pid, __u32 inum)
{
	char path[64];
	struct stat st;
	bool in;
	int fd;

	snprintf(path, sizeof(path), "/proc/%u/ns/net", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	in = !fstat(fd, &st) && (__u32)st.st_ino == inum && !setns(fd, CLONE_NEWNET);
	close(fd);
	return in;
}

/*
 * On a thread of its own, which enters each namespace (setns() moves only
 * the calling thread, and it ends with the thread): a tcp iterator walks the
 * namespace it is made in. Each namespace through the first of its
 * processes that lets it in.
 */
static void *tcp_passes(void *arg)
{
	struct netns_pass *np = arg;
	struct netns_seen *seen = np->seen;
	size_t i, j;

	for (i = 0; i < seen->n; i++) {
		__u32 inum = seen->v[i].inum;
		bool in = false;

		if (inum == np->own || !inum)
			continue;
		for (j = i; j < seen->n && !in; j++)
			if (seen->v[j].inum == inum)
				in = enter(seen->v[j].pid, inum);
		if (!in)
			np->missed++;
		else if (run_iter(np->sockets_fd))
			np->failed++;
		for (j = i; j < seen->n; j++)
			if (seen->v[j].inum == inum)
				seen->v[j].inum = 0; /* done */
	}
	return NULL;
}

/* The tcp pass in this process's namespace, then in every other one the owners pass found. */
static int run_tcp_passes(struct apilat_adopt *a, const char *when)
{
	struct netns_seen seen = { 0 };
	struct netns_pass np = { .sockets_fd = a->sockets_fd, .seen = &seen, .own = own_netns() };
	pthread_t t;
	int err = run_iter(a->sockets_fd);

	if (!err)
		err = bpf_map_walk(a->map_fd, visit_owner, &seen);
	if (!err && seen.n) {
		err = -pthread_create(&t, NULL, tcp_passes, &np);
		if (!err)
			pthread_join(t, NULL);
	}
	/* not entered: most often its processes exited between the two passes, and their connections with them */
	if (np.missed && !np.failed && !a->missed_logged)
		log_info("apilat: %u network namespace%s with API-server connections open %s could not be entered (its "
			 "processes gone?): such connections are followed from their next connect", np.missed,
			 np.missed == 1 ? "" : "s", when);
	if (np.failed && !a->missed_logged)
		log_warn("apilat: the API-server connections open %s in %u network namespace%s could not be looked at "
			 "(the iterator failed there; %u more not entered): they are followed from their next connect", when,
			 np.failed, np.failed == 1 ? "" : "s", np.missed);
	a->missed_logged = a->missed_logged || np.missed || np.failed;
	free(seen.v);
	return err;
}

/* What a run did, from the counters before and after it. */
static void log_run(struct apilat_adopt *a, const struct apilat_adopt_ctl *before, const struct apilat_adopt_ctl *after,
		    const char *when)
{
	__u32 n = after->adopted - before->adopted;

	if (n)
		log_info("apilat: following %u API-server connection%s open %s", n, n == 1 ? "" : "s", when);
	n = after->completed - before->completed;
	if (n)
		log_info("apilat: %u API-server connection%s established while ksight was attaching its programs now "
			 "ask%s for %s callbacks", n, n == 1 ? "" : "s", n == 1 ? "s" : "", n == 1 ? "its" : "their");
	n = after->complete_refused - before->complete_refused;
	if (n)
		log_warn("apilat: %u API-server connection%s established while ksight was attaching its programs %s no "
			 "longer followed: this kernel does not let a program ask an open connection for callbacks "
			 "(TCP_BPF_SOCK_OPS_CB_FLAGS, 6.12+); followed from %s next connect", n, n == 1 ? "" : "s",
			 n == 1 ? "is" : "are", n == 1 ? "its" : "their");
	n = after->refused - before->refused;
	if (n && !a->refused_logged) {
		log_warn("apilat: %u API-server connection%s open %s %s not followed: this kernel does not let a program "
			 "ask an open connection for callbacks (TCP_BPF_SOCK_OPS_CB_FLAGS, 6.12+); followed from %s next "
			 "connect", n, n == 1 ? "" : "s", when, n == 1 ? "is" : "are", n == 1 ? "its" : "their");
		a->refused_logged = true;
	}
}

int apilat_adopt_run(struct apilat_adopt *a)
{
	struct apilat_adopt_ctl before, after;
	const char *when;
	__u32 zero = 0;
	int err, n = 0;

	pthread_mutex_lock(&a->lock);
	/* later runs: an endpoint joined the set (or a namespace missed before is entered now) */
	when = a->ran ? "before their endpoint joined the set" : "before ksight started";
	a->ran = true;
	err = bpf_map_lookup_elem(a->ctl_fd, &zero, &before) ? -errno : 0;
	if (!err) {
		err = run_iter(a->owners_fd);
		if (!err)
			err = run_tcp_passes(a, when);
		clear_owners(a->map_fd);
		/* what was done before an error too */
		if (!bpf_map_lookup_elem(a->ctl_fd, &zero, &after)) {
			log_run(a, &before, &after, when);
			n = (int)(after.adopted - before.adopted);
		}
	}
	pthread_mutex_unlock(&a->lock);
	if (err) {
		log_warn("apilat: cannot look for all API-server connections open %s: %s", when, strerror(-err));
		return err;
	}
	return n;
}

void apilat_adopt_free(struct apilat_adopt *a)
{
	if (!a)
		return;
	close(a->owners_fd);
	close(a->sockets_fd);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
