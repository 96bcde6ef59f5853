/*
 * recv=ingress's table of cgroups (apilat_rx.h): what an ask attaches, what
 * it refuses and says so in the kernel's map, a cgroup asked twice, one gone
 * before it could be attached, the cap on attachments, a full table, and
 * the sweep of removed cgroups (detached, forgotten in both places, the
 * others kept).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <linux/types.h>

#include "apilat.h"
#include "apilat_rx.h"

#define MAX_IDS 16

/* a fake kernel: cgroups that exist, links attached, the map's entries */
struct fake {
	uint64_t alive[MAX_IDS];
	size_t n_alive;
	int attach_error; /* returned for every attach when set */
	int links, detached;
	uint32_t map[MAX_IDS + 1]; /* state by id (ids < MAX_IDS) */
	int marks;
};

static bool fake_alive(void *ctx, uint64_t id)
{
	struct fake *f = ctx;
	size_t i;

	for (i = 0; i < f->n_alive; i++)
		if (f->alive[i] == id)
			return true;
	return false;
}

static int fake_attach(void *ctx, uint64_t id, void **link)
{
	struct fake *f = ctx;

	if (!fake_alive(f, id))
		return -ESTALE;
	if (f->attach_error)
		return f->attach_error;
	f->links++;
	*link = (void *)(uintptr_t)(id + 1000);
	return 0;
}

static void fake_detach(void *ctx, void *link)
{
	struct fake *f = ctx;

	assert_true((uintptr_t)link >= 1000);
	f->detached++;
	f->links--;
}

static void fake_mark(void *ctx, uint64_t id, uint32_t state)
{
	struct fake *f = ctx;

	assert_true(id < MAX_IDS);
	f->map[id] = state;
	f->marks++;
}

static const struct apilat_rx_ops ops = {
	.attach = fake_attach, .detach = fake_detach, .alive = fake_alive, .mark = fake_mark,
};

static void remove_cgroup(struct fake *f, uint64_t id)
{
	size_t i;

	for (i = 0; i < f->n_alive; i++)
		if (f->alive[i] == id)
			f->alive[i] = f->alive[--f->n_alive];
}

static void test_attach_once(void **state)
{
	struct fake f = { .alive = { 5, 6 }, .n_alive = 2 };
	struct apilat_rx_table t;

	(void)state;
	assert_int_equal(apilat_rx_table_init(&t, 8, 8, &ops, &f), 0);
	assert_int_equal(apilat_rx_table_ask(&t, 5), APILAT_RX_ATTACHED);
	assert_int_equal(f.map[5], APILAT_RX_ATTACHED);
	assert_int_equal(f.links, 1);
	/* asked again (the kernel's entry was deleted by a full ring, say): no second link */
	assert_int_equal(apilat_rx_table_ask(&t, 5), 0);
	assert_int_equal(f.links, 1);
	assert_int_equal(apilat_rx_table_ask(&t, 6), APILAT_RX_ATTACHED);
	assert_int_equal(t.attached, 2);
	assert_int_equal(t.n, 2);
	apilat_rx_table_fini(&t);
	assert_int_equal(f.links, 0);
	assert_int_equal(f.detached, 2);
}

static void test_gone_before_attach(void **state)
{
	struct fake f = { .n_alive = 0 };
	struct apilat_rx_table t;

	(void)state;
	f.map[3] = APILAT_RX_ASKED;
	assert_int_equal(apilat_rx_table_init(&t, 8, 8, &ops, &f), 0);
	assert_int_equal(apilat_rx_table_ask(&t, 3), 0);
	assert_int_equal(f.map[3], 0); /* forgotten: nothing to sweep later */
	assert_int_equal(t.n, 0);
	assert_int_equal(t.refused, 0);
	apilat_rx_table_fini(&t);
}

static void test_refused(void **state)
{
	struct fake f = { .alive = { 2 }, .n_alive = 1, .attach_error = -EPERM };
	struct apilat_rx_table t;

	(void)state;
	assert_int_equal(apilat_rx_table_init(&t, 8, 8, &ops, &f), 0);
	assert_int_equal(apilat_rx_table_ask(&t, 2), APILAT_RX_REFUSED);
	assert_int_equal(f.map[2], APILAT_RX_REFUSED); /* not asked again by its next connections */
	assert_int_equal(t.refused, 1);
	assert_int_equal(t.last_error, -EPERM);
	assert_int_equal(f.links, 0);
	/* kept, so that its entry goes with the cgroup */
	remove_cgroup(&f, 2);
	assert_int_equal(apilat_rx_table_sweep(&t), 1);
	assert_int_equal(f.map[2], 0);
	assert_int_equal(f.detached, 0); /* it had no link */
	apilat_rx_table_fini(&t);
}

static void test_cap(void **state)
{
	struct fake f = { .alive = { 1, 2, 3, 4 }, .n_alive = 4 };
	struct apilat_rx_table t;

	(void)state;
	assert_int_equal(apilat_rx_table_init(&t, 8, 2, &ops, &f), 0);
	assert_int_equal(apilat_rx_table_ask(&t, 1), APILAT_RX_ATTACHED);
	assert_int_equal(apilat_rx_table_ask(&t, 2), APILAT_RX_ATTACHED);
	f.map[3] = APILAT_RX_ASKED;
	assert_int_equal(apilat_rx_table_ask(&t, 3), APILAT_RX_REFUSED);
	assert_int_equal(t.last_error, -ENOSPC);
	assert_int_equal(t.refused, 1);
	assert_int_equal(f.map[3], 0); /* forgotten: its next connection asks again */
	assert_int_equal(t.n, 2);
	assert_int_equal(f.links, 2);
	/* room again once one goes: asked again, 3 is attached */
	remove_cgroup(&f, 1);
	assert_int_equal(apilat_rx_table_sweep(&t), 1);
	assert_int_equal(t.n_attached, 1);
	assert_int_equal(apilat_rx_table_ask(&t, 3), APILAT_RX_ATTACHED);
	assert_int_equal(f.map[3], APILAT_RX_ATTACHED);
	assert_int_equal(apilat_rx_table_ask(&t, 4), APILAT_RX_REFUSED);
	apilat_rx_table_fini(&t);
	assert_int_equal(f.links, 0);
}

/* a table as large as the kernel's map is never full of its asks; were it, the ask is forgotten, not lost */
static void test_full(void **state)
{
	struct fake f = { .alive = { 1, 2, 3 }, .n_alive = 3 };
	struct apilat_rx_table t;

	(void)state;
	assert_int_equal(apilat_rx_table_init(&t, 2, 2, &ops, &f), 0);
	assert_int_equal(apilat_rx_table_ask(&t, 1), APILAT_RX_ATTACHED);
	assert_int_equal(apilat_rx_table_ask(&t, 2), APILAT_RX_ATTACHED);
	f.map[3] = APILAT_RX_ASKED;
	assert_int_equal(apilat_rx_table_ask(&t, 3), 0);
	assert_int_equal(f.map[3], 0); /* asked again by its next connection */
	assert_int_equal(f.links, 2);
	apilat_rx_table_fini(&t);
}

static void test_sweep(void **state)
{
	struct fake f = { .alive = { 1, 2, 3, 4 }, .n_alive = 4 };
	struct apilat_rx_table t;
	uint64_t id;

	(void)state;
	assert_int_equal(apilat_rx_table_init(&t, 8, 8, &ops, &f), 0);
	for (id = 1; id <= 4; id++)
		assert_int_equal(apilat_rx_table_ask(&t, id), APILAT_RX_ATTACHED);
	assert_int_equal(apilat_rx_table_sweep(&t), 0);
	assert_int_equal(f.detached, 0);
	remove_cgroup(&f, 1);
	remove_cgroup(&f, 4);
	assert_int_equal(apilat_rx_table_sweep(&t), 2);
	assert_int_equal(f.detached, 2);
	assert_int_equal(f.map[1], 0);
	assert_int_equal(f.map[4], 0);
	assert_int_equal(f.map[2], APILAT_RX_ATTACHED);
	assert_int_equal(f.map[3], APILAT_RX_ATTACHED);
	assert_int_equal(t.gone, 2);
	assert_int_equal(t.n, 2);
	/* a removed cgroup made again gets another id; the old one, asked again, is gone */
	assert_int_equal(apilat_rx_table_ask(&t, 1), 0);
	apilat_rx_table_fini(&t);
	assert_int_equal(f.links, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attach_once),
		cmocka_unit_test(test_gone_before_attach),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_sweep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
