/*
 * The small CO-RE copy of a kernel BTF, on a made-up kernel: a struct keeps
 * only the members the object's own definition has (through anonymous
 * members and named members of anonymous types), at the kernel's offsets;
 * a pointer keeps its target only when the object names it; enums keep
 * every value; types the object does not name are left out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/btf.h>

#include "core_btf.h"

/*
 * The kernel: struct task { int pid; int unused; union { int a; int b; };
 * struct other *ptr_other; struct { int y; int z; } named_anon; };
 * struct other { int x; }; enum color { RED, BLUE = -1 }; struct unrelated { int q; }.
 */
static struct btf *kernel_btf(void)
{
	struct btf *b = btf__new_empty();

	assert_non_null(b);
	assert_int_equal(btf__add_int(b, "int", 4, BTF_INT_SIGNED), 1);
	assert_int_equal(btf__add_union(b, NULL, 4), 2);
	assert_int_equal(btf__add_field(b, "a", 1, 0, 0), 0);
	assert_int_equal(btf__add_field(b, "b", 1, 0, 0), 0);
	assert_int_equal(btf__add_struct(b, "other", 4), 3);
	assert_int_equal(btf__add_field(b, "x", 1, 0, 0), 0);
	assert_int_equal(btf__add_ptr(b, 3), 4);
	assert_int_equal(btf__add_struct(b, NULL, 8), 5);
	assert_int_equal(btf__add_field(b, "y", 1, 0, 0), 0);
	assert_int_equal(btf__add_field(b, "z", 1, 32, 0), 0);
	assert_int_equal(btf__add_struct(b, "task", 32), 6);
	assert_int_equal(btf__add_field(b, "pid", 1, 0, 0), 0);
	assert_int_equal(btf__add_field(b, "unused", 1, 32, 0), 0);
	assert_int_equal(btf__add_field(b, NULL, 2, 64, 0), 0);
	assert_int_equal(btf__add_field(b, "ptr_other", 4, 128, 0), 0);
	assert_int_equal(btf__add_field(b, "named_anon", 5, 192, 0), 0);
	assert_int_equal(btf__add_enum(b, "color", 4), 7);
	assert_int_equal(btf__add_enum_value(b, "RED", 0), 0);
	assert_int_equal(btf__add_enum_value(b, "BLUE", -1), 0);
	assert_int_equal(btf__add_struct(b, "unrelated", 4), 8);
	assert_int_equal(btf__add_field(b, "q", 1, 0, 0), 0);
	return b;
}

/* The object: struct task___v2 { int pid; union { int b; }; int *ptr_other; struct { int z; } named_anon; }; enum color. */
static struct btf *local_btf(void)
{
	struct btf *b = btf__new_empty();

	assert_non_null(b);
	assert_int_equal(btf__add_int(b, "int", 4, BTF_INT_SIGNED), 1);
	assert_int_equal(btf__add_union(b, NULL, 4), 2);
	assert_int_equal(btf__add_field(b, "b", 1, 0, 0), 0);
	assert_int_equal(btf__add_ptr(b, 1), 3);
	assert_int_equal(btf__add_struct(b, NULL, 4), 4);
	assert_int_equal(btf__add_field(b, "z", 1, 0, 0), 0);
	assert_int_equal(btf__add_struct(b, "task___v2", 24), 5);
	assert_int_equal(btf__add_field(b, "pid", 1, 0, 0), 0);
	assert_int_equal(btf__add_field(b, NULL, 2, 32, 0), 0);
	assert_int_equal(btf__add_field(b, "ptr_other", 3, 64, 0), 0);
	assert_int_equal(btf__add_field(b, "named_anon", 4, 128, 0), 0);
	assert_int_equal(btf__add_enum(b, "color", 4), 6);
	assert_int_equal(btf__add_enum_value(b, "RED", 0), 0);
	return b;
}

static const struct btf_type *member_type(const struct btf *b, const struct btf_type *t, const char *name,
					  unsigned int *bit_offset)
{
	const struct btf_member *m = btf_members(t);
	int i;

	for (i = 0; i < btf_vlen(t); i++, m++)
		if (!strcmp(btf__name_by_offset(b, m->name_off), name)) {
			*bit_offset = btf_member_bit_offset(t, i);
			return btf__type_by_id(b, m->type);
		}
	return NULL;
}

static void test_copy_keeps_what_the_object_reads(void **state)
{
	struct btf *kernel = kernel_btf(), *local = local_btf(), *copy = NULL;
	const struct btf *locals[1] = { local };
	const struct btf_type *task, *t;
	unsigned int off;
	int id;

	assert_int_equal(core_btf_build(kernel, locals, 1, &copy), 0);
	assert_non_null(copy);
	id = btf__find_by_name_kind(copy, "task", BTF_KIND_STRUCT);
	assert_true(id > 0);
	task = btf__type_by_id(copy, id);
	assert_int_equal(task->size, 32);
	/* pid, the anonymous union, ptr_other, named_anon: not "unused" */
	assert_int_equal(btf_vlen(task), 4);
	assert_null(member_type(copy, task, "unused", &off));
	t = member_type(copy, task, "pid", &off);
	assert_non_null(t);
	assert_int_equal(off, 0);
	/* the anonymous union at the kernel's offset, with only b */
	t = member_type(copy, task, "", &off);
	assert_non_null(t);
	assert_true(btf_is_union(t));
	assert_int_equal(off, 64);
	assert_int_equal(btf_vlen(t), 1);
	assert_string_equal(btf__name_by_offset(copy, btf_members(t)->name_off), "b");
	/* a pointer to a struct the object never names points to void */
	t = member_type(copy, task, "ptr_other", &off);
	assert_non_null(t);
	assert_true(btf_is_ptr(t));
	assert_int_equal(t->type, 0);
	assert_int_equal(off, 128);
	/* a named member of an anonymous struct type: its members as the object has them */
	t = member_type(copy, task, "named_anon", &off);
	assert_non_null(t);
	assert_int_equal(off, 192);
	assert_int_equal(btf_vlen(t), 1);
	assert_non_null(member_type(copy, t, "z", &off));
	assert_int_equal(off, 32);
	/* an enum the object names keeps every value, signed ones included */
	id = btf__find_by_name_kind(copy, "color", BTF_KIND_ENUM);
	assert_true(id > 0);
	t = btf__type_by_id(copy, id);
	assert_int_equal(btf_vlen(t), 2);
	assert_int_equal(btf_enum(t)[1].val, -1);
	assert_true(btf_kflag(t));
	/* what the object does not name is not there */
	assert_true(btf__find_by_name_kind(copy, "other", BTF_KIND_STRUCT) < 0);
	assert_true(btf__find_by_name_kind(copy, "unrelated", BTF_KIND_STRUCT) < 0);
	btf__free(copy);
	btf__free(kernel);
	btf__free(local);
}

/* The copy as a file libbpf parses back to the same types. */
static void test_copy_as_a_file(void **state)
{
	struct btf *kernel = kernel_btf(), *local = local_btf(), *copy = NULL, *back;
	const struct btf *locals[1] = { local };
	char path[64];
	int fd;

	assert_int_equal(core_btf_build(kernel, locals, 1, &copy), 0);
	fd = core_btf_to_file(copy, path, sizeof(path));
	assert_true(fd >= 0);
	back = btf__parse(path, NULL);
	assert_non_null(back);
	assert_int_equal(btf__type_cnt(back), btf__type_cnt(copy));
	assert_true(btf__find_by_name_kind(back, "task", BTF_KIND_STRUCT) > 0);
	btf__free(back);
	close(fd);
	btf__free(copy);
	btf__free(kernel);
	btf__free(local);
}

/* A broken BTF file (--btf): a member of a type id past the end is refused, not read. */
static void test_broken_kernel_btf_is_refused(void **state)
{
	struct btf *kernel = btf__new_empty(), *local = local_btf(), *copy = NULL;
	const struct btf *locals[1] = { local };

	assert_non_null(kernel);
	assert_int_equal(btf__add_int(kernel, "int", 4, BTF_INT_SIGNED), 1);
	assert_int_equal(btf__add_struct(kernel, "task", 8), 2);
	assert_int_equal(btf__add_field(kernel, "pid", 100000, 0, 0), 0);
	assert_true(core_btf_build(kernel, locals, 1, &copy) < 0);
	assert_null(copy);
	btf__free(kernel);
	btf__free(local);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_keeps_what_the_object_reads),
		cmocka_unit_test(test_copy_as_a_file),
		cmocka_unit_test(test_broken_kernel_btf_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
