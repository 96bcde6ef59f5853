/*
 * apilat's adoption of the API-server connections that were open before
 * ksight started (bpf/apilat.bpf.c, probe point adopt): its two iterators,
 * run in order (owners, then sockets) when the agent is ready and again
 * whenever an endpoint enters the set.
 */
#ifndef KSIGHT_APILAT_ADOPT_H
#define KSIGHT_APILAT_ADOPT_H

#include <stdbool.h>
#include <stdint.h>

struct bpf_link;
struct apilat_adopt;

/*
 * The iterators' links (their fds duplicated: the links may be destroyed
 * first), the maps apilat_adopt_ctl (borrowed: valid while runs can happen,
 * until the sources that call apilat_adopt_run are stopped)
 * and apilat_owners, what an adopted connection asks for (the sockops
 * callbacks of the attached variants, 0 for none) and whether send=sockops
 * counts its bytes. 0 and *out, or -errno.
 */
int apilat_adopt_new(struct bpf_link *owners, struct bpf_link *sockets, int ctl_fd, int owners_fd,
		     uint32_t cb_flags, bool by_acks, struct apilat_adopt **out);

/*
 * One run: the connections adopted by it (>= 0) or -errno. Logs what it
 * adopted and, once each, the connections the kernel would not let ask for
 * callbacks and the namespaces it could not look in. Thread-safe.
 */
int apilat_adopt_run(struct apilat_adopt *a);

/* NULL-safe. */
void apilat_adopt_free(struct apilat_adopt *a);

#endif
