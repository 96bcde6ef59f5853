/*
 * The netdrop probe ladder on simulated kernels (BTF blobs built here): which
 * kfree_skb form each kernel has decides whether tp_btf is taken, and a
 * kernel without reasons gets the reason why in `ksight probes`; a kernel
 * without the kfree_skb tracepoint falls to the kprobes, and one without a TCP
 * tracepoint loses that point only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <bpf/btf.h>

#include "kernel_features.h"
#include "probe.h"
#include "signal_def.h"
#include "bpf_sections.h"

extern const struct signal_def netdrop_signal;

enum kfree_skb_form {
	FORM_NO_REASON,    /* before 5.17: (skb, location) */
	FORM_REASON,       /* 5.17: (skb, location, reason) */
	FORM_RX_SK,        /* ~6.11: (skb, location, reason, rx_sk) */
	FORM_INT_REASON,   /* a third argument that is not the enum */
	FORM_NONE,         /* no btf_trace_kfree_skb at all (BTF without tracepoint typedefs) */
};

static struct btf *kernel_with(enum kfree_skb_form form)
{
	struct btf *btf = btf__new_empty();
	int u32, voidp, skbp, sockp, reason, proto, ptr;

	assert_non_null(btf);
	u32 = btf__add_int(btf, "unsigned int", 4, 0);
	voidp = btf__add_ptr(btf, 0);
	skbp = btf__add_ptr(btf, btf__add_struct(btf, "sk_buff", 0));
	sockp = btf__add_ptr(btf, btf__add_struct(btf, "sock", 0));
	reason = btf__add_enum(btf, "skb_drop_reason", 4);
	assert_int_equal(btf__add_enum_value(btf, "SKB_DROP_REASON_NOT_SPECIFIED", 2), 0);
	proto = btf__add_func_proto(btf, 0);
	assert_int_equal(btf__add_func_param(btf, "__data", voidp), 0);
	assert_int_equal(btf__add_func_param(btf, "skb", skbp), 0);
	assert_int_equal(btf__add_func_param(btf, "location", voidp), 0);
	if (form != FORM_NO_REASON)
		assert_int_equal(btf__add_func_param(btf, "reason", form == FORM_INT_REASON ? u32 : reason), 0);
	if (form == FORM_RX_SK)
		assert_int_equal(btf__add_func_param(btf, "rx_sk", sockp), 0);
	ptr = btf__add_ptr(btf, proto);
	if (form != FORM_NONE)
		assert_true(btf__add_typedef(btf, "btf_trace_kfree_skb", ptr) > 0);
	return btf;
}


/* "category/name" events the simulated tracefs lacks, NULL-terminated; NULL: it has every one */
static const char *const *missing_events;

/* tracefs with every event but missing_events ("", "" asks whether events/ exists at all) */
static bool tracefs_without(void *ctx, const char *category, const char *name)
{
	char event[128];
	size_t i;

	snprintf(event, sizeof(event), "%s/%s", category, name);
	for (i = 0; missing_events && missing_events[i]; i++)
		if (!strcmp(missing_events[i], event))
			return false;
	return true;
}

static int variant_index(const struct probe_point *pt, const char *name)
{
	size_t v;

	for (v = 0; v < pt->n_variants; v++)
		if (!strcmp(pt->variants[v].name, name))
			return (int)v;
	fail_msg("no variant %s", name);
	return -1;
}

static void plan(enum kfree_skb_form form, struct point_status *st)
{
	struct kernel_features kf;
	const struct probe_point *pt = &netdrop_signal.points[0];

	assert_string_equal(pt->name, "kfree_skb");
	kernel_features_from_btf(&kf, kernel_with(form));
	kf.has_tracefs_event = every_tracepoint;
	probe_plan(pt, &kf, section_of, NULL, NULL, st);
	kernel_features_close(&kf);
}

static void test_tp_btf_where_there_are_reasons(void **state)
{
	const struct probe_point *pt = &netdrop_signal.points[0];
	struct point_status st;
	int tp_btf = variant_index(pt, "tp_btf"), v;

	plan(FORM_REASON, &st);
	assert_int_equal(st.variants[tp_btf].state, VARIANT_CANDIDATE);
	plan(FORM_RX_SK, &st);
	assert_int_equal(st.variants[tp_btf].state, VARIANT_CANDIDATE);
	/* every fallback stays a candidate: the loader tries them in order */
	for (v = 0; v < (int)pt->n_variants; v++)
		assert_int_equal(st.variants[v].state, VARIANT_CANDIDATE);
}

static void test_no_reasons_says_why(void **state)
{
	const struct probe_point *pt = &netdrop_signal.points[0];
	struct point_status st;
	int tp_btf = variant_index(pt, "tp_btf");

	plan(FORM_NO_REASON, &st);
	assert_int_equal(st.variants[tp_btf].state, VARIANT_UNSUPPORTED);
	assert_non_null(strstr(st.variants[tp_btf].reason, "no drop reason (before 5.17)"));
	assert_non_null(strstr(st.variants[tp_btf].reason, "reason=\"unknown\""));
	assert_int_equal(st.variants[variant_index(pt, "tracepoint")].state, VARIANT_CANDIDATE);

	/* a third argument that is not enum skb_drop_reason is not taken for one */
	plan(FORM_INT_REASON, &st);
	assert_int_equal(st.variants[tp_btf].state, VARIANT_UNSUPPORTED);
}

/* Plan every netdrop point on a kernel of `form` whose tracefs lacks `missing` (NULL-terminated). */
static void plan_all(enum kfree_skb_form form, const char *const *missing, struct point_status *st)
{
	struct kernel_features kf;
	size_t p;

	assert_true(netdrop_signal.n_points <= 4);
	kernel_features_from_btf(&kf, kernel_with(form));
	kf.has_tracefs_event = tracefs_without;
	missing_events = missing;
	for (p = 0; p < netdrop_signal.n_points; p++)
		probe_plan(&netdrop_signal.points[p], &kf, section_of, NULL, NULL, &st[p]);
	missing_events = NULL;
	kernel_features_close(&kf);
}

/* The first candidate: the variant the loader loads and attaches first. */
static int first_candidate(const struct probe_point *pt, const struct point_status *st)
{
	size_t v;

	for (v = 0; v < pt->n_variants; v++)
		if (st->variants[v].state == VARIANT_CANDIDATE)
			return (int)v;
	return -1;
}

/* No skb/kfree_skb in tracefs nor btf_trace_kfree_skb in BTF: the kprobes are what is left. */
static void test_no_kfree_skb_tracepoint_takes_the_kprobe(void **state)
{
	static const char *const missing[] = { "skb/kfree_skb", NULL };
	const struct probe_point *pt = &netdrop_signal.points[0];
	struct point_status st[4];
	int tp_btf = variant_index(pt, "tp_btf"), tracepoint = variant_index(pt, "tracepoint");

	plan_all(FORM_NONE, missing, st);
	assert_int_equal(st[0].variants[tp_btf].state, VARIANT_UNSUPPORTED);
	assert_non_null(strstr(st[0].variants[tp_btf].reason, "no tracepoint kfree_skb"));
	assert_int_equal(st[0].variants[tracepoint].state, VARIANT_UNSUPPORTED);
	assert_non_null(strstr(st[0].variants[tracepoint].reason, "skb/kfree_skb is not in tracefs"));
	assert_int_equal(first_candidate(pt, &st[0]), variant_index(pt, "kprobe"));
	assert_int_equal(st[0].variants[variant_index(pt, "kprobe_5.17")].state, VARIANT_CANDIDATE);
	assert_int_equal(st[0].variants[variant_index(pt, "kprobe_old")].state, VARIANT_CANDIDATE);
	/* the TCP points do not depend on kfree_skb (this BTF has no TCP hooks: their tracepoints) */
	for (size_t p = 1; p < 4; p++)
		assert_int_equal(first_candidate(&netdrop_signal.points[p], &st[p]),
				 variant_index(&netdrop_signal.points[p], "tracepoint"));
}

/* No tcp/tcp_send_reset in tracefs: that point alone is unsupported, with why; the others stay. */
static void test_missing_send_reset_spares_the_others(void **state)
{
	static const char *const missing[] = { "tcp/tcp_send_reset", NULL };
	struct point_status st[4];
	size_t p;

	plan_all(FORM_REASON, missing, st);
	assert_string_equal(netdrop_signal.points[2].name, "tcp_reset_out");
	/* this BTF has no TCP hooks either: no variant of the point is left */
	assert_int_equal(first_candidate(&netdrop_signal.points[2], &st[2]), -1);
	p = (size_t)variant_index(&netdrop_signal.points[2], "tracepoint");
	assert_int_equal(st[2].variants[p].state, VARIANT_UNSUPPORTED);
	assert_non_null(strstr(st[2].variants[p].reason, "tcp/tcp_send_reset is not in tracefs"));
	for (p = 0; p < netdrop_signal.n_points; p++) {
		if (p == 2)
			continue;
		assert_true(first_candidate(&netdrop_signal.points[p], &st[p]) >= 0);
	}
	assert_int_equal(st[0].variants[variant_index(&netdrop_signal.points[0], "tp_btf")].state,
			 VARIANT_CANDIDATE);
}

static void test_tcp_points(void **state)
{
	size_t p;

	/* one point per TCP tracepoint: a kernel without one still runs the others */
	assert_int_equal(netdrop_signal.n_points, 4);
	/* raw first, the tracepoint last (their rules: test_tcp_variants.c) */
	for (p = 1; p < netdrop_signal.n_points; p++) {
		const struct probe_point *pt = &netdrop_signal.points[p];

		assert_string_equal(pt->variants[0].name, "tp_btf");
		assert_string_equal(pt->variants[pt->n_variants - 1].name, "tracepoint");
	}
	assert_string_equal(netdrop_signal.points[1].name, "tcp_retransmit");
	assert_string_equal(netdrop_signal.points[2].name, "tcp_reset_out");
	assert_string_equal(netdrop_signal.points[3].name, "tcp_reset_in");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tp_btf_where_there_are_reasons),
		cmocka_unit_test(test_no_reasons_says_why),
		cmocka_unit_test(test_tcp_points),
		cmocka_unit_test(test_no_kfree_skb_tracepoint_takes_the_kprobe),
		cmocka_unit_test(test_missing_send_reset_spares_the_others),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
