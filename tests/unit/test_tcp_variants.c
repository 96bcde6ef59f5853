/*
 * The raw (tp_btf) variants of the TCP probe points, netdrop's tcp_retransmit,
 * tcp_reset_out, tcp_reset_in and apilat's retransmit and sock_state, on
 * simulated kernels (BTF blobs built here): each prototype the hooks have had
 * takes the variant whose program reads it right, and a prototype they never
 * had takes none of them (the tracepoint variant then), with the reason.
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
extern const struct signal_def apilat_signal;

enum retransmit_form {
	RT_NONE,      /* no BTF tracepoint at all */
	RT_OLD,       /* (sk, skb) */
	RT_ERR,       /* after 6.12: (sk, skb, int err) */
	RT_PTR_ERR,   /* a third argument that is no integer */
	RT_SKB_FIRST, /* (skb, sk, err): not a form it had */
};

enum reset_form {
	RST_OLD,     /* tcp_send_reset (sk, skb) */
	RST_REASON,  /* 6.10+: (sk, skb, enum sk_rst_reason) */
	RST_SKB_ONLY, /* (skb): not a form it had */
};

struct kernel {
	enum retransmit_form retransmit;
	enum reset_form reset;
	bool state_two_args; /* inet_sock_set_state (sk, int): not a form it had */
};

struct types {
	int voidp, sockp, csockp, skbp, cskbp, cint, integer, rst_reason;
};

static void add_hook(struct btf *btf, const char *name, const int *params, int n)
{
	char typedef_name[128];
	int proto = btf__add_func_proto(btf, 0), i;

	assert_true(proto > 0);
	for (i = 0; i < n; i++)
		assert_int_equal(btf__add_func_param(btf, "", params[i]), 0);
	snprintf(typedef_name, sizeof(typedef_name), "btf_trace_%s", name);
	assert_true(btf__add_typedef(btf, typedef_name, btf__add_ptr(btf, proto)) > 0);
}

static struct btf *kernel_with(const struct kernel *k)
{
	struct btf *btf = btf__new_empty();
	struct types t;
	int sock, skb;

	assert_non_null(btf);
	t.integer = btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
	t.cint = btf__add_const(btf, t.integer);
	t.voidp = btf__add_ptr(btf, 0);
	sock = btf__add_struct(btf, "sock", 0);
	skb = btf__add_struct(btf, "sk_buff", 0);
	t.sockp = btf__add_ptr(btf, sock);
	t.csockp = btf__add_ptr(btf, btf__add_const(btf, sock));
	t.skbp = btf__add_ptr(btf, skb);
	t.cskbp = btf__add_ptr(btf, btf__add_const(btf, skb));
	t.rst_reason = btf__add_enum(btf, "sk_rst_reason", 4);
	assert_int_equal(btf__add_enum_value(btf, "SK_RST_REASON_NOT_SPECIFIED", 0), 0);

	switch (k->retransmit) {
	case RT_NONE:
		break;
	case RT_OLD:
		add_hook(btf, "tcp_retransmit_skb", (int[]){ t.voidp, t.csockp, t.cskbp }, 3);
		break;
	case RT_ERR:
		add_hook(btf, "tcp_retransmit_skb", (int[]){ t.voidp, t.csockp, t.cskbp, t.integer }, 4);
		break;
	case RT_PTR_ERR:
		add_hook(btf, "tcp_retransmit_skb", (int[]){ t.voidp, t.csockp, t.cskbp, t.voidp }, 4);
		break;
	case RT_SKB_FIRST:
		add_hook(btf, "tcp_retransmit_skb", (int[]){ t.voidp, t.cskbp, t.csockp, t.integer }, 4);
		break;
	}
	if (k->reset == RST_OLD)
		add_hook(btf, "tcp_send_reset", (int[]){ t.voidp, t.csockp, t.cskbp }, 3);
	else if (k->reset == RST_REASON)
		add_hook(btf, "tcp_send_reset", (int[]){ t.voidp, t.csockp, t.cskbp, btf__add_const(btf, t.rst_reason) }, 4);
	else
		add_hook(btf, "tcp_send_reset", (int[]){ t.voidp, t.skbp }, 2);
	add_hook(btf, "tcp_receive_reset", (int[]){ t.voidp, t.sockp }, 2);
	if (k->state_two_args)
		add_hook(btf, "inet_sock_set_state", (int[]){ t.voidp, t.csockp, t.cint }, 3);
	else
		add_hook(btf, "inet_sock_set_state", (int[]){ t.voidp, t.csockp, t.cint, t.cint }, 4);
	return btf;
}


static const struct probe_point *point_of(const struct signal_def *sig, const char *name)
{
	size_t p;

	for (p = 0; p < sig->n_points; p++)
		if (!strcmp(sig->points[p].name, name))
			return &sig->points[p];
	fail_msg("%s has no point %s", sig->name, name);
	return NULL;
}

static int variant_index(const struct probe_point *pt, const char *name)
{
	size_t v;

	for (v = 0; v < pt->n_variants; v++)
		if (!strcmp(pt->variants[v].name, name))
			return (int)v;
	fail_msg("%s has no variant %s", pt->name, name);
	return -1;
}

/* the state of variant `variant` of `point` on kernel k; its reason into `reason` if given */
static enum variant_state plan(const struct kernel *k, const struct signal_def *sig, const char *point,
			       const char *variant, char *reason)
{
	const struct probe_point *pt = point_of(sig, point);
	struct kernel_features kf;
	struct point_status st;
	int v = variant_index(pt, variant);

	kernel_features_from_btf(&kf, kernel_with(k));
	kf.has_tracefs_event = every_tracepoint;
	probe_plan(pt, &kf, section_of, NULL, NULL, &st);
	kernel_features_close(&kf);
	if (reason)
		strcpy(reason, st.variants[v].reason);
	return st.variants[v].state;
}

/* raw first, the tracepoint last, for every TCP point */
static void test_raw_variants_come_first(void **state)
{
	const struct { const struct signal_def *sig; const char *point; } points[] = {
		{ &netdrop_signal, "tcp_retransmit" }, { &netdrop_signal, "tcp_reset_out" },
		{ &netdrop_signal, "tcp_reset_in" }, { &apilat_signal, "retransmit" },
		{ &apilat_signal, "sock_state" },
	};
	size_t i;

	for (i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		const struct probe_point *pt = point_of(points[i].sig, points[i].point);

		assert_int_equal(variant_index(pt, "tp_btf"), 0);
		assert_int_equal(variant_index(pt, "tracepoint"), (int)pt->n_variants - 1);
	}
}

static void check_retransmit(const struct signal_def *sig, const char *point)
{
	struct kernel k = { .reset = RST_REASON };
	char why[PROBE_REASON_LEN];

	/* after 6.12: err is there; the old program would count failed retransmits too */
	k.retransmit = RT_ERR;
	assert_int_equal(plan(&k, sig, point, "tp_btf", NULL), VARIANT_CANDIDATE);
	assert_int_equal(plan(&k, sig, point, "tp_btf_old", why), VARIANT_UNSUPPORTED);
	assert_non_null(strstr(why, "has an err argument"));
	assert_int_equal(plan(&k, sig, point, "tracepoint", NULL), VARIANT_CANDIDATE);

	/* before: (sk, skb); the err program would not load */
	k.retransmit = RT_OLD;
	assert_int_equal(plan(&k, sig, point, "tp_btf", why), VARIANT_UNSUPPORTED);
	assert_non_null(strstr(why, "no err argument"));
	assert_int_equal(plan(&k, sig, point, "tp_btf_old", NULL), VARIANT_CANDIDATE);

	/* prototypes it never had: neither raw program, the tracepoint */
	k.retransmit = RT_PTR_ERR;
	assert_int_equal(plan(&k, sig, point, "tp_btf", why), VARIANT_UNSUPPORTED);
	assert_non_null(strstr(why, "no err argument"));
	assert_int_equal(plan(&k, sig, point, "tp_btf_old", NULL), VARIANT_UNSUPPORTED);
	assert_int_equal(plan(&k, sig, point, "tracepoint", NULL), VARIANT_CANDIDATE);
	k.retransmit = RT_SKB_FIRST;
	assert_int_equal(plan(&k, sig, point, "tp_btf", why), VARIANT_UNSUPPORTED);
	assert_non_null(strstr(why, "no struct sock argument"));
	assert_int_equal(plan(&k, sig, point, "tp_btf_old", NULL), VARIANT_UNSUPPORTED);

	/* no BTF tracepoint (a kernel without BTF for it) */
	k.retransmit = RT_NONE;
	assert_int_equal(plan(&k, sig, point, "tp_btf", why), VARIANT_UNSUPPORTED);
	assert_non_null(strstr(why, "no tracepoint tcp_retransmit_skb"));
	assert_int_equal(plan(&k, sig, point, "tp_btf_old", NULL), VARIANT_UNSUPPORTED);
	assert_int_equal(plan(&k, sig, point, "tracepoint", NULL), VARIANT_CANDIDATE);
}

static void test_netdrop_retransmit(void **state)
{
	check_retransmit(&netdrop_signal, "tcp_retransmit");
}

static void test_apilat_retransmit(void **state)
{
	check_retransmit(&apilat_signal, "retransmit");
}

/* tcp_send_reset's reason (6.10) is not read: both forms take the one program */
static void test_resets(void **state)
{
	struct kernel k = { .retransmit = RT_ERR };
	char why[PROBE_REASON_LEN];

	k.reset = RST_OLD;
	assert_int_equal(plan(&k, &netdrop_signal, "tcp_reset_out", "tp_btf", NULL), VARIANT_CANDIDATE);
	k.reset = RST_REASON;
	assert_int_equal(plan(&k, &netdrop_signal, "tcp_reset_out", "tp_btf", NULL), VARIANT_CANDIDATE);
	k.reset = RST_SKB_ONLY;
	assert_int_equal(plan(&k, &netdrop_signal, "tcp_reset_out", "tp_btf", why), VARIANT_UNSUPPORTED);
	assert_non_null(strstr(why, "no struct sock argument"));
	assert_int_equal(plan(&k, &netdrop_signal, "tcp_reset_out", "tracepoint", NULL), VARIANT_CANDIDATE);
	assert_int_equal(plan(&k, &netdrop_signal, "tcp_reset_in", "tp_btf", NULL), VARIANT_CANDIDATE);
}

static void test_sock_state(void **state)
{
	struct kernel k = { .retransmit = RT_ERR, .reset = RST_REASON };
	char why[PROBE_REASON_LEN];

	assert_int_equal(plan(&k, &apilat_signal, "sock_state", "tp_btf", NULL), VARIANT_CANDIDATE);
	k.state_two_args = true;
	assert_int_equal(plan(&k, &apilat_signal, "sock_state", "tp_btf", why), VARIANT_UNSUPPORTED);
	assert_non_null(strstr(why, "no new state argument"));
	assert_int_equal(plan(&k, &apilat_signal, "sock_state", "tracepoint", NULL), VARIANT_CANDIDATE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw_variants_come_first),
		cmocka_unit_test(test_netdrop_retransmit),
		cmocka_unit_test(test_apilat_retransmit),
		cmocka_unit_test(test_resets),
		cmocka_unit_test(test_sock_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
