/*
 * The metrics endpoint's listening socket: --listen parsed, resolved and
 * bound (see http.h for the forms it takes).
 *
 * We bind the listening socket ourselves and hand it to MHD: MHD only says
 * "failed to start" when its own bind fails, and an operator needs to know
 * whether the port is taken, privileged or not on this host.
 */
#include "http_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

/*
 * Connections beyond HTTP_CONN_LIMIT wait in the kernel's accept queue, not
 * in our memory; a scraper needs one or two.
 */
#define HTTP_BACKLOG		128
/* A host name may resolve to many addresses; we bind the first that works. */
#define HTTP_MAX_ADDRS		16

/* strerror() starts a capital letter; ours go mid-sentence. */
static void errno_text(int e, char *buf, size_t cap)
{
	const char *s = strerror_r(e, buf, cap);

	if (s != buf)
		snprintf(buf, cap, "%s", s);
	if (isupper((unsigned char)buf[0]) && islower((unsigned char)buf[1]))
		buf[0] = (char)tolower((unsigned char)buf[0]);
}

/* What to do about the usual bind failures, for the operator reading the log. */
static const char *bind_hint(int e)
{
	switch (e) {
	case EADDRINUSE:
		return " (another ksight or exporter is running? pick another port with --listen)";
	case EACCES:
		return " (ports below 1024 need root or CAP_NET_BIND_SERVICE; pick another port with --listen)";
	case EADDRNOTAVAIL:
		return " (no interface of this host has that address)";
	case EAFNOSUPPORT:
		return " (IPv6 is disabled on this host?)";
	default:
		return "";
	}
}

static int parse_port(const char *listen, const char *s, char *out, size_t outlen,
		      char *err, size_t errlen)
{
	unsigned long v = 0;
	const char *p;

	if (!*s) {
		set_error_text(err, errlen,
			"invalid --listen address '%s': missing port, expected ADDR:PORT",
			listen);
		return -EINVAL;
	}
	for (p = s; *p; p++) {
		if (!isdigit((unsigned char)*p)) {
			set_error_text(err, errlen,
				"invalid --listen address '%s': port '%s' is not a number",
				listen, s);
			return -EINVAL;
		}
		/* Stop accumulating past the limit so long inputs cannot wrap. */
		if (v <= 65535)
			v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535) {
		set_error_text(err, errlen,
			"invalid --listen address '%s': port %s is out of range (0-65535)",
			listen, s);
		return -EINVAL;
	}
	snprintf(out, outlen, "%lu", v);
	return 0;
}

int parse_listen(const char *listen, struct listen_spec *ls, char *err, size_t errlen)
{
	const char *host, *colon, *end;
	size_t hlen;

	memset(ls, 0, sizeof(*ls));
	if (!listen || !*listen) {
		set_error_text(err, errlen,
			"invalid --listen address '': expected ADDR:PORT, [IPv6]:PORT or :PORT");
		return -EINVAL;
	}
	if (listen[0] == '[') {
		host = listen + 1;
		end = strchr(host, ']');
		if (!end) {
			set_error_text(err, errlen,
				"invalid --listen address '%s': missing ']' after the IPv6 address",
				listen);
			return -EINVAL;
		}
		if (end[1] != ':') {
			set_error_text(err, errlen,
				"invalid --listen address '%s': expected [IPv6]:PORT", listen);
			return -EINVAL;
		}
		colon = end + 1;
		ls->bracketed = 1;
	} else {
		host = listen;
		colon = strrchr(listen, ':');
		if (!colon) {
			set_error_text(err, errlen,
				"invalid --listen address '%s': expected ADDR:PORT, [IPv6]:PORT or :PORT",
				listen);
			return -EINVAL;
		}
		end = colon;
		if (memchr(host, ':', (size_t)(end - host))) {
			set_error_text(err, errlen,
				"invalid --listen address '%s': put an IPv6 address in brackets, e.g. [::1]:9090",
				listen);
			return -EINVAL;
		}
	}
	hlen = (size_t)(end - host);
	if (ls->bracketed && !hlen) {
		set_error_text(err, errlen, "invalid --listen address '%s': empty IPv6 address",
			listen);
		return -EINVAL;
	}
	if (hlen >= sizeof(ls->host)) {
		set_error_text(err, errlen, "invalid --listen address '%.64s...': host name too long",
			listen);
		return -EINVAL;
	}
	memcpy(ls->host, host, hlen);
	ls->host[hlen] = '\0';
	return parse_port(listen, colon + 1, ls->port, sizeof(ls->port), err, errlen);
}

struct listen_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* ":PORT": IPv6 any with IPv4 mapped in, or IPv4 any where IPv6 is absent. */
static int all_addrs(const char *port, struct listen_addr *addrs)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addrs[0].ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&addrs[1].ss;
	uint16_t p = htons((uint16_t)atoi(port));

	memset(addrs, 0, 2 * sizeof(*addrs));
	in6->sin6_family = AF_INET6;
	in6->sin6_addr = in6addr_any;
	in6->sin6_port = p;
	addrs[0].len = sizeof(*in6);
	in4->sin_family = AF_INET;
	in4->sin_addr.s_addr = htonl(INADDR_ANY);
	in4->sin_port = p;
	addrs[1].len = sizeof(*in4);
	return 2;
}

static int resolve(const char *listen, const struct listen_spec *ls,
		   struct listen_addr *addrs, char *err, size_t errlen)
{
	struct addrinfo hints = { 0 }, *res, *ai;
	int n = 0, rc;

	hints.ai_family = ls->bracketed ? AF_INET6 : AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if (ls->bracketed)
		hints.ai_flags |= AI_NUMERICHOST;
	rc = getaddrinfo(ls->host, ls->port, &hints, &res);
	if (rc) {
		int e = errno;	/* for EAI_SYSTEM, before set_error_text() may clobber it */

		if (ls->bracketed) {
			set_error_text(err, errlen,
				"invalid --listen address '%s': '%s' is not an IPv6 address",
				listen, ls->host);
			return -EINVAL;
		}
		set_error_text(err, errlen, "cannot resolve --listen host '%s': %s", ls->host,
			rc == EAI_SYSTEM ? strerror(e) : gai_strerror(rc));
		switch (rc) {
		case EAI_AGAIN:
			return -EAGAIN;
		case EAI_MEMORY:
			return -ENOMEM;
		case EAI_SYSTEM:
			return e ? -e : -EINVAL;
		default:
			return -EINVAL;
		}
	}
	for (ai = res; ai && n < HTTP_MAX_ADDRS; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		if (ai->ai_addrlen > sizeof(addrs[n].ss))
			continue;
		memcpy(&addrs[n].ss, ai->ai_addr, ai->ai_addrlen);
		addrs[n].len = ai->ai_addrlen;
		n++;
	}
	freeaddrinfo(res);
	if (!n) {
		set_error_text(err, errlen, "cannot resolve --listen host '%s': no IPv4 or IPv6 address",
			ls->host);
		return -EINVAL;
	}
	return n;
}

static int is_ipv4_literal(const char *host)
{
	struct in_addr a;

	return inet_pton(AF_INET, host, &a) == 1;
}

static void format_addr(const struct listen_addr *a, char *buf, size_t cap)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getnameinfo((const struct sockaddr *)&a->ss, a->len, host, sizeof(host),
			serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(buf, cap, "?");
		return;
	}
	snprintf(buf, cap, a->ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

static int bind_one(const struct listen_addr *a, int dual_stack, int *fdp)
{
	int one = 1, zero = 0;
	int fd, e;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A restarted ksight must not wait for its old connections' TIME_WAIT. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		goto fail;
	if (dual_stack && a->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)))
		goto fail;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len))
		goto fail;
	if (listen(fd, HTTP_BACKLOG))
		goto fail;
	*fdp = fd;
	return 0;
fail:
	e = errno;
	close(fd);
	return -e;
}

/*
 * Whether a bind failure means "this address cannot exist here" (IPv6 off, a
 * family the host lacks), so that the next address of a name, or IPv4 after
 * IPv6 for ":PORT", is worth a try. A port in use or a permission problem
 * would be the same on the other addresses, and silently binding another
 * family instead would surprise.
 */
static int addr_unusable(int ret)
{
	return ret == -EAFNOSUPPORT || ret == -EADDRNOTAVAIL || ret == -EPROTONOSUPPORT;
}

int open_listener(const char *listen, const struct listen_spec *ls, int *fdp,
		  int *portp, char *err, size_t errlen)
{
	struct listen_addr addrs[HTTP_MAX_ADDRS];
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	int all = !ls->host[0];
	int n, i, ret = 0;
	char what[NI_MAXHOST + 16], etext[128];

	n = all ? all_addrs(ls->port, addrs) : resolve(listen, ls, addrs, err, errlen);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		ret = bind_one(&addrs[i], all, fdp);
		if (!ret || !addr_unusable(ret))
			break;
	}
	if (ret) {
		errno_text(-ret, etext, sizeof(etext));
		if (all || ls->bracketed || is_ipv4_literal(ls->host)) {
			set_error_text(err, errlen, "cannot listen on %s: %s%s", listen, etext,
				bind_hint(-ret));
		} else {
			/* A host name: say which of its addresses failed. */
			format_addr(&addrs[i < n ? i : n - 1], what, sizeof(what));
			set_error_text(err, errlen, "cannot listen on %s (%s): %s%s", listen, what,
				etext, bind_hint(-ret));
		}
		return ret;
	}
	if (getsockname(*fdp, (struct sockaddr *)&bound, &blen)) {
		ret = -errno;
		errno_text(-ret, etext, sizeof(etext));
		set_error_text(err, errlen, "cannot listen on %s: getsockname: %s", listen, etext);
		close(*fdp);
		return ret;
	}
	*portp = ntohs(bound.ss_family == AF_INET6 ?
		       ((struct sockaddr_in6 *)&bound)->sin6_port :
		       ((struct sockaddr_in *)&bound)->sin_port);
	return 0;
}

int http_listen_validate(const char *listen, char *err, size_t errlen)
{
	struct listen_spec ls;

	return parse_listen(listen, &ls, err, errlen);
}
