#include "loader.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "cgroup_root.h"
#include "core_btf.h"
#include "core_cache.h"
#include "kernel_features.h"
#include "map_ahead.h"
#include "startup_trace.h"
#include "tp_btf.h"
#include "util.h"

struct section_lookup {
	struct bpf_object *obj;
};

static const char *section_of(void *ctx, const char *program)
{
	struct section_lookup *sl = ctx;
	struct bpf_program *prog = bpf_object__find_program_by_name(sl->obj, program);

	return prog ? bpf_program__section_name(prog) : NULL;
}

/* "signal/point=variant" or "point=variant" matching this signal and point. */
static const char *override_for(const char *const *overrides, const char *signal, const char *point)
{
	size_t i;

	for (i = 0; overrides && overrides[i]; i++) {
		const char *spec = overrides[i], *eq = strchr(spec, '=');
		const char *slash = strchr(spec, '/');
		const char *pname = spec;

		if (!eq)
			continue;
		if (slash && slash < eq) {
			if ((size_t)(slash - spec) != strlen(signal) || strncmp(spec, signal, (size_t)(slash - spec)))
				continue;
			pname = slash + 1;
		}
		if ((size_t)(eq - pname) != strlen(point) || strncmp(pname, point, (size_t)(eq - pname)))
			continue;
		return eq + 1;
	}
	return NULL;
}

int probe_override_validate(const char *spec, char *why, size_t whylen)
{
	const char *eq = strchr(spec, '='), *slash = strchr(spec, '/');
	size_t s, p, v;

	for (s = 0; ksight_signals[s]; s++) {
		const struct signal_def *def = ksight_signals[s];

		for (p = 0; p < def->n_points; p++) {
			const struct probe_point *pt = &def->points[p];

			for (v = 0; v < pt->n_variants; v++) {
				char full[256], short_form[256];

				snprintf(full, sizeof(full), "%s/%s=%s", def->name, pt->name, pt->variants[v].name);
				snprintf(short_form, sizeof(short_form), "%s=%s", pt->name, pt->variants[v].name);
				if (!strcmp(spec, full) || !strcmp(spec, short_form))
					return 0;
			}
		}
	}
	snprintf(why, whylen, "unknown probe variant '%s'%s: `ksight probes` lists them (SIGNAL/POINT=VARIANT)",
		 spec, eq && (!slash || slash < eq) ? "" : " (expected SIGNAL/POINT=VARIANT)");
	return -EINVAL;
}

/*
 * Test only: KSIGHT_TEST_REFUSE=SIGNAL[,SIGNAL...] makes the named signals'
 * objects fail to load with -EPERM, as a verifier refusal does (each program
 * is then tried alone and ruled out), so that a test can start an agent in
 * which one signal cannot load next to one that runs. Never set in production.
 */
static bool refused_for_test(const struct signal_def *def)
{
	const char *p = getenv("KSIGHT_TEST_REFUSE");
	size_t n = strlen(def->name);

	while (p && *p) {
		if (!strncmp(p, def->name, n) && (p[n] == ',' || p[n] == '\0'))
			return true;
		p = strchr(p, ',');
		p = p ? p + 1 : NULL;
	}
	return false;
}

/* bpf_object__load, or the refusal KSIGHT_TEST_REFUSE asks for. */
static int object_load(struct signal_runtime *rt)
{
	if (refused_for_test(rt->def))
		return -EPERM;
	return bpf_object__load(rt->obj);
}

/* The only place a runtime's object is freed: skel and obj go together, nothing dangles. */
static void destroy_object(struct signal_runtime *rt)
{
	if (rt->skel)
		rt->def->destroy(rt->skel);
	rt->skel = NULL;
	rt->obj = NULL;
}

/* Open the skeleton (CO-RE against core_btf) and set its rodata; 0 or -errno (nothing left open on failure). */
static int open_configured(struct signal_runtime *rt, const char *core_btf)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .btf_custom_path = core_btf);
	void *skel = rt->def->open(&oo);
	int err;

	if (!skel)
		return neg_errno();
	rt->skel = skel;
	rt->obj = rt->def->object(skel);
	if (rt->def->configure) {
		err = rt->def->configure(rt);
		if (err) {
			destroy_object(rt);
			return err < 0 ? err : -EINVAL;
		}
	}
	return 0;
}

/* The first candidate of point p: the one preferred_only loads, or -1. */
static int preferred_candidate(const struct signal_runtime *rt, size_t p)
{
	size_t v;

	for (v = 0; v < rt->def->points[p].n_variants; v++)
		if (rt->status[p].variants[v].state == VARIANT_CANDIDATE)
			return (int)v;
	return -1;
}

static bool variant_has_program(const struct probe_variant *var, const char *name)
{
	int i;

	for (i = 0; var->programs[i]; i++)
		if (!strcmp(var->programs[i], name))
			return true;
	return false;
}

/* Is `name` to be loaded: in any candidate, or (preferred_only) in a point's preferred one. */
static bool program_is_wanted(const struct signal_runtime *rt, const char *name, bool preferred_only)
{
	size_t p;
	int v;

	for (p = 0; p < rt->def->n_points; p++) {
		if (!preferred_only) {
			if (probe_program_in_state(&rt->def->points[p], &rt->status[p], name, VARIANT_CANDIDATE))
				return true;
			continue;
		}
		v = preferred_candidate(rt, p);
		if (v >= 0 && variant_has_program(&rt->def->points[p].variants[v], name))
			return true;
	}
	return false;
}

static void set_autoload(struct signal_runtime *rt, const char *only, bool preferred_only)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, rt->obj) {
		const char *name = bpf_program__name(prog);

		bpf_program__set_autoload(prog, only ? !strcmp(name, only) :
					  program_is_wanted(rt, name, preferred_only));
	}
}

/* Mark every candidate variant that contains `program` as refused by the kernel. */
static void rule_out_program(struct signal_runtime *rt, const char *program, int err)
{
	size_t p, v;
	int i;

	for (p = 0; p < rt->def->n_points; p++) {
		const struct probe_point *pt = &rt->def->points[p];

		for (v = 0; v < pt->n_variants; v++) {
			struct variant_status *vs = &rt->status[p].variants[v];

			if (vs->state != VARIANT_CANDIDATE)
				continue;
			for (i = 0; pt->variants[v].programs[i]; i++) {
				if (strcmp(pt->variants[v].programs[i], program))
					continue;
				vs->state = VARIANT_LOAD_FAILED;
				snprintf(vs->reason, sizeof(vs->reason), "the kernel refused to load %.64s: %s%s",
					 program, strerror(-err),
					 err == -EPERM ? " (this kernel forbids the program type, e.g. fentry)" : "");
				break;
			}
		}
	}
}

/*
 * The whole object failed to load: load each candidate program alone to find
 * the ones this kernel refuses. Returns how many were ruled out.
 */
static int find_refused_programs(struct signal_runtime *rt, const char *core_btf, bool preferred_only)
{
	char names[64][64];
	struct bpf_program *prog;
	int n = 0, ruled_out = 0, i, err;

	bpf_object__for_each_program(prog, rt->obj)
		if (n < 64 && program_is_wanted(rt, bpf_program__name(prog), preferred_only))
			snprintf(names[n++], sizeof(names[0]), "%s", bpf_program__name(prog));
	destroy_object(rt);
	for (i = 0; i < n; i++) {
		err = open_configured(rt, core_btf);
		if (err)
			return err;
		set_autoload(rt, names[i], false);
		err = object_load(rt);
		destroy_object(rt);
		if (err) {
			rule_out_program(rt, names[i], err);
			ruled_out++;
		}
	}
	return ruled_out;
}

static bool any_candidate(const struct signal_runtime *rt)
{
	size_t p, v;

	for (p = 0; p < rt->def->n_points; p++)
		for (v = 0; v < rt->def->points[p].n_variants; v++)
			if (rt->status[p].variants[v].state == VARIANT_CANDIDATE)
				return true;
	return false;
}

/*
 * libbpf relocates against btf_custom_path alone, never against a module's
 * BTF: a signal whose programs read the types of a module loaded with BTF of
 * its own (xfs as a module; built in, its types are in vmlinux's and in the
 * copy) loads against the whole kernel BTF, for which libbpf reads the
 * modules' too.
 */
static bool reads_loaded_module_types(const struct signal_def *def)
{
	char path[PATH_MAX];
	size_t p, v;

	for (p = 0; p < def->n_points; p++)
		for (v = 0; v < def->points[p].n_variants; v++) {
			const char *module = def->points[p].variants[v].module_btf;

			if (!module)
				continue;
			snprintf(path, sizeof(path), "/sys/kernel/btf/%s", module);
			if (!access(path, F_OK))
				return true;
		}
	return false;
}

/*
 * Outcomes learnt by an earlier load and attach (`known`, or NULL) stay: the
 * variants the kernel refused or did not attach are not candidates again.
 */
static void keep_outcomes(struct signal_runtime *rt, const struct point_status *known)
{
	size_t p, v;

	for (p = 0; known && p < rt->def->n_points; p++)
		for (v = 0; v < rt->def->points[p].n_variants; v++) {
			const struct variant_status *was = &known[p].variants[v];

			if (rt->status[p].variants[v].state == VARIANT_CANDIDATE &&
			    (was->state == VARIANT_LOAD_FAILED || was->state == VARIANT_ATTACH_FAILED))
				rt->status[p].variants[v] = *was;
		}
}

static void rule_out_unpaired(struct signal_runtime *rt);

static int load_tries(struct signal_runtime *rt, const struct load_options *opts,
		      const struct point_status *known)
{
	const char *core_btf = opts->core_btf_path && !reads_loaded_module_types(rt->def) ?
			       opts->core_btf_path : opts->btf_path;
	struct section_lookup sl;
	size_t p;
	int err, attempt;

	if (rt->def->n_points > SIGNAL_MAX_POINTS) {
		snprintf(rt->error, sizeof(rt->error), "%s declares %zu probe points, more than %d",
			 rt->def->name, rt->def->n_points, SIGNAL_MAX_POINTS);
		return -E2BIG;
	}
	for (p = 0; p < rt->def->n_points; p++)
		if (rt->def->points[p].n_variants > PROBE_MAX_VARIANTS) {
			snprintf(rt->error, sizeof(rt->error), "%s/%s declares more than %d variants",
				 rt->def->name, rt->def->points[p].name, PROBE_MAX_VARIANTS);
			return -E2BIG;
		}
	err = open_configured(rt, core_btf);
	if (err) {
		snprintf(rt->error, sizeof(rt->error), "cannot open the %s BPF object: %s", rt->def->name,
			 strerror(-err));
		return err;
	}
	if (maps_ahead_take(rt) > 0)
		startup_mark("%s: maps made ahead taken", rt->def->name);
	else
		startup_mark("%s: open", rt->def->name);
	sl.obj = rt->obj;
	for (p = 0; p < rt->def->n_points; p++)
		probe_plan(&rt->def->points[p], opts->kf, section_of, &sl,
			   override_for(opts->probe_overrides, rt->def->name, rt->def->points[p].name),
			   &rt->status[p]);
	keep_outcomes(rt, known);
	startup_mark("%s: plan", rt->def->name);

	for (attempt = 0; attempt < 16; attempt++) {
		if (!any_candidate(rt)) {
			snprintf(rt->error, sizeof(rt->error), "no probe variant of %s works on this kernel "
				 "(`ksight probes` says why)", rt->def->name);
			destroy_object(rt);
			return -ENOTSUP;
		}
		if (!rt->skel) {
			err = open_configured(rt, core_btf);
			if (err) {
				snprintf(rt->error, sizeof(rt->error), "cannot open the %s BPF object: %s",
					 rt->def->name, strerror(-err));
				return err;
			}
		}
		/* after the plan, a round's outcomes or a refused program: the object is open again here */
		rule_out_unpaired(rt);
		set_autoload(rt, NULL, opts->preferred_only);
		err = object_load(rt);
		startup_mark("%s: load (try %d)%s", rt->def->name, attempt + 1, err ? " failed" : "");
		if (!err)
			return 0;
		if (core_btf != opts->btf_path) {
			/* a relocation the small copy lacks: the whole BTF decides, before anything is ruled out */
			core_btf = opts->btf_path;
			destroy_object(rt);
			continue;
		}
		if (find_refused_programs(rt, core_btf, opts->preferred_only) <= 0) {
			snprintf(rt->error, sizeof(rt->error), "cannot load the %s BPF object: %s",
				 rt->def->name, strerror(-err));
			destroy_object(rt);
			return err;
		}
	}
	destroy_object(rt);
	snprintf(rt->error, sizeof(rt->error), "cannot load the %s BPF object: gave up after 16 tries",
		 rt->def->name);
	return -ELOOP;
}

/*
 * tp_btf targets come from the kernel BTF parsed once (tp_btf.h) when it is
 * the running kernel's own; with another (--btf) each load reads the
 * kernel's, as libbpf would.
 */
static int load_keeping(struct signal_runtime *rt, const struct load_options *opts,
			const struct point_status *known)
{
	int err;

	tp_btf_handler_register();
	tp_btf_use_kernel_btf(opts->btf_path || !opts->kf ? NULL : kernel_features_btf(opts->kf));
	err = load_tries(rt, opts, known);
	tp_btf_load_done();
	tp_btf_use_kernel_btf(NULL);
	return err;
}

int signal_load(struct signal_runtime *rt, const struct load_options *opts)
{
	return load_keeping(rt, opts, NULL);
}

int signal_load_fallbacks(struct signal_runtime *rt, const struct load_options *opts)
{
	struct point_status known[SIGNAL_MAX_POINTS];

	memcpy(known, rt->status, sizeof(known));
	signal_unload(rt);
	return load_keeping(rt, opts, known);
}

#define CORE_MAX_OBJECTS 16

/* What the objects of defs[0..n) name, read from their own BTF (not the kernel's). */
static int read_core_names(const struct signal_def *const *defs, int n, struct core_names **out)
{
	const struct btf *locals[CORE_MAX_OBJECTS] = { NULL };
	void *skels[CORE_MAX_OBJECTS] = { NULL };
	int i, err;

	for (i = 0; i < n; i++) {
		skels[i] = defs[i]->open(NULL);
		locals[i] = skels[i] ? bpf_object__btf(defs[i]->object(skels[i])) : NULL;
	}
	err = core_btf_names(locals, n, out);
	for (i = 0; i < n; i++)
		if (skels[i])
			defs[i]->destroy(skels[i]);
	return err;
}

int signal_core_btf_cached(const struct signal_def *const *defs, int n, const struct btf *kernel,
			   const char *cache_dir, char *path, unsigned long pathlen, struct core_cache_use *use)
{
	struct core_cached cached;
	const struct core_names *names;
	struct core_names *own = NULL;
	struct btf *copy = NULL;
	int err;

	*use = (struct core_cache_use){ .load = -ECANCELED, .store = -ECANCELED };
	if (n > CORE_MAX_OBJECTS)
		return -E2BIG;
	/* the maps-ahead thread looked the entry up, or read the names, while the kernel BTF was parsed */
	names = maps_ahead_core_names(defs, n, cache_dir, &cached);
	if (cached.load == -ECANCELED)
		cached.load = core_cache_lookup(cache_dir, defs, n, &cached.raw, &cached.size);
	use->load = cached.load;
	if (!use->load) {
		/* an entry libbpf would not parse is built again (btf__new checks it whole: ~0.1 ms) */
		struct btf *check = btf__new(cached.raw, (__u32)cached.size);

		if (check) {
			btf__free(check);
			err = core_btf_raw_to_file(cached.raw, cached.size, path, pathlen);
			free(cached.raw);
			return err;
		}
		free(cached.raw);
		use->load = -EBADMSG;
	}
	if (!names) {
		err = read_core_names(defs, n, &own);
		if (err)
			return err;
		names = own;
	}
	err = core_btf_build_names(kernel, names, &copy);
	core_btf_names_free(own);
	if (err)
		return err;
	err = core_btf_to_file(copy, path, pathlen);
	if (err >= 0 && cache_dir) {
		__u32 raw_size;
		const void *raw = btf__raw_data(copy, &raw_size);

		use->store = raw ? core_cache_save(cache_dir, defs, n, raw, raw_size) : -ENOMEM;
	}
	btf__free(copy);
	return err;
}

int signal_core_btf(const struct signal_def *const *defs, int n, const struct btf *kernel, char *path,
		    unsigned long pathlen)
{
	struct core_cache_use use;

	return signal_core_btf_cached(defs, n, kernel, NULL, path, pathlen, &use);
}

static bool kernel_has_kprobes(void)
{
	return access("/sys/bus/event_source/devices/kprobe", F_OK) == 0;
}

/* A program's link: sockops programs to cgroup v2's root, every other kind where its section says. */
static struct bpf_link *attach_program(struct bpf_program *prog, const char *section)
{
	char root[PATH_MAX];
	struct bpf_link *link;
	int fd, err;

	if (strcmp(section, "sockops"))
		return bpf_program__attach(prog);
	err = cgroup2_root(root, sizeof(root));
	if (err) {
		errno = -err;
		return NULL;
	}
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	link = bpf_program__attach_cgroup(prog, fd);
	err = errno;
	close(fd);
	errno = err;
	return link;
}

/* Destroy the trial links of point p (see attach_variant). */
static void detach_variant(struct signal_runtime *rt, size_t p)
{
	int i;

	for (i = 0; i < PROBE_MAX_PROGRAMS; i++) {
		bpf_link__destroy(rt->trial_links[i]);
		rt->trial_links[i] = NULL;
	}
}

/* Does a variant of rt have a sockops program? */
static bool has_sockops(const struct signal_runtime *rt, const struct probe_variant *var)
{
	int i;

	for (i = 0; var->programs[i]; i++) {
		struct bpf_program *prog = bpf_object__find_program_by_name(rt->obj, var->programs[i]);

		if (prog && !strcmp(bpf_program__section_name(prog), "sockops"))
			return true;
	}
	return false;
}

/* Does an earlier point of rt use a variant with a sockops program? (probe_variant.with_sockops) */
static bool sockops_attached(const struct signal_runtime *rt, size_t p)
{
	size_t q;

	for (q = 0; q < p; q++)
		if (rt->status[q].attached >= 0 && has_sockops(rt, &rt->def->points[q].variants[rt->status[q].attached]))
			return true;
	return false;
}

/*
 * A variant that goes with an earlier point's sockops one where no such
 * variant is a candidate is ruled out before it is loaded: planned (--probe
 * chose another: disabled), or after a round or a load found the sockops
 * one failing (unsupported here).
 */
static void rule_out_unpaired(struct signal_runtime *rt)
{
	size_t p, q, v;

	for (p = 0; p < rt->def->n_points; p++) {
		bool paired = false, deselected = false;

		for (q = 0; q < p && !paired; q++)
			for (v = 0; v < rt->def->points[q].n_variants && !paired; v++) {
				enum variant_state state = rt->status[q].variants[v].state;

				if (!has_sockops(rt, &rt->def->points[q].variants[v]))
					continue;
				paired = state == VARIANT_CANDIDATE;
				deselected |= state == VARIANT_DISABLED;
			}
		for (v = 0; v < rt->def->points[p].n_variants && !paired; v++) {
			const struct probe_variant *var = &rt->def->points[p].variants[v];
			struct variant_status *vs = &rt->status[p].variants[v];

			if (!var->with_sockops || vs->state != VARIANT_CANDIDATE)
				continue;
			vs->state = deselected ? VARIANT_DISABLED : VARIANT_UNSUPPORTED;
			snprintf(vs->reason, sizeof(vs->reason), "%s, which %s", var->with_sockops,
				 deselected ? "is not selected" : "cannot run here");
		}
	}
}

/*
 * Attach every program of variant v; into rt->links[p] for the first variant
 * of a point, into rt->trial_links when one is attached already.
 */
static int attach_variant(struct signal_runtime *rt, size_t p, size_t v)
{
	const struct probe_variant *var = &rt->def->points[p].variants[v];
	struct variant_status *vs = &rt->status[p].variants[v];
	struct bpf_link **links = rt->status[p].attached >= 0 ? rt->trial_links : rt->links[p];
	int i, err;

	/* planned where sockops can attach, but the sockops variant did not (refused, EPERM): not without it */
	if (var->with_sockops && !sockops_attached(rt, p)) {
		snprintf(vs->reason, sizeof(vs->reason), "%s, which did not attach", var->with_sockops);
		vs->state = VARIANT_ATTACH_FAILED;
		return -ENOENT;
	}

	for (i = 0; var->programs[i] && !var->signal_attaches; i++) {
		struct bpf_program *prog = bpf_object__find_program_by_name(rt->obj, var->programs[i]);
		const char *section = prog ? bpf_program__section_name(prog) : "";

		links[i] = prog ? attach_program(prog, section) : NULL;
		if (links[i])
			continue;
		err = prog ? neg_errno() : -ENOENT;
		if (!strncmp(section, "kprobe/", 7) && !kernel_has_kprobes())
			snprintf(vs->reason, sizeof(vs->reason),
				 "cannot attach %s: this kernel was built without kprobes (CONFIG_KPROBES)", section);
		else if (!strcmp(section, "sockops") && err == -EPERM)
			snprintf(vs->reason, sizeof(vs->reason),
				 "cannot attach sockops to cgroup v2's root: EPERM (a program attached there without "
				 "BPF_F_ALLOW_MULTI excludes others; `bpftool cgroup show` lists it)");
		else if (!strcmp(section, "sockops") && err == -ENOENT)
			snprintf(vs->reason, sizeof(vs->reason),
				 "cannot attach sockops: no cgroup v2 root is mounted here");
		else
			snprintf(vs->reason, sizeof(vs->reason), "cannot attach %s: %s", section, strerror(-err));
		while (i-- > 0) {
			bpf_link__destroy(links[i]);
			links[i] = NULL;
		}
		vs->state = VARIANT_ATTACH_FAILED;
		return err;
	}
	if (links == rt->links[p]) {
		vs->state = VARIANT_ATTACHED;
		vs->reason[0] = '\0';
	}
	return 0;
}

/* rt->error: why nothing attached, with the last reason of the first point. */
static void describe_failure(struct signal_runtime *rt)
{
	const struct probe_point *pt = &rt->def->points[0];
	const char *why = "no variant to try";
	const char *variant = "";
	size_t v;

	for (v = 0; v < pt->n_variants; v++) {
		enum variant_state state = rt->status[0].variants[v].state;

		if (state == VARIANT_ATTACH_FAILED || state == VARIANT_LOAD_FAILED ||
		    state == VARIANT_UNSUPPORTED) {
			why = rt->status[0].variants[v].reason;
			variant = pt->variants[v].name;
		}
	}
	snprintf(rt->error, sizeof(rt->error), "no probe could be attached (%s %s: %.120s; `ksight probes` shows all)",
		 pt->name, variant, why);
}

/* Has every program of variant v of point p been through the verifier. */
static bool variant_loaded(const struct signal_runtime *rt, size_t p, size_t v)
{
	const struct probe_variant *var = &rt->def->points[p].variants[v];
	int i;

	for (i = 0; var->programs[i]; i++) {
		struct bpf_program *prog = bpf_object__find_program_by_name(rt->obj, var->programs[i]);

		if (!prog || bpf_program__fd(prog) < 0)
			return false;
	}
	return true;
}

bool signal_wants_fallbacks(const struct signal_runtime *rt)
{
	size_t p;

	for (p = 0; p < rt->def->n_points; p++)
		if (rt->status[p].attached < 0 && preferred_candidate(rt, p) >= 0)
			return true;
	return false;
}

int signal_attach(struct signal_runtime *rt, bool try_fallbacks)
{
	size_t p, v;

	rt->attached_points = 0;
	for (p = 0; p < rt->def->n_points; p++) {
		struct point_status *st = &rt->status[p];

		for (v = 0; v < rt->def->points[p].n_variants; v++) {
			struct variant_status *vs = &st->variants[v];

			if (vs->state != VARIANT_CANDIDATE)
				continue;
			if (st->attached >= 0 && !try_fallbacks) {
				vs->state = VARIANT_STANDBY;
				snprintf(vs->reason, sizeof(vs->reason), "%s, not tried: %s is preferred",
					 variant_loaded(rt, p, v) ? "loaded" : "not loaded",
					 rt->def->points[p].variants[st->attached].name);
				continue;
			}
			if (!variant_loaded(rt, p, v))
				continue; /* a fallback left to a second load (signal_wants_fallbacks) */
			if (st->attached >= 0) {
				/* try it anyway, so `ksight probes` tells what the fallback would do */
				if (attach_variant(rt, p, v) == 0) {
					detach_variant(rt, p);
					vs->state = VARIANT_STANDBY;
					snprintf(vs->reason, sizeof(vs->reason), "attaches too; %s is preferred",
						 rt->def->points[p].variants[st->attached].name);
				}
				continue;
			}
			if (attach_variant(rt, p, v) == 0) {
				st->attached = (int)v;
				rt->attached_points++;
			}
		}
	}
	rt->running = rt->attached_points > 0;
	if (!rt->running)
		describe_failure(rt);
	return rt->attached_points;
}

void signal_detach(struct signal_runtime *rt)
{
	size_t p;
	int i;

	for (p = 0; p < SIGNAL_MAX_POINTS; p++)
		for (i = 0; i < PROBE_MAX_PROGRAMS; i++) {
			bpf_link__destroy(rt->links[p][i]);
			rt->links[p][i] = NULL;
		}
	for (i = 0; i < PROBE_MAX_PROGRAMS; i++) {
		bpf_link__destroy(rt->trial_links[i]);
		rt->trial_links[i] = NULL;
	}
	rt->running = false;
}

void signal_unload(struct signal_runtime *rt)
{
	signal_detach(rt);
	destroy_object(rt);
}

