#include "tp_btf.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "btf_index.h"
#include "log.h"
#include "util.h"

#define SECTION "tp_btf/"
#define ITER_SECTION "iter/"

/*
 * libbpf parses the kernel BTF at load for any tracing program without an
 * attach_prog_fd; this stands in for one until prepare_load, which clears it
 * before the kernel sees it (and an fd this high would only be refused).
 */
#define NO_PROG_FD INT_MAX

static __thread const struct btf *kernel_btf;
static __thread struct btf *own_btf; /* read by a load itself: freed by tp_btf_load_done() */

static int setup(struct bpf_program *prog, long cookie)
{
	return bpf_program__set_attach_target(prog, NO_PROG_FD, NULL);
}

static const struct btf *target_btf(void)
{
	if (kernel_btf)
		return kernel_btf;
	if (!own_btf) {
		own_btf = btf__load_vmlinux_btf();
		if (!own_btf)
			return NULL;
	}
	return own_btf;
}

/*
 * What libbpf's own handlers do at load: a tp_btf target is typedef
 * btf_trace_<name> in vmlinux, an iterator's function bpf_iter_<name>.
 */
static int prepare_load(struct bpf_program *prog, struct bpf_prog_load_opts *opts, long cookie)
{
	const char *section = bpf_program__section_name(prog);
	const struct btf *btf = target_btf();
	char name[128];
	int id;

	if (!btf)
		return neg_errno_or(ENOENT);
	if (!strncmp(section, SECTION, strlen(SECTION))) {
		snprintf(name, sizeof(name), "btf_trace_%s", section + strlen(SECTION));
		id = btf_find(btf, name, BTF_KIND_TYPEDEF);
	} else if (!strncmp(section, ITER_SECTION, strlen(ITER_SECTION))) {
		snprintf(name, sizeof(name), "bpf_iter_%s", section + strlen(ITER_SECTION));
		id = btf_find(btf, name, BTF_KIND_FUNC);
	} else {
		return -EINVAL;
	}
	if (id <= 0)
		return -ESRCH; /* planning checked the target: a module's tracepoint, which this does not look up */
	opts->attach_prog_fd = 0;
	opts->attach_btf_obj_fd = 0; /* vmlinux */
	opts->attach_btf_id = (__u32)id;
	return 0;
}

static int attach(const struct bpf_program *prog, long cookie, struct bpf_link **link)
{
	*link = bpf_program__attach_trace(prog);
	return *link ? 0 : neg_errno();
}

/* An iterator's link: the program runs when user space reads an iterator made from it. */
static int attach_iter(const struct bpf_program *prog, long cookie, struct bpf_link **link)
{
	*link = bpf_program__attach_iter(prog, NULL);
	return *link ? 0 : neg_errno();
}

static pthread_once_t registered = PTHREAD_ONCE_INIT;
static int register_result = -EAGAIN;

static void register_once(void)
{
	LIBBPF_OPTS(libbpf_prog_handler_opts, ho, .prog_setup_fn = setup, .prog_prepare_load_fn = prepare_load,
		    .prog_attach_fn = attach);
	LIBBPF_OPTS(libbpf_prog_handler_opts, hi, .prog_setup_fn = setup, .prog_prepare_load_fn = prepare_load,
		    .prog_attach_fn = attach_iter);
	int id = libbpf_register_prog_handler("tp_btf+", BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP, &ho);

	if (id >= 0)
		id = libbpf_register_prog_handler("iter+", BPF_PROG_TYPE_TRACING, BPF_TRACE_ITER, &hi);
	register_result = id < 0 ? id : 0;
	if (id < 0)
		log_warn("cannot take over tp_btf and iter loads (%s): each object reads the kernel BTF itself, slower",
			 strerror(-id));
}

int tp_btf_handler_register(void)
{
	pthread_once(&registered, register_once);
	return register_result;
}

void tp_btf_use_kernel_btf(const struct btf *btf)
{
	kernel_btf = btf;
}

void tp_btf_load_done(void)
{
	btf__free(own_btf);
	own_btf = NULL;
}
