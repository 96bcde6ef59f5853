/* The apilat option of user/cli.c: --apiserver, repeatable, for run and trace. */
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
	static char store[48][128];
	static char *argv[49];
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

static void test_apiserver_repeatable(void **state)
{
	struct agent_config cfg;

	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "run", "--apiserver", "10.96.0.1:443",
						      "--apiserver", "[::1]:6443", NULL }), 0);
	assert_string_equal(cfg.apiservers[0], "10.96.0.1:443");
	assert_string_equal(cfg.apiservers[1], "[::1]:6443");
	assert_null(cfg.apiservers[2]);
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "apilat", "--apiserver", "127.0.0.1:1", NULL }),
			 0);
	assert_string_equal(cfg.apiservers[0], "127.0.0.1:1");
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "run", NULL }), 0);
	assert_null(cfg.apiservers[0]);
}

static void test_apiserver_rejected(void **state)
{
	struct agent_config cfg;

	assert_int_not_equal(parse(&cfg, (char *const[]){ "ksight", "run", "--apiserver", "::1:443", NULL }), 0);
	assert_int_not_equal(parse(&cfg, (char *const[]){ "ksight", "run", "--apiserver", "kubernetes:443", NULL }), 0);
	assert_int_not_equal(parse(&cfg, (char *const[]){ "ksight", "run", "--apiserver", "10.0.0.1", NULL }), 0);
	assert_int_not_equal(parse(&cfg, (char *const[]){ "ksight", "run", "--apiserver", NULL }), 0);
	assert_int_not_equal(parse(&cfg, (char *const[]){ "ksight", "probes", "--apiserver", "10.0.0.1:443", NULL }), 0);
}

static void test_apiserver_too_many(void **state)
{
	char *args[2 + 2 * (AGENT_MAX_LIST + 1) + 1];
	struct agent_config cfg;
	int i, n = 0;

	args[n++] = "ksight";
	args[n++] = "run";
	for (i = 0; i < AGENT_MAX_LIST; i++) {
		args[n++] = "--apiserver";
		args[n++] = "10.0.0.1:443";
	}
	args[n] = NULL;
	assert_int_equal(parse(&cfg, args), 0);
	assert_null(cfg.apiservers[AGENT_MAX_LIST]);
	args[n++] = "--apiserver";
	args[n++] = "10.0.0.2:443";
	args[n] = NULL;
	assert_int_not_equal(parse(&cfg, args), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apiserver_repeatable),
		cmocka_unit_test(test_apiserver_rejected),
		cmocka_unit_test(test_apiserver_too_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
