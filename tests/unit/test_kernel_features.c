/*
 * Unit tests for user/kernel/kernel_features.c on small BTF blobs built here
 * (libbpf's btf__add_*): what a hook's arguments are, the way the probe
 * planner asks. The shapes are the kernel's: tp_btf targets are typedef
 * btf_trace_<name> -> pointer -> FUNC_PROTO(void *__data, args...).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/btf.h>

#include "kernel_features.h"

struct ids {
	int u32, u64, voidp, skb, skbp, task, taskp, reason, reason64;
};

/* typedef btf_trace_<name> to a proto of (void *__data, params...) */
static void add_tracepoint(struct btf *btf, const struct ids *id, const char *name, const int *params, int n)
{
	char tname[128];
	int proto, ptr, i;

	proto = btf__add_func_proto(btf, 0);
	assert_true(proto > 0);
	assert_int_equal(btf__add_func_param(btf, "__data", id->voidp), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(btf__add_func_param(btf, "arg", params[i]), 0);
	ptr = btf__add_ptr(btf, proto);
	snprintf(tname, sizeof(tname), "btf_trace_%s", name);
	assert_true(btf__add_typedef(btf, tname, ptr) > 0);
}

static struct btf *small_kernel(bool reason_is_enum64, bool with_reason)
{
	int rec;
	struct btf *btf = btf__new_empty();
	struct ids id;
	int fn_proto, params[4];

	assert_non_null(btf);
	id.u32 = btf__add_int(btf, "unsigned int", 4, 0);
	id.u64 = btf__add_int(btf, "long long unsigned int", 8, 0);
	id.voidp = btf__add_ptr(btf, 0);
	id.skb = btf__add_struct(btf, "sk_buff", 0);
	id.skbp = btf__add_ptr(btf, id.skb);
	id.task = btf__add_struct(btf, "task_struct", 0);
	id.taskp = btf__add_ptr(btf, btf__add_const(btf, id.task));
	if (reason_is_enum64) {
		id.reason = btf__add_enum64(btf, "skb_drop_reason", 8, false);
		assert_int_equal(btf__add_enum64_value(btf, "SKB_DROP_REASON_NOT_SPECIFIED", 2), 0);
	} else {
		id.reason = btf__add_enum(btf, "skb_drop_reason", 4);
		assert_int_equal(btf__add_enum_value(btf, "SKB_DROP_REASON_NOT_SPECIFIED", 2), 0);
	}

	/* kfree_skb(skb, location[, reason]) */
	params[0] = id.skbp;
	params[1] = id.voidp;
	params[2] = id.reason;
	add_tracepoint(btf, &id, "kfree_skb", params, with_reason ? 3 : 2);
	/* mark_victim(task, uid) on 6.9+ */
	params[0] = id.taskp;
	params[1] = btf__add_typedef(btf, "uid_t", id.u32);
	add_tracepoint(btf, &id, "mark_victim", params, 2);

	/* a tracepoint's record, struct trace_event_raw_<event>: with skaddr on kernels that have it */
	rec = btf__add_struct(btf, "trace_event_raw_tcp_probe", with_reason ? 16 : 8);
	assert_true(rec > 0);
	assert_int_equal(btf__add_field(btf, "srtt", id.u32, 0, 0), 0);
	if (with_reason)
		assert_int_equal(btf__add_field(btf, "skaddr", id.voidp, 64, 0), 0);

	/* an fentry target: FUNC oom_kill_process(struct sk_buff *, u64) for the shape */
	fn_proto = btf__add_func_proto(btf, 0);
	assert_int_equal(btf__add_func_param(btf, "oc", id.skbp), 0);
	assert_int_equal(btf__add_func_param(btf, "n", id.u64), 0);
	assert_true(btf__add_func(btf, "oom_kill_process", BTF_FUNC_GLOBAL, fn_proto) > 0);
	return btf;
}

static bool matches(struct kernel_features *kf, const char *section, int index, enum probe_arg_kind kind,
		    const char *type)
{
	struct probe_arg arg = { .program = "p", .index = index, .kind = kind, .type = type };

	return kf->btf_arg_matches(kf->ctx, section, &arg);
}

static bool has_field(struct kernel_features *kf, const char *record, const char *field)
{
	struct probe_arg arg = { .program = "p", .kind = PROBE_ARG_RECORD_FIELD, .type = record, .field = field };

	return kf->btf_arg_matches(kf->ctx, "tracepoint/tcp/tcp_probe", &arg);
}

static void check_kernel(bool enum64)
{
	struct kernel_features kf;

	kernel_features_from_btf(&kf, small_kernel(enum64, true));
	assert_true(kf.has_btf_tracepoint(kf.ctx, "kfree_skb"));
	assert_false(kf.has_btf_tracepoint(kf.ctx, "kfree_skb_reason"));
	assert_true(matches(&kf, "tp_btf/kfree_skb", 0, PROBE_ARG_STRUCT_PTR, "sk_buff"));
	assert_false(matches(&kf, "tp_btf/kfree_skb", 0, PROBE_ARG_STRUCT_PTR, "task_struct"));
	assert_true(matches(&kf, "tp_btf/kfree_skb", 2, PROBE_ARG_ENUM, "skb_drop_reason"));
	assert_false(matches(&kf, "tp_btf/kfree_skb", 2, PROBE_ARG_ENUM, "other_enum"));
	assert_true(matches(&kf, "tp_btf/kfree_skb", 2, PROBE_ARG_SCALAR, NULL)); /* an enum is a scalar */
	assert_false(matches(&kf, "tp_btf/kfree_skb", 0, PROBE_ARG_SCALAR, NULL)); /* a pointer is not */
	assert_false(matches(&kf, "tp_btf/kfree_skb", 1, PROBE_ARG_ENUM, "skb_drop_reason"));
	assert_true(matches(&kf, "tp_btf/kfree_skb", 3, PROBE_ARG_ABSENT, NULL)); /* no rx_sk yet */
	assert_false(matches(&kf, "tp_btf/kfree_skb", 2, PROBE_ARG_ABSENT, NULL));
	/* through const and typedefs */
	assert_true(matches(&kf, "tp_btf/mark_victim", 0, PROBE_ARG_STRUCT_PTR, "task_struct"));
	assert_true(matches(&kf, "tp_btf/mark_victim", 1, PROBE_ARG_SCALAR, NULL));
	/* fentry: the FUNC's own parameters, no hidden first one */
	assert_true(matches(&kf, "fentry/oom_kill_process", 0, PROBE_ARG_STRUCT_PTR, "sk_buff"));
	assert_true(matches(&kf, "fentry/oom_kill_process", 1, PROBE_ARG_SCALAR, NULL));
	assert_true(matches(&kf, "fentry/oom_kill_process", 2, PROBE_ARG_ABSENT, NULL));
	/* hooks the kernel does not have match nothing */
	assert_false(matches(&kf, "tp_btf/no_such", 0, PROBE_ARG_ABSENT, NULL));
	assert_false(matches(&kf, "fentry/no_such", 0, PROBE_ARG_SCALAR, NULL));
	assert_false(matches(&kf, "tp_btf/kfree_skb", -1, PROBE_ARG_SCALAR, NULL));
	/* a tracepoint record's fields */
	assert_true(has_field(&kf, "trace_event_raw_tcp_probe", "skaddr"));
	assert_true(has_field(&kf, "trace_event_raw_tcp_probe", "srtt"));
	assert_false(has_field(&kf, "trace_event_raw_tcp_probe", "no_such"));
	assert_false(has_field(&kf, "trace_event_raw_no_such", "skaddr"));
	kernel_features_close(&kf);
}

static void test_enum_kernel(void **state)
{
	check_kernel(false);
}

static void test_enum64_kernel(void **state)
{
	check_kernel(true);
}

static void test_kernel_before_drop_reasons(void **state)
{
	struct kernel_features kf;

	kernel_features_from_btf(&kf, small_kernel(false, false));
	assert_false(matches(&kf, "tp_btf/kfree_skb", 2, PROBE_ARG_ENUM, "skb_drop_reason"));
	assert_true(matches(&kf, "tp_btf/kfree_skb", 2, PROBE_ARG_ABSENT, NULL));
	assert_false(has_field(&kf, "trace_event_raw_tcp_probe", "skaddr"));
	assert_true(has_field(&kf, "trace_event_raw_tcp_probe", "srtt"));
	kernel_features_close(&kf);
}

/* A --btf file: raw BTF is read from a mapping, anything else is refused with an error, never a crash. */
static void test_open_btf_file(void **state)
{
	struct btf *btf = small_kernel(false, true);
	char path[] = "/tmp/ksight-kf-XXXXXX";
	struct kernel_features kf;
	const void *raw;
	__u32 size;
	int fd;

	(void)state;
	raw = btf__raw_data(btf, &size);
	assert_non_null(raw);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, raw, size), (ssize_t)size);
	assert_int_equal(kernel_features_open(&kf, path), 0);
	assert_int_equal(btf__type_cnt(kernel_features_btf(&kf)), btf__type_cnt(btf));
	assert_true(matches(&kf, "tp_btf/kfree_skb", 2, PROBE_ARG_ENUM, "skb_drop_reason"));
	kernel_features_close(&kf);

	/* not BTF (and not ELF): an error */
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, "no BTF here at all", 18, 0), 18);
	assert_true(kernel_features_open(&kf, path) < 0);
	/* cut short after a valid header: an error */
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, raw, size / 2, 0), (ssize_t)(size / 2));
	assert_true(kernel_features_open(&kf, path) < 0);
	/* empty, and missing */
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_true(kernel_features_open(&kf, path) < 0);
	close(fd);
	unlink(path);
	assert_true(kernel_features_open(&kf, path) < 0);
	btf__free(btf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enum_kernel),
		cmocka_unit_test(test_enum64_kernel),
		cmocka_unit_test(test_kernel_before_drop_reasons),
		cmocka_unit_test(test_open_btf_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
