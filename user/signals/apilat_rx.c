#include "apilat_rx.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "apilat.h"
#include "log.h"

/* ---- the table ---- */

int apilat_rx_table_init(struct apilat_rx_table *t, size_t cap, size_t max_attached, const struct apilat_rx_ops *ops,
			 void *ctx)
{
	*t = (struct apilat_rx_table){ .cap = cap, .max_attached = max_attached, .ops = ops, .ctx = ctx };
	t->v = calloc(cap ? cap : 1, sizeof(*t->v));
	return t->v ? 0 : -ENOMEM;
}

static bool table_has(const struct apilat_rx_table *t, uint64_t id)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->v[i].id == id)
			return true;
	return false;
}

uint32_t apilat_rx_table_ask(struct apilat_rx_table *t, uint64_t id)
{
	void *link = NULL;
	int err;

	if (table_has(t, id))
		return 0;
	if (t->n >= t->cap) {
		/* not from the kernel's map, which is no larger: forgotten, asked again by its next connection */
		t->ops->mark(t->ctx, id, 0);
		return 0;
	}
	if (t->n_attached >= t->max_attached) {
		/* at the cap: forgotten, asked again by its next connection, attached once there is room */
		t->refused++;
		t->last_error = -ENOSPC;
		t->ops->mark(t->ctx, id, 0);
		return APILAT_RX_REFUSED;
	}
	err = t->ops->attach(t->ctx, id, &link);
	if (err == -ESTALE || err == -ENOENT) {
		t->ops->mark(t->ctx, id, 0); /* gone already: a cgroup made again has another id */
		return 0;
	}
	if (err) {
		t->refused++;
		t->last_error = err;
		t->v[t->n++] = (struct apilat_rx_cgroup){ .id = id }; /* swept when it goes */
		t->ops->mark(t->ctx, id, APILAT_RX_REFUSED);
		return APILAT_RX_REFUSED;
	}
	t->attached++;
	t->n_attached++;
	t->v[t->n++] = (struct apilat_rx_cgroup){ .id = id, .link = link };
	t->ops->mark(t->ctx, id, APILAT_RX_ATTACHED);
	return APILAT_RX_ATTACHED;
}

size_t apilat_rx_table_sweep(struct apilat_rx_table *t)
{
	size_t i = 0, swept = 0;

	while (i < t->n) {
		struct apilat_rx_cgroup *c = &t->v[i];

		if (t->ops->alive(t->ctx, c->id)) {
			i++;
			continue;
		}
		if (c->link) {
			t->ops->detach(t->ctx, c->link);
			t->n_attached--;
		}
		t->ops->mark(t->ctx, c->id, 0);
		*c = t->v[--t->n];
		t->gone++;
		swept++;
	}
	return swept;
}

void apilat_rx_table_fini(struct apilat_rx_table *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->v[i].link)
			t->ops->detach(t->ctx, t->v[i].link);
	free(t->v);
	*t = (struct apilat_rx_table){ 0 };
}

/* ---- the kernel's side of the table ---- */

#define FILEID_KERNFS_ 0xfe
#define SWEEP_NS (10 * 1000000000ULL)

struct apilat_rx {
	struct bpf_program *prog;
	int cgroups_fd, root_fd, stop_fd, epoll_fd;
	struct ring_buffer *rb;
	struct apilat_rx_table table;
	pthread_t thread;
	_Atomic uint64_t n_attached, n_refused; /* the table's, for scrapes */
	bool started;
	bool verbose; /* each attach and sweep logged */
	bool open_failed; /* the last refusal: opening the cgroup, not attaching */
	bool refusal_logged;
};

/* cgroup v2 `id` as a directory fd (kernfs' file handle is its id): -errno, -ESTALE once it is gone */
static int open_cgroup(const struct apilat_rx *rx, uint64_t id)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + sizeof(uint64_t)];
	} h;
	int fd;

	h.fh.handle_bytes = sizeof(uint64_t);
	h.fh.handle_type = FILEID_KERNFS_;
	memcpy(h.fh.f_handle, &id, sizeof(id));
	fd = open_by_handle_at(rx->root_fd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int rx_attach(void *ctx, uint64_t id, void **link)
{
	struct apilat_rx *rx = ctx;
	struct bpf_link *l;
	int fd = open_cgroup(rx, id), err;

	rx->open_failed = fd < 0;
	if (fd < 0)
		return fd;
	l = bpf_program__attach_cgroup(rx->prog, fd);
	err = l ? 0 : (errno ? -errno : -EINVAL);
	close(fd);
	*link = l;
	return err;
}

static void rx_detach(void *ctx, void *link)
{
	(void)ctx;
	bpf_link__destroy(link);
}

static bool rx_alive(void *ctx, uint64_t id)
{
	int fd = open_cgroup(ctx, id);

	if (fd >= 0)
		close(fd);
	return fd >= 0 || (fd != -ESTALE && fd != -ENOENT);
}

static void rx_mark(void *ctx, uint64_t id, uint32_t state)
{
	struct apilat_rx *rx = ctx;
	__u64 key = id;

	if (state)
		bpf_map_update_elem(rx->cgroups_fd, &key, &state, BPF_ANY);
	else
		bpf_map_delete_elem(rx->cgroups_fd, &key);
}

static const struct apilat_rx_ops rx_ops = {
	.attach = rx_attach, .detach = rx_detach, .alive = rx_alive, .mark = rx_mark,
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* What the table holds, for the scrapes' thread. */
static void publish(struct apilat_rx *rx)
{
	uint64_t attached = 0;
	size_t i;

	for (i = 0; i < rx->table.n; i++)
		attached += rx->table.v[i].link != NULL;
	atomic_store(&rx->n_attached, attached);
	atomic_store(&rx->n_refused, rx->table.n - attached);
}

void apilat_rx_counts(struct apilat_rx *rx, uint64_t *attached, uint64_t *refused)
{
	*attached = rx ? atomic_load(&rx->n_attached) : 0;
	*refused = rx ? atomic_load(&rx->n_refused) : 0;
}

static int on_ask(void *ctx, void *data, size_t size)
{
	struct apilat_rx *rx = ctx;
	const struct apilat_rx_ask *a = data;
	uint32_t state;

	if (size < sizeof(*a))
		return 0;
	state = apilat_rx_table_ask(&rx->table, a->cgroup_id);
	publish(rx);
	if (state == APILAT_RX_ATTACHED && rx->verbose) {
		log_info("apilat: timing received segments in cgroup %" PRIu64 " (attached %.0f us after its connection "
			  "opened)", (uint64_t)a->cgroup_id, (double)(mono_ns() - a->ns) / 1000.0);
	} else if (state == APILAT_RX_REFUSED && !rx->refusal_logged) {
		int err = -rx->table.last_error;

		rx->refusal_logged = true;
		if (err == ENOSPC)
			log_warn("apilat: the receive hook is on %d cgroups, its cap: the API-server connections of cgroup "
				 "%" PRIu64 " and others are counted, their responses not timed (logged once)",
				 APILAT_MAX_RX_ATTACHED, (uint64_t)a->cgroup_id);
		else if (rx->open_failed)
			log_warn("apilat: cannot open cgroup %" PRIu64 " by its id: %s (open_by_handle_at needs "
				 "CAP_DAC_READ_SEARCH); its API-server connections' requests are counted, their responses "
				 "not timed (logged once)", (uint64_t)a->cgroup_id, strerror(err));
		else
			log_warn("apilat: cannot attach the receive hook to cgroup %" PRIu64 ": %s%s; its API-server "
				 "connections' requests are counted, their responses not timed (logged once)",
				 (uint64_t)a->cgroup_id, strerror(err),
				 err == EPERM ? " (a program attached to it or a parent without BPF_F_ALLOW_MULTI "
						"excludes others; `bpftool cgroup tree` lists it)" : "");
	}
	return 0;
}

static void *rx_thread(void *arg)
{
	struct apilat_rx *rx = arg;
	uint64_t next_sweep = mono_ns() + SWEEP_NS;

	for (;;) {
		struct epoll_event ev[2];
		uint64_t now = mono_ns();
		/* asleep until an ask comes, but for the sweeps while there are cgroups to check */
		int timeout = !rx->table.n ? -1 : now >= next_sweep ? 0 : (int)((next_sweep - now) / 1000000 + 1);
		int n = epoll_wait(rx->epoll_fd, ev, 2, timeout), i;
		bool stop = false, was_empty;

		if (n < 0 && errno != EINTR) {
			log_warn("apilat: the receive hook's thread stops: epoll_wait: %s", strerror(errno));
			break;
		}
		for (i = 0; i < n; i++)
			stop |= ev[i].data.fd == rx->stop_fd;
		if (stop)
			break;
		was_empty = !rx->table.n;
		ring_buffer__consume(rx->rb);
		if (was_empty) {
			next_sweep = mono_ns() + SWEEP_NS; /* a first cgroup is checked 10 s after it came */
		} else if (mono_ns() >= next_sweep) {
			size_t gone = apilat_rx_table_sweep(&rx->table);

			publish(rx);
			if (gone && rx->verbose)
				log_info("apilat: %zu removed cgroup(s) let go by the receive hook", gone);
			next_sweep = mono_ns() + SWEEP_NS;
		}
	}
	return NULL;
}

static int epoll_add(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

int apilat_rx_start(struct bpf_program *prog, int cgroups_fd, int asks_fd, const char *cgroup_root, bool verbose,
		    struct apilat_rx **out)
{
	struct apilat_rx *rx = calloc(1, sizeof(*rx));
	int err;

	*out = NULL;
	if (!rx)
		return -ENOMEM;
	rx->prog = prog;
	rx->verbose = verbose;
	rx->cgroups_fd = cgroups_fd;
	rx->root_fd = rx->stop_fd = rx->epoll_fd = -1;
	err = apilat_rx_table_init(&rx->table, APILAT_MAX_RX_CGROUPS, APILAT_MAX_RX_ATTACHED, &rx_ops, rx);
	if (err)
		goto fail;
	rx->root_fd = open(cgroup_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rx->stop_fd = eventfd(0, EFD_CLOEXEC);
	rx->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (rx->root_fd < 0 || rx->stop_fd < 0 || rx->epoll_fd < 0) {
		err = -errno;
		goto fail;
	}
	rx->rb = ring_buffer__new(asks_fd, on_ask, rx, NULL);
	if (!rx->rb) {
		err = errno ? -errno : -ENOMEM;
		goto fail;
	}
	err = epoll_add(rx->epoll_fd, ring_buffer__epoll_fd(rx->rb));
	if (!err)
		err = epoll_add(rx->epoll_fd, rx->stop_fd);
	if (!err)
		err = -pthread_create(&rx->thread, NULL, rx_thread, rx);
	if (err)
		goto fail;
	pthread_setname_np(rx->thread, "apilat-rx");
	rx->started = true;
	*out = rx;
	return 0;
fail:
	apilat_rx_free(rx);
	return err;
}

void apilat_rx_stop(struct apilat_rx *rx)
{
	uint64_t one = 1;

	if (!rx)
		return;
	if (rx->started) {
		if (write(rx->stop_fd, &one, sizeof(one)) != sizeof(one))
			log_warn("apilat: cannot stop the receive hook's thread: %s", strerror(errno));
		pthread_join(rx->thread, NULL);
		rx->started = false;
	}
	ring_buffer__free(rx->rb);
	rx->rb = NULL;
	if (rx->table.v)
		apilat_rx_table_fini(&rx->table);
	atomic_store(&rx->n_attached, 0);
	atomic_store(&rx->n_refused, 0);
	if (rx->epoll_fd >= 0)
		close(rx->epoll_fd);
	if (rx->stop_fd >= 0)
		close(rx->stop_fd);
	if (rx->root_fd >= 0)
		close(rx->root_fd);
	rx->epoll_fd = rx->stop_fd = rx->root_fd = -1;
}

void apilat_rx_free(struct apilat_rx *rx)
{
	apilat_rx_stop(rx);
	free(rx);
}
