/*
 * apilat's trace block on the real kernel (root): with trace_enabled the
 * kernel sends one record per connect and connect failure and one per turn
 * at least trace_slow_ns long, with the turn's bytes and the socket's
 * addresses, and nothing for fast turns; without it (`ksight run`) nothing
 * at all. A plain TCP server on 127.0.0.1 stands in for the API server: the
 * kernel side does not look at the bytes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent.h"
#include "apilat_rx.h"
#include "apilat_signal.h"
#include "cgroup_root.h"
#include "kernel_features.h"
#include "loader.h"

extern const struct signal_def apilat_signal;

#define SLOW_MS	   120
#define REPLY_SLOW 3000
#define REPLY_FAST 10

/* ---- a server: each request byte 's' is answered after SLOW_MS with REPLY_SLOW bytes, others at once ---- */

static void *serve(void *arg)
{
	int lfd = *(int *)arg, fd;
	char buf[64], reply[REPLY_SLOW];
	ssize_t n;

	memset(reply, 'x', sizeof(reply));
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		if (buf[0] == 's') {
			usleep(SLOW_MS * 1000);
			send(fd, reply, REPLY_SLOW, 0);
		} else {
			send(fd, reply, REPLY_FAST, 0);
		}
	}
	close(fd);
	return NULL;
}

static int listen_on(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* A port nobody listens on (bound, then closed). */
static uint16_t closed_port(void)
{
	uint16_t port;
	int fd = listen_on(&port);

	close(fd);
	return port;
}

static void recv_all(int fd, size_t n)
{
	char buf[4096];

	while (n) {
		ssize_t got = recv(fd, buf, n < sizeof(buf) ? n : sizeof(buf), 0);

		assert_true(got > 0);
		n -= (size_t)got;
	}
}

/* ---- records ---- */

static struct apilat_trace_event got[32];
static size_t n_got;

static int keep(void *ctx, void *data, size_t size)
{
	if (size >= sizeof(got[0]) && n_got < sizeof(got) / sizeof(got[0]))
		memcpy(&got[n_got++], data, sizeof(got[0]));
	return 0;
}

struct rig {
	struct agent agent;
	struct agent_config cfg;
	struct kernel_features kf;
	struct signal_runtime rt;
	struct ring_buffer *rb;
	struct apilat_rx *rx; /* recv=ingress: its receive hook attached where asked, as the user half does */
	uint16_t port, closed;
	int lfd;
	pthread_t server;
};

static void add_endpoint(struct rig *r, uint16_t port)
{
	struct bpf_map *bss = bpf_object__find_map_by_name(r->rt.obj, ".bss");
	struct apilat_endpoint ep;
	char text[32];
	__u8 one = 1;
	size_t len;
	void *p;

	snprintf(text, sizeof(text), "127.0.0.1:%u", port);
	assert_int_equal(apilat_parse_endpoint(text, &ep), 0);
	/* the kernel side's first test, the port's bit, before the endpoint (as apilat_ports_apply does) */
	assert_non_null(bss);
	len = bpf_map__value_size(bss);
	assert_true(len >= APILAT_PORT_WORDS * sizeof(__u64));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(bss), 0);
	assert_true(p != MAP_FAILED);
	apilat_ports_set(p, port); /* apilat_ports is the section's only variable */
	munmap(p, len);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(bpf_object__find_map_by_name(r->rt.obj, "apilat_endpoints")),
					     &ep, &one, BPF_ANY), 0);
}

static void rig_start(struct rig *r, bool trace)
{
	struct load_options lo = { .kf = &r->kf };

	memset(r, 0, sizeof(*r));
	r->cfg.apilat_slow_ns = 50 * 1000000ULL;
	r->agent.cfg = &r->cfg;
	r->agent.trace = trace;
	assert_int_equal(kernel_features_open(&r->kf, NULL), 0);
	r->rt = (struct signal_runtime){ .def = &apilat_signal, .agent = &r->agent };
	assert_int_equal(signal_load(&r->rt, &lo), 0);
	signal_attach(&r->rt, false);
	assert_true(r->rt.running);
	if (bpf_program__fd(bpf_object__find_program_by_name(r->rt.obj, "apilat_recv_ingress")) >= 0) {
		char root[4096];
		__u32 zero = 0, on = 1;

		assert_int_equal(cgroup2_root(root, sizeof(root)), 0);
		assert_int_equal(apilat_rx_start(bpf_object__find_program_by_name(r->rt.obj, "apilat_recv_ingress"),
						 bpf_map__fd(bpf_object__find_map_by_name(r->rt.obj, "apilat_rx_cgroups")),
						 bpf_map__fd(bpf_object__find_map_by_name(r->rt.obj, "apilat_rx_asks")),
						 root, false, &r->rx), 0);
		assert_int_equal(bpf_map_update_elem(bpf_map__fd(bpf_object__find_map_by_name(r->rt.obj, "apilat_rx_on")),
						     &zero, &on, BPF_ANY), 0);
	}
	r->lfd = listen_on(&r->port);
	r->closed = closed_port();
	add_endpoint(r, r->port);
	add_endpoint(r, r->closed);
	r->rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(r->rt.obj, "apilat_trace_events")), keep,
				 NULL, NULL);
	assert_non_null(r->rb);
	assert_int_equal(pthread_create(&r->server, NULL, serve, &r->lfd), 0);
	n_got = 0;
}

static void rig_stop(struct rig *r)
{
	pthread_join(r->server, NULL);
	close(r->lfd);
	ring_buffer__free(r->rb);
	apilat_rx_free(r->rx);
	signal_unload(&r->rt);
	kernel_features_close(&r->kf);
}

/* One connection: a fast turn (the "handshake"), a slow one, a fast one, a slow one (sent at the close); then a refused connect. */
static uint16_t traffic(struct rig *r)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in local;
	socklen_t len = sizeof(local);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_port = htons(r->port);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&local, &len), 0);
	assert_int_equal(send(fd, "h", 1, 0), 1);
	recv_all(fd, REPLY_FAST);
	assert_int_equal(send(fd, "slow!", 5, 0), 5);
	recv_all(fd, REPLY_SLOW);
	assert_int_equal(send(fd, "f", 1, 0), 1);
	recv_all(fd, REPLY_FAST);
	assert_int_equal(send(fd, "s2", 2, 0), 2);
	recv_all(fd, REPLY_SLOW);
	close(fd);

	fd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_port = htons(r->closed);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, ECONNREFUSED);
	close(fd);
	usleep(50 * 1000);
	ring_buffer__consume(r->rb);
	return ntohs(local.sin_port);
}

/* The nth (from 0) record of `phase`. */
static const struct apilat_trace_event *find_nth(uint8_t phase, size_t nth)
{
	size_t i;

	for (i = 0; i < n_got; i++)
		if (got[i].phase == phase && nth-- == 0)
			return &got[i];
	return NULL;
}

static const struct apilat_trace_event *find(uint8_t phase)
{
	return find_nth(phase, 0);
}

static void test_trace_records(void **state)
{
	static struct rig r;
	const struct apilat_trace_event *e;
	const __u8 lo4[4] = { 127, 0, 0, 1 };
	uint16_t sport;

	(void)state;
	rig_start(&r, true);
	sport = traffic(&r);
	/* connect, the two slow responses, the refusal: nothing for the two fast turns */
	assert_int_equal(n_got, 4);
	assert_null(find(APILAT_TRACE_HANDSHAKE));

	e = find(APILAT_TRACE_CONNECT);
	assert_non_null(e);
	assert_int_equal(e->family, 4);
	assert_memory_equal(e->saddr, lo4, 4);
	assert_memory_equal(e->daddr, lo4, 4);
	assert_int_equal(e->sport, sport);
	assert_int_equal(e->dport, r.port);
	assert_int_equal(e->pid, getpid());
	assert_true(e->duration_ns > 0 && e->duration_ns < 1000000000ULL);
	assert_int_equal(e->sent_bytes, 0);

	e = find(APILAT_TRACE_RESPONSE);
	assert_non_null(e);
	assert_int_equal(e->sport, sport);
	assert_int_equal(e->dport, r.port);
	assert_int_equal(e->pid, getpid());
	assert_true(e->duration_ns >= SLOW_MS * 1000000ULL && e->duration_ns < 1000000000ULL);
	assert_int_equal(e->sent_bytes, 5);
	assert_int_equal(e->received_bytes, REPLY_SLOW);
	assert_string_equal(e->client.comm, got[0].client.comm);

	/* the last turn's record leaves at the close: the addresses are still the connection's */
	e = find_nth(APILAT_TRACE_RESPONSE, 1);
	assert_non_null(e);
	assert_int_equal(e->sport, sport);
	assert_int_equal(e->dport, r.port);
	assert_memory_equal(e->saddr, lo4, 4);
	assert_int_equal(e->sent_bytes, 2);
	assert_int_equal(e->received_bytes, REPLY_SLOW);
	assert_true(e->duration_ns >= SLOW_MS * 1000000ULL);

	e = find(APILAT_TRACE_FAILURE);
	assert_non_null(e);
	assert_int_equal(e->cause, APILAT_FAIL_REFUSED);
	assert_int_equal(e->dport, r.closed);
	rig_stop(&r);
}

static void test_no_records_without_the_trace(void **state)
{
	static struct rig r;

	(void)state;
	rig_start(&r, false);
	traffic(&r);
	assert_int_equal(n_got, 0);
	rig_stop(&r);
}

static int no_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trace_records),
		cmocka_unit_test(test_no_records_without_the_trace),
	};

	libbpf_set_print(no_print);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
