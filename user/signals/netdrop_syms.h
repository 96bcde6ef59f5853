/*
 * Kernel addresses -> "function+0xoff" for the netdrop trace's `location`,
 * from a /proc/kallsyms-format file. The whole text-symbol table (a few MB)
 * is read only when something is traced, once the agent is ready.
 */
#ifndef KSIGHT_NETDROP_SYMS_H
#define KSIGHT_NETDROP_SYMS_H

#include <stddef.h>
#include <stdint.h>

struct netdrop_sym {
	uint64_t addr;
	uint32_t name; /* offset into names */
};

struct netdrop_syms {
	struct netdrop_sym *v; /* sorted by address */
	size_t n;
	char *names;
	size_t names_len;
};

/* Read the text symbols of `path`; 0 (an empty table when addresses are hidden) or -errno. */
int netdrop_syms_load(struct netdrop_syms *s, const char *path);

/*
 * "nft_do_chain+0x3c4" for an address inside a known function (with " [mod]"
 * for a module's), else "0xADDR"; "" for 0.
 */
void netdrop_syms_format(const struct netdrop_syms *s, uint64_t addr, char *out, size_t outlen);

void netdrop_syms_free(struct netdrop_syms *s);

#endif
