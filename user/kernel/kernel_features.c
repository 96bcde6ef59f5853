#include "kernel_features.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "btf_index.h"
#include "cgroup_root.h"
#include "util.h"

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
	return btf_find(ctx, type, BTF_KIND_TYPEDEF) > 0;
}

static bool has_tracefs_event(void *ctx, const char *category, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/events/%s/%s", tracefs_root(), category, name);
	return access(path, F_OK) == 0;
}

/*
 * A loaded module's types are in /sys/kernel/btf/<module> (5.11+); a
 * built-in one's are in vmlinux's BTF. Built in: no /sys/module/<module>/initstate
 * (only loadable modules have it; a module not loaded at all fails its
 * tracefs or attach checks anyway). No BTF is read: this runs after start-up too.
 */
static bool has_module_btf(void *ctx, const char *module)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "/sys/kernel/btf/%s", module);
	if (access(path, F_OK) == 0)
		return true;
	snprintf(path, sizeof(path), "/sys/module/%s/initstate", module);
	return access(path, F_OK) != 0;
}

static bool has_cgroup2_root(void *ctx)
{
	char root[PATH_MAX];

	return cgroup2_root(root, sizeof(root)) == 0;
}

static bool has_btf_function(void *ctx, const char *name)
{
	return btf_find(ctx, name, BTF_KIND_FUNC) > 0;
}

static const struct btf_type *skip_modifiers(const struct btf *btf, const struct btf_type *t)
{
	while (t && (btf_is_typedef(t) || btf_is_const(t) || btf_is_volatile(t) || btf_is_restrict(t)))
		t = btf__type_by_id(btf, t->type);
	return t;
}

/*
 * The FUNC_PROTO of a hook and how many leading parameters are not the
 * hook's own: tp_btf targets are typedef btf_trace_<name>, a pointer to a
 * proto whose first parameter is the hidden void *__data; fentry targets are
 * the FUNC itself.
 */
static const struct btf_type *hook_proto(const struct btf *btf, const char *section, int *skip)
{
	const struct btf_type *t;
	char tname[256];
	int id;

	if (!strncmp(section, "tp_btf/", 7)) {
		snprintf(tname, sizeof(tname), "btf_trace_%s", section + 7);
		id = btf_find(btf, tname, BTF_KIND_TYPEDEF);
		if (id <= 0)
			return NULL;
		t = btf__type_by_id(btf, id);
		t = t ? btf__type_by_id(btf, t->type) : NULL;
		if (!t || !btf_is_ptr(t))
			return NULL;
		*skip = 1;
	} else {
		const char *fn = strchr(section, '/');

		if (!fn)
			return NULL;
		id = btf_find(btf, fn + 1, BTF_KIND_FUNC);
		if (id <= 0)
			return NULL;
		t = btf__type_by_id(btf, id);
		*skip = 0;
	}
	t = btf__type_by_id(btf, t->type);
	return t && btf_is_func_proto(t) ? t : NULL;
}

static bool named(const struct btf *btf, const struct btf_type *t, const char *name)
{
	return name && strcmp(btf__name_by_offset(btf, t->name_off), name) == 0;
}

/* struct `record` (a tracepoint's trace_event_raw_<event>) has a member `field` */
static bool record_has_field(const struct btf *btf, const char *record, const char *field)
{
	const struct btf_member *m;
	const struct btf_type *t;
	int id, i;

	id = record && field ? btf_find(btf, record, BTF_KIND_STRUCT) : -1;
	if (id <= 0)
		return false;
	t = btf__type_by_id(btf, id);
	for (i = 0, m = btf_members(t); i < btf_vlen(t); i++, m++)
		if (strcmp(btf__name_by_offset(btf, m->name_off), field) == 0)
			return true;
	return false;
}

static bool btf_arg_matches(void *ctx, const char *section, const struct probe_arg *arg)
{
	const struct btf *btf = ctx;
	const struct btf_type *proto, *t;
	int skip = 0;

	if (arg->kind == PROBE_ARG_RECORD_FIELD)
		return record_has_field(btf, arg->type, arg->field);
	proto = hook_proto(btf, section, &skip);
	if (!proto || arg->index < 0)
		return false;
	if ((unsigned)(arg->index + skip) >= btf_vlen(proto))
		return arg->kind == PROBE_ARG_ABSENT;
	t = skip_modifiers(btf, btf__type_by_id(btf, btf_params(proto)[arg->index + skip].type));
	if (!t)
		return false;
	switch (arg->kind) {
	case PROBE_ARG_STRUCT_PTR:
		if (!btf_is_ptr(t))
			return false;
		t = skip_modifiers(btf, btf__type_by_id(btf, t->type));
		return t && btf_is_struct(t) && named(btf, t, arg->type);
	case PROBE_ARG_ENUM:
		return (btf_is_enum(t) || btf_is_enum64(t)) && named(btf, t, arg->type);
	case PROBE_ARG_SCALAR:
		return btf_is_int(t) || btf_is_enum(t) || btf_is_enum64(t);
	case PROBE_ARG_ABSENT:
	case PROBE_ARG_RECORD_FIELD:
	case PROBE_ARG_FUNCTION: /* probe.c asks has_btf_function */
	case PROBE_ARG_END:
		break;
	}
	return false;
}

/*
 * Raw BTF parsed straight from a mapping of the file: the kernel's own
 * (/sys/kernel/btf/vmlinux can be mapped since 6.16) is then not read 4 KiB a
 * call into a buffer that btf__new() copies again — 1.3 ms instead of about
 * 6. NULL with errno when the file cannot be mapped or is not raw BTF (an
 * ELF file): the caller reads it the usual way.
 */
static struct btf *btf_from_mapping(const char *path)
{
	struct btf *btf = NULL;
	struct stat st;
	void *data;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || st.st_size < 4) {
		err = EINVAL;
		goto out;
	}
	data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (data == MAP_FAILED) {
		err = errno;
		goto out;
	}
	/* the magic is 0xeB9F in the file's byte order; anything else is for btf__parse() */
	if (*(const uint16_t *)data == 0xeB9F || *(const uint16_t *)data == 0x9FeB) {
		btf = btf__new(data, (uint32_t)st.st_size);
		err = btf ? 0 : errno;
	} else {
		err = ENOEXEC;
	}
	munmap(data, (size_t)st.st_size);
out:
	close(fd);
	errno = err;
	return btf;
}

int kernel_features_open(struct kernel_features *kf, const char *btf_path)
{
	struct btf *btf;

	btf = btf_from_mapping(btf_path ? btf_path : "/sys/kernel/btf/vmlinux");
	if (!btf)
		btf = btf_path ? btf__parse(btf_path, NULL) : btf__load_vmlinux_btf();
	if (!btf)
		return neg_errno_or(ENOENT);
	kernel_features_from_btf(kf, btf);
	btf_index_use(btf);
	return 0;
}

void kernel_features_from_btf(struct kernel_features *kf, struct btf *btf)
{
	*kf = (struct kernel_features){
		.ctx = btf,
		.has_btf_tracepoint = has_btf_tracepoint,
		.has_tracefs_event = has_tracefs_event,
		.has_btf_function = has_btf_function,
		.btf_arg_matches = btf_arg_matches,
		.has_module_btf = has_module_btf,
		.has_cgroup2_root = has_cgroup2_root,
	};
}

void kernel_features_close(struct kernel_features *kf)
{
	btf_index_forget(kf->ctx);
	btf__free(kf->ctx);
	kf->ctx = NULL;
}

const struct btf *kernel_features_btf(const struct kernel_features *kf)
{
	return kf->ctx;
}
