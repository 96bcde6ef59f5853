/*
 * netdrop's user half: protocol and namespace labels, rows of kernel keys
 * merged into series, the kallsyms symboliser, a sampled record -> JSON line
 * (IPv4, IPv6, no ports), and the trace filters.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <linux/types.h>

#include "agent.h"
#include "event.h"
#include "metrics.h"
#include "netdrop.h"
#include "netdrop_signal.h"
#include "netdrop_syms.h"
#include "signal_def.h"
#include "unit_helpers.h"

extern const struct signal_def netdrop_signal;

static void test_proto_names(void **state)
{
	assert_string_equal(netdrop_proto_name(NETDROP_PROTO_TCP), "tcp");
	assert_string_equal(netdrop_proto_name(NETDROP_PROTO_UDP), "udp");
	assert_string_equal(netdrop_proto_name(NETDROP_PROTO_ICMP), "icmp");
	assert_string_equal(netdrop_proto_name(NETDROP_PROTO_ICMPV6), "icmpv6");
	assert_string_equal(netdrop_proto_name(NETDROP_PROTO_SCTP), "sctp");
	assert_string_equal(netdrop_proto_name(NETDROP_PROTO_IP_OTHER), "other");
	assert_string_equal(netdrop_proto_name(NETDROP_PROTO_ARP), "arp");
	assert_string_equal(netdrop_proto_name(NETDROP_PROTO_OTHER), "other");
	assert_string_equal(netdrop_proto_name(NETDROP_PROTO_NR), "other");
	assert_string_equal(netdrop_proto_name(0xffffffffu), "other");
}

static void test_netns_labels(void **state)
{
	struct netns_labels nl;

	netdrop_netns_labels(4026531840u, 4026531840u, NULL, NULL, &nl);
	assert_string_equal(nl.netns, "host");
	assert_string_equal(nl.namespace_, "");
	assert_string_equal(nl.pod, "");
	netdrop_netns_labels(4026531840u, 4026532999u, NULL, "", &nl);
	assert_string_equal(nl.netns, "net:[4026532999]");
	netdrop_netns_labels(4026531840u, 0, NULL, NULL, &nl);
	assert_string_equal(nl.netns, "unknown");
	/* an unknown host inode (0) never makes inode 0 the host */
	netdrop_netns_labels(0, 0, NULL, NULL, &nl);
	assert_string_equal(nl.netns, "unknown");
	/* a pod known by name: its labels, and netns empty */
	netdrop_netns_labels(4026531840u, 4026532999u, "shop", "cart-1", &nl);
	assert_string_equal(nl.namespace_, "shop");
	assert_string_equal(nl.pod, "cart-1");
	assert_string_equal(nl.netns, "");
	/* the host's namespace is never a pod's */
	netdrop_netns_labels(4026531840u, 4026531840u, "shop", "cart-1", &nl);
	assert_string_equal(nl.netns, "host");
	assert_string_equal(nl.pod, "");
}

static struct netdrop_row row(const char *a, const char *b, uint64_t v)
{
	struct netdrop_row r = { .value = v };

	r.labels[0] = strdup(a);
	r.labels[1] = strdup(b);
	return r;
}

static void test_rows_merge(void **state)
{
	struct netdrop_row *rows = calloc(5, sizeof(*rows));
	size_t n;

	rows[0] = row("NO_SOCKET", "udp", 3);
	rows[1] = row("NETFILTER_DROP", "udp", 5);
	rows[2] = row("NO_SOCKET", "udp", 4);
	rows[3] = row("NO_SOCKET", "tcp", 1);
	rows[4] = row("NETFILTER_DROP", "udp", 7);
	n = netdrop_rows_merge(rows, 5, 2);
	assert_int_equal(n, 3);
	assert_string_equal(rows[0].labels[0], "NETFILTER_DROP");
	assert_int_equal(rows[0].value, 12);
	assert_string_equal(rows[1].labels[1], "tcp");
	assert_int_equal(rows[1].value, 1);
	assert_string_equal(rows[2].labels[1], "udp");
	assert_int_equal(rows[2].value, 7);
	netdrop_rows_free(rows, n, 2);
	assert_int_equal(netdrop_rows_merge(NULL, 0, 2), 0);
}

struct gone_log {
	char seen[8][64];
	int n;
};

static void note_gone(const struct netdrop_row *r, void *arg)
{
	struct gone_log *g = arg;

	snprintf(g->seen[g->n++], sizeof(g->seen[0]), "%s/%s", r->labels[0], r->labels[1]);
}

/* A namespace's series whose labels changed, or whose namespace is gone, is removed: no frozen duplicate. */
static void test_rows_sweep(void **state)
{
	struct netdrop_row *prev = calloc(4, sizeof(*prev)), *cur = calloc(3, sizeof(*cur));
	struct gone_log g = { .n = 0 };
	size_t np, nc;

	(void)state;
	prev[0] = row("NO_SOCKET", "net:[4026532000]", 5); /* became its pod's */
	prev[1] = row("NO_SOCKET", "host", 2);
	prev[2] = row("NETFILTER_DROP", "net:[4026532111]", 9); /* namespace gone */
	prev[3] = row("NO_SOCKET", "zz-last", 1);
	cur[0] = row("NO_SOCKET", "host", 3);
	cur[1] = row("NO_SOCKET", "", 6); /* the pod's series (pod labels not in this test's 2 columns) */
	cur[2] = row("NO_SOCKET", "zz-last", 1);
	np = netdrop_rows_merge(prev, 4, 2);
	nc = netdrop_rows_merge(cur, 3, 2);
	assert_int_equal(netdrop_rows_sweep(prev, np, cur, nc, 2, note_gone, &g), 2);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.seen[0], "NETFILTER_DROP/net:[4026532111]");
	assert_string_equal(g.seen[1], "NO_SOCKET/net:[4026532000]");
	/* nothing before: nothing goes; nothing now: all go */
	g.n = 0;
	assert_int_equal(netdrop_rows_sweep(NULL, 0, cur, nc, 2, note_gone, &g), 0);
	assert_int_equal(netdrop_rows_sweep(cur, nc, NULL, 0, 2, note_gone, &g), 3);
	netdrop_rows_free(prev, np, 2);
	netdrop_rows_free(cur, nc, 2);
}

static void test_named(void **state)
{
	struct netdrop_named set = { 0 };
	const struct netdrop_named_ns *e;
	char pod[32];
	uint32_t i;

	(void)state;
	assert_null(netdrop_named_find(&set, 1));
	for (i = 1000; i > 0; i--) {
		snprintf(pod, sizeof(pod), "pod-%u", i);
		assert_int_equal(netdrop_named_add(&set, i * 7, "shop", pod), 0);
	}
	e = netdrop_named_find(&set, 7);
	assert_non_null(e);
	assert_string_equal(e->pod, "pod-1");
	assert_string_equal(netdrop_named_find(&set, 7000)->pod, "pod-1000");
	assert_null(netdrop_named_find(&set, 8));
	assert_int_equal(netdrop_named_add(&set, 8, "", ""), 0);
	assert_non_null(netdrop_named_find(&set, 8));
	assert_int_equal(set.n, 1001);
	/* an add of an inode it has replaces its entry */
	assert_int_equal(netdrop_named_add(&set, 7, "shop", "pod-again"), 0);
	assert_string_equal(netdrop_named_find(&set, 7)->pod, "pod-again");
	assert_int_equal(set.n, 1001);
	/* inode 0 is a key like any other */
	assert_null(netdrop_named_find(&set, 0));
	assert_int_equal(netdrop_named_add(&set, 0, "", ""), 0);
	assert_non_null(netdrop_named_find(&set, 0));
	netdrop_named_free(&set);
	assert_null(netdrop_named_find(&set, 7));
}

static const char kallsyms[] =
	"ffffffff81000000 T _stext\n"
	"ffffffff81a00000 t nft_do_chain\n"
	"ffffffff81a00800 D some_data\n"
	"ffffffff81a01000 T udp_queue_rcv_skb\n"
	"ffffffffc0001000 t veth_xmit\t[veth]\n"
	"ffffffffc0002000 t veth_end\t[veth]\n";

static void test_symbolise(void **state)
{
	struct netdrop_syms s;
	char *path = write_tmp(kallsyms), out[128];

	assert_int_equal(netdrop_syms_load(&s, path), 0);
	unlink(path);
	assert_int_equal(s.n, 5); /* the data symbol is not a function */
	netdrop_syms_format(&s, 0xffffffff81a003c4ULL, out, sizeof(out));
	assert_string_equal(out, "nft_do_chain+0x3c4");
	/* past a data symbol the function still owns the address */
	netdrop_syms_format(&s, 0xffffffff81a00900ULL, out, sizeof(out));
	assert_string_equal(out, "nft_do_chain+0x900");
	netdrop_syms_format(&s, 0xffffffff81a01000ULL, out, sizeof(out));
	assert_string_equal(out, "udp_queue_rcv_skb+0x0");
	netdrop_syms_format(&s, 0xffffffffc0001010ULL, out, sizeof(out));
	assert_string_equal(out, "veth_xmit+0x10 [veth]");
	/* before the first and after the last symbol: only the address */
	netdrop_syms_format(&s, 0xffffffff80000000ULL, out, sizeof(out));
	assert_string_equal(out, "0xffffffff80000000");
	netdrop_syms_format(&s, 0xffffffffc0003000ULL, out, sizeof(out));
	assert_string_equal(out, "0xffffffffc0003000");
	netdrop_syms_format(&s, 0, out, sizeof(out));
	assert_string_equal(out, "");
	netdrop_syms_free(&s);

	/* hidden addresses (kptr_restrict): an empty table, addresses printed */
	path = write_tmp("0000000000000000 T nft_do_chain\n");
	assert_int_equal(netdrop_syms_load(&s, path), 0);
	unlink(path);
	assert_int_equal(s.n, 0);
	netdrop_syms_format(&s, 0xffffffff81a003c4ULL, out, sizeof(out));
	assert_string_equal(out, "0xffffffff81a003c4");
	netdrop_syms_free(&s);
	assert_int_equal(netdrop_syms_load(&s, "/nonexistent/kallsyms"), -ENOENT);
}

static int64_t fixed_offset(void)
{
	return 1700000000LL * 1000000000LL;
}

struct fixture {
	struct agent_config cfg;
	struct agent agent;
	struct signal_runtime rt;
};

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->cfg = (struct agent_config){ .mode = MODE_TRACE, .format = OUTPUT_JSON };
	f->agent = (struct agent){ .cfg = &f->cfg, .trace = true, .boot_to_wall_ns = fixed_offset };
	snprintf(f->agent.node, sizeof(f->agent.node), "node-1");
	f->rt = (struct signal_runtime){ .def = &netdrop_signal, .agent = &f->agent };
	f->agent.metrics = metrics_registry_new(0);
	assert_non_null(f->agent.metrics);
	/* no BTF here: every reason is unknown_<n>, which the test relies on */
	assert_int_equal(netdrop_signal.init(&f->rt), 0);
}

static void fixture_fini(struct fixture *f)
{
	netdrop_signal.fini(&f->rt);
	metrics_registry_free(f->agent.metrics);
}

static char *run_event(struct fixture *f, const struct netdrop_event *e)
{
	return handle_record(&f->rt, e, sizeof(*e));
}

static const char *field(json_object *obj, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v))
		return "<absent>";
	return v ? json_object_get_string(v) : "<null>";
}

static void test_event_ipv4(void **state)
{
	struct fixture f;
	struct netdrop_event e = { .boot_ns = 5, .location = 0xffffffff81a003c4ULL, .reason = 11,
				   .netns = 4026532999u, .ifindex = 3, .proto = NETDROP_PROTO_UDP,
				   .l3proto = 0x0800, .l4proto = 17, .family = 4, .sport = 40000,
				   .dport = 9, .has_ports = 1, .source = NETDROP_SOURCE_TP_BTF };
	json_object *obj;

	fixture_init(&f);
	inet_pton(AF_INET, "10.99.0.1", e.saddr);
	inet_pton(AF_INET, "10.99.0.2", e.daddr);
	snprintf(e.ifname, sizeof(e.ifname), "ndv1");
	obj = json_tokener_parse(run_event(&f, &e));
	assert_non_null(obj);
	assert_string_equal(field(obj, "signal"), "netdrop");
	assert_string_equal(field(obj, "reason"), "unknown_11");
	assert_string_equal(field(obj, "protocol"), "udp");
	assert_string_equal(field(obj, "family"), "ipv4");
	assert_string_equal(field(obj, "saddr"), "10.99.0.1");
	assert_string_equal(field(obj, "daddr"), "10.99.0.2");
	assert_string_equal(field(obj, "sport"), "40000");
	assert_string_equal(field(obj, "dport"), "9");
	assert_string_equal(field(obj, "ifname"), "ndv1");
	/* no kallsyms loaded (warm_up not run): the address */
	assert_string_equal(field(obj, "location"), "0xffffffff81a003c4");
	assert_string_equal(field(obj, "netns"), "net:[4026532999]");
	assert_string_equal(field(obj, "namespace"), "");
	assert_string_equal(field(obj, "pod"), "");
	assert_string_equal(field(obj, "time"), "2023-11-14T22:13:20.000000005Z");
	assert_int_equal(json_object_get_type(json_object_object_get(obj, "sport")), json_type_int);
	json_object_put(obj);
	fixture_fini(&f);
}

static void test_event_ipv6_without_ports(void **state)
{
	struct fixture f;
	struct netdrop_event e = { .reason = NETDROP_REASON_NONE, .proto = NETDROP_PROTO_ICMPV6,
				   .l3proto = 0x86dd, .l4proto = 58, .family = 6 };
	json_object *obj;

	fixture_init(&f);
	inet_pton(AF_INET6, "fd00:99::1", e.saddr);
	inet_pton(AF_INET6, "fd00:99::2", e.daddr);
	obj = json_tokener_parse(run_event(&f, &e));
	assert_non_null(obj);
	assert_string_equal(field(obj, "reason"), "unknown");
	assert_string_equal(field(obj, "protocol"), "icmpv6");
	assert_string_equal(field(obj, "family"), "ipv6");
	assert_string_equal(field(obj, "saddr"), "fd00:99::1");
	assert_string_equal(field(obj, "daddr"), "fd00:99::2");
	assert_string_equal(field(obj, "sport"), "<null>");
	assert_string_equal(field(obj, "dport"), "<null>");
	assert_string_equal(field(obj, "location"), "");
	assert_string_equal(field(obj, "netns"), "unknown");
	json_object_put(obj);

	/* not IP: no addresses */
	e = (struct netdrop_event){ .reason = 2, .proto = NETDROP_PROTO_ARP, .l3proto = 0x0806 };
	obj = json_tokener_parse(run_event(&f, &e));
	assert_non_null(obj);
	assert_string_equal(field(obj, "protocol"), "arp");
	assert_string_equal(field(obj, "family"), "");
	assert_string_equal(field(obj, "saddr"), "");
	json_object_put(obj);
	fixture_fini(&f);
}

static void test_event_text_columns(void **state)
{
	struct fixture f;
	struct netdrop_event e = { .reason = 3, .netns = 77, .proto = NETDROP_PROTO_TCP, .family = 6,
				   .l4proto = 6, .sport = 1, .dport = 2, .has_ports = 1 };
	const char *line;

	fixture_init(&f);
	f.cfg.format = OUTPUT_TEXT;
	inet_pton(AF_INET6, "::1", e.saddr);
	inet_pton(AF_INET6, "::2", e.daddr);
	snprintf(e.ifname, sizeof(e.ifname), "lo");
	line = run_event(&f, &e);
	assert_non_null(strstr(line, "unknown_3 tcp [::1]:1 > [::2]:2 dev=lo at=- netns=net:[77]"));
	fixture_fini(&f);
}

static void test_trace_filters(void **state)
{
	struct fixture f;
	struct netdrop_event e = { .reason = 11, .proto = NETDROP_PROTO_UDP };

	fixture_init(&f);
	f.cfg.trace_reason = "unknown_12";
	assert_string_equal(run_event(&f, &e), "");
	f.cfg.trace_reason = "unknown_11";
	assert_true(strlen(run_event(&f, &e)) > 0);
	/* pods are not resolved yet: a pod filter lets nothing through */
	f.cfg.trace_pod = "web-0";
	assert_string_equal(run_event(&f, &e), "");
	f.cfg.trace_pod = NULL;
	f.cfg.trace_namespace = "default";
	assert_string_equal(run_event(&f, &e), "");
	fixture_fini(&f);
}

static void test_short_record(void **state)
{
	struct fixture f;
	struct netdrop_event e = { 0 };

	fixture_init(&f);
	assert_int_equal(netdrop_signal.handle_event(&f.rt, &e, sizeof(e) - 1), -EINVAL);
	fixture_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proto_names),
		cmocka_unit_test(test_netns_labels),
		cmocka_unit_test(test_rows_merge),
		cmocka_unit_test(test_rows_sweep),
		cmocka_unit_test(test_named),
		cmocka_unit_test(test_symbolise),
		cmocka_unit_test(test_event_ipv4),
		cmocka_unit_test(test_event_ipv6_without_ports),
		cmocka_unit_test(test_event_text_columns),
		cmocka_unit_test(test_trace_filters),
		cmocka_unit_test(test_short_record),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
