/*
 * Probe selection: every probe point of a signal lists its variants, best
 * first. Before load, variants this kernel cannot take are ruled out from
 * kernel facts (BTF, tracefs); the rest are loaded, and attached in order
 * until one works (`run` and `trace` load the first only, and the next one
 * when it does not attach: loader.h, preferred_only). The outcome of every variant is kept, with the reason, for
 * `ksight probes` and ksight_probe_info.
 *
 * The planning half (probe_plan) is pure and takes the kernel's facts through
 * struct kernel_features, so it is unit-tested with simulated kernels.
 */
#ifndef KSIGHT_PROBE_H
#define KSIGHT_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#define PROBE_MAX_VARIANTS 6
#define PROBE_MAX_PROGRAMS 4
#define PROBE_REASON_LEN 200

/*
 * What a BTF hook's argument must be for a variant to fit this kernel (or,
 * for a tracepoint/ program, what its record must hold).
 */
enum probe_arg_kind {
	PROBE_ARG_END = 0,     /* ends the list */
	PROBE_ARG_STRUCT_PTR,  /* a pointer to struct `type` */
	PROBE_ARG_ENUM,        /* an enum `type` (BTF ENUM or ENUM64) */
	PROBE_ARG_SCALAR,      /* an integer of any width (or an enum), not a pointer */
	PROBE_ARG_ABSENT,      /* the hook has no argument `index` (an older, shorter form) */
	PROBE_ARG_RECORD_FIELD, /* tracepoint/: its record, struct `type`, has member `field` */
	PROBE_ARG_FUNCTION,    /* any program: the kernel's BTF has function `type` (a helper's, say) */
};

struct probe_arg {
	const char *program;   /* which program of the variant (its tp_btf/ or fentry/ section) */
	int index;             /* the hook's argument from 0 (tp_btf: after the hidden ctx) */
	enum probe_arg_kind kind;
	const char *type;      /* the struct or enum name; NULL otherwise */
	const char *missing;   /* the reason to give when the kernel's argument differs */
	const char *field;     /* PROBE_ARG_RECORD_FIELD: the member; NULL otherwise */
};

#define PROBE_MAX_ARGS 4

struct probe_variant {
	const char *name; /* "tp_btf", "tracepoint", "kprobe", "fentry", ... */
	/*
	 * BPF programs attached together, NULL-terminated; their ELF sections
	 * ("tp_btf/mark_victim", "tracepoint/oom/mark_victim", "kprobe/f") say
	 * what each needs from the kernel.
	 */
	const char *programs[PROBE_MAX_PROGRAMS + 1];
	/* BTF argument checks, for any of the programs; ended by PROBE_ARG_END */
	struct probe_arg args[PROBE_MAX_ARGS + 1];
	/*
	 * The programs read this module's own types (xfs_mount, its
	 * tracepoints' records): CO-RE finds them in the module's BTF,
	 * /sys/kernel/btf/<module> (5.11+), or in vmlinux's when it is built
	 * in. A loaded module without BTF: they would load, attach and read
	 * nothing. NULL: vmlinux types only.
	 */
	const char *module_btf;
	/*
	 * Not a sockops program, but only right next to one (an earlier point's
	 * sockops variant): ruled out where sockops programs cannot attach, and
	 * not attached when that variant did not; this says what it goes with
	 * ("goes with send=sockops"), for the reason. NULL: no such tie.
	 */
	const char *with_sockops;
	/*
	 * The signal's user half attaches the programs itself (cgroup_skb
	 * programs, to the cgroups it picks at run time): the loader loads them,
	 * attaches nothing and counts the variant attached.
	 */
	bool signal_attaches;
};

struct probe_point {
	const char *name; /* "mark_victim" */
	const struct probe_variant *variants;
	size_t n_variants;
};

enum variant_state {
	VARIANT_UNTRIED = 0,
	VARIANT_CANDIDATE,     /* passed the checks; will be loaded */
	VARIANT_ATTACHED,      /* in use */
	VARIANT_STANDBY,       /* works, but a better variant is attached */
	VARIANT_UNSUPPORTED,   /* ruled out before load by kernel facts */
	VARIANT_LOAD_FAILED,   /* the kernel refused to load it */
	VARIANT_ATTACH_FAILED, /* loaded, but the kernel refused to attach it */
	VARIANT_DISABLED,      /* not selected (--probe) */
};

struct variant_status {
	enum variant_state state;
	char reason[PROBE_REASON_LEN];
};

struct point_status {
	int attached; /* index of the attached variant, or -1 */
	struct variant_status variants[PROBE_MAX_VARIANTS];
};

/* What the running kernel offers; `ctx` is passed back to every call. */
struct kernel_features {
	void *ctx;
	/* BTF has typedef btf_trace_<name> (a tp_btf / raw_tp target) */
	bool (*has_btf_tracepoint)(void *ctx, const char *name);
	/* tracefs has events/<category>/<name> */
	bool (*has_tracefs_event)(void *ctx, const char *category, const char *name);
	/* BTF has function <name> (an fentry/fexit target) */
	bool (*has_btf_function)(void *ctx, const char *name);
	/* the hook of `section` ("tp_btf/x", "fentry/x") has an argument as `arg` says (a record
	 * field, for "tracepoint/c/x") */
	bool (*btf_arg_matches)(void *ctx, const char *section, const struct probe_arg *arg);
	/* module <name>'s types have BTF: its own, or vmlinux's if built in (NULL: a simulated kernel: yes) */
	bool (*has_module_btf)(void *ctx, const char *module);
	/* cgroup v2's root is mounted here, for sockops programs (NULL: a simulated kernel: yes) */
	bool (*has_cgroup2_root)(void *ctx);
};

/* Maps a program name to its ELF section (from the BPF object), or NULL. */
typedef const char *(*program_section_fn)(void *ctx, const char *program);

/*
 * Decide, for one probe point, which variants are worth loading: each gets
 * VARIANT_CANDIDATE, VARIANT_UNSUPPORTED (with the reason) or, when `only`
 * names another variant, VARIANT_DISABLED. Returns the number of candidates.
 */
int probe_plan(const struct probe_point *point, const struct kernel_features *kf,
	       program_section_fn section_of, void *section_ctx, const char *only,
	       struct point_status *st);

/* "tp_btf/mark_victim" -> what it needs; 0 if the kernel has it, else -ENOENT with why. */
int probe_check_section(const char *section, const struct kernel_features *kf, char *why,
			size_t whylen);

/* A variant that reads a module's types (module_btf): 0 if its BTF is there, else -ENOENT with why. */
int probe_check_module_btf(const struct probe_variant *v, const struct kernel_features *kf, char *why,
			   size_t whylen);

const char *variant_state_name(enum variant_state state); /* "attached", ... */

/* True if program `name` belongs to a variant of `point` in state `state`. */
bool probe_program_in_state(const struct probe_point *point, const struct point_status *st,
			    const char *name, enum variant_state state);

#endif
