/* Small helpers several unit tests share. Included by tests only (after signal_def.h for handle_record). */
#ifndef KSIGHT_TEST_UNIT_HELPERS_H
#define KSIGHT_TEST_UNIT_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* `text` in a new temporary file (a fake /proc/kallsyms, ...); its path, in a static buffer. */
static inline char *write_tmp(const char *text)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/ksight-test-kallsyms.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

#ifdef KSIGHT_SIGNAL_DEF_H
/* One record of `size` bytes through rt's signal with stdout captured; the line printed ("" if none). */
static inline char *handle_record(struct signal_runtime *rt, const void *record, size_t size)
{
	static char out[8192];
	FILE *tmp = tmpfile();
	int saved = dup(STDOUT_FILENO);
	size_t n;

	assert_non_null(tmp);
	fflush(stdout);
	dup2(fileno(tmp), STDOUT_FILENO);
	assert_int_equal(rt->def->handle_event(rt, record, size), 0);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, sizeof(out) - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	return out;
}
#endif

#endif
