/*
 * The agent's runtime table holds AGENT_MAX_SIGNALS: with more signals
 * registered (this test's own ksight_signals table, in place of the archive's,
 * of oom copies) `ksight probes` starts the first AGENT_MAX_SIGNALS, names
 * each one left out in a warning, and writes nothing past the table (the
 * asan build of this test says so); `--signals` naming more than the
 * configuration's list holds is refused. Root: every copy loads on the real
 * kernel.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "agent.h"
#include "cli.h"
#include "signal_def.h"

extern const struct signal_def oom_signal;

#define N_OFFERED (AGENT_MAX_SIGNALS + 3)

static struct signal_def copies[N_OFFERED];
static char names[N_OFFERED][16];

/* Defined here, the archive's signals.c (its only other symbol is signal_find) is not linked. */
const struct signal_def *const ksight_signals[] = {
	&copies[0], &copies[1], &copies[2], &copies[3], &copies[4], &copies[5], &copies[6],
	&copies[7], &copies[8], &copies[9], &copies[10], &copies[11], &copies[12], &copies[13],
	&copies[14], &copies[15], &copies[16], &copies[17], &copies[18], NULL,
};

_Static_assert(sizeof(ksight_signals) / sizeof(ksight_signals[0]) == N_OFFERED + 1,
	       "one entry per copy, and the NULL");

const struct signal_def *signal_find(const char *name)
{
	size_t i;

	for (i = 0; ksight_signals[i]; i++)
		if (!strcmp(ksight_signals[i]->name, name))
			return ksight_signals[i];
	return NULL;
}

/* The whole of file `f`, from its start, in a static buffer. */
static const char *slurp(FILE *f)
{
	static char text[1 << 20];
	size_t n;

	rewind(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	return text;
}

/*
 * probes_main() in a child with its output in out and its log in err: a crash
 * (or a sanitizer's report) there fails the test with the log shown.
 */
static void run_probes(FILE *out, FILE *err)
{
	struct agent_config cfg = { .mode = MODE_PROBES, .format = OUTPUT_JSON };
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fileno(out), STDOUT_FILENO);
		dup2(fileno(err), STDERR_FILENO);
		exit(probes_main(&cfg)); /* exit(): LeakSanitizer checks the child too */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("ksight probes %s %d; its log:\n%.4000s", WIFEXITED(status) ? "exited" : "died of signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), slurp(err));
}

static void test_more_signals_than_the_table(void **state)
{
	FILE *out = tmpfile(), *err = tmpfile();
	json_object *root, *signals;
	const char *log;
	char want[128];
	int i;

	assert_non_null(out);
	assert_non_null(err);
	run_probes(out, err);

	root = json_tokener_parse(slurp(out));
	assert_non_null(root);
	assert_true(json_object_object_get_ex(root, "signals", &signals));
	/* the table's worth, in table order, every one of them loaded and attached */
	assert_int_equal(json_object_array_length(signals), AGENT_MAX_SIGNALS);
	for (i = 0; i < AGENT_MAX_SIGNALS; i++) {
		json_object *sig = json_object_array_get_idx(signals, (size_t)i), *v;

		assert_true(json_object_object_get_ex(sig, "signal", &v));
		assert_string_equal(json_object_get_string(v), names[i]);
		assert_true(json_object_object_get_ex(sig, "running", &v));
		assert_true(json_object_get_boolean(v));
	}
	json_object_put(root);

	/* each one left out is named, with the limit */
	log = slurp(err);
	for (i = AGENT_MAX_SIGNALS; i < N_OFFERED; i++) {
		snprintf(want, sizeof(want), "%s: not started: more than %d signals", names[i], AGENT_MAX_SIGNALS);
		if (!strstr(log, want))
			fail_msg("no \"%s\" in the log:\n%s", want, log);
	}
	snprintf(want, sizeof(want), "%s: not started", names[AGENT_MAX_SIGNALS - 1]);
	assert_null(strstr(log, want));
	fclose(out);
	fclose(err);
}

/* cli_parse of `ksight run --signals LIST` with its usage message in err; its return value. */
static int parse_signals(const char *list, struct agent_config *cfg, FILE *err)
{
	char arg[512], run[] = "run", name[] = "ksight", flag[] = "--signals";
	char *argv[] = { name, run, flag, arg, NULL };
	int saved = dup(STDERR_FILENO), ret;

	snprintf(arg, sizeof(arg), "%s", list);
	fflush(stderr);
	dup2(fileno(err), STDERR_FILENO);
	ret = cli_parse(4, argv, cfg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	return ret;
}

static void test_more_signals_than_the_list(void **state)
{
	struct agent_config cfg;
	FILE *err = tmpfile();
	char list[512] = "";
	size_t len = 0;
	int i;

	assert_non_null(err);
	assert_true(AGENT_MAX_LIST < N_OFFERED);
	for (i = 0; i < AGENT_MAX_LIST; i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? "," : "", names[i]);
	assert_int_equal(parse_signals(list, &cfg, err), 0);
	assert_string_equal(cfg.signals[AGENT_MAX_LIST - 1], names[AGENT_MAX_LIST - 1]);
	assert_null(cfg.signals[AGENT_MAX_LIST]);
	/* one more is a usage error naming it; the list's terminator stays */
	snprintf(list + len, sizeof(list) - len, ",%s", names[AGENT_MAX_LIST]);
	assert_int_equal(parse_signals(list, &cfg, err), EXIT_USAGE);
	assert_null(cfg.signals[AGENT_MAX_LIST]);
	snprintf(list, sizeof(list), "too many signals: %s", names[AGENT_MAX_LIST]);
	assert_non_null(strstr(slurp(err), list));
	fclose(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_more_signals_than_the_table),
		cmocka_unit_test(test_more_signals_than_the_list),
	};
	int i;

	for (i = 0; i < N_OFFERED; i++) {
		snprintf(names[i], sizeof(names[i]), "oom%02d", i);
		copies[i] = oom_signal;
		copies[i].name = names[i];
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
