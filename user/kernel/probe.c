#include "probe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *variant_state_name(enum variant_state state)
{
	switch (state) {
	case VARIANT_UNTRIED: return "untried";
	case VARIANT_CANDIDATE: return "candidate";
	case VARIANT_ATTACHED: return "attached";
	case VARIANT_STANDBY: return "standby";
	case VARIANT_UNSUPPORTED: return "unsupported";
	case VARIANT_LOAD_FAILED: return "load_failed";
	case VARIANT_ATTACH_FAILED: return "attach_failed";
	case VARIANT_DISABLED: return "disabled";
	}
	return "unknown";
}

static bool starts_with(const char *s, const char *prefix, const char **rest)
{
	size_t n = strlen(prefix);

	if (strncmp(s, prefix, n))
		return false;
	*rest = s + n;
	return true;
}

int probe_check_section(const char *section, const struct kernel_features *kf, char *why,
			size_t whylen)
{
	const char *target;

	if (starts_with(section, "tp_btf/", &target) || starts_with(section, "raw_tp/", &target) ||
	    starts_with(section, "raw_tracepoint/", &target)) {
		if (kf->has_btf_tracepoint(kf->ctx, target))
			return 0;
		snprintf(why, whylen, "this kernel's BTF has no tracepoint %s", target);
		return -ENOENT;
	}
	if (starts_with(section, "tracepoint/", &target) || starts_with(section, "tp/", &target)) {
		char category[64];
		const char *slash = strchr(target, '/');

		if (!slash || (size_t)(slash - target) >= sizeof(category)) {
			snprintf(why, whylen, "malformed section %s", section);
			return -EINVAL;
		}
		memcpy(category, target, (size_t)(slash - target));
		category[slash - target] = '\0';
		if (kf->has_tracefs_event(kf->ctx, category, slash + 1))
			return 0;
		/* tracefs is there (events/ is) but not the whole category: a module's, not loaded */
		if (kf->has_tracefs_event(kf->ctx, "", "") && !kf->has_tracefs_event(kf->ctx, category, ""))
			snprintf(why, whylen, "tracepoint %s is not in tracefs: no %s events at all "
				 "(the %s module is not loaded)", target, category, category);
		else
			snprintf(why, whylen, "tracepoint %s is not in tracefs on this kernel", target);
		return -ENOENT;
	}
	if (starts_with(section, "fentry/", &target) || starts_with(section, "fexit/", &target)) {
		if (kf->has_btf_function(kf->ctx, target))
			return 0;
		snprintf(why, whylen, "function %s is not in this kernel's BTF", target);
		return -ENOENT;
	}
	if (!strcmp(section, "sockops")) {
		if (!kf->has_cgroup2_root || kf->has_cgroup2_root(kf->ctx))
			return 0;
		snprintf(why, whylen, "no cgroup v2 root is mounted here (sockops programs attach to it; in a pod: "
			 "the host's /sys/fs/cgroup as a hostPath)");
		return -ENOENT;
	}
	/* cgroup_skb/ingress: attached by the signal to cgroups under the root */
	if (starts_with(section, "cgroup_skb/", &target)) {
		if (!kf->has_cgroup2_root || kf->has_cgroup2_root(kf->ctx))
			return 0;
		snprintf(why, whylen, "no cgroup v2 root is mounted here (cgroup_skb programs attach to cgroups under "
			 "it; in a pod: the host's /sys/fs/cgroup as a hostPath)");
		return -ENOENT;
	}
	/* iter/tcp: the kernel's iterator target is function bpf_iter_tcp */
	if (starts_with(section, "iter/", &target)) {
		char fn[128];

		snprintf(fn, sizeof(fn), "bpf_iter_%s", target);
		if (kf->has_btf_function(kf->ctx, fn))
			return 0;
		snprintf(why, whylen, "this kernel has no BPF iterator %s (no function %s in its BTF)", target, fn);
		return -ENOENT;
	}
	/*
	 * kprobes are decided by trying to attach: available_filter_functions
	 * lists functions even on kernels built without kprobes.
	 */
	if (starts_with(section, "kprobe/", &target) || starts_with(section, "kretprobe/", &target))
		return 0;
	snprintf(why, whylen, "unknown program type in section %s", section);
	return -EINVAL;
}

int probe_check_module_btf(const struct probe_variant *v, const struct kernel_features *kf, char *why,
			   size_t whylen)
{
	if (!v->module_btf || !kf->has_module_btf || kf->has_module_btf(kf->ctx, v->module_btf))
		return 0;
	snprintf(why, whylen, "the %s module is loaded without BTF (/sys/kernel/btf/%s, 5.11+): its "
		 "programs could not read %s's own types", v->module_btf, v->module_btf, v->module_btf);
	return -ENOENT;
}

/* The BTF argument checks of program `program` (section `section`); 0 or -ENOENT with why. */
static int check_args(const struct probe_variant *v, const char *program, const char *section,
		      const struct kernel_features *kf, char *why, size_t whylen)
{
	const struct probe_arg *arg;

	for (arg = v->args; arg < v->args + PROBE_MAX_ARGS && arg->kind != PROBE_ARG_END; arg++) {
		if (!arg->program || strcmp(arg->program, program))
			continue;
		if (arg->kind == PROBE_ARG_FUNCTION) {
			if (!arg->type || !kf->has_btf_function(kf->ctx, arg->type)) {
				snprintf(why, whylen, "%s", arg->missing ? arg->missing :
					 "this kernel lacks a function the program needs");
				return -ENOENT;
			}
			continue;
		}
		if (arg->kind == PROBE_ARG_RECORD_FIELD ? strncmp(section, "tracepoint/", 11) != 0 :
		    strncmp(section, "tp_btf/", 7) && strncmp(section, "fentry/", 7) &&
		    strncmp(section, "fexit/", 6)) {
			snprintf(why, whylen, "%s: %s checks need a %s, not %s", program,
				 arg->kind == PROBE_ARG_RECORD_FIELD ? "record" : "argument",
				 arg->kind == PROBE_ARG_RECORD_FIELD ? "tracepoint" : "BTF hook", section);
			return -EINVAL;
		}
		if (!kf->btf_arg_matches(kf->ctx, section, arg)) {
			snprintf(why, whylen, "%s", arg->missing ? arg->missing :
				 "this kernel's hook has other arguments");
			return -ENOENT;
		}
	}
	return 0;
}

static int check_variant(const struct probe_variant *v, const struct kernel_features *kf,
			 program_section_fn section_of, void *section_ctx, char *why, size_t whylen)
{
	int i, err;

	for (i = 0; i < PROBE_MAX_PROGRAMS && v->programs[i]; i++) {
		const char *section = section_of(section_ctx, v->programs[i]);

		if (!section) {
			snprintf(why, whylen, "program %s is missing from the BPF object", v->programs[i]);
			return -ENOENT;
		}
		err = probe_check_section(section, kf, why, whylen);
		if (err)
			return err;
		err = check_args(v, v->programs[i], section, kf, why, whylen);
		if (err)
			return err;
	}
	if (v->with_sockops) {
		char sockops_why[PROBE_REASON_LEN];

		err = probe_check_section("sockops", kf, sockops_why, sizeof(sockops_why));
		if (err) {
			snprintf(why, whylen, "%s: %.150s", v->with_sockops, sockops_why);
			return err;
		}
	}
	return probe_check_module_btf(v, kf, why, whylen);
}

int probe_plan(const struct probe_point *point, const struct kernel_features *kf,
	       program_section_fn section_of, void *section_ctx, const char *only,
	       struct point_status *st)
{
	int candidates = 0;
	size_t i;

	memset(st, 0, sizeof(*st));
	st->attached = -1;
	for (i = 0; i < point->n_variants && i < PROBE_MAX_VARIANTS; i++) {
		const struct probe_variant *v = &point->variants[i];
		struct variant_status *vs = &st->variants[i];

		if (only && strcmp(only, v->name)) {
			vs->state = VARIANT_DISABLED;
			snprintf(vs->reason, sizeof(vs->reason), "not selected (--probe %s=%s)",
				 point->name, only);
			continue;
		}
		if (check_variant(v, kf, section_of, section_ctx, vs->reason, sizeof(vs->reason))) {
			vs->state = VARIANT_UNSUPPORTED;
			continue;
		}
		vs->state = VARIANT_CANDIDATE;
		candidates++;
	}
	return candidates;
}

bool probe_program_in_state(const struct probe_point *point, const struct point_status *st,
			    const char *name, enum variant_state state)
{
	size_t i;
	int p;

	for (i = 0; i < point->n_variants && i < PROBE_MAX_VARIANTS; i++) {
		if (st->variants[i].state != state)
			continue;
		for (p = 0; point->variants[i].programs[p]; p++)
			if (strcmp(point->variants[i].programs[p], name) == 0)
				return true;
	}
	return false;
}
