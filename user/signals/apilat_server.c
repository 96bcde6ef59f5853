/* apilat: listen drops of the listeners on API-server addresses, from sock_diag. */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>

#include "apilat_server.h"

#define TCP_LISTEN_STATE 10

static bool is_v4(const __u8 *a)
{
	static const __u8 prefix[12] = { [10] = 0xff, [11] = 0xff };

	return !memcmp(a, prefix, sizeof(prefix));
}

static bool is_wildcard(const __u8 *a)
{
	static const __u8 zero[16];

	/* :: or ::ffff:0.0.0.0 */
	return !memcmp(a, zero, 16) || (is_v4(a) && !memcmp(a + 12, zero, 4));
}

static bool is_local(const __u8 *a, const struct apilat_endpoint *local, size_t n_local)
{
	size_t i;

	for (i = 0; i < n_local; i++)
		if (!memcmp(local[i].addr, a, 16))
			return true;
	return false;
}

bool apilat_listener_serves(const struct apilat_endpoint *l, const struct apilat_endpoint *eps, size_t n_eps,
			    const struct apilat_endpoint *local, size_t n_local)
{
	bool wild = is_wildcard(l->addr), wild_v4 = wild && is_v4(l->addr);
	size_t i;

	for (i = 0; i < n_eps; i++) {
		const struct apilat_endpoint *e = &eps[i];

		if (e->port != l->port)
			continue;
		if (!memcmp(e->addr, l->addr, 16))
			return true;
		/* an IPv6 wildcard listener takes IPv4 too (unless IPV6_V6ONLY, not told here) */
		if (wild && (!wild_v4 || is_v4(e->addr)) && is_local(e->addr, local, n_local))
			return true;
	}
	return false;
}

void apilat_listen_drops_update(struct apilat_listen_drops *t, const uint64_t *inodes, const uint64_t *drops,
				size_t n)
{
	struct apilat_listen_drops next = { .total = t->total };
	size_t i, j;

	for (i = 0; i < n && next.n < APILAT_MAX_LISTENERS; i++) {
		uint64_t before = 0;

		for (j = 0; j < t->n; j++)
			if (t->seen[j].inode == inodes[i])
				before = t->seen[j].drops;
		/* sk_drops only grows while the socket lives: anything else is a new socket on an old inode */
		next.total += drops[i] >= before ? drops[i] - before : drops[i];
		next.seen[next.n].inode = inodes[i];
		next.seen[next.n].drops = drops[i];
		next.n++;
	}
	*t = next;
}

/* This node's addresses, as endpoint keys with port 0. Returns how many (<= cap). */
static size_t local_addresses(struct apilat_endpoint *out, size_t cap)
{
	struct ifaddrs *ifs, *i;
	size_t n = 0;

	if (getifaddrs(&ifs))
		return 0;
	for (i = ifs; i && n < cap; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		if (i->ifa_addr->sa_family == AF_INET) {
			out[n].addr[10] = 0xff;
			out[n].addr[11] = 0xff;
			memcpy(&out[n].addr[12], &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
			n++;
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			memcpy(out[n].addr, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
			n++;
		}
	}
	freeifaddrs(ifs);
	return n;
}

struct found {
	uint64_t inodes[APILAT_MAX_LISTENERS], drops[APILAT_MAX_LISTENERS];
	size_t n;
};

/* One inet_diag_msg: a listener; keep it if it serves an endpoint and says its drops. */
static void take(struct inet_diag_msg *m, size_t len, const struct apilat_endpoint *eps, size_t n_eps,
		 const struct apilat_endpoint *local, size_t n_local, struct found *f)
{
	struct apilat_endpoint l = { .port = ntohs(m->id.idiag_sport) };
	struct rtattr *a = (struct rtattr *)(m + 1);
	int left = len > sizeof(*m) ? (int)(len - sizeof(*m)) : 0;

	if (m->idiag_family == AF_INET) {
		l.addr[10] = 0xff;
		l.addr[11] = 0xff;
		memcpy(&l.addr[12], m->id.idiag_src, 4);
	} else {
		memcpy(l.addr, m->id.idiag_src, 16);
	}
	if (f->n >= APILAT_MAX_LISTENERS || !apilat_listener_serves(&l, eps, n_eps, local, n_local))
		return;
	for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
		if (a->rta_type != INET_DIAG_SKMEMINFO || RTA_PAYLOAD(a) < (int)((SK_MEMINFO_DROPS + 1) * sizeof(__u32)))
			continue;
		f->inodes[f->n] = m->idiag_inode;
		f->drops[f->n] = ((const __u32 *)RTA_DATA(a))[SK_MEMINFO_DROPS];
		f->n++;
		return;
	}
}

static int dump_family(int fd, int family, const struct apilat_endpoint *eps, size_t n_eps,
		       const struct apilat_endpoint *local, size_t n_local, struct found *f)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req = {
		.nh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.r = { .sdiag_family = (__u8)family, .sdiag_protocol = IPPROTO_TCP,
		       .idiag_ext = 1 << (INET_DIAG_SKMEMINFO - 1), .idiag_states = 1 << TCP_LISTEN_STATE },
	};
	long buf[8192 / sizeof(long)];

	if (send(fd, &req, sizeof(req), 0) < 0)
		return -errno;
	for (;;) {
		ssize_t got = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		size_t len;

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		len = (size_t)got;
		for (; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error ? e->error : -EIO;
			}
			if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
				take(NLMSG_DATA(h), h->nlmsg_len - NLMSG_LENGTH(0), eps, n_eps, local, n_local, f);
		}
		if (!got)
			return -EIO;
	}
}

int apilat_listen_drops_read(struct apilat_listen_drops *t, const struct apilat_endpoint *eps, size_t n_eps)
{
	struct apilat_endpoint local[64];
	size_t n_local = local_addresses(local, 64);
	struct found f = { .n = 0 };
	int fd, err;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	err = dump_family(fd, AF_INET, eps, n_eps, local, n_local, &f);
	if (!err)
		err = dump_family(fd, AF_INET6, eps, n_eps, local, n_local, &f);
	close(fd);
	if (err)
		return err; /* a partial view would forget listeners and count them again */
	apilat_listen_drops_update(t, f.inodes, f.drops, f.n);
	return 0;
}
