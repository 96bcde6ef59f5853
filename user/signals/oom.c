/* oom: OOM kills -> ksight_oom_kills_total, trace lines (and, later, Kubernetes Events). */
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <linux/types.h>

#include "oom.skel.h"

#include "agent.h"
#include "event.h"
#include "k8s.h"
#include "metrics.h"
#include "oom.h"
#include "oom_signal.h"
#include "signal_def.h"

struct oom_state {
	struct metric_family *kills;
	bool ksyms_loaded;
	struct ksym_range ksyms[OOM_KSYM_NR];
};

/*
 * Reading /proc/kallsyms costs ~40 ms of kernel time, so it happens once the
 * agent is ready (warm_up), not on the way there. Hidden addresses (no
 * CAP_SYSLOG) leave the ranges empty: the constraint is then "unknown".
 */
static const struct ksym_range *oom_ksyms(struct oom_state *st)
{
	static const char *const names[OOM_KSYM_NR] = { "mem_cgroup_out_of_memory", "out_of_memory" };

	if (!st->ksyms_loaded) {
		ksyms_find("/proc/kallsyms", names, OOM_KSYM_NR, st->ksyms);
		st->ksyms_loaded = true;
	}
	return st->ksyms;
}

static const struct probe_variant mark_victim_variants[] = {
	{ .name = "tp_btf", .programs = { "oom_mark_victim_btf" },
	  /* 6.9: mark_victim passes the task, not only its pid (72ba14deb40a) */
	  .args = { { .program = "oom_mark_victim_btf", .index = 0, .kind = PROBE_ARG_STRUCT_PTR,
		      .type = "task_struct",
		      .missing = "this kernel's mark_victim passes only a pid (before 6.9, without its stable backport)" } } },
	{ .name = "tracepoint", .programs = { "oom_mark_victim_tp", "oom_victim_exit_tp" } },
	{ .name = "kprobe", .programs = { "oom_kill_process_kprobe", "oom_kill_member_kprobe" } },
};

static const struct probe_point oom_points[] = {
	{ .name = "mark_victim", .variants = mark_victim_variants,
	  .n_variants = sizeof(mark_victim_variants) / sizeof(mark_victim_variants[0]) },
};

__u64 oom_rss_bytes(__u64 raw)
{
	return raw > (__u64)INT64_MAX ? 0 : raw;
}

const char *oom_constraint_name(int constraint)
{
	switch (constraint) {
	case OOM_CONSTRAINT_MEMCG: return "memcg";
	case OOM_CONSTRAINT_GLOBAL: return "global";
	}
	return "unknown";
}

int oom_classify_stack(const __u64 *stack, int frames, const struct ksym_range ranges[OOM_KSYM_NR])
{
	bool in_oom = false;
	int i;

	for (i = 0; i < frames; i++) {
		if (ksym_range_contains(&ranges[OOM_KSYM_MEMCG], stack[i]))
			return OOM_CONSTRAINT_MEMCG;
		if (ksym_range_contains(&ranges[OOM_KSYM_GLOBAL], stack[i]))
			in_oom = true;
	}
	return in_oom ? OOM_CONSTRAINT_GLOBAL : OOM_CONSTRAINT_UNKNOWN;
}

void oom_event_message(const struct oom_event *e, const struct event_common *ev, int constraint,
		       char *out, size_t outlen)
{
	char anon[32], file[32], shmem[32], limit[32], usage[32];
	char who[320];
	size_t len;

	format_bytes(oom_rss_bytes(e->anon_rss_bytes), anon, sizeof(anon));
	format_bytes(oom_rss_bytes(e->file_rss_bytes), file, sizeof(file));
	format_bytes(oom_rss_bytes(e->shmem_rss_bytes), shmem, sizeof(shmem));
	format_bytes(e->memcg_limit_bytes, limit, sizeof(limit));
	format_bytes(e->memcg_usage_bytes, usage, sizeof(usage));
	if (ev->container && ev->container[0])
		snprintf(who, sizeof(who), " in container %s", ev->container);
	else if (ev->id.container_id[0])
		snprintf(who, sizeof(who), " in container %.12s", ev->id.container_id);
	else if (ev->id.pod_uid[0])
		snprintf(who, sizeof(who), " in pod %s", ev->id.pod_uid);
	else
		snprintf(who, sizeof(who), " in cgroup %s", ev->cgroup && ev->cgroup[0] ? ev->cgroup : "/");

	len = (size_t)snprintf(out, outlen, "Process %s (pid %u)%s was killed by the OOM killer", ev->comm,
			       ev->pid, who);
	if (len < outlen && constraint == OOM_CONSTRAINT_MEMCG && e->memcg_limit_bytes && (e->flags & OOM_HAS_USAGE))
		len += (size_t)snprintf(out + len, outlen - len, ": its memory cgroup reached its limit of %s (usage %s)",
					limit, usage);
	else if (len < outlen && constraint == OOM_CONSTRAINT_MEMCG && e->memcg_limit_bytes)
		len += (size_t)snprintf(out + len, outlen - len, ": its memory cgroup reached its limit of %s", limit);
	else if (len < outlen && constraint == OOM_CONSTRAINT_GLOBAL)
		len += (size_t)snprintf(out + len, outlen - len, ": the node ran out of memory");
	if (len < outlen && (e->flags & OOM_HAS_RSS))
		len += (size_t)snprintf(out + len, outlen - len, "; rss anon %s, file %s, shmem %s", anon, file, shmem);
	if (len < outlen && (e->flags & OOM_HAS_SCORE_ADJ))
		len += (size_t)snprintf(out + len, outlen - len, "; oom_score_adj %d", e->oom_score_adj);
	if (len < outlen && e->trigger_pid != e->pid)
		snprintf(out + len, outlen - len, "; the allocation that ran out was by %.16s (pid %u)",
			 e->trigger_comm, e->trigger_pid);
}

SIGNAL_SKELETON(oom)

/*
 * Tests only: a small oom_pending map, so that a memory.oom.group kill of a
 * few dozen processes overflows it and the loss accounting can be checked.
 */
#define OOM_PENDING_MAX_ENV "KSIGHT_TEST_OOM_PENDING_MAX"

static int oom_configure(struct signal_runtime *rt)
{
	const char *pending_max = getenv(OOM_PENDING_MAX_ENV);
	struct oom_bpf *skel = rt->skel;

	skel->rodata->page_size = (__u64)sysconf(_SC_PAGESIZE);
	if (pending_max && *pending_max) {
		char *end;
		unsigned long n = strtoul(pending_max, &end, 10);

		if (*end || n == 0 || n > OOM_PENDING_MAX)
			return -EINVAL;
		return bpf_map__set_max_entries(skel->maps.oom_pending, (__u32)n);
	}
	return 0;
}

static const char *const kill_labels[] = { "namespace", "pod", "container", "cgroup", "constraint" };

static int oom_init(struct signal_runtime *rt)
{
	struct oom_state *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	st->kills = metrics_family(rt->agent->metrics, "ksight_oom_kills_total",
				   "Processes killed by the kernel's OOM killer, by pod (or cgroup outside pods) and constraint.",
				   METRIC_COUNTER, kill_labels, 5, NULL, 0);
	if (!st->kills) {
		free(st);
		return -ENOMEM;
	}
	rt->priv = st;
	return 0;
}

static void oom_warm_up(struct signal_runtime *rt)
{
	oom_ksyms(rt->priv);
}

static void oom_fini(struct signal_runtime *rt)
{
	free(rt->priv);
	rt->priv = NULL;
}

static void add_u64_or_null(json_object *obj, const char *key, bool known, uint64_t v)
{
	json_object_object_add(obj, key, known ? json_object_new_int64((int64_t)v) : NULL);
}

static int oom_handle_event(struct signal_runtime *rt, const void *data, size_t size)
{
	const struct oom_event *e = data;
	struct oom_state *st = rt->priv;
	struct event_common ev = { .signal = "oom", .namespace_ = "", .pod = "", .container = "" };
	char path[KSIGHT_CGROUP_DEPTH * (KSIGHT_CGROUP_NAME_LEN + 1) + 8];
	char comm[KSIGHT_COMM_LEN + 1], trigger_comm[KSIGHT_COMM_LEN + 1];
	char details[256], rss[32], limit[32], message[1024];
	bool has_rss, has_memcg;
	int constraint;
	json_object *obj;

	if (size < sizeof(*e))
		return -EINVAL;
	has_rss = e->flags & OOM_HAS_RSS;
	has_memcg = (e->flags & OOM_HAS_MEMCG) && e->memcg_limit_bytes;
	snprintf(comm, sizeof(comm), "%.*s", KSIGHT_COMM_LEN, e->comm);
	snprintf(trigger_comm, sizeof(trigger_comm), "%.*s", KSIGHT_COMM_LEN, e->trigger_comm);
	if (e->flags & OOM_HAS_CGROUP)
		cgroup_path_from_kernel(&e->cgroup, path, sizeof(path));
	else
		path[0] = '\0';

	constraint = e->constraint;
	if (constraint == OOM_CONSTRAINT_UNKNOWN && e->stack_size > 0)
		constraint = oom_classify_stack(e->kstack, e->stack_size / (int)sizeof(__u64), oom_ksyms(st));

	ev.boot_ns = e->boot_ns;
	ev.pid = e->pid;
	ev.comm = comm;
	event_set_cgroup(&ev, path);
	k8s_resolve(rt->agent, &ev);

	{
		const char *labels[5] = { ev.namespace_, ev.pod, ev.container,
					  ev.pod[0] ? "" : path, oom_constraint_name(constraint) };

		metrics_counter_add(st->kills, labels, 1);
	}

	obj = event_json(rt->agent, &ev);
	json_object_object_add(obj, "tid", json_object_new_int64(e->tid));
	add_u64_or_null(obj, "uid", e->flags & OOM_HAS_UID, e->uid);
	add_u64_or_null(obj, "total_vm_bytes", has_rss, e->total_vm_bytes);
	add_u64_or_null(obj, "anon_rss_bytes", has_rss, oom_rss_bytes(e->anon_rss_bytes));
	add_u64_or_null(obj, "file_rss_bytes", has_rss, oom_rss_bytes(e->file_rss_bytes));
	add_u64_or_null(obj, "shmem_rss_bytes", has_rss, oom_rss_bytes(e->shmem_rss_bytes));
	json_object_object_add(obj, "oom_score_adj", e->flags & OOM_HAS_SCORE_ADJ ?
			       json_object_new_int(e->oom_score_adj) : NULL);
	add_u64_or_null(obj, "memcg_limit_bytes", has_memcg, e->memcg_limit_bytes);
	add_u64_or_null(obj, "memcg_usage_bytes", has_memcg && (e->flags & OOM_HAS_USAGE), e->memcg_usage_bytes);
	json_object_object_add(obj, "trigger_pid", json_object_new_int64(e->trigger_pid));
	event_json_add_string(obj, "trigger_comm", trigger_comm);
	event_json_add_string(obj, "constraint", oom_constraint_name(constraint));

	format_bytes(oom_rss_bytes(e->anon_rss_bytes) + oom_rss_bytes(e->file_rss_bytes) +
		     oom_rss_bytes(e->shmem_rss_bytes), rss, sizeof(rss));
	if (has_memcg)
		format_bytes(e->memcg_limit_bytes, limit, sizeof(limit));
	else
		snprintf(limit, sizeof(limit), "none");
	snprintf(details, sizeof(details), "%s rss=%s limit=%s trigger=%s(%u)",
		 oom_constraint_name(constraint), has_rss ? rss : "?", limit, trigger_comm, e->trigger_pid);
	event_emit(rt->agent, &ev, obj, details);

	oom_event_message(e, &ev, constraint, message, sizeof(message));
	/* key NULL: the container, by name once known (a held Event's too), else by ID */
	k8s_record(rt->agent, &ev, OOM_EVENT_REASON, message, NULL);
	return 0;
}

const struct signal_def oom_signal = {
	.name = "oom",
	.summary = "processes killed by the OOM killer: who, in which pod, how big, memcg or global",
	.points = oom_points,
	.n_points = sizeof(oom_points) / sizeof(oom_points[0]),
	.ringbuf_map = "oom_events",
	SIGNAL_SKELETON_FIELDS(oom),
	.configure = oom_configure,
	.init = oom_init,
	.handle_event = oom_handle_event,
	.warm_up = oom_warm_up,
	.fini = oom_fini,
};
