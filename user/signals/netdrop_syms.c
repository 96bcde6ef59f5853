#include "netdrop_syms.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_addr(const void *a, const void *b)
{
	const struct netdrop_sym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap;
	void *np;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 4096;
	while (ncap < need)
		ncap *= 2;
	np = realloc(*p, ncap * elem);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

int netdrop_syms_load(struct netdrop_syms *s, const char *path)
{
	FILE *f = fopen(path, "re");
	size_t cap = 0, names_cap = 0;
	char line[512];
	int err = 0;

	memset(s, 0, sizeof(*s));
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *end, *name, *mod;
		uint64_t addr = strtoull(line, &end, 16);
		size_t len;

		if (end == line || end[0] != ' ' || !end[1] || end[2] != ' ')
			continue;
		/* text symbols only; 0: addresses hidden from us (kptr_restrict) */
		if ((end[1] != 't' && end[1] != 'T') || addr == 0)
			continue;
		name = end + 3;
		name[strcspn(name, "\n")] = '\0';
		/* "name\t[mod]" -> "name [mod]" */
		mod = strchr(name, '\t');
		if (mod)
			*mod = ' ';
		len = strlen(name) + 1;
		if (grow((void **)&s->v, &cap, s->n + 1, sizeof(*s->v)) ||
		    grow((void **)&s->names, &names_cap, s->names_len + len, 1)) {
			err = -ENOMEM;
			break;
		}
		s->v[s->n].addr = addr;
		s->v[s->n].name = (uint32_t)s->names_len;
		memcpy(s->names + s->names_len, name, len);
		s->names_len += len;
		s->n++;
	}
	fclose(f);
	if (err) {
		netdrop_syms_free(s);
		return err;
	}
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), by_addr);
	return 0;
}

void netdrop_syms_format(const struct netdrop_syms *s, uint64_t addr, char *out, size_t outlen)
{
	size_t lo = 0, hi = s->n;
	const char *name, *mod;

	if (!outlen)
		return;
	if (!addr) {
		out[0] = '\0';
		return;
	}
	/* the last symbol at or below addr */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* past the last symbol there is no telling where the function ends */
	if (lo == 0 || lo == s->n) {
		snprintf(out, outlen, "0x%" PRIx64, addr);
		return;
	}
	name = s->names + s->v[lo - 1].name;
	mod = strchr(name, ' ');
	if (mod)
		snprintf(out, outlen, "%.*s+0x%" PRIx64 "%s", (int)(mod - name), name, addr - s->v[lo - 1].addr, mod);
	else
		snprintf(out, outlen, "%s+0x%" PRIx64, name, addr - s->v[lo - 1].addr);
}

void netdrop_syms_free(struct netdrop_syms *s)
{
	free(s->v);
	free(s->names);
	memset(s, 0, sizeof(*s));
}
