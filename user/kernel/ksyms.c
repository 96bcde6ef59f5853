#include "ksyms.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ksyms_find(const char *path, const char *const *names, size_t n, struct ksym_range *ranges)
{
	FILE *f = fopen(path, "re");
	char line[512];
	size_t i;
	int found = 0;

	if (!f)
		return -errno;
	for (i = 0; i < n; i++)
		ranges[i] = (struct ksym_range){ 0, UINT64_MAX };

	/* one pass: starts of the wanted symbols, and for each the closest address above it */
	while (fgets(line, sizeof(line), f)) {
		char *end, *name;
		uint64_t addr = strtoull(line, &end, 16);
		char type;

		if (end == line || end[0] != ' ' || !end[1])
			continue;
		type = end[1];
		name = end + 3;
		name[strcspn(name, " \t\n")] = '\0';
		for (i = 0; i < n; i++) {
			if ((type == 't' || type == 'T') && ranges[i].start == 0 && strcmp(name, names[i]) == 0)
				ranges[i].start = addr;
			else if (ranges[i].start && addr > ranges[i].start && addr < ranges[i].end)
				ranges[i].end = addr;
		}
	}
	fclose(f);

	/* symbols listed before the wanted one were not compared: kallsyms is sorted, mostly */
	for (i = 0; i < n; i++) {
		if (ranges[i].start == 0 || ranges[i].end == UINT64_MAX) {
			ranges[i] = (struct ksym_range){ 0, 0 };
			continue;
		}
		found++;
	}
	return found;
}
