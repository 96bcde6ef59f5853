/* Small helpers several unit tests share. Included by tests only. */
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

#endif
