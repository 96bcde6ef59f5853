/*
 * Drop-reason names from the running kernel's BTF, never a compiled-in table:
 * the values of enum skb_drop_reason move between kernels (reasons are
 * inserted in the middle) and vendors backport some.
 *
 * A raw reason is a u32: the subsystem id (enum skb_drop_reason_subsys) in
 * the high 16 bits, the subsystem's own code in the low 16. Core reasons are
 * named without their SKB_DROP_REASON_ / SKB_ prefix (NETFILTER_DROP);
 * subsystem reasons (mac80211, openvswitch: enums in their modules' BTF) by
 * their enumerator (OVS_DROP_LAST_ACTION). A value no BTF names is
 * unknown_<n>, or <SUBSYS>_unknown_<code> when only its subsystem is known.
 *
 * Pure (a struct btf in, a table out): unit-tested on BTF blobs.
 */
#ifndef KSIGHT_NETDROP_REASONS_H
#define KSIGHT_NETDROP_REASONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct btf;

#define NETDROP_REASON_NAME_LEN 64
#define NETDROP_SUBSYS_SHIFT 16 /* SKB_DROP_REASON_SUBSYS_SHIFT */

struct netdrop_reason {
	uint32_t value;
	char name[NETDROP_REASON_NAME_LEN];
};

struct netdrop_reasons {
	struct netdrop_reason *v;   /* sorted by value, one name per value */
	size_t n, cap;
	struct netdrop_reason *subsys; /* subsystem id -> "OPENVSWITCH" */
	size_t n_subsys, cap_subsys;
	bool have_reasons;          /* the BTF has enum skb_drop_reason */
};

/*
 * Read enum skb_drop_reason, enum skb_drop_reason_subsys and the subsystem
 * reason enums this BTF has (ENUM or ENUM64). 0 (also when the kernel has no
 * reasons: have_reasons says) or -ENOMEM.
 */
int netdrop_reasons_load(struct netdrop_reasons *r, const struct btf *btf);

/* Add the subsystem reason enums of another BTF (a module's split BTF). 0 or -ENOMEM. */
int netdrop_reasons_add_subsys_enums(struct netdrop_reasons *r, const struct btf *btf);

/* The name of a raw reason, always something (see above). */
void netdrop_reason_name(const struct netdrop_reasons *r, uint32_t value, char *out, size_t outlen);

/* The raw value of a name as netdrop_reason_name() gives it; 0 or -ENOENT. */
int netdrop_reason_value(const struct netdrop_reasons *r, const char *name, uint32_t *value);

void netdrop_reasons_free(struct netdrop_reasons *r);

#endif
