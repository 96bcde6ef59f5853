// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * oom: one record per OOM-killed task, with the victim's identity captured
 * while it still exists.
 *
 * Variants, best first (the loader attaches the first that works):
 *   tp_btf     tp_btf/mark_victim: the kernel hands us the victim task (6.9+,
 *              and stable kernels that took 72ba14deb40a, e.g. Debian's 6.1.170+)
 *   tracepoint tracepoint/oom/mark_victim + tracepoint/sched/sched_process_exit:
 *              the record is completed when the victim thread exits, because
 *              here current is the allocating task, not the victim
 *   kprobe     kprobe/oom_kill_process: oom_control gives the victim and the
 *              OOMing memcg (so memcg vs global is exact); kprobe/
 *              oom_kill_memcg_member for the rest of a memory.oom.group
 *
 * Every variant reports every process the kernel kills, a memory.oom.group
 * kill's included: mark_victim fires once per victim.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "oom.h"
#include "identity.bpf.h"
#include "ringbuf.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#ifndef EEXIST
#define EEXIST 17 /* vmlinux.h has no errno values */
#endif
#define SIGKILL 9

/* Set by the loader before load. */
const volatile __u64 page_size = 4096;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} oom_events SEC(".maps");

/*
 * tracepoint variant: records waiting for their victim to exit, by tid. A
 * plain hash, not an LRU one: an LRU map evicts a waiting record silently
 * (and, with per-CPU free lists, long before it is full), while a full hash
 * refuses the insert, which is counted as a lost record. User space may size
 * it before load (oom_configure); a memory.oom.group kill marks every task
 * of the group at once.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OOM_PENDING_MAX);
	__type(key, __u32);
	__type(value, struct oom_event);
} oom_pending SEC(".maps");

/*
 * Records in oom_pending, exactly: raised only by an insert of a new key,
 * lowered only by a delete that removed one. Lets every other task's exit
 * skip the lookup. The victim exits after mark_victim returns (the kernel
 * holds the victim's task_lock across it, and exit_mm() takes it), so the
 * raise is seen by the victim's exit.
 */
__u64 oom_pending_count = 0;

/*
 * tracepoint variant: what SIGKILLed tasks were at their exit, by tid. Since
 * sched_process_exit moved before exit_mm() (6.16, the tracepoint's
 * group_dead field came with it), a victim can run its exit before the OOM
 * killer's mark_victim fires; the mark then completes the record from here.
 * A cache of candidates: evicting one costs nothing unless its mark is
 * still to come, hundreds of kills later.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct oom_event);
} oom_killed_exits SEC(".maps");

/*
 * A full barrier (atomic read-modify-write) between a handler's write and
 * its read of the other's map: the mark writes oom_pending then reads
 * oom_killed_exits, the exit the other way round, so at least one of the two
 * sees the other's entry.
 */
__u64 oom_handoff_seq = 0;

/*
 * tracepoint variant: where each half of a record is built before it is
 * published. The other half's handler may read a published entry at any
 * moment from another CPU, so an entry goes into oom_pending or
 * oom_killed_exits only complete, never to be filled in place.
 */
enum { SCRATCH_MARK, SCRATCH_EXIT, SCRATCH_SLOTS };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SCRATCH_SLOTS);
	__type(key, __u32);
	__type(value, struct oom_event);
} oom_scratch SEC(".maps");

/* An empty record in @slot of this CPU's scratch (the named tail too), or NULL. */
static __always_inline struct oom_event *scratch_event(__u32 slot)
{
	struct oom_event *e = bpf_map_lookup_elem(&oom_scratch, &slot);

	if (!e)
		return NULL;
	/* kstack and cgroup names are read only as far as stack_size and depth say */
	__builtin_memset(e, 0, sizeof(struct oom_event) - sizeof(e->kstack) - sizeof(e->cgroup));
	e->cgroup.id = 0;
	e->cgroup.depth = 0;
	e->cgroup.truncated = 0;
	return e;
}

/* 6.2 turned mm_struct::rss_stat into percpu_counters (f1a7941243c1) */
struct mm_rss_stat___old {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));

struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));

/*
 * Pages of one rss counter. Both kinds can read below zero: the old atomics
 * lag behind per-task caches (SPLIT_RSS_COUNTING), a percpu_counter's count
 * is an approximate sum. get_mm_counter() clamps to 0; so must we, or the
 * record says 1.8e19 bytes.
 */
static __always_inline __u64 mm_counter_pages(struct mm_struct *mm, int member)
{
	__s64 pages;

	if (bpf_core_type_exists(struct mm_rss_stat___old))
		pages = BPF_CORE_READ((struct mm_struct___old *)mm, rss_stat.count[member].counter);
	else
		pages = BPF_CORE_READ(mm, rss_stat[member].count);
	return pages < 0 ? 0 : (__u64)pages;
}

static __always_inline void fill_mm(struct oom_event *e, struct mm_struct *mm)
{
	if (!mm)
		return;
	e->total_vm_bytes = BPF_CORE_READ(mm, total_vm) * page_size;
	e->anon_rss_bytes = mm_counter_pages(mm, MM_ANONPAGES) * page_size;
	e->file_rss_bytes = mm_counter_pages(mm, MM_FILEPAGES) * page_size;
	e->shmem_rss_bytes = mm_counter_pages(mm, MM_SHMEMPAGES) * page_size;
	e->flags |= OOM_HAS_RSS;
}

static __always_inline struct mem_cgroup *parent_memcg(struct mem_cgroup *memcg)
{
	/* css is the first member of mem_cgroup: the parent css is the parent memcg */
	return (struct mem_cgroup *)BPF_CORE_READ(memcg, css.parent);
}

/*
 * The limit the victim ran into: with @oom_memcg known (kprobe) that memcg's;
 * otherwise the tightest limit on the way from the victim's memcg to the root.
 */
static __always_inline void fill_memcg_limit(struct oom_event *e, struct mem_cgroup *memcg,
					     struct mem_cgroup *oom_memcg)
{
	/* PAGE_COUNTER_MAX is LONG_MAX / PAGE_SIZE: anything that large is "no limit" */
	__u64 unlimited = 0x7fffffffffffffffULL / page_size;
	__u64 best = unlimited, usage = 0, max;
	int i;

	if (oom_memcg)
		memcg = oom_memcg;
	for (i = 0; i < KSIGHT_CGROUP_DEPTH && memcg; i++) {
		max = BPF_CORE_READ(memcg, memory.max);
		if (max < best) {
			best = max;
			usage = BPF_CORE_READ(memcg, memory.usage.counter);
		}
		if (oom_memcg)
			break;
		memcg = parent_memcg(memcg);
	}
	if (best < unlimited) {
		e->memcg_limit_bytes = best * page_size;
		e->memcg_usage_bytes = usage * page_size;
	}
	e->flags |= OOM_HAS_MEMCG;
}

/* Everything that can be read from the victim task itself. */
static __always_inline void fill_from_task(struct oom_event *e, struct task_struct *task,
					   struct mem_cgroup *oom_memcg, bool want_mm, bool at_kill)
{
	int memory_id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct cgroup_subsys_state *css;

	e->pid = BPF_CORE_READ(task, tgid);
	e->tid = BPF_CORE_READ(task, pid);
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	e->uid = BPF_CORE_READ(task, cred, uid.val);
	e->oom_score_adj = BPF_CORE_READ(task, signal, oom_score_adj);
	e->flags |= OOM_HAS_UID | OOM_HAS_SCORE_ADJ;
	if (want_mm)
		fill_mm(e, BPF_CORE_READ(task, mm));

	e->cgroup.id = 0;
	e->cgroup.depth = 0;
	css = BPF_CORE_READ(task, cgroups, subsys[memory_id]);
	if (css) {
		capture_cgroup(BPF_CORE_READ(css, cgroup), &e->cgroup);
		e->flags |= OOM_HAS_CGROUP;
		fill_memcg_limit(e, (struct mem_cgroup *)css, oom_memcg);
		/* at exit the victim's memory is already freed: usage would mislead */
		if (at_kill)
			e->flags |= OOM_HAS_USAGE;
	}
}

/* The allocating task (current) and how we got here. */
static __always_inline void fill_trigger(struct oom_event *e, void *ctx)
{
	e->boot_ns = bpf_ktime_get_boot_ns();
	e->trigger_pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(&e->trigger_comm, sizeof(e->trigger_comm));
	/* the call chain tells memcg from global OOM when nothing else does */
	e->stack_size = bpf_get_stack(ctx, e->kstack, sizeof(e->kstack), 0);
}

/*
 * 6.9+: TRACE_EVENT(mark_victim, TP_PROTO(struct task_struct *task, uid_t uid))
 * (72ba14deb40a, also in some stable trees); before it passed only the pid,
 * see the tracepoint variant.
 * Called from __oom_kill_process() with the victim locked, right after SIGKILL.
 */
SEC("tp_btf/mark_victim")
int BPF_PROG(oom_mark_victim_btf, struct task_struct *task, uid_t uid)
{
	struct oom_event *e = ringbuf_reserve(&oom_events, struct oom_event);

	if (!e)
		return 0;
	/* kstack and cgroup names (the tail) are read only as far as filled */
	__builtin_memset(e, 0, sizeof(struct oom_event) - sizeof(e->kstack) - sizeof(e->cgroup));
	e->source = OOM_SOURCE_TP_BTF;
	fill_trigger(e, ctx);
	fill_from_task(e, task, NULL, true, true);
	ringbuf_submit(e);
	return 0;
}

/*
 * The victim is current: it ran into the OOM itself and was chosen, or was
 * already exiting. Its task is at hand, so the record is complete now.
 */
static __always_inline void emit_current_victim(void *ctx)
{
	struct oom_event *e = ringbuf_reserve(&oom_events, struct oom_event);

	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(struct oom_event) - sizeof(e->kstack) - sizeof(e->cgroup));
	e->source = OOM_SOURCE_TRACEPOINT;
	fill_trigger(e, ctx);
	fill_from_task(e, (struct task_struct *)bpf_get_current_task(), NULL, true, true);
	ringbuf_submit(e);
}

/* Remove @tid's record; true if this call removed it (and so lowered the count). */
static __always_inline bool pending_delete(__u32 *tid)
{
	if (bpf_map_delete_elem(&oom_pending, tid))
		return false;
	__sync_fetch_and_add(&oom_pending_count, -1);
	return true;
}

/*
 * @tid's victim already exited (oom_killed_exits has it): hand over its
 * record @e, the trigger's half from the mark, the victim's from its exit.
 */
static __always_inline void complete_from_exit(__u32 tid, struct oom_event *e)
{
	struct oom_event *k = bpf_map_lookup_elem(&oom_killed_exits, &tid);
	struct oom_event *rec;

	if (!k)
		return;
	/* one test of rec per path: 6.1's verifier follows a second one's impossible branch */
	rec = bpf_ringbuf_reserve(&oom_events, sizeof(*rec), 0);
	if (!rec) {
		bpf_map_delete_elem(&oom_killed_exits, &tid);
		if (pending_delete(&tid))
			ringbuf_count(KSIGHT_RB_LOST);
		return;
	}
	bpf_probe_read_kernel(rec, sizeof(*rec), k);
	rec->source = e->source;
	rec->boot_ns = e->boot_ns;
	rec->trigger_pid = e->trigger_pid;
	bpf_probe_read_kernel(rec->trigger_comm, sizeof(rec->trigger_comm), e->trigger_comm);
	rec->stack_size = e->stack_size;
	bpf_probe_read_kernel(rec->kstack, sizeof(rec->kstack), e->kstack);
	bpf_map_delete_elem(&oom_killed_exits, &tid);
	/* whoever deletes the record hands it over: once, whatever races */
	if (!pending_delete(&tid)) {
		bpf_ringbuf_discard(rec, 0);
		return;
	}
	ringbuf_submit(rec);
}

/*
 * struct trace_event_raw_mark_victim { ent; int pid; and since 6.9: __data_loc
 * comm; total_vm, anon_rss, file_rss, shmem_rss (kB); uid; pgtables; short
 * oom_score_adj }. Start the record; the victim's exit completes it.
 */
SEC("tracepoint/oom/mark_victim")
int oom_mark_victim_tp(struct trace_event_raw_mark_victim *ctx)
{
	__u32 tid = ctx->pid;
	struct oom_event *e;
	long err;

	if (tid == (__u32)bpf_get_current_pid_tgid()) {
		emit_current_victim(ctx);
		return 0;
	}
	e = scratch_event(SCRATCH_MARK);
	if (!e) {
		ringbuf_count(KSIGHT_RB_LOST);
		return 0;
	}
	e->source = OOM_SOURCE_TRACEPOINT;
	e->tid = tid;
	fill_trigger(e, ctx);
	if (bpf_core_field_exists(ctx->uid)) {
		__u32 comm_off = ctx->__data_loc_comm & 0xffff;

		bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), (void *)ctx + comm_off);
		e->total_vm_bytes = ctx->total_vm * 1024;
		e->anon_rss_bytes = ctx->anon_rss * 1024;
		e->file_rss_bytes = ctx->file_rss * 1024;
		e->shmem_rss_bytes = ctx->shmem_rss * 1024;
		e->uid = ctx->uid;
		e->oom_score_adj = ctx->oom_score_adj;
		e->flags |= OOM_HAS_RSS | OOM_HAS_UID | OOM_HAS_SCORE_ADJ;
	}
	err = bpf_map_update_elem(&oom_pending, &tid, e, BPF_NOEXIST);
	if (err == -EEXIST) {
		/*
		 * The same thread is never marked twice (TIF_MEMDIE), so this is a
		 * stale record: its victim's exit went unseen and the tid was reused.
		 * Replacing it loses it; if its deleter got there first, that one
		 * accounted for it.
		 */
		if (!bpf_map_update_elem(&oom_pending, &tid, e, BPF_EXIST)) {
			ringbuf_count(KSIGHT_RB_LOST);
			goto handoff;
		}
		err = bpf_map_update_elem(&oom_pending, &tid, e, BPF_NOEXIST);
	}
	if (err) {
		/* full: as many victims wait for their exit as the map holds */
		ringbuf_count(KSIGHT_RB_LOST);
		return 0;
	}
	__sync_fetch_and_add(&oom_pending_count, 1);
handoff:
	__sync_fetch_and_add(&oom_handoff_seq, 1);
	complete_from_exit(tid, e);
	return 0;
}

/* TRACE_EVENT(sched_process_exit, TP_PROTO(struct task_struct *p)): current is p. */
SEC("tracepoint/sched/sched_process_exit")
int oom_victim_exit_tp(struct trace_event_raw_sched_process_template *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct oom_event *e, *rec;
	bool had_rss, killed;

	/* an OOM kill is a SIGKILL: its victim's exit may come before its mark */
	killed = BPF_CORE_READ(task, signal, group_exit_code) == SIGKILL;
	if (killed) {
		e = scratch_event(SCRATCH_EXIT);
		if (e) {
			fill_from_task(e, task, NULL, true, false);
			if (!bpf_map_update_elem(&oom_killed_exits, &tid, e, BPF_ANY))
				__sync_fetch_and_add(&oom_handoff_seq, 1);
		}
	}
	if (!*(volatile __u64 *)&oom_pending_count)
		return 0;
	e = bpf_map_lookup_elem(&oom_pending, &tid);
	if (!e)
		return 0;
	if (killed)
		bpf_map_delete_elem(&oom_killed_exits, &tid);
	/*
	 * mark_oom_victim() set signal->oom_mm before the tracepoint, and it
	 * stays until the process is gone: without it this is another task that
	 * got a stale record's tid, and that record's victim was missed.
	 */
	if (!BPF_CORE_READ(task, signal, oom_mm)) {
		if (pending_delete(&tid))
			ringbuf_count(KSIGHT_RB_LOST);
		return 0;
	}
	/* copied out before the delete, which hands the element back for reuse */
	rec = bpf_ringbuf_reserve(&oom_events, sizeof(*rec), 0);
	if (!rec) {
		if (pending_delete(&tid))
			ringbuf_count(KSIGHT_RB_LOST);
		return 0;
	}
	bpf_probe_read_kernel(rec, sizeof(*rec), e);
	/* the mark's entry is read, never written: its handler may be reading it too */
	had_rss = rec->flags & OOM_HAS_RSS;
	fill_from_task(rec, task, NULL, !had_rss, false);
	/* whoever deletes the record hands it over: once, whatever races */
	if (!pending_delete(&tid)) {
		bpf_ringbuf_discard(rec, 0);
		return 0;
	}
	ringbuf_submit(rec);
	return 0;
}

/*
 * The OOM kill in progress, for its memory.oom.group members. oom_lock
 * serialises OOM kills, and the members are killed from inside
 * oom_kill_process() by the same task: a member probe that runs on the
 * task recorded here belongs to this kill.
 */
__u32 kill_trigger_tid = 0;
__u64 kill_oom_memcg = 0; /* oom_control::memcg: NULL for a global OOM */

/* A record for @victim, killed by the OOM killer on behalf of current. */
static __always_inline void emit_kprobe_victim(void *ctx, struct task_struct *victim, struct mem_cgroup *memcg,
					       __u8 constraint)
{
	struct oom_event *e = ringbuf_reserve(&oom_events, struct oom_event);

	if (!e)
		return;
	/* kstack and cgroup names (the tail) are read only as far as filled */
	__builtin_memset(e, 0, sizeof(struct oom_event) - sizeof(e->kstack) - sizeof(e->cgroup));
	e->source = OOM_SOURCE_KPROBE;
	e->constraint = constraint;
	fill_trigger(e, ctx);
	fill_from_task(e, victim, memcg, true, true);
	ringbuf_submit(e);
}

/* static void oom_kill_process(struct oom_control *oc, const char *message) */
SEC("kprobe/oom_kill_process")
int BPF_KPROBE(oom_kill_process_kprobe, struct oom_control *oc, const char *message)
{
	struct mem_cgroup *memcg = BPF_CORE_READ(oc, memcg);

	kill_oom_memcg = (__u64)memcg;
	kill_trigger_tid = (__u32)bpf_get_current_pid_tgid();
	emit_kprobe_victim(ctx, BPF_CORE_READ(oc, chosen), memcg,
			   memcg ? OOM_CONSTRAINT_MEMCG : OOM_CONSTRAINT_GLOBAL);
	return 0;
}

/*
 * static int oom_kill_memcg_member(struct task_struct *task, void *message):
 * memory.oom.group (4.19+; kubelet sets it on cgroup v2 since 1.28) kills
 * every process of the group from here, one call each, after the chosen one.
 * It is a callback (mem_cgroup_scan_tasks), so never inlined, unlike
 * __oom_kill_process on some builds.
 */
SEC("kprobe/oom_kill_memcg_member")
int BPF_KPROBE(oom_kill_member_kprobe, struct task_struct *task, void *message)
{
	struct mem_cgroup *memcg = NULL;
	__u8 constraint = OOM_CONSTRAINT_UNKNOWN;

	/* the kernel's own filter: OOM_SCORE_ADJ_MIN and the global init are spared */
	if (BPF_CORE_READ(task, signal, oom_score_adj) == -1000 || BPF_CORE_READ(task, tgid) == 1)
		return 0;
	/* already a victim: the chosen process (reported above), or one of an earlier kill */
	if (BPF_CORE_READ(task, signal, oom_mm))
		return 0;
	/* __oom_kill_process() skips a process that has no mm left: it is exiting anyway */
	if (!BPF_CORE_READ(task, mm))
		return 0;
	if ((__u32)bpf_get_current_pid_tgid() == kill_trigger_tid) {
		memcg = (struct mem_cgroup *)kill_oom_memcg;
		constraint = memcg ? OOM_CONSTRAINT_MEMCG : OOM_CONSTRAINT_GLOBAL;
	}
	emit_kprobe_victim(ctx, task, memcg, constraint);
	return 0;
}
