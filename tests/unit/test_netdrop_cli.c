/* The netdrop trace options of user/cli.c: --trace-rate, --reason, --namespace, --pod. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"

static int parse(struct agent_config *cfg, char *const *args)
{
	static char store[16][128];
	static char *argv[17];
	int argc = 0, saved, ret;

	while (args[argc]) {
		snprintf(store[argc], sizeof(store[argc]), "%s", args[argc]);
		argv[argc] = store[argc];
		argc++;
	}
	argv[argc] = NULL;
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	freopen("/dev/null", "w", stderr);
	ret = cli_parse(argc, argv, cfg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	return ret;
}

static void test_trace_options(void **state)
{
	struct agent_config cfg;

	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "netdrop", "--trace-rate", "5",
						      "--reason", "NETFILTER_DROP", "--namespace", "web",
						      "--pod", "web-0", NULL }), 0);
	assert_int_equal(cfg.trace_rate, 5);
	assert_string_equal(cfg.trace_reason, "NETFILTER_DROP");
	assert_string_equal(cfg.trace_namespace, "web");
	assert_string_equal(cfg.trace_pod, "web-0");
	assert_string_equal(cfg.signals[0], "netdrop");

	/* defaults: 0 means the signal's default rate, no filters */
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "netdrop", NULL }), 0);
	assert_int_equal(cfg.trace_rate, 0);
	assert_null(cfg.trace_reason);
	assert_null(cfg.trace_namespace);
	assert_null(cfg.trace_pod);
}

static void test_bad_trace_rates(void **state)
{
	static const char *const bad[] = { "0", "-1", "abc", "5x", "", "1000001", "99999999999999999999" };
	struct agent_config cfg;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "--trace-rate", (char *)bad[i], NULL }),
				 EXIT_USAGE);
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "--trace-rate", "1000000", NULL }), 0);
	assert_int_equal(cfg.trace_rate, 1000000);
}

static void test_trace_options_only_for_trace(void **state)
{
	struct agent_config cfg;

	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "run", "--trace-rate", "5", NULL }), EXIT_USAGE);
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "run", "--reason", "NO_SOCKET", NULL }), EXIT_USAGE);
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "probes", "--pod", "x", NULL }), EXIT_USAGE);
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "--namespace", "", NULL }), EXIT_USAGE);
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "--reason", NULL }), EXIT_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trace_options),
		cmocka_unit_test(test_bad_trace_rates),
		cmocka_unit_test(test_trace_options_only_for_trace),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
