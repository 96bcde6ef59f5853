#include "apilat_adopt.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "apilat.h"
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
		err = run_iter(a->sockets);
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
