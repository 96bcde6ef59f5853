/* Unit tests for user/log.c: a line is one write, whole, even with threads logging at once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

#define THREADS 8
#define LINES   2000

static void *spam(void *arg)
{
	long id = (long)arg;
	int i;

	for (i = 0; i < LINES; i++)
		log_warn("thread %ld line %d %s", id, i, "padding-padding-padding-padding");
	return NULL;
}

/* Run fn with stderr going to a temporary file; return what it wrote (malloc'd). */
static char *capture_stderr(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	long len;
	char *buf;

	assert_non_null(tmp);
	fflush(stderr);
	dup2(fileno(tmp), STDERR_FILENO);
	fn();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	len = ftell(tmp) >= 0 ? lseek(fileno(tmp), 0, SEEK_END) : 0;
	buf = calloc(1, (size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fileno(tmp), buf, (size_t)len, 0), len);
	fclose(tmp);
	return buf;
}

static void run_threads(void)
{
	pthread_t t[THREADS];
	long i;

	for (i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, spam, (void *)i);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
}

static void test_lines_never_interleave(void **state)
{
	char *out = capture_stderr(run_threads), *line, *save;
	int lines = 0;

	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		long id;
		int n, end = 0;

		assert_int_equal(sscanf(line, "ksight: warning: thread %ld line %d padding-padding-padding-padding%n",
					&id, &n, &end), 2);
		assert_int_equal(line[end], '\0');
		lines++;
	}
	assert_int_equal(lines, THREADS * LINES);
	free(out);
}

static void long_line(void)
{
	static char big[8192];

	memset(big, 'x', sizeof(big) - 1);
	log_error("%s", big);
	log_info("after");
}

static void test_long_line_is_cut_and_ends(void **state)
{
	char *out = capture_stderr(long_line);
	char *nl = strchr(out, '\n');

	assert_non_null(nl);
	assert_true(nl - out < 4096);
	assert_memory_equal(nl - 3, "...", 3);
	assert_string_equal(nl + 1, "ksight: after\n");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_never_interleave),
		cmocka_unit_test(test_long_line_is_cut_and_ends),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
