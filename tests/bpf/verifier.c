/*
 * Every program of every BPF object, every variant included (kprobe and
 * fentry ones too), must pass the verifier on this kernel. Each program is
 * loaded on its own, in a fresh object, so one failure names one program.
 * And cheaply: the verifier may walk at most VERIFIED_PER_INSN instructions
 * per instruction of the program (the kernel counts them: verified_insns).
 * Its time is start-up time, and a count far above the program's length
 * means paths that never merge (a branchy index computation once cost 42×).
 *
 * usage: verifier OBJ.bpf.o...
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define VERIFIED_PER_INSN 12

struct prog_case {
	const char *object;
	char *program;
	char name[256];
};

static char verifier_log[1 << 16];
static size_t verifier_log_len;

static int capture_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	int n;

	if (level == LIBBPF_DEBUG || verifier_log_len >= sizeof(verifier_log) - 1)
		return 0;
	n = vsnprintf(verifier_log + verifier_log_len, sizeof(verifier_log) - verifier_log_len, fmt, ap);
	if (n > 0)
		verifier_log_len += (size_t)n;
	if (verifier_log_len > sizeof(verifier_log) - 1)
		verifier_log_len = sizeof(verifier_log) - 1;
	return 0;
}

static void test_program_loads(void **state)
{
	struct prog_case *pc = *state;
	struct bpf_object *obj;
	struct bpf_program *prog;
	int err;

	obj = bpf_object__open_file(pc->object, NULL);
	assert_non_null(obj);
	bpf_object__for_each_program(prog, obj)
		bpf_program__set_autoload(prog, strcmp(bpf_program__name(prog), pc->program) == 0);
	verifier_log_len = 0;
	verifier_log[0] = '\0';
	err = bpf_object__load(obj);
	if (err)
		print_error("%s: %s: load failed: %s\n%s\n", pc->object, pc->program, strerror(-err),
			    verifier_log);
	if (!err) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info), insns;

		memset(&info, 0, sizeof(info));
		prog = bpf_object__find_program_by_name(obj, pc->program);
		err = bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len);
		insns = info.xlated_prog_len / 8;
		if (!err && info.verified_insns > VERIFIED_PER_INSN * insns) {
			print_error("%s: %s: the verifier walked %u instructions for %u (more than %d each)\n",
				    pc->object, pc->program, info.verified_insns, insns, VERIFIED_PER_INSN);
			err = -E2BIG;
		}
	}
	bpf_object__close(obj);
	assert_int_equal(err, 0);
}

int main(int argc, char **argv)
{
	struct CMUnitTest tests[256];
	struct prog_case cases[256];
	size_t n = 0;
	int i;

	libbpf_set_print(capture_print);
	for (i = 1; i < argc; i++) {
		struct bpf_object *obj = bpf_object__open_file(argv[i], NULL);
		struct bpf_program *prog;

		if (!obj) {
			fprintf(stderr, "verifier: cannot open %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		bpf_object__for_each_program(prog, obj) {
			struct prog_case *pc = &cases[n];

			if (n == sizeof(cases) / sizeof(cases[0]))
				break;
			pc->object = argv[i];
			pc->program = strdup(bpf_program__name(prog));
			snprintf(pc->name, sizeof(pc->name), "%s:%s (%s)", strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i],
				 pc->program, bpf_program__section_name(prog));
			tests[n] = (struct CMUnitTest){ .name = pc->name, .test_func = test_program_loads,
							.initial_state = pc };
			n++;
		}
		bpf_object__close(obj);
	}
	if (n == 0) {
		fprintf(stderr, "verifier: no programs found\n");
		return 1;
	}
	return _cmocka_run_group_tests("bpf_verifier", tests, n, NULL, NULL);
}
