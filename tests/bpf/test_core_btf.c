/*
 * The small CO-RE copy of the kernel BTF (user/kernel/core_btf.c) on the real
 * kernel (root): every signal's object loads against the copy alone (the
 * whole BTF is made unreachable, so the loader cannot fall back to it), and
 * every program comes out of relocation instruction for instruction as
 * against the whole kernel BTF. The copy is a small fraction of the kernel's.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "agent.h"
#include "core_btf.h"
#include "kernel_features.h"
#include "loader.h"

static int no_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

static int n_signals(void)
{
	int n = 0;

	while (ksight_signals[n])
		n++;
	return n;
}

/* A map's fd in an ld_imm64 differs from load to load; nothing else may. */
static bool is_map_fd_load(const struct bpf_insn *insn)
{
	return insn->code == (BPF_LD | BPF_IMM | BPF_DW) &&
	       (insn->src_reg == BPF_PSEUDO_MAP_FD || insn->src_reg == BPF_PSEUDO_MAP_VALUE);
}

static void assert_same_programs(struct bpf_object *a, struct bpf_object *b, const char *signal)
{
	struct bpf_program *pa;
	int compared = 0;

	bpf_object__for_each_program(pa, a) {
		struct bpf_program *pb = bpf_object__find_program_by_name(b, bpf_program__name(pa));
		const struct bpf_insn *ia, *ib;
		size_t n, i;

		assert_non_null(pb);
		assert_int_equal(bpf_program__autoload(pa), bpf_program__autoload(pb));
		if (!bpf_program__autoload(pa))
			continue;
		n = bpf_program__insn_cnt(pa);
		assert_int_equal(n, bpf_program__insn_cnt(pb));
		ia = bpf_program__insns(pa);
		ib = bpf_program__insns(pb);
		for (i = 0; i < n; i++) {
			bool same = ia[i].code == ib[i].code && ia[i].dst_reg == ib[i].dst_reg &&
				    ia[i].src_reg == ib[i].src_reg && ia[i].off == ib[i].off &&
				    (ia[i].imm == ib[i].imm || is_map_fd_load(&ia[i]));

			if (!same)
				fail_msg("%s/%s: instruction %zu differs (code %#x imm %d vs %d, off %d vs %d)", signal,
					 bpf_program__name(pa), i, ia[i].code, ia[i].imm, ib[i].imm, ia[i].off, ib[i].off);
		}
		compared++;
	}
	assert_true(compared > 0);
}

static void test_copy_relocates_like_the_whole_btf(void **state)
{
	struct agent *agent = calloc(1, sizeof(*agent));
	struct kernel_features kf;
	char path[64];
	int fd, i, n = n_signals();

	assert_non_null(agent);
	assert_int_equal(kernel_features_open(&kf, NULL), 0);
	agent->btf = kernel_features_btf(&kf);
	fd = signal_core_btf((const struct signal_def *const *)ksight_signals, n, agent->btf, path, sizeof(path));
	assert_true(fd >= 0);
	for (i = 0; i < n; i++) {
		struct signal_runtime small = { .def = ksight_signals[i], .agent = agent };
		struct signal_runtime whole = { .def = ksight_signals[i], .agent = agent };
		/* no whole BTF to fall back to: the copy alone must do */
		struct load_options lo_small = { .btf_path = "/nonexistent/vmlinux", .core_btf_path = path, .kf = &kf };
		struct load_options lo_whole = { .kf = &kf };

		if (signal_load(&small, &lo_small))
			fail_msg("%s does not load against the copy: %s", ksight_signals[i]->name, small.error);
		assert_int_equal(signal_load(&whole, &lo_whole), 0);
		assert_same_programs(small.obj, whole.obj, ksight_signals[i]->name);
		signal_unload(&small);
		signal_unload(&whole);
	}
	close(fd);
	kernel_features_close(&kf);
	free(agent);
}

/* The point of the copy: a few thousand types at most, not the kernel's 100,000. */
static void test_copy_is_small(void **state)
{
	struct kernel_features kf;
	struct btf *copy;
	char path[64];
	int fd;

	assert_int_equal(kernel_features_open(&kf, NULL), 0);
	fd = signal_core_btf((const struct signal_def *const *)ksight_signals, n_signals(), kernel_features_btf(&kf),
			     path, sizeof(path));
	assert_true(fd >= 0);
	copy = btf__parse(path, NULL);
	assert_non_null(copy);
	assert_true(btf__type_cnt(copy) > 10);
	assert_true(btf__type_cnt(copy) * 20 < btf__type_cnt(kernel_features_btf(&kf)));
	btf__free(copy);
	close(fd);
	kernel_features_close(&kf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_relocates_like_the_whole_btf),
		cmocka_unit_test(test_copy_is_small),
	};

	libbpf_set_print(no_print);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
