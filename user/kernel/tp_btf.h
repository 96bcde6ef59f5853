/*
 * tp_btf and iterator programs that load without libbpf parsing the kernel
 * BTF again.
 *
 * libbpf 1.1 reads the whole kernel BTF (~7 ms, megabytes) in every object
 * with a BTF-typed program, only to find each one's attach target, and has
 * no way to be handed one already parsed. Handlers of our own for tp_btf/
 * and iter/ sections look the target up in the BTF the agent parsed once and
 * do what libbpf's own would: load with that target (btf_trace_<name>,
 * bpf_iter_<name>), attach as a raw tracepoint or an iterator link.
 */
#ifndef KSIGHT_TP_BTF_H
#define KSIGHT_TP_BTF_H

struct btf;

/* Take over tp_btf/ and iter/ sections of every object opened from now on; 0 or -errno (libbpf's own handles them). */
int tp_btf_handler_register(void);

/*
 * The kernel BTF the loads of this thread look targets up in (the running
 * kernel's own, /sys/kernel/btf/vmlinux); NULL: each load reads it itself.
 */
void tp_btf_use_kernel_btf(const struct btf *btf);

/* After a load on this thread: what the load read itself is freed. */
void tp_btf_load_done(void);

#endif
