/* oom's user half: constraint from the call chain, kallsyms ranges, a record -> JSON line and metrics. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <json-c/json.h>
#include <linux/types.h>

#include "agent.h"
#include "event.h"
#include "ksyms.h"
#include "metrics.h"
#include "oom.h"
#include "oom_signal.h"
#include "signal_def.h"
#include "unit_helpers.h"

extern const struct signal_def oom_signal;

static const char kallsyms[] =
	"ffffffff81595b90 t mark_oom_victim\n"
	"ffffffff81597ce0 T out_of_memory\n"
	"ffffffff815981f0 T pagefault_out_of_memory\n"
	"ffffffff8168bab0 t mem_cgroup_out_of_memory\n"
	"ffffffff8168bc00 t mem_cgroup_oom_synchronize\n"
	"ffffffffc0001000 t some_module_fn\t[mod]\n";

static void test_ksyms_ranges(void **state)
{
	const char *names[] = { "mem_cgroup_out_of_memory", "out_of_memory", "not_there" };
	struct ksym_range r[3];
	char *path = write_tmp(kallsyms);

	assert_int_equal(ksyms_find(path, names, 3, r), 2);
	assert_int_equal(r[0].start, 0xffffffff8168bab0ULL);
	assert_int_equal(r[0].end, 0xffffffff8168bc00ULL);
	assert_int_equal(r[1].start, 0xffffffff81597ce0ULL);
	assert_int_equal(r[1].end, 0xffffffff815981f0ULL);
	assert_int_equal(r[2].start, 0);
	assert_true(ksym_range_contains(&r[0], 0xffffffff8168bab0ULL));
	assert_true(ksym_range_contains(&r[0], 0xffffffff8168bbffULL));
	assert_false(ksym_range_contains(&r[0], 0xffffffff8168bc00ULL));
	assert_false(ksym_range_contains(&r[2], 0));
	unlink(path);
	assert_int_equal(ksyms_find("/nonexistent/kallsyms", names, 3, r), -ENOENT);
}

static void test_ksyms_hidden_addresses(void **state)
{
	/* kptr_restrict: every address reads 0, nothing is found */
	const char *names[] = { "out_of_memory" };
	struct ksym_range r[1];
	char *path = write_tmp("0000000000000000 T out_of_memory\n0000000000000000 T next\n");

	assert_int_equal(ksyms_find(path, names, 1, r), 0);
	assert_int_equal(r[0].start, 0);
	unlink(path);
}

static const struct ksym_range ranges[OOM_KSYM_NR] = {
	[OOM_KSYM_MEMCG] = { 0x2000, 0x2100 },
	[OOM_KSYM_GLOBAL] = { 0x1000, 0x1100 },
};

static void test_classify(void **state)
{
	const __u64 memcg_chain[] = { 0x500, 0x1050, 0x2010, 0x9000 }; /* ... out_of_memory, mem_cgroup_out_of_memory */
	const __u64 global_chain[] = { 0x500, 0x1050, 0x9000 };
	const __u64 neither[] = { 0x500, 0x9000 };
	const struct ksym_range hidden[OOM_KSYM_NR] = { { 0, 0 }, { 0, 0 } };

	assert_int_equal(oom_classify_stack(memcg_chain, 4, ranges), OOM_CONSTRAINT_MEMCG);
	assert_int_equal(oom_classify_stack(global_chain, 3, ranges), OOM_CONSTRAINT_GLOBAL);
	assert_int_equal(oom_classify_stack(neither, 2, ranges), OOM_CONSTRAINT_UNKNOWN);
	assert_int_equal(oom_classify_stack(memcg_chain, 0, ranges), OOM_CONSTRAINT_UNKNOWN);
	assert_int_equal(oom_classify_stack(memcg_chain, 4, hidden), OOM_CONSTRAINT_UNKNOWN);
	/* range ends are exclusive */
	{
		const __u64 edge[] = { 0x2100, 0x1100 };

		assert_int_equal(oom_classify_stack(edge, 2, ranges), OOM_CONSTRAINT_UNKNOWN);
	}
	assert_string_equal(oom_constraint_name(OOM_CONSTRAINT_MEMCG), "memcg");
	assert_string_equal(oom_constraint_name(OOM_CONSTRAINT_GLOBAL), "global");
	assert_string_equal(oom_constraint_name(7), "unknown");
}

static void put_name(struct oom_event *e, int level, const char *name)
{
	snprintf(e->cgroup.names[level], KSIGHT_CGROUP_NAME_LEN, "%s", name);
}

/* Run one record through the signal with stdout captured; returns the line printed. */
static char *handle(struct signal_runtime *rt, const struct oom_event *e)
{
	return handle_record(rt, e, sizeof(*e));
}

static int64_t fixed_offset(void)
{
	return 1700000000LL * 1000000000;
}

static void test_record_to_json_and_metrics(void **state)
{
	struct agent_config cfg = { .mode = MODE_TRACE, .format = OUTPUT_JSON };
	struct agent agent = { .cfg = &cfg, .trace = true, .node = "node-1", .boot_to_wall_ns = fixed_offset };
	struct signal_runtime rt = { .def = &oom_signal, .agent = &agent };
	struct oom_event *e = calloc(1, sizeof(*e));
	json_object *obj, *v;
	char *line;
	const char *labels[5] = { "", "", "", "/kubepods/burstable/pod6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab/"
				  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "memcg" };

	agent.metrics = metrics_registry_new(0);
	assert_int_equal(oom_signal.init(&rt), 0);

	e->boot_ns = 5 * 1000000000ULL + 123456789;
	e->pid = 4242;
	e->tid = 4243;
	e->uid = 1000;
	e->trigger_pid = 4242;
	e->total_vm_bytes = 100 << 20;
	e->anon_rss_bytes = 60 << 20;
	e->file_rss_bytes = 1 << 20;
	e->shmem_rss_bytes = 0;
	e->memcg_limit_bytes = 64 << 20;
	e->memcg_usage_bytes = 63 << 20;
	e->oom_score_adj = 999;
	e->constraint = OOM_CONSTRAINT_MEMCG;
	e->source = OOM_SOURCE_KPROBE;
	e->flags = OOM_HAS_RSS | OOM_HAS_UID | OOM_HAS_SCORE_ADJ | OOM_HAS_MEMCG | OOM_HAS_CGROUP | OOM_HAS_USAGE;
	memcpy(e->comm, "memhog\"\\x", 9);
	memcpy(e->trigger_comm, "memhog", 6);
	e->cgroup.depth = 4;
	put_name(e, 0, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	put_name(e, 1, "pod6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab");
	put_name(e, 2, "burstable");
	put_name(e, 3, "kubepods");

	line = handle(&rt, e);
	obj = json_tokener_parse(line);
	assert_non_null(obj);
	assert_int_equal(strchr(line, '\n') - line, (long)strlen(line) - 1); /* one line */
#define STR(key) (json_object_object_get_ex(obj, key, &v) ? json_object_get_string(v) : "<missing>")
#define INT(key) (json_object_object_get_ex(obj, key, &v) ? json_object_get_int64(v) : -1)
	assert_string_equal(STR("time"), "2023-11-14T22:13:25.123456789Z");
	assert_string_equal(STR("signal"), "oom");
	assert_string_equal(STR("node"), "node-1");
	assert_int_equal(INT("pid"), 4242);
	assert_int_equal(INT("tid"), 4243);
	assert_string_equal(STR("comm"), "memhog\"\\x"); /* escaped by json-c, parsed back intact */
	assert_string_equal(STR("namespace"), "");
	assert_string_equal(STR("pod"), "");
	assert_string_equal(STR("container"), "");
	assert_string_equal(STR("pod_uid"), "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab");
	assert_string_equal(STR("container_id"), "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	assert_string_equal(STR("cgroup"), labels[3]);
	assert_int_equal(INT("uid"), 1000);
	assert_int_equal(INT("total_vm_bytes"), 100 << 20);
	assert_int_equal(INT("anon_rss_bytes"), 60 << 20);
	assert_int_equal(INT("file_rss_bytes"), 1 << 20);
	assert_int_equal(INT("shmem_rss_bytes"), 0);
	assert_int_equal(INT("oom_score_adj"), 999);
	assert_int_equal(INT("memcg_limit_bytes"), 64 << 20);
	assert_int_equal(INT("memcg_usage_bytes"), 63 << 20);
	assert_int_equal(INT("trigger_pid"), 4242);
	assert_string_equal(STR("trigger_comm"), "memhog");
	assert_string_equal(STR("constraint"), "memcg");
	json_object_put(obj);

	/* unknown facts are null, not zero */
	e->flags = OOM_HAS_CGROUP;
	e->constraint = OOM_CONSTRAINT_UNKNOWN;
	e->stack_size = 0;
	line = handle(&rt, e);
	obj = json_tokener_parse(line);
	assert_non_null(obj);
	assert_true(json_object_object_get_ex(obj, "memcg_limit_bytes", &v) && v == NULL);
	assert_true(json_object_object_get_ex(obj, "anon_rss_bytes", &v) && v == NULL);
	assert_true(json_object_object_get_ex(obj, "uid", &v) && v == NULL);
	assert_string_equal(STR("constraint"), "unknown");
	json_object_put(obj);

	{
		struct metric_family *fam = metrics_family(agent.metrics, "ksight_oom_kills_total", "x",
							   METRIC_COUNTER, (const char *const[]){ "namespace", "pod", "container", "cgroup", "constraint" },
							   5, NULL, 0);

		assert_true(metrics_value(fam, labels) == 1);
		labels[4] = "unknown";
		assert_true(metrics_value(fam, labels) == 1);
	}

	/* a short record is refused */
	assert_int_equal(oom_signal.handle_event(&rt, e, sizeof(*e) - 1), -EINVAL);
	oom_signal.fini(&rt);
	metrics_registry_free(agent.metrics);
	free(e);
}

#define FAKE_UID "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab"
#define FAKE_CID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* JSON field of one handled record. */
static char *handled_field(struct signal_runtime *rt, const struct oom_event *e, const char *key)
{
	static char out[1024];
	json_object *obj = json_tokener_parse(handle(rt, e)), *v;

	assert_non_null(obj);
	assert_true(json_object_object_get_ex(obj, key, &v));
	snprintf(out, sizeof(out), "%s", v ? json_object_get_string(v) : "null");
	json_object_put(obj);
	return out;
}

/*
 * A path deeper than the kernel side keeps: the names a record carries must
 * never attribute the kill to a pod when the real root end is missing.
 */
static void test_truncated_cgroup_attribution(void **state)
{
	struct agent_config cfg = { .mode = MODE_TRACE, .format = OUTPUT_JSON };
	struct agent agent = { .cfg = &cfg, .trace = true, .node = "n", .boot_to_wall_ns = fixed_offset };
	struct signal_runtime rt = { .def = &oom_signal, .agent = &agent };
	struct oom_event *e = calloc(1, sizeof(*e));
	/* /ksight-e2e/d1/d2/d3/d4/d5/kubepods/burstable/pod<uid>/<cid>: 10 deep */
	static const char *const deep[] = { FAKE_CID, "pod" FAKE_UID, "burstable", "kubepods",
					    "d5", "d4", "d3", "d2", "d1", "ksight-e2e" };
	int i;

	agent.metrics = metrics_registry_new(0);
	assert_int_equal(oom_signal.init(&rt), 0);
	e->flags = OOM_HAS_CGROUP;
	e->pid = 1;
	e->trigger_pid = 1;

	/* leaf-most 8 names, root end elided (too deep to reach the root) */
	e->cgroup.depth = KSIGHT_CGROUP_DEPTH;
	e->cgroup.truncated = KSIGHT_CGROUP_ROOT_ELIDED;
	for (i = 0; i < KSIGHT_CGROUP_DEPTH; i++)
		put_name(e, i, deep[i]);
	assert_string_equal(handled_field(&rt, e, "pod_uid"), "");
	assert_string_equal(handled_field(&rt, e, "container_id"), "");
	assert_string_equal(handled_field(&rt, e, "cgroup"),
			    "/.../d2/d3/d4/d5/kubepods/burstable/pod" FAKE_UID "/" FAKE_CID);

	/* root-most 8 names (what the kernel side captures): the real prefix decides */
	e->cgroup.truncated = KSIGHT_CGROUP_LEAF_ELIDED;
	for (i = 0; i < KSIGHT_CGROUP_DEPTH; i++)
		put_name(e, i, deep[i + 2]);
	assert_string_equal(handled_field(&rt, e, "pod_uid"), "");
	assert_string_equal(handled_field(&rt, e, "cgroup"),
			    "/ksight-e2e/d1/d2/d3/d4/d5/kubepods/burstable/...");

	/* a real pod whose container made nested cgroups keeps its attribution */
	{
		static const char *const nested[] = { "n3", "n2", "n1", FAKE_CID, "pod" FAKE_UID,
						      "burstable", "kubepods", "ksight-e2e" };

		for (i = 0; i < KSIGHT_CGROUP_DEPTH; i++)
			put_name(e, i, nested[i]);
		assert_string_equal(handled_field(&rt, e, "pod_uid"), FAKE_UID);
		assert_string_equal(handled_field(&rt, e, "container_id"), FAKE_CID);
		assert_string_equal(handled_field(&rt, e, "cgroup"),
				    "/ksight-e2e/kubepods/burstable/pod" FAKE_UID "/" FAKE_CID "/n1/n2/n3/...");
	}
	oom_signal.fini(&rt);
	metrics_registry_free(agent.metrics);
	free(e);
}

/*
 * Before 6.2 the rss counters are atomics that per-task caches feed late,
 * and percpu_counter sums are approximate: either can read below zero. The
 * kernel clamps (get_mm_counter); a record must never say 1.8e19 bytes.
 */
static void test_negative_rss_counters(void **state)
{
	struct agent_config cfg = { .mode = MODE_TRACE, .format = OUTPUT_JSON };
	struct agent agent = { .cfg = &cfg, .trace = true, .node = "n", .boot_to_wall_ns = fixed_offset };
	struct signal_runtime rt = { .def = &oom_signal, .agent = &agent };
	struct oom_event *e = calloc(1, sizeof(*e));
	struct event_common ev = { .comm = "memhog", .pid = 1, .namespace_ = "", .pod = "", .container = "" };
	char msg[1024];

	agent.metrics = metrics_registry_new(0);
	assert_int_equal(oom_signal.init(&rt), 0);
	e->flags = OOM_HAS_RSS;
	e->pid = 1;
	e->trigger_pid = 1;
	e->total_vm_bytes = 8 << 20;
	e->anon_rss_bytes = (__u64)(-3LL * 4096); /* a counter of -3 pages times the page size */
	e->file_rss_bytes = (__u64)-1LL;
	e->shmem_rss_bytes = 4096;
	assert_string_equal(handled_field(&rt, e, "anon_rss_bytes"), "0");
	assert_string_equal(handled_field(&rt, e, "file_rss_bytes"), "0");
	assert_string_equal(handled_field(&rt, e, "shmem_rss_bytes"), "4096");
	assert_string_equal(handled_field(&rt, e, "total_vm_bytes"), "8388608");
	/* the largest real value passes */
	e->anon_rss_bytes = 0x7fffffffffffffffULL;
	assert_string_equal(handled_field(&rt, e, "anon_rss_bytes"), "9223372036854775807");

	e->anon_rss_bytes = (__u64)(-3LL * 4096);
	event_set_cgroup(&ev, "/plain");
	oom_event_message(e, &ev, OOM_CONSTRAINT_UNKNOWN, msg, sizeof(msg));
	assert_string_equal(msg, "Process memhog (pid 1) in cgroup /plain was killed by the OOM killer; "
			    "rss anon 0B, file 0B, shmem 4.0KiB");
	oom_signal.fini(&rt);
	metrics_registry_free(agent.metrics);
	free(e);
}

static void test_event_message(void **state)
{
	struct oom_event *e = calloc(1, sizeof(*e));
	struct event_common ev = { .comm = "memhog", .pid = 42, .namespace_ = "", .pod = "", .container = "" };
	char msg[1024];

	e->pid = 42;
	e->trigger_pid = 42;
	e->anon_rss_bytes = 30 << 20;
	e->file_rss_bytes = 1 << 20;
	e->memcg_limit_bytes = 32 << 20;
	e->memcg_usage_bytes = 32 << 20;
	e->oom_score_adj = 1000;
	e->flags = OOM_HAS_RSS | OOM_HAS_SCORE_ADJ | OOM_HAS_MEMCG | OOM_HAS_USAGE;

	/* a named container */
	ev.container = "app";
	oom_event_message(e, &ev, OOM_CONSTRAINT_MEMCG, msg, sizeof(msg));
	assert_string_equal(msg, "Process memhog (pid 42) in container app was killed by the OOM killer: its memory "
			    "cgroup reached its limit of 32.0MiB (usage 32.0MiB); rss anon 30.0MiB, file 1.0MiB, "
			    "shmem 0B; oom_score_adj 1000");

	/* only the container id known; no usage (read after exit); another task allocated */
	ev.container = "";
	event_set_cgroup(&ev, "/kubepods/pod6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab/"
			 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	e->flags &= ~OOM_HAS_USAGE;
	e->trigger_pid = 7;
	memcpy(e->trigger_comm, "java", 4);
	oom_event_message(e, &ev, OOM_CONSTRAINT_MEMCG, msg, sizeof(msg));
	assert_string_equal(msg, "Process memhog (pid 42) in container 0123456789ab was killed by the OOM killer: "
			    "its memory cgroup reached its limit of 32.0MiB; rss anon 30.0MiB, file 1.0MiB, "
			    "shmem 0B; oom_score_adj 1000; the allocation that ran out was by java (pid 7)");

	/* a global OOM outside pods, nothing but the cgroup known */
	event_set_cgroup(&ev, "/system.slice/batch.service");
	e->flags = 0;
	e->trigger_pid = 42;
	oom_event_message(e, &ev, OOM_CONSTRAINT_GLOBAL, msg, sizeof(msg));
	assert_string_equal(msg, "Process memhog (pid 42) in cgroup /system.slice/batch.service was killed by the "
			    "OOM killer: the node ran out of memory");

	/* a tiny buffer truncates safely */
	oom_event_message(e, &ev, OOM_CONSTRAINT_GLOBAL, msg, 16);
	assert_string_equal(msg, "Process memhog ");
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ksyms_ranges),
		cmocka_unit_test(test_ksyms_hidden_addresses),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_record_to_json_and_metrics),
		cmocka_unit_test(test_event_message),
		cmocka_unit_test(test_truncated_cgroup_attribution),
		cmocka_unit_test(test_negative_rss_counters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
