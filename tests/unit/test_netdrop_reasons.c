/*
 * Unit tests for user/signals/netdrop_reasons.c on small BTF blobs built here:
 * enum skb_drop_reason as ENUM and as ENUM64, values inserted in the middle
 * (as kernels do), the subsystem encoding, values no BTF names, a kernel
 * without reasons, and a module's split BTF with a subsystem's enum.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <bpf/btf.h>

#include "netdrop_reasons.h"

struct enumerator {
	const char *name;
	long long value;
};

static void add_enum(struct btf *btf, const char *name, bool as_enum64, const struct enumerator *e)
{
	int id = as_enum64 ? btf__add_enum64(btf, name, 8, false) : btf__add_enum(btf, name, 4);

	assert_true(id > 0);
	for (; e->name; e++) {
		if (as_enum64)
			assert_int_equal(btf__add_enum64_value(btf, e->name, (__u64)e->value), 0);
		else
			assert_int_equal(btf__add_enum_value(btf, e->name, (__s64)e->value), 0);
	}
}

/* A 6.x-shaped kernel: NOT_DROPPED_YET and CONSUMED first, MAX and the mask last. */
static const struct enumerator core_6x[] = {
	{ "SKB_NOT_DROPPED_YET", 0 },
	{ "SKB_CONSUMED", 1 },
	{ "SKB_DROP_REASON_NOT_SPECIFIED", 2 },
	{ "SKB_DROP_REASON_NO_SOCKET", 3 },
	{ "SKB_DROP_REASON_NETFILTER_DROP", 11 },
	{ "SKB_DROP_REASON_TCP_AUTH_HDR", 18 },
	{ "SKB_DROP_REASON_TCP_MD5NOTFOUND", 19 },
	{ "SKB_DROP_REASON_MAX", 20 },
	{ "SKB_DROP_REASON_SUBSYS_MASK", 0xffff0000LL },
	{ NULL, 0 },
};

/* The 5.17-era shape: NOT_SPECIFIED first at 0, MD5NOTFOUND where AUTH_HDR is later. */
static const struct enumerator core_517[] = {
	{ "SKB_DROP_REASON_NOT_SPECIFIED", 0 },
	{ "SKB_DROP_REASON_NO_SOCKET", 1 },
	{ "SKB_DROP_REASON_TCP_MD5NOTFOUND", 18 },
	{ "SKB_DROP_REASON_MAX", 19 },
	{ NULL, 0 },
};

static const struct enumerator subsys[] = {
	{ "SKB_DROP_REASON_SUBSYS_CORE", 0 },
	{ "SKB_DROP_REASON_SUBSYS_MAC80211_UNUSABLE", 1 },
	{ "SKB_DROP_REASON_SUBSYS_OPENVSWITCH", 2 },
	{ "SKB_DROP_REASON_SUBSYS_NUM", 3 },
	{ NULL, 0 },
};

static const struct enumerator ovs[] = {
	{ "OVS_DROP_LAST_ACTION", 2 << 16 },
	{ "OVS_DROP_ACTION_ERROR", (2 << 16) + 1 },
	{ "OVS_DROP_MAX", (2 << 16) + 2 },
	{ NULL, 0 },
};

static const struct enumerator mac80211[] = {
	{ "RX_CONTINUE", 1 },  /* not a drop reason: no subsystem bits */
	{ "RX_QUEUED", 0 },
	{ "RX_DROP_U_MIC_FAIL", (1 << 16) + 1 },
	{ NULL, 0 },
};

static struct btf *kernel_btf(const struct enumerator *core, bool as_enum64, bool with_subsys)
{
	struct btf *btf = btf__new_empty();

	assert_non_null(btf);
	assert_true(btf__add_int(btf, "unsigned int", 4, 0) > 0);
	if (core)
		add_enum(btf, "skb_drop_reason", as_enum64, core);
	if (with_subsys)
		add_enum(btf, "skb_drop_reason_subsys", false, subsys);
	return btf;
}

static const char *name_of(const struct netdrop_reasons *r, uint32_t value)
{
	static char buf[NETDROP_REASON_NAME_LEN];

	netdrop_reason_name(r, value, buf, sizeof(buf));
	return buf;
}

static void check_6x_names(bool as_enum64)
{
	struct btf *btf = kernel_btf(core_6x, as_enum64, true);
	struct netdrop_reasons r = { 0 };

	assert_int_equal(netdrop_reasons_load(&r, btf), 0);
	assert_true(r.have_reasons);
	assert_string_equal(name_of(&r, 0), "NOT_DROPPED_YET");
	assert_string_equal(name_of(&r, 1), "CONSUMED");
	assert_string_equal(name_of(&r, 2), "NOT_SPECIFIED");
	assert_string_equal(name_of(&r, 3), "NO_SOCKET");
	assert_string_equal(name_of(&r, 11), "NETFILTER_DROP");
	assert_string_equal(name_of(&r, 18), "TCP_AUTH_HDR");
	assert_string_equal(name_of(&r, 19), "TCP_MD5NOTFOUND");
	/* the markers are not reasons */
	assert_string_equal(name_of(&r, 20), "unknown_20");
	assert_string_equal(name_of(&r, 0xffff0000u), "unknown_4294901760");
	/* a gap between named values */
	assert_string_equal(name_of(&r, 4), "unknown_4");
	netdrop_reasons_free(&r);
	btf__free(btf);
}

static void test_enum_names(void **state)
{
	check_6x_names(false);
}

static void test_enum64_names(void **state)
{
	check_6x_names(true);
}

/* The same names at other values on an older kernel: nothing is compiled in. */
static void test_values_move_between_kernels(void **state)
{
	struct btf *btf = kernel_btf(core_517, false, false);
	struct netdrop_reasons r = { 0 };
	uint32_t v = 99;

	assert_int_equal(netdrop_reasons_load(&r, btf), 0);
	assert_string_equal(name_of(&r, 0), "NOT_SPECIFIED");
	assert_string_equal(name_of(&r, 1), "NO_SOCKET");
	assert_string_equal(name_of(&r, 18), "TCP_MD5NOTFOUND");
	assert_int_equal(netdrop_reason_value(&r, "TCP_MD5NOTFOUND", &v), 0);
	assert_int_equal(v, 18);
	assert_int_equal(netdrop_reason_value(&r, "TCP_AUTH_HDR", &v), -ENOENT);
	/* no subsystem enum on this kernel: a value with high bits is plain unknown */
	assert_string_equal(name_of(&r, (2u << 16) + 5), "unknown_131077");
	netdrop_reasons_free(&r);
	btf__free(btf);
}

static void test_subsystem_bits(void **state)
{
	struct btf *btf = kernel_btf(core_6x, false, true);
	struct netdrop_reasons r = { 0 };
	uint32_t v = 0;

	add_enum(btf, "ovs_drop_reason", false, ovs);
	assert_int_equal(netdrop_reasons_load(&r, btf), 0);
	assert_string_equal(name_of(&r, 2u << 16), "OVS_DROP_LAST_ACTION");
	assert_string_equal(name_of(&r, (2u << 16) + 1), "OVS_DROP_ACTION_ERROR");
	/* known subsystem, unnamed code (OVS_DROP_MAX is a marker) */
	assert_string_equal(name_of(&r, (2u << 16) + 2), "OPENVSWITCH_unknown_2");
	assert_string_equal(name_of(&r, (1u << 16) + 7), "MAC80211_UNUSABLE_unknown_7");
	/* subsystem id the kernel does not name */
	assert_string_equal(name_of(&r, (9u << 16) + 7), "unknown_589831");
	/* the core subsystem's code 3 is the core reason */
	assert_string_equal(name_of(&r, 3), "NO_SOCKET");
	assert_int_equal(netdrop_reason_value(&r, "OVS_DROP_ACTION_ERROR", &v), 0);
	assert_int_equal(v, (2u << 16) + 1);
	assert_int_equal(netdrop_reason_value(&r, "NETFILTER_DROP", &v), 0);
	assert_int_equal(v, 11);
	netdrop_reasons_free(&r);
	btf__free(btf);
}

/* A module's split BTF (mac80211 is a module): its enum is found on top of vmlinux's. */
static void test_module_split_btf(void **state)
{
	struct btf *base = kernel_btf(core_6x, false, true);
	struct btf *mod = btf__new_empty_split(base);
	struct netdrop_reasons r = { 0 };

	assert_non_null(mod);
	add_enum(mod, "mac80211_drop_reason", false, mac80211);
	assert_int_equal(netdrop_reasons_load(&r, base), 0);
	assert_string_equal(name_of(&r, (1u << 16) + 1), "MAC80211_UNUSABLE_unknown_1");
	assert_int_equal(netdrop_reasons_add_subsys_enums(&r, mod), 0);
	assert_string_equal(name_of(&r, (1u << 16) + 1), "RX_DROP_U_MIC_FAIL");
	/* values without subsystem bits in a subsystem enum are not reasons */
	assert_string_equal(name_of(&r, 1), "CONSUMED");
	assert_string_equal(name_of(&r, 0), "NOT_DROPPED_YET");
	netdrop_reasons_free(&r);
	btf__free(mod);
	btf__free(base);
}

static void test_kernel_without_reasons(void **state)
{
	struct btf *btf = kernel_btf(NULL, false, false);
	struct netdrop_reasons r = { 0 };
	uint32_t v;

	assert_int_equal(netdrop_reasons_load(&r, btf), 0);
	assert_false(r.have_reasons);
	assert_string_equal(name_of(&r, 3), "unknown_3");
	assert_int_equal(netdrop_reason_value(&r, "NO_SOCKET", &v), -ENOENT);
	netdrop_reasons_free(&r);
	btf__free(btf);
}

/* A name too long for the table is cut, never overflows; aliases keep the first name. */
static void test_long_names_and_aliases(void **state)
{
	static const struct enumerator odd[] = {
		{ "SKB_DROP_REASON_AN_EXTREMELY_LONG_REASON_NAME_THAT_GOES_ON_AND_ON_AND_ON_FOR_EVER", 5 },
		{ "SKB_DROP_REASON_FIRST", 6 },
		{ "SKB_DROP_REASON_ALIAS", 6 },
		{ "NO_PREFIX_AT_ALL", 7 },
		{ NULL, 0 },
	};
	struct btf *btf = kernel_btf(odd, false, false);
	struct netdrop_reasons r = { 0 };
	char small[8];

	assert_int_equal(netdrop_reasons_load(&r, btf), 0);
	assert_int_equal(strlen(name_of(&r, 5)), NETDROP_REASON_NAME_LEN - 1);
	assert_string_equal(name_of(&r, 6), "FIRST");
	assert_string_equal(name_of(&r, 7), "NO_PREFIX_AT_ALL");
	netdrop_reason_name(&r, 6, small, 3);
	assert_string_equal(small, "FI");
	netdrop_reason_name(&r, 123456, small, sizeof(small));
	assert_string_equal(small, "unknown");
	netdrop_reasons_free(&r);
	btf__free(btf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enum_names),
		cmocka_unit_test(test_enum64_names),
		cmocka_unit_test(test_values_move_between_kernels),
		cmocka_unit_test(test_subsystem_bits),
		cmocka_unit_test(test_module_split_btf),
		cmocka_unit_test(test_kernel_without_reasons),
		cmocka_unit_test(test_long_names_and_aliases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
