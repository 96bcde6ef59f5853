/*
 * How often the kernel skipped a loaded BPF program: bpf_prog_info's
 * recursion_misses (5.12+). Since 6.7 it also counts the runs of a classic
 * tracepoint or kprobe program that trace_call_bpf skipped because another
 * such program was running on that CPU (an interrupt's softirq nested in
 * one); before, those skips are not counted anywhere.
 */
#ifndef KSIGHT_PROG_MISSES_H
#define KSIGHT_PROG_MISSES_H

#include <stdint.h>

struct bpf_prog_info;

/*
 * recursion_misses of an info the kernel filled `len` bytes of (it fills as
 * much as it knows): 0 when that ends before the field (a kernel without it).
 */
uint64_t prog_info_misses(const struct bpf_prog_info *info, uint32_t len);

/* recursion_misses of program `fd` into *misses (0 without the field); 0 or -errno. */
int prog_misses(int fd, uint64_t *misses);

#endif
