#include "kernel_features.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

const char *tracefs_root(void)
{
	static const char *const roots[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };
	char probe[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		snprintf(probe, sizeof(probe), "%s/events", roots[i]);
		if (access(probe, F_OK) == 0)
			return roots[i];
	}
	return roots[0];
}

static bool has_btf_tracepoint(void *ctx, const char *name)
{
	char type[256];

	snprintf(type, sizeof(type), "btf_trace_%s", name);
	return btf__find_by_name_kind(ctx, type, BTF_KIND_TYPEDEF) > 0;
}

static bool has_tracefs_event(void *ctx, const char *category, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/events/%s/%s", tracefs_root(), category, name);
	return access(path, F_OK) == 0;
}

static bool has_btf_function(void *ctx, const char *name)
{
	return btf__find_by_name_kind(ctx, name, BTF_KIND_FUNC) > 0;
}

/* btf_trace_<name> is a pointer to a FUNC_PROTO whose first parameter is void *ctx. */
static bool btf_tracepoint_arg_is(void *ctx, const char *name, int index, const char *type_name)
{
	const struct btf *btf = ctx;
	const struct btf_type *t;
	const struct btf_param *params;
	char tname[256];
	int id;

	snprintf(tname, sizeof(tname), "btf_trace_%s", name);
	id = btf__find_by_name_kind(btf, tname, BTF_KIND_TYPEDEF);
	if (id <= 0)
		return false;
	t = btf__type_by_id(btf, id);                  /* typedef */
	t = btf__type_by_id(btf, t->type);             /* pointer */
	if (!t || !btf_is_ptr(t))
		return false;
	t = btf__type_by_id(btf, t->type);             /* func proto */
	if (!t || !btf_is_func_proto(t) || btf_vlen(t) < (unsigned)index + 2)
		return false;
	params = btf_params(t);
	t = btf__type_by_id(btf, params[index + 1].type); /* skip void *__data */
	while (t && (btf_is_typedef(t) || btf_is_const(t) || btf_is_volatile(t)))
		t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_ptr(t))
		return false;
	t = btf__type_by_id(btf, t->type);
	return t && btf_is_struct(t) && strcmp(btf__name_by_offset(btf, t->name_off), type_name) == 0;
}

int kernel_features_open(struct kernel_features *kf, const char *btf_path)
{
	struct btf *btf;

	btf = btf_path ? btf__parse(btf_path, NULL) : btf__load_vmlinux_btf();
	if (!btf)
		return errno ? -errno : -ENOENT;
	*kf = (struct kernel_features){
		.ctx = btf,
		.has_btf_tracepoint = has_btf_tracepoint,
		.has_tracefs_event = has_tracefs_event,
		.has_btf_function = has_btf_function,
		.btf_tracepoint_arg_is = btf_tracepoint_arg_is,
	};
	return 0;
}

void kernel_features_close(struct kernel_features *kf)
{
	btf__free(kf->ctx);
	kf->ctx = NULL;
}

const struct btf *kernel_features_btf(const struct kernel_features *kf)
{
	return kf->ctx;
}
