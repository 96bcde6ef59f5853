/* Unit tests for user/cli.c: what the command line puts into struct agent_config (every signal's options). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"

/* Parse a NULL-terminated argument list (copied: getopt and strtok may write to it). */
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
	/* usage errors go to stderr: keep the test output readable */
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	freopen("/dev/null", "w", stderr);
	ret = cli_parse(argc, argv, cfg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	return ret;
}

static int count_signals(const struct agent_config *cfg)
{
	int n = 0;

	while (cfg->signals[n])
		n++;
	return n;
}

static void test_repeated_signals_keep_the_first(void **state)
{
	char *const args[] = { "ksight", "run", "--signals", "oom", "--signals", ",oom,", NULL };
	struct agent_config cfg;
	int i;

	assert_int_equal(parse(&cfg, args), 0);
	/* every name is still a signal's name, and named once */
	assert_int_equal(count_signals(&cfg), 1);
	for (i = 0; cfg.signals[i]; i++)
		assert_string_equal(cfg.signals[i], "oom");
}

static void test_signal_names_outlive_argv(void **state)
{
	char *const args[] = { "ksight", "trace", "oom", NULL };
	struct agent_config cfg;

	assert_int_equal(parse(&cfg, args), 0);
	assert_int_equal(count_signals(&cfg), 1);
	assert_string_equal(cfg.signals[0], "oom");
}

static void test_bad_signals_are_usage_errors(void **state)
{
	char *const unknown[] = { "ksight", "run", "--signals", "oom,nope", NULL };
	char *const empty[] = { "ksight", "run", "--signals", ",", NULL };
	struct agent_config cfg;

	assert_int_equal(parse(&cfg, unknown), EXIT_USAGE);
	assert_int_equal(parse(&cfg, empty), EXIT_USAGE);
}

static void test_listen_is_validated_while_parsing(void **state)
{
	char *const bad_port[] = { "ksight", "run", "--listen", "127.0.0.1:99999", NULL };
	char *const no_port[] = { "ksight", "run", "--listen", "127.0.0.1", NULL };
	char *const good[] = { "ksight", "run", "--listen", "[::1]:9436", NULL };
	char *const any[] = { "ksight", "run", "--listen", ":0", NULL };
	struct agent_config cfg;

	assert_int_equal(parse(&cfg, bad_port), EXIT_USAGE);
	assert_int_equal(parse(&cfg, no_port), EXIT_USAGE);
	assert_int_equal(parse(&cfg, good), 0);
	assert_string_equal(cfg.listen, "[::1]:9436");
	assert_int_equal(parse(&cfg, any), 0);
}

/* every long option has its own value: --kubelet-root and --trace-rate once shared one */
static void test_long_options_are_distinct(void **state)
{
	char *const args[] = { "ksight", "trace", "--kubelet-root", "/srv/kubelet", "--trace-rate", "7", NULL };
	char *const relative[] = { "ksight", "run", "--kubelet-root", "srv", NULL };
	struct agent_config cfg;

	assert_int_equal(parse(&cfg, args), 0);
	assert_string_equal(cfg.kubelet_root, "/srv/kubelet");
	assert_int_equal(cfg.trace_rate, 7);
	assert_int_equal(parse(&cfg, relative), EXIT_USAGE);
}

/* --events-log FILE|-: `ksight run` only, a value needed, not empty */
static void test_events_log(void **state)
{
	struct agent_config cfg;

	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "run", NULL }), 0);
	assert_null(cfg.events_log);
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "run", "--events-log", "/var/log/ksight-events.log",
						      "--no-k8s", NULL }), 0);
	assert_string_equal(cfg.events_log, "/var/log/ksight-events.log");
	assert_true(cfg.no_k8s);
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "run", "--events-log=-", NULL }), 0);
	assert_string_equal(cfg.events_log, "-");
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "run", "--events-log", "", NULL }), EXIT_USAGE);
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "run", "--events-log", NULL }), EXIT_USAGE);
	/* trace and probes post no Events */
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "--events-log", "-", NULL }), EXIT_USAGE);
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "probes", "--events-log", "-", NULL }), EXIT_USAGE);
}

/* ---- netdrop's trace options ---- */
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

/* ---- apilat's endpoints ---- */
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

/* --node-conditions: off by default, run only, with fserr and the API */
static void test_node_conditions(void **state)
{
	char *const off[] = { "ksight", "run", NULL };
	char *const on[] = { "ksight", "run", "--node-conditions", NULL };
	char *const with_fserr[] = { "ksight", "run", "--signals", "oom,fserr", "--node-conditions", NULL };
	char *const without_fserr[] = { "ksight", "run", "--node-conditions", "--signals", "oom", NULL };
	char *const no_k8s[] = { "ksight", "run", "--node-conditions", "--no-k8s", NULL };
	char *const trace[] = { "ksight", "trace", "--node-conditions", NULL };
	struct agent_config cfg;

	assert_int_equal(parse(&cfg, off), 0);
	assert_false(cfg.node_conditions);
	assert_int_equal(parse(&cfg, on), 0);
	assert_true(cfg.node_conditions);
	assert_int_equal(parse(&cfg, with_fserr), 0);
	assert_true(cfg.node_conditions);
	assert_int_equal(parse(&cfg, without_fserr), EXIT_USAGE);
	assert_int_equal(parse(&cfg, no_k8s), EXIT_USAGE);
	assert_int_equal(parse(&cfg, trace), EXIT_USAGE);
}

static void test_node_conditions_in_help(void **state)
{
	char *const help[] = { "ksight", "run", "--help", NULL };
	struct agent_config cfg;
	char buf[8192];
	FILE *f = tmpfile();
	int saved = dup(STDOUT_FILENO);
	size_t n;

	assert_non_null(f);
	fflush(stdout);
	dup2(fileno(f), STDOUT_FILENO);
	assert_int_equal(parse(&cfg, help), CLI_EXIT_OK);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	assert_non_null(strstr(buf, "--node-conditions"));
	assert_non_null(strstr(buf, "KsightFilesystemCorruption"));
}

static void test_apilat_durations(void **state)
{
	struct agent_config cfg;

	(void)state;
	/* defaults: --slow 100 ms, the p99 Event off, its window 5 min */
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "apilat", NULL }), 0);
	assert_int_equal(cfg.apilat_slow_ns, 100000000ULL);
	assert_int_equal(cfg.apilat_p99_threshold_ns, 0);
	assert_int_equal(cfg.apilat_window_ns, 300000000000ULL);
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "apilat", "--slow", "250ms", NULL }), 0);
	assert_int_equal(cfg.apilat_slow_ns, 250000000ULL);
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "apilat", "--slow", "500us", NULL }), 0);
	assert_int_equal(cfg.apilat_slow_ns, 500000ULL);
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "apilat", "--slow", "0", NULL }), 0);
	assert_int_equal(cfg.apilat_slow_ns, 0);
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "run", "--apilat-p99-threshold", "1s",
						      "--apilat-window", "30s", NULL }), 0);
	assert_int_equal(cfg.apilat_p99_threshold_ns, 1000000000ULL);
	assert_int_equal(cfg.apilat_window_ns, 30000000000ULL);
	assert_int_equal(parse(&cfg, (char *const[]){ "ksight", "run", "--apilat-p99-threshold", "150ms",
						      "--apilat-window", "2m", NULL }), 0);
	assert_int_equal(cfg.apilat_p99_threshold_ns, 150000000ULL);
	assert_int_equal(cfg.apilat_window_ns, 120000000000ULL);
}

static void test_apilat_durations_rejected(void **state)
{
	struct agent_config cfg;

	(void)state;
	assert_int_not_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "apilat", "--slow", "100", NULL }), 0);
	assert_int_not_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "apilat", "--slow", "fast", NULL }), 0);
	assert_int_not_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "apilat", "--slow", "-1s", NULL }), 0);
	assert_int_not_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "apilat", "--slow", "1h2", NULL }), 0);
	assert_int_not_equal(parse(&cfg, (char *const[]){ "ksight", "run", "--slow", "1s", NULL }), 0);
	assert_int_not_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "--apilat-p99-threshold", "1s", NULL }), 0);
	assert_int_not_equal(parse(&cfg, (char *const[]){ "ksight", "trace", "--apilat-window", "1m", NULL }), 0);
	/* a window under a second cannot be cut in ticks that mean anything */
	assert_int_not_equal(parse(&cfg, (char *const[]){ "ksight", "run", "--apilat-window", "500ms", NULL }), 0);
	assert_int_not_equal(parse(&cfg, (char *const[]){ "ksight", "run", "--apilat-p99-threshold", "0", NULL }), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repeated_signals_keep_the_first),
		cmocka_unit_test(test_signal_names_outlive_argv),
		cmocka_unit_test(test_bad_signals_are_usage_errors),
		cmocka_unit_test(test_listen_is_validated_while_parsing),
		cmocka_unit_test(test_long_options_are_distinct),
		cmocka_unit_test(test_trace_options),
		cmocka_unit_test(test_bad_trace_rates),
		cmocka_unit_test(test_trace_options_only_for_trace),
		cmocka_unit_test(test_apiserver_repeatable),
		cmocka_unit_test(test_apiserver_rejected),
		cmocka_unit_test(test_apiserver_too_many),
		cmocka_unit_test(test_node_conditions),
		cmocka_unit_test(test_node_conditions_in_help),
		cmocka_unit_test(test_events_log),
		cmocka_unit_test(test_apilat_durations),
		cmocka_unit_test(test_apilat_durations_rejected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
