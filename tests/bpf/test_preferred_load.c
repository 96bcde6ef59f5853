/*
 * Loading only the preferred variant of each probe point (root, the real
 * kernel): the daemon verifies no standby variant, `ksight probes` still
 * loads them all, and a preferred variant that loads but does not attach
 * brings its fallback in with a second load.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/libbpf.h>

#include "env.h"
#include "kernel_features.h"
#include "loader.h"

extern const struct signal_def oom_signal;

static struct kernel_features kf;

static int no_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

/*
 * The daemon's start: preflight (it mounts tracefs where nothing has yet,
 * as on a freshly booted node, where the classic tracepoint variant would
 * otherwise be ruled out), then the kernel's facts.
 */
static int setup(void **state)
{
	char err[256];

	libbpf_set_print(no_print);
	if (env_preflight(NULL, err, sizeof(err))) {
		fprintf(stderr, "preflight: %s\n", err);
		return -1;
	}
	return kernel_features_open(&kf, NULL);
}

static int teardown(void **state)
{
	kernel_features_close(&kf);
	return 0;
}

static const struct probe_variant *variant_named(const struct probe_point *pt, const char *name, size_t *index)
{
	size_t v;

	for (v = 0; v < pt->n_variants; v++)
		if (!strcmp(pt->variants[v].name, name)) {
			*index = v;
			return &pt->variants[v];
		}
	fail_msg("no variant %s", name);
	return NULL;
}

/* Every program of the variant has (true) or has not (false) been through the verifier. */
static void assert_loaded(const struct signal_runtime *rt, const struct probe_variant *var, bool loaded)
{
	int i;

	for (i = 0; var->programs[i]; i++) {
		struct bpf_program *prog = bpf_object__find_program_by_name(rt->obj, var->programs[i]);

		assert_non_null(prog);
		if (loaded != (bpf_program__fd(prog) >= 0))
			fail_msg("%s: %s", var->programs[i], loaded ? "not loaded" : "loaded, but only standby");
	}
}

static bool has_btf_mark_victim(void)
{
	return kf.has_btf_tracepoint(kf.ctx, "mark_victim");
}

/* The daemon's load: tp_btf verified and attached, the tracepoint and kprobe variants never verified. */
static void test_standby_variants_are_not_loaded(void **state)
{
	const struct probe_point *pt = &oom_signal.points[0];
	struct signal_runtime rt = { .def = &oom_signal };
	struct load_options lo = { .kf = &kf, .preferred_only = true };
	size_t btf, tp, kp;

	if (!has_btf_mark_victim())
		skip();
	assert_int_equal(signal_load(&rt, &lo), 0);
	assert_loaded(&rt, variant_named(pt, "tp_btf", &btf), true);
	assert_loaded(&rt, variant_named(pt, "tracepoint", &tp), false);
	assert_loaded(&rt, variant_named(pt, "kprobe", &kp), false);
	assert_int_equal(signal_attach(&rt, false), 1);
	assert_int_equal(rt.status[0].attached, (int)btf);
	assert_false(signal_wants_fallbacks(&rt));
	assert_int_equal(rt.status[0].variants[tp].state, VARIANT_STANDBY);
	assert_non_null(strstr(rt.status[0].variants[tp].reason, "not loaded"));
	assert_int_equal(rt.status[0].variants[kp].state, VARIANT_STANDBY);
	signal_unload(&rt);
}

/* `ksight probes` loads every candidate, to try each. */
static void test_probes_load_every_candidate(void **state)
{
	const struct probe_point *pt = &oom_signal.points[0];
	struct signal_runtime rt = { .def = &oom_signal };
	struct load_options lo = { .kf = &kf };
	size_t tp;

	assert_int_equal(signal_load(&rt, &lo), 0);
	assert_loaded(&rt, variant_named(pt, "tracepoint", &tp), true);
	signal_unload(&rt);
}

/*
 * A preferred variant that loads and does not attach: kprobe first on a
 * kernel without kprobes (they load, they cannot attach). The tracepoint
 * after it is loaded by the second load and attached; the kprobe's outcome
 * is kept.
 */
static void test_unattachable_preferred_brings_in_its_fallback(void **state)
{
	const struct probe_point *pt = &oom_signal.points[0];
	struct probe_variant order[PROBE_MAX_VARIANTS];
	struct probe_point point = *pt;
	struct signal_def def = oom_signal;
	struct signal_runtime rt = { .def = &def };
	struct load_options lo = { .kf = &kf, .preferred_only = true };
	size_t kp, tp, btf;

	if (access("/sys/bus/event_source/devices/kprobe", F_OK) == 0)
		skip(); /* kprobes attach here: no preferred variant that loads and fails */
	order[0] = *variant_named(pt, "kprobe", &kp);
	order[1] = *variant_named(pt, "tracepoint", &tp);
	order[2] = *variant_named(pt, "tp_btf", &btf);
	point.variants = order;
	point.n_variants = 3;
	def.points = &point;

	assert_int_equal(signal_load(&rt, &lo), 0);
	assert_loaded(&rt, &order[0], true);
	assert_loaded(&rt, &order[1], false);
	assert_int_equal(signal_attach(&rt, false), 0);
	assert_int_equal(rt.status[0].variants[0].state, VARIANT_ATTACH_FAILED);
	assert_int_equal(rt.status[0].variants[1].state, VARIANT_CANDIDATE);
	assert_true(signal_wants_fallbacks(&rt));

	signal_unload(&rt);
	assert_int_equal(signal_load_fallbacks(&rt, &lo), 0);
	assert_loaded(&rt, &order[0], false);
	assert_loaded(&rt, &order[1], true);
	assert_int_equal(signal_attach(&rt, false), 1);
	assert_int_equal(rt.status[0].attached, 1);
	assert_false(signal_wants_fallbacks(&rt));
	assert_int_equal(rt.status[0].variants[0].state, VARIANT_ATTACH_FAILED);
	assert_non_null(strstr(rt.status[0].variants[0].reason, "cannot attach"));
	assert_int_equal(rt.status[0].variants[2].state, VARIANT_STANDBY);
	signal_unload(&rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_standby_variants_are_not_loaded),
		cmocka_unit_test(test_probes_load_every_candidate),
		cmocka_unit_test(test_unattachable_preferred_brings_in_its_fallback),
	};

	if (geteuid() != 0) {
		printf("# skip: needs root\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
