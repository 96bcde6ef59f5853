/*
 * Unit tests for user/kernel/btf_index.c: the same answers as libbpf's
 * btf__find_by_name_kind(), on BTF blobs big enough to be indexed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <bpf/btf.h>

#include "btf_index.h"

#define N_NAMES 3000

/*
 * Typedefs t0..t(N-1) and structs s0..s(N-1) (the index's threshold passed),
 * a typedef and a struct both named "both", two typedefs named "twice" (the
 * first id wins), and an anonymous struct.
 */
static struct btf *big_btf(int *twice_first)
{
	struct btf *btf = btf__new_empty();
	char name[32];
	int i, id_int;

	assert_non_null(btf);
	id_int = btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
	assert_true(id_int > 0);
	for (i = 0; i < N_NAMES; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		assert_true(btf__add_typedef(btf, name, id_int) > 0);
		snprintf(name, sizeof(name), "s%d", i);
		assert_true(btf__add_struct(btf, name, 4) > 0);
	}
	assert_true(btf__add_typedef(btf, "both", id_int) > 0);
	assert_true(btf__add_struct(btf, "both", 8) > 0);
	*twice_first = btf__add_typedef(btf, "twice", id_int);
	assert_true(*twice_first > 0);
	assert_true(btf__add_typedef(btf, "twice", id_int) > *twice_first);
	assert_true(btf__add_struct(btf, NULL, 4) > 0);
	assert_true(btf__type_cnt(btf) >= BTF_INDEX_MIN_TYPES);
	return btf;
}

static void same_as_libbpf(const struct btf *btf, const char *name, __u32 kind)
{
	int want = btf__find_by_name_kind(btf, name, kind), got;

	/* twice: the first lookup of a kind is the linear one, the second the index's */
	got = btf_find(btf, name, kind);
	assert_int_equal(got, want);
	got = btf_find(btf, name, kind);
	assert_int_equal(got, want);
}

static void test_same_answers(void **state)
{
	int twice, i;
	struct btf *btf = big_btf(&twice);
	char name[32];

	btf_index_use(btf);
	for (i = 0; i < N_NAMES; i += 7) {
		snprintf(name, sizeof(name), "t%d", i);
		same_as_libbpf(btf, name, BTF_KIND_TYPEDEF);
		snprintf(name, sizeof(name), "s%d", i);
		same_as_libbpf(btf, name, BTF_KIND_STRUCT);
		/* the name of the other kind: not found */
		assert_int_equal(btf_find(btf, name, BTF_KIND_TYPEDEF), -ENOENT);
	}
	same_as_libbpf(btf, "both", BTF_KIND_TYPEDEF);
	same_as_libbpf(btf, "both", BTF_KIND_STRUCT);
	assert_int_not_equal(btf_find(btf, "both", BTF_KIND_TYPEDEF), btf_find(btf, "both", BTF_KIND_STRUCT));
	assert_int_equal(btf_find(btf, "twice", BTF_KIND_TYPEDEF), twice);
	assert_int_equal(btf_find(btf, "no_such_name", BTF_KIND_TYPEDEF), -ENOENT);
	assert_int_equal(btf_find(btf, "", BTF_KIND_STRUCT), btf__find_by_name_kind(btf, "", BTF_KIND_STRUCT));
	assert_int_equal(btf_find(btf, "t1", BTF_KIND_ENUM), -ENOENT);
	assert_int_equal(btf_find(btf, "void", BTF_KIND_TYPEDEF), btf__find_by_name_kind(btf, "void", BTF_KIND_TYPEDEF));
	/* kind 0: libbpf's answer every time */
	assert_int_equal(btf_find(btf, "t1", BTF_KIND_UNKN), btf__find_by_name_kind(btf, "t1", BTF_KIND_UNKN));
	assert_int_equal(btf_find(btf, "t1", BTF_KIND_UNKN), btf__find_by_name_kind(btf, "t1", BTF_KIND_UNKN));
	btf_index_forget(btf);
	btf__free(btf);
}

/* Functions: many linear lookups before their (costly) table, then the table; the same answers. */
static void test_functions(void **state)
{
	struct btf *btf = btf__new_empty();
	char name[32];
	int i, proto, ids[64];

	assert_non_null(btf);
	proto = btf__add_func_proto(btf, 0);
	assert_true(proto > 0);
	for (i = 0; i < BTF_INDEX_MIN_TYPES; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		assert_true(btf__add_func(btf, name, BTF_FUNC_GLOBAL, proto) > 0);
	}
	btf_index_use(btf);
	for (i = 0; i < 64; i++) {
		snprintf(name, sizeof(name), "f%d", i * 61);
		ids[i] = btf_find(btf, name, BTF_KIND_FUNC);
		assert_int_equal(ids[i], btf__find_by_name_kind(btf, name, BTF_KIND_FUNC));
		assert_true(ids[i] > 0);
	}
	/* after the table: the same ids again, and misses */
	for (i = 0; i < 64; i++) {
		snprintf(name, sizeof(name), "f%d", i * 61);
		assert_int_equal(btf_find(btf, name, BTF_KIND_FUNC), ids[i]);
	}
	assert_int_equal(btf_find(btf, "no_such_function", BTF_KIND_FUNC), -ENOENT);
	assert_int_equal(btf_find(btf, "f1", BTF_KIND_STRUCT), -ENOENT);
	btf_index_forget(btf);
	btf__free(btf);
}

/* Only the BTF named is indexed; forgotten, another one can be. */
static void test_forget_then_another(void **state)
{
	int twice_a;
	struct btf *a = big_btf(&twice_a), *b;

	btf_index_use(a);
	assert_int_equal(btf_find(a, "t5", BTF_KIND_TYPEDEF), btf__find_by_name_kind(a, "t5", BTF_KIND_TYPEDEF));
	assert_int_equal(btf_find(a, "t6", BTF_KIND_TYPEDEF), btf__find_by_name_kind(a, "t6", BTF_KIND_TYPEDEF));
	/* a second big BTF while a is indexed: answered the linear way, rightly */
	b = btf__new_empty();
	assert_non_null(b);
	assert_true(btf__add_int(b, "int", 4, 0) > 0);
	while (btf__type_cnt(b) < BTF_INDEX_MIN_TYPES)
		assert_true(btf__add_typedef(b, "x", 1) > 0);
	assert_true(btf__add_typedef(b, "t5", 1) > 0);
	assert_int_equal(btf_find(b, "t5", BTF_KIND_TYPEDEF), btf__find_by_name_kind(b, "t5", BTF_KIND_TYPEDEF));
	assert_int_equal(btf_find(b, "t5", BTF_KIND_TYPEDEF), (int)btf__type_cnt(b) - 1);
	btf_index_forget(a);
	btf__free(a);
	/* b is not indexed until named, and then answers the same */
	assert_int_equal(btf_find(b, "x", BTF_KIND_TYPEDEF), 2);
	btf_index_use(b);
	assert_int_equal(btf_find(b, "t5", BTF_KIND_TYPEDEF), (int)btf__type_cnt(b) - 1);
	assert_int_equal(btf_find(b, "x", BTF_KIND_TYPEDEF), 2);
	btf_index_forget(b);
	btf__free(b);
}

/* A small BTF is searched the linear way (not indexed: nothing to forget). */
static void test_small_btf(void **state)
{
	struct btf *btf = btf__new_empty();

	assert_non_null(btf);
	assert_true(btf__add_int(btf, "int", 4, 0) > 0);
	assert_true(btf__add_typedef(btf, "u", 1) > 0);
	assert_int_equal(btf_find(btf, "u", BTF_KIND_TYPEDEF), 2);
	assert_int_equal(btf_find(btf, "u", BTF_KIND_TYPEDEF), 2);
	assert_int_equal(btf_find(btf, "v", BTF_KIND_TYPEDEF), -ENOENT);
	btf__free(btf);
}

struct worker {
	const struct btf *btf;
	int bad;
};

static void *lookups(void *arg)
{
	struct worker *w = arg;
	char name[32];
	int i;

	for (i = 0; i < N_NAMES; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		w->bad += btf_find(w->btf, name, BTF_KIND_TYPEDEF) != btf__find_by_name_kind(w->btf, name, BTF_KIND_TYPEDEF);
	}
	return NULL;
}

/* Loader threads plan side by side: the first lookups race to build the table. */
static void test_threads(void **state)
{
	int twice, i;
	struct btf *btf = big_btf(&twice);
	struct worker w[4];
	pthread_t t[4];

	btf_index_use(btf);
	for (i = 0; i < 4; i++) {
		w[i] = (struct worker){ .btf = btf };
		assert_int_equal(pthread_create(&t[i], NULL, lookups, &w[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].bad, 0);
	}
	btf_index_forget(btf);
	btf__free(btf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_answers),
		cmocka_unit_test(test_functions),
		cmocka_unit_test(test_forget_then_another),
		cmocka_unit_test(test_small_btf),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
