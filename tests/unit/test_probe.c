/* Probe selection against simulated kernels: which variants are candidates, and why not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include "probe.h"

/* A simulated kernel: what its BTF and tracefs have. */
struct fake_kernel {
	bool btf_mark_victim;
	bool mark_victim_passes_task; /* 6.9+ */
	bool tracefs_mark_victim;
	bool tracefs_sched_exit;
	bool btf_func_oom_kill_process;
	bool kfree_skb_reason;
	bool tcp_probe_skaddr; /* the tcp:tcp_probe record's skaddr (6.x) */
	bool iter_tcp;         /* bpf_iter_tcp (5.9+) */
	bool sock_from_file;   /* the bpf_sock_from_file helper (5.11+) */
};

static bool fk_btf_tp(void *ctx, const char *name)
{
	struct fake_kernel *k = ctx;

	return (!strcmp(name, "mark_victim") && k->btf_mark_victim) || !strcmp(name, "kfree_skb");
}

static bool fk_tracefs(void *ctx, const char *cat, const char *name)
{
	struct fake_kernel *k = ctx;

	if (!strcmp(cat, "oom") && !strcmp(name, "mark_victim"))
		return k->tracefs_mark_victim;
	if (!strcmp(cat, "sched") && !strcmp(name, "sched_process_exit"))
		return k->tracefs_sched_exit;
	if (!strcmp(cat, "tcp") && !strcmp(name, "tcp_probe"))
		return true;
	return false;
}

static bool fk_btf_func(void *ctx, const char *name)
{
	struct fake_kernel *k = ctx;

	return (!strcmp(name, "oom_kill_process") && k->btf_func_oom_kill_process) ||
	       (!strcmp(name, "bpf_iter_tcp") && k->iter_tcp) || !strcmp(name, "bpf_iter_task_file") ||
	       (!strcmp(name, "bpf_sock_from_file") && k->sock_from_file);
}

static bool fk_arg_matches(void *ctx, const char *section, const struct probe_arg *arg)
{
	struct fake_kernel *k = ctx;

	if (arg->kind == PROBE_ARG_RECORD_FIELD)
		return !strcmp(arg->type, "trace_event_raw_tcp_probe") && !strcmp(arg->field, "skaddr") &&
		       k->tcp_probe_skaddr;
	if (!strcmp(section, "tp_btf/kfree_skb"))
		/* (skb, location, reason): an enum from 5.17 when the kernel has reasons */
		return arg->index == 2 && arg->kind == PROBE_ARG_ENUM && !strcmp(arg->type, "skb_drop_reason") &&
		       k->kfree_skb_reason;
	return !strcmp(section, "tp_btf/mark_victim") && arg->index == 0 && arg->kind == PROBE_ARG_STRUCT_PTR &&
	       !strcmp(arg->type, "task_struct") && k->mark_victim_passes_task;
}

static const char *sections(void *ctx, const char *program)
{
	static const char *const map[][2] = {
		{ "victim_btf", "tp_btf/mark_victim" },
		{ "victim_tp", "tracepoint/oom/mark_victim" },
		{ "exit_tp", "tracepoint/sched/sched_process_exit" },
		{ "kill_kprobe", "kprobe/oom_kill_process" },
		{ "kill_fentry", "fentry/oom_kill_process" },
		{ "drop_btf", "tp_btf/kfree_skb" },
		{ "probe_tp", "tracepoint/tcp/tcp_probe" },
		{ "owners_iter", "iter/task_file" },
		{ "adopt_iter", "iter/tcp" },
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i][0], program))
			return map[i][1];
	return NULL;
}

static const struct probe_variant variants[] = {
	{ .name = "tp_btf", .programs = { "victim_btf" },
	  .args = { { "victim_btf", 0, PROBE_ARG_STRUCT_PTR, "task_struct", "passes only a pid" } } },
	{ .name = "tracepoint", .programs = { "victim_tp", "exit_tp" } },
	{ .name = "fentry", .programs = { "kill_fentry" } },
	{ .name = "kprobe", .programs = { "kill_kprobe" } },
	{ .name = "broken", .programs = { "no_such_program" } },
};

static const struct probe_point point = { "mark_victim", variants, 5 };

static int plan(struct fake_kernel *k, const char *only, struct point_status *st)
{
	struct kernel_features kf = { k, fk_btf_tp, fk_tracefs, fk_btf_func, fk_arg_matches, NULL, NULL };

	return probe_plan(&point, &kf, sections, NULL, only, st);
}

static void test_modern_kernel_all_candidates(void **state)
{
	struct fake_kernel k = { true, true, true, true, true, false, false, false, false };
	struct point_status st;

	assert_int_equal(plan(&k, NULL, &st), 4);
	assert_int_equal(st.attached, -1);
	assert_int_equal(st.variants[0].state, VARIANT_CANDIDATE);
	assert_int_equal(st.variants[1].state, VARIANT_CANDIDATE);
	assert_int_equal(st.variants[2].state, VARIANT_CANDIDATE);
	assert_int_equal(st.variants[3].state, VARIANT_CANDIDATE);
	assert_int_equal(st.variants[4].state, VARIANT_UNSUPPORTED);
	assert_non_null(strstr(st.variants[4].reason, "missing from the BPF object"));
}

static void test_old_mark_victim_rules_out_tp_btf(void **state)
{
	struct fake_kernel k = { .btf_mark_victim = true, .mark_victim_passes_task = false,
				 .tracefs_mark_victim = true, .tracefs_sched_exit = true };
	struct point_status st;

	assert_int_equal(plan(&k, NULL, &st), 2); /* tracepoint, kprobe */
	assert_int_equal(st.variants[0].state, VARIANT_UNSUPPORTED);
	assert_string_equal(st.variants[0].reason, "passes only a pid");
	assert_int_equal(st.variants[1].state, VARIANT_CANDIDATE);
	assert_int_equal(st.variants[2].state, VARIANT_UNSUPPORTED); /* no BTF function */
	assert_non_null(strstr(st.variants[2].reason, "oom_kill_process is not in this kernel's BTF"));
	assert_int_equal(st.variants[3].state, VARIANT_CANDIDATE);
}

static void test_no_btf_tracepoint(void **state)
{
	struct fake_kernel k = { .tracefs_mark_victim = true, .tracefs_sched_exit = true };
	struct point_status st;

	plan(&k, NULL, &st);
	assert_int_equal(st.variants[0].state, VARIANT_UNSUPPORTED);
	assert_string_equal(st.variants[0].reason, "this kernel's BTF has no tracepoint mark_victim");
}

static void test_companion_program_must_exist_too(void **state)
{
	/* mark_victim in tracefs but the exit tracepoint missing: the variant is out */
	struct fake_kernel k = { .tracefs_mark_victim = true, .tracefs_sched_exit = false };
	struct point_status st;

	plan(&k, NULL, &st);
	assert_int_equal(st.variants[1].state, VARIANT_UNSUPPORTED);
	assert_string_equal(st.variants[1].reason,
			    "tracepoint sched/sched_process_exit is not in tracefs on this kernel");
}

static void test_kprobe_is_decided_by_trying(void **state)
{
	/* a kernel with nothing at all: kprobe still stays a candidate until attach says no */
	struct fake_kernel k = { 0 };
	struct point_status st;

	assert_int_equal(plan(&k, NULL, &st), 1);
	assert_int_equal(st.variants[3].state, VARIANT_CANDIDATE);
}

static void test_only_one_variant(void **state)
{
	struct fake_kernel k = { true, true, true, true, true, false, false, false, false };
	struct point_status st;

	assert_int_equal(plan(&k, "tracepoint", &st), 1);
	assert_int_equal(st.variants[0].state, VARIANT_DISABLED);
	assert_string_equal(st.variants[0].reason, "not selected (--probe mark_victim=tracepoint)");
	assert_int_equal(st.variants[1].state, VARIANT_CANDIDATE);
	assert_int_equal(st.variants[3].state, VARIANT_DISABLED);
}

static void test_program_in_state(void **state)
{
	struct fake_kernel k = { .tracefs_mark_victim = true, .tracefs_sched_exit = true };
	struct point_status st;

	plan(&k, NULL, &st);
	assert_true(probe_program_in_state(&point, &st, "exit_tp", VARIANT_CANDIDATE));
	assert_false(probe_program_in_state(&point, &st, "victim_btf", VARIANT_CANDIDATE));
	assert_true(probe_program_in_state(&point, &st, "victim_btf", VARIANT_UNSUPPORTED));
}

static void test_check_section_forms(void **state)
{
	struct fake_kernel k = { true, true, true, true, true, false, false, false, false };
	struct kernel_features kf = { &k, fk_btf_tp, fk_tracefs, fk_btf_func, fk_arg_matches, NULL, NULL };
	char why[128];

	assert_int_equal(probe_check_section("tp/oom/mark_victim", &kf, why, sizeof(why)), 0);
	assert_int_equal(probe_check_section("raw_tp/mark_victim", &kf, why, sizeof(why)), 0);
	assert_int_equal(probe_check_section("fexit/oom_kill_process", &kf, why, sizeof(why)), 0);
	assert_int_equal(probe_check_section("kretprobe/anything", &kf, why, sizeof(why)), 0);
	assert_int_equal(probe_check_section("tracepoint/noslash", &kf, why, sizeof(why)), -EINVAL);
	assert_int_equal(probe_check_section("xdp", &kf, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "unknown program type in section xdp");
}

/* Every program of a variant is checked, not only the first: here the second one's argument differs. */
static const struct probe_variant pair_variants[] = {
	{ .name = "tp_btf", .programs = { "victim_btf", "drop_btf" },
	  .args = { { "victim_btf", 0, PROBE_ARG_STRUCT_PTR, "task_struct", "passes only a pid" },
		    { "drop_btf", 2, PROBE_ARG_ENUM, "skb_drop_reason", "no drop reasons (before 5.17)" } } },
	{ .name = "kprobe", .programs = { "kill_kprobe" } },
};

static const struct probe_point pair_point = { "pair", pair_variants, 2 };

static void test_every_program_checked(void **state)
{
	struct fake_kernel k = { .btf_mark_victim = true, .mark_victim_passes_task = true };
	struct kernel_features kf = { &k, fk_btf_tp, fk_tracefs, fk_btf_func, fk_arg_matches, NULL, NULL };
	struct point_status st;

	assert_int_equal(probe_plan(&pair_point, &kf, sections, NULL, NULL, &st), 1);
	assert_int_equal(st.variants[0].state, VARIANT_UNSUPPORTED);
	assert_string_equal(st.variants[0].reason, "no drop reasons (before 5.17)");
	k.kfree_skb_reason = true;
	assert_int_equal(probe_plan(&pair_point, &kf, sections, NULL, NULL, &st), 2);
	assert_int_equal(st.variants[0].state, VARIANT_CANDIDATE);
}

/* An argument check on a program that is not a BTF hook is a mistake in the table, said so. */
static const struct probe_variant misplaced_variants[] = {
	{ .name = "tracepoint", .programs = { "victim_tp" },
	  .args = { { "victim_tp", 0, PROBE_ARG_SCALAR, NULL, NULL } } },
};

static void test_args_need_a_btf_hook(void **state)
{
	struct fake_kernel k = { .tracefs_mark_victim = true };
	struct kernel_features kf = { &k, fk_btf_tp, fk_tracefs, fk_btf_func, fk_arg_matches, NULL, NULL };
	const struct probe_point pt = { "misplaced", misplaced_variants, 1 };
	struct point_status st;

	assert_int_equal(probe_plan(&pt, &kf, sections, NULL, NULL, &st), 0);
	assert_non_null(strstr(st.variants[0].reason, "need a BTF hook"));
}

/* A tracepoint/ program may check its record's fields: a field the kernel's record lacks rules it out. */
static const struct probe_variant record_variants[] = {
	{ .name = "tracepoint", .programs = { "probe_tp" },
	  .args = { { "probe_tp", 0, PROBE_ARG_RECORD_FIELD, "trace_event_raw_tcp_probe", "no skaddr before 6.2",
		      "skaddr" } } },
};

static void test_record_field(void **state)
{
	struct fake_kernel k = { 0 };
	struct kernel_features kf = { &k, fk_btf_tp, fk_tracefs, fk_btf_func, fk_arg_matches, NULL, NULL };
	const struct probe_point pt = { "rtt", record_variants, 1 };
	struct point_status st;

	assert_int_equal(probe_plan(&pt, &kf, sections, NULL, NULL, &st), 0);
	assert_int_equal(st.variants[0].state, VARIANT_UNSUPPORTED);
	assert_string_equal(st.variants[0].reason, "no skaddr before 6.2");
	k.tcp_probe_skaddr = true;
	assert_int_equal(probe_plan(&pt, &kf, sections, NULL, NULL, &st), 1);
	assert_int_equal(st.variants[0].state, VARIANT_CANDIDATE);
}

static void test_state_names(void **state)
{
	assert_string_equal(variant_state_name(VARIANT_ATTACHED), "attached");
	assert_string_equal(variant_state_name(VARIANT_ATTACH_FAILED), "attach_failed");
	assert_string_equal(variant_state_name(VARIANT_LOAD_FAILED), "load_failed");
	assert_string_equal(variant_state_name(VARIANT_UNSUPPORTED), "unsupported");
}

static bool no_cgroup2(void *ctx)
{
	return false;
}

static bool with_cgroup2(void *ctx)
{
	return true;
}

/* sockops programs need cgroup v2's root; a simulated kernel without the callback has it. */
static void test_sockops_needs_cgroup2_root(void **state)
{
	struct fake_kernel k = { 0 };
	struct kernel_features kf = { &k, fk_btf_tp, fk_tracefs, fk_btf_func, fk_arg_matches, NULL, NULL };
	char why[PROBE_REASON_LEN] = "";

	assert_int_equal(probe_check_section("sockops", &kf, why, sizeof(why)), 0);
	kf.has_cgroup2_root = with_cgroup2;
	assert_int_equal(probe_check_section("sockops", &kf, why, sizeof(why)), 0);
	kf.has_cgroup2_root = no_cgroup2;
	assert_int_equal(probe_check_section("sockops", &kf, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "cgroup v2 root"));
	assert_non_null(strstr(why, "hostPath"));
	/* the exact section only */
	assert_int_equal(probe_check_section("sockops/x", &kf, why, sizeof(why)), -EINVAL);
}

/* A variant tied to another point's sockops one goes where sockops goes, with its own reason. */
static void test_with_sockops(void **state)
{
	static const struct probe_variant tied[] = {
		{ .name = "segment", .programs = { "drop_btf" }, .with_sockops = "needs the sockops send" },
		{ .name = "tracepoint", .programs = { "probe_tp" } },
	};
	static const struct probe_point p = { "recv", tied, 2 };
	struct fake_kernel k = { 0 };
	struct kernel_features kf = { &k, fk_btf_tp, fk_tracefs, fk_btf_func, fk_arg_matches, NULL, NULL };
	struct point_status st;

	assert_int_equal(probe_plan(&p, &kf, sections, NULL, NULL, &st), 2);
	assert_int_equal(st.variants[0].state, VARIANT_CANDIDATE);
	kf.has_cgroup2_root = no_cgroup2;
	assert_int_equal(probe_plan(&p, &kf, sections, NULL, NULL, &st), 1);
	assert_int_equal(st.variants[0].state, VARIANT_UNSUPPORTED);
	assert_non_null(strstr(st.variants[0].reason, "needs the sockops send: "));
	assert_non_null(strstr(st.variants[0].reason, "cgroup v2 root"));
	assert_int_equal(st.variants[1].state, VARIANT_CANDIDATE);
	kf.has_cgroup2_root = with_cgroup2;
	assert_int_equal(probe_plan(&p, &kf, sections, NULL, NULL, &st), 2);
}

/* iter/X needs the kernel's iterator target bpf_iter_X; a function check applies to any section. */
static void test_iterators_and_functions(void **state)
{
	static const struct probe_variant iters[] = {
		{ .name = "iter", .programs = { "owners_iter", "adopt_iter" },
		  .args = { { .program = "owners_iter", .kind = PROBE_ARG_FUNCTION, .type = "bpf_sock_from_file",
			      .missing = "no bpf_sock_from_file before 5.11" } } },
	};
	static const struct probe_point p = { "adopt", iters, 1 };
	struct fake_kernel k = { 0 };
	struct kernel_features kf = { &k, fk_btf_tp, fk_tracefs, fk_btf_func, fk_arg_matches, NULL, NULL };
	char why[PROBE_REASON_LEN] = "";
	struct point_status st;

	assert_int_equal(probe_check_section("iter/task_file", &kf, why, sizeof(why)), 0);
	assert_int_equal(probe_check_section("iter/tcp", &kf, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "no BPF iterator tcp"));
	assert_non_null(strstr(why, "bpf_iter_tcp"));
	k.sock_from_file = true;
	assert_int_equal(probe_plan(&p, &kf, sections, NULL, NULL, &st), 0);
	assert_non_null(strstr(st.variants[0].reason, "bpf_iter_tcp"));
	k.iter_tcp = true;
	k.sock_from_file = false;
	assert_int_equal(probe_plan(&p, &kf, sections, NULL, NULL, &st), 0);
	assert_string_equal(st.variants[0].reason, "no bpf_sock_from_file before 5.11");
	k.sock_from_file = true;
	assert_int_equal(probe_plan(&p, &kf, sections, NULL, NULL, &st), 1);
	assert_int_equal(st.variants[0].state, VARIANT_CANDIDATE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_modern_kernel_all_candidates),
		cmocka_unit_test(test_old_mark_victim_rules_out_tp_btf),
		cmocka_unit_test(test_no_btf_tracepoint),
		cmocka_unit_test(test_companion_program_must_exist_too),
		cmocka_unit_test(test_kprobe_is_decided_by_trying),
		cmocka_unit_test(test_only_one_variant),
		cmocka_unit_test(test_program_in_state),
		cmocka_unit_test(test_check_section_forms),
		cmocka_unit_test(test_every_program_checked),
		cmocka_unit_test(test_args_need_a_btf_hook),
		cmocka_unit_test(test_record_field),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_sockops_needs_cgroup2_root),
		cmocka_unit_test(test_with_sockops),
		cmocka_unit_test(test_iterators_and_functions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
