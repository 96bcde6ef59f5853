/* fserr's xfs points, attached once the xfs module (and with it its tracepoints) appears. */
#include "fserr_late.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <linux/types.h>

#include "fserr.skel.h"

#include "agent.h"
#include "fserr.h"
#include "kernel_features.h"
#include "log.h"
#include "util.h"

struct fserr_late {
	uint64_t last_try;
	bool tried;
	/* each late object holds the programs of the points it attached */
	struct fserr_bpf *skels[SIGNAL_MAX_POINTS];
	struct bpf_link *links[SIGNAL_MAX_POINTS][PROBE_MAX_PROGRAMS];
	int n_skels;
};

struct fserr_late *fserr_late_new(void)
{
	return calloc(1, sizeof(struct fserr_late));
}

static const char *section_of(void *ctx, const char *program)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(ctx, program);

	return prog ? bpf_program__section_name(prog) : NULL;
}

/* The variant of point p to attach now: the first whose tracepoints all exist, or -1. */
static int pick_variant(const struct signal_runtime *rt, size_t p, struct bpf_object *obj)
{
	const struct probe_point *pt = &rt->def->points[p];
	const struct kernel_features *kf = &rt->agent->kf;
	char why[PROBE_REASON_LEN];
	size_t v;
	int i;

	for (v = 0; v < pt->n_variants; v++) {
		bool ok = !probe_check_module_btf(&pt->variants[v], kf, why, sizeof(why));

		for (i = 0; ok && pt->variants[v].programs[i]; i++) {
			const char *section = section_of(obj, pt->variants[v].programs[i]);

			ok = section && !strncmp(section, "tracepoint/", 11) &&
			     !probe_check_section(section, kf, why, sizeof(why));
		}
		if (ok)
			return (int)v;
	}
	return -1;
}

/* Share every map of the running object (.rodata excepted: set again from the same values). */
static int reuse_maps(struct fserr_bpf *skel, const struct fserr_bpf *running)
{
	struct bpf_map *const pairs[][2] = {
		{ skel->maps.fserr_events, running->maps.fserr_events },
		{ skel->maps.fserr_counts, running->maps.fserr_counts },
		{ skel->maps.fserr_buckets, running->maps.fserr_buckets },
		{ skel->maps.fserr_stats, running->maps.fserr_stats },
		{ skel->maps.ksight_ringbuf_stats, running->maps.ksight_ringbuf_stats },
	};
	size_t i;
	int err;

	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		err = bpf_map__reuse_fd(pairs[i][0], bpf_map__fd(pairs[i][1]));
		if (err)
			return err;
	}
	skel->rodata->records_per_sec = running->rodata->records_per_sec;
	skel->rodata->records_burst = running->rodata->records_burst;
	return 0;
}

int fserr_late_attach(struct fserr_late *late, struct signal_runtime *rt, uint64_t now_ns)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .btf_custom_path = rt->agent->cfg ? rt->agent->cfg->btf_path : NULL);
	int chosen[SIGNAL_MAX_POINTS];
	char path[4096];
	struct bpf_program *prog;
	struct fserr_bpf *skel;
	size_t p;
	int wanted = 0, attached = 0, i, err;

	if (late->tried && now_ns - late->last_try < FSERR_LATE_RETRY_NS)
		return 0;
	if (late->n_skels == SIGNAL_MAX_POINTS)
		return 0;
	late->tried = true;
	late->last_try = now_ns;
	/* cheap checks first: this runs every 30 s on nodes that never load xfs */
	for (p = 0; p < rt->def->n_points && p < SIGNAL_MAX_POINTS; p++)
		if (!strncmp(rt->def->points[p].name, "xfs_", 4) && rt->status[p].attached < 0)
			wanted++;
	snprintf(path, sizeof(path), "%s/events/xfs", tracefs_root());
	if (!wanted || access(path, F_OK))
		return 0;
	wanted = 0;
	skel = fserr_bpf__open_opts(&oo);
	if (!skel)
		return neg_errno();
	for (p = 0; p < rt->def->n_points && p < SIGNAL_MAX_POINTS; p++) {
		chosen[p] = -1;
		if (strncmp(rt->def->points[p].name, "xfs_", 4) || rt->status[p].attached >= 0)
			continue;
		chosen[p] = pick_variant(rt, p, skel->obj);
		if (chosen[p] >= 0)
			wanted++;
	}
	if (!wanted) {
		fserr_bpf__destroy(skel);
		return 0;
	}
	bpf_object__for_each_program(prog, skel->obj) {
		bool load = false;

		for (p = 0; p < rt->def->n_points && p < SIGNAL_MAX_POINTS; p++)
			for (i = 0; chosen[p] >= 0 && rt->def->points[p].variants[chosen[p]].programs[i]; i++)
				if (!strcmp(rt->def->points[p].variants[chosen[p]].programs[i], bpf_program__name(prog)))
					load = true;
		bpf_program__set_autoload(prog, load);
	}
	err = reuse_maps(skel, rt->skel);
	if (!err)
		err = fserr_bpf__load(skel);
	if (err) {
		fserr_bpf__destroy(skel);
		return err < 0 ? err : -EINVAL;
	}
	for (p = 0; p < rt->def->n_points && p < SIGNAL_MAX_POINTS; p++) {
		const struct probe_variant *var;
		struct variant_status *vs;
		struct bpf_link **links = late->links[p];

		if (chosen[p] < 0)
			continue;
		var = &rt->def->points[p].variants[chosen[p]];
		vs = &rt->status[p].variants[chosen[p]];
		for (i = 0; var->programs[i]; i++) {
			links[i] = bpf_program__attach(bpf_object__find_program_by_name(skel->obj, var->programs[i]));
			if (!links[i])
				break;
		}
		if (var->programs[i]) {
			while (i-- > 0) {
				bpf_link__destroy(links[i]);
				links[i] = NULL;
			}
			continue;
		}
		rt->status[p].attached = chosen[p];
		vs->state = VARIANT_ATTACHED;
		snprintf(vs->reason, sizeof(vs->reason), "attached after start-up, when its tracepoints appeared");
		rt->attached_points++;
		attached++;
	}
	if (!attached) {
		fserr_bpf__destroy(skel);
		return 0;
	}
	late->skels[late->n_skels++] = skel;
	log_info("fserr: attached %d xfs probe point%s now that xfs is loaded", attached, attached == 1 ? "" : "s");
	return attached;
}

void fserr_late_free(struct fserr_late *late)
{
	size_t p;
	int i;

	if (!late)
		return;
	for (p = 0; p < SIGNAL_MAX_POINTS; p++)
		for (i = 0; i < PROBE_MAX_PROGRAMS; i++)
			bpf_link__destroy(late->links[p][i]);
	for (i = 0; i < late->n_skels; i++)
		fserr_bpf__destroy(late->skels[i]);
	free(late);
}
