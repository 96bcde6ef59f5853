/*
 * `ksight trace apilat` (apilat_trace.h): the kernel sends a record only for
 * connects, connect failures and turns of at least --slow, so everything
 * that arrives is printed.
 */
#include "apilat_trace.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "apilat_client.h"
#include "event.h"
#include "pod_resolver.h"

/* ---- durations ---- */

int apilat_parse_duration(const char *text, uint64_t *ns)
{
	static const struct {
		const char *name;
		uint64_t ns;
	} units[] = {
		{ "ns", 1 }, { "us", 1000 }, { "ms", 1000000 }, { "s", 1000000000ULL },
		{ "m", 60000000000ULL }, { "h", 3600000000000ULL },
	};
	uint64_t whole = 0, frac = 0, frac_div = 1;
	const char *p = text;
	size_t i;

	if (!p || *p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (whole > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			/* digits past nanoseconds of an hour mean nothing: read, not kept */
			if (frac_div < 1000000000000000ULL) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				frac_div *= 10;
			}
		}
	}
	if (!*p) {
		if (whole || frac || text[1])
			return -EINVAL; /* a bare number has no unit: only "0" is the same in every unit */
		*ns = 0;
		return 0;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].name))
			continue;
		if (whole > UINT64_MAX / units[i].ns)
			return -ERANGE;
		*ns = whole * units[i].ns + frac * units[i].ns / frac_div;
		return 0;
	}
	return -EINVAL;
}

/* ---- records ---- */

const char *apilat_trace_phase_name(unsigned int phase)
{
	static const char *const names[APILAT_TRACE_NR] = {
		[APILAT_TRACE_CONNECT] = "connect", [APILAT_TRACE_HANDSHAKE] = "handshake",
		[APILAT_TRACE_RESPONSE] = "response", [APILAT_TRACE_FAILURE] = "failure",
	};

	return phase < APILAT_TRACE_NR ? names[phase] : NULL;
}

const char *apilat_fail_name(unsigned int cause)
{
	static const char *const names[APILAT_FAIL_NR] = {
		[APILAT_FAIL_REFUSED] = "refused", [APILAT_FAIL_TIMEOUT] = "timeout", [APILAT_FAIL_RESET] = "reset",
		[APILAT_FAIL_UNREACHABLE] = "unreachable", [APILAT_FAIL_OTHER] = "other",
	};

	return cause < APILAT_FAIL_NR ? names[cause] : NULL;
}

static void format_addr(unsigned int family, const __u8 *addr, uint16_t port, char *out, size_t len)
{
	char text[INET6_ADDRSTRLEN] = "";

	inet_ntop(family == 6 ? AF_INET6 : AF_INET, addr, text, sizeof(text));
	snprintf(out, len, family == 6 ? "[%s]:%u" : "%s:%u", text, port);
}

int apilat_trace_describe(const struct apilat_trace_event *e, json_object *obj, char *details, size_t len)
{
	const char *phase = apilat_trace_phase_name(e->phase), *cause = NULL;
	bool turn = e->phase == APILAT_TRACE_HANDSHAKE || e->phase == APILAT_TRACE_RESPONSE;
	char local[INET6_ADDRSTRLEN + 8], remote[INET6_ADDRSTRLEN + 8];

	if (!phase || (e->family != 4 && e->family != 6))
		return -EINVAL;
	if (e->phase == APILAT_TRACE_FAILURE) {
		cause = apilat_fail_name(e->cause);
		if (!cause)
			return -EINVAL;
	}
	format_addr(e->family, e->saddr, e->sport, local, sizeof(local));
	format_addr(e->family, e->daddr, e->dport, remote, sizeof(remote));
	json_object_object_add(obj, "phase", json_object_new_string(phase));
	json_object_object_add(obj, "family", json_object_new_string(e->family == 6 ? "ipv6" : "ipv4"));
	json_object_object_add(obj, "local", json_object_new_string(local));
	json_object_object_add(obj, "remote", json_object_new_string(remote));
	json_object_object_add(obj, "duration_ns", json_object_new_int64((int64_t)e->duration_ns));
	json_object_object_add(obj, "sent_bytes", turn ? json_object_new_int64((int64_t)e->sent_bytes) : NULL);
	json_object_object_add(obj, "received_bytes",
			       turn ? json_object_new_int64((int64_t)e->received_bytes) : NULL);
	json_object_object_add(obj, "cause", cause ? json_object_new_string(cause) : NULL);
	if (turn)
		snprintf(details, len, "%s %.3fms %s > %s sent=%" PRIu64 " received=%" PRIu64, phase,
			 (double)e->duration_ns / 1e6, local, remote, (uint64_t)e->sent_bytes,
			 (uint64_t)e->received_bytes);
	else
		snprintf(details, len, "%s %.3fms %s > %s%s%s", phase, (double)e->duration_ns / 1e6, local, remote,
			 cause ? " cause=" : "", cause ? cause : "");
	return 0;
}

int apilat_trace_handle(struct agent *agent, const void *data, size_t size)
{
	const struct apilat_trace_event *e = data;
	struct event_common ev = { .signal = "apilat" };
	char comm[KSIGHT_COMM_LEN + 1], details[512];
	struct pod_ref ref;
	json_object *obj;

	if (size < sizeof(*e))
		return -EINVAL;
	ev.boot_ns = e->boot_ns;
	ev.pid = e->pid;
	/* a pod's client by its cgroup, named by the pod cache when it knows the pod */
	apilat_client_event(agent, &e->client, &ev, &ref, comm);
	obj = event_json(agent, &ev);
	if (apilat_trace_describe(e, obj, details, sizeof(details))) {
		json_object_put(obj);
		return -EINVAL;
	}
	event_emit(agent, &ev, obj, details);
	return 0;
}
