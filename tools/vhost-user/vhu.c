// SPDX-License-Identifier: GPL-2.0-only
/*
 * The vhost-user front-end protocol, written from the specification in
 * QEMU's docs/interop/vhost-user.rst: a 12-byte header (request, flags with
 * version 1, payload size), little-endian payloads on the host, file
 * descriptors as SCM_RIGHTS ancillary data.  Every reply is checked: a
 * backend that sends anything else gets a clean error, never a crash.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "vhu.h"

#define VHU_MAX_FDS	8

const char *vhu_request_name(uint32_t req)
{
	switch (req) {
	case VHU_GET_FEATURES:		return "GET_FEATURES";
	case VHU_SET_FEATURES:		return "SET_FEATURES";
	case VHU_SET_OWNER:		return "SET_OWNER";
	case VHU_RESET_OWNER:		return "RESET_OWNER";
	case VHU_SET_MEM_TABLE:		return "SET_MEM_TABLE";
	case VHU_SET_VRING_NUM:		return "SET_VRING_NUM";
	case VHU_SET_VRING_ADDR:	return "SET_VRING_ADDR";
	case VHU_SET_VRING_BASE:	return "SET_VRING_BASE";
	case VHU_GET_VRING_BASE:	return "GET_VRING_BASE";
	case VHU_SET_VRING_KICK:	return "SET_VRING_KICK";
	case VHU_SET_VRING_CALL:	return "SET_VRING_CALL";
	case VHU_SET_VRING_ERR:		return "SET_VRING_ERR";
	case VHU_GET_PROTOCOL_FEATURES:	return "GET_PROTOCOL_FEATURES";
	case VHU_SET_PROTOCOL_FEATURES:	return "SET_PROTOCOL_FEATURES";
	case VHU_GET_QUEUE_NUM:		return "GET_QUEUE_NUM";
	case VHU_SET_VRING_ENABLE:	return "SET_VRING_ENABLE";
	case VHU_SET_BACKEND_REQ_FD:	return "SET_BACKEND_REQ_FD";
	case VHU_GET_CONFIG:		return "GET_CONFIG";
	case VHU_SET_CONFIG:		return "SET_CONFIG";
	case VHU_RESET_DEVICE:		return "RESET_DEVICE";
	case VHU_SET_STATUS:		return "SET_STATUS";
	}
	return "request";
}

static int fail(struct vhu_conn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct vhu_conn *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return err;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

int vhu_send(struct vhu_conn *c, uint32_t req, uint32_t flags, const void *payload,
	     uint32_t size, const int *fds, unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	uint8_t hdr[VHU_HDR_SIZE];
	struct iovec iov[2] = {
		{ .iov_base = hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)payload, .iov_len = size },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = size ? 2 : 1 };
	ssize_t n;

	if (c->dead)
		return fail(c, -EPIPE, "%s: the connection is broken", vhu_request_name(req));
	if (nfds > VHU_MAX_FDS || size > VHU_MAX_PAYLOAD)
		return fail(c, -EINVAL, "%s: too many fds or bytes", vhu_request_name(req));
	put32(hdr, req);
	put32(hdr + 4, VHU_VERSION | flags);
	put32(hdr + 8, size);
	if (nfds) {
		struct cmsghdr *cm;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t)n != sizeof(hdr) + size)
		c->dead = true;
	if (n < 0)
		return fail(c, -errno, "sending %s: %s", vhu_request_name(req), strerror(errno));
	if ((size_t)n != sizeof(hdr) + size)
		return fail(c, -EIO, "sending %s: short write", vhu_request_name(req));
	return 0;
}

static int wait_readable(struct vhu_conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	int r;

	do {
		r = poll(&p, 1, c->timeout_ms > 0 ? c->timeout_ms : -1);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return fail(c, -errno, "poll: %s", strerror(errno));
	if (!r)
		return fail(c, -ETIMEDOUT, "no answer in %d ms", c->timeout_ms);
	return 0;
}

/* Reads exactly len bytes; file descriptors that come along are closed. */
static int read_full(struct vhu_conn *c, void *buf, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	size_t got = 0;

	while (got < len) {
		struct iovec iov = { .iov_base = (uint8_t *)buf + got, .iov_len = len - got };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
		struct cmsghdr *cm;
		ssize_t n;
		int err = wait_readable(c);

		if (err)
			return err;
		n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(c, -errno, "receiving: %s", strerror(errno));
		if (!n)
			return fail(c, -ECONNRESET, "the backend closed the connection");
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
				size_t i, k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				int fd;

				for (i = 0; i < k; i++) {
					memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
					close(fd);
				}
			}
		}
		got += (size_t)n;
	}
	return 0;
}

static int recv_msg(struct vhu_conn *c, struct vhu_msg *m)
{
	uint8_t hdr[VHU_HDR_SIZE];
	int err;

	if (c->dead)
		return fail(c, -EPIPE, "the connection is broken");
	err = read_full(c, hdr, sizeof(hdr));
	if (err)
		return err;
	m->request = get32(hdr);
	m->flags = get32(hdr + 4);
	m->size = get32(hdr + 8);
	if ((m->flags & 0x3) != VHU_VERSION)
		return fail(c, -EPROTO, "message with version %u (flags %#x): not vhost-user",
			    m->flags & 0x3, m->flags);
	if (m->size > VHU_MAX_PAYLOAD)
		return fail(c, -EPROTO, "message %u with a %u-byte payload", m->request, m->size);
	return m->size ? read_full(c, m->payload, m->size) : 0;
}

/* Whatever goes wrong on the way in leaves the stream out of step: dead. */
int vhu_recv(struct vhu_conn *c, struct vhu_msg *m)
{
	int err = recv_msg(c, m);

	if (err)
		c->dead = true;
	return err;
}

/* Receives the reply to req, which must carry exactly size bytes (0: any). */
static int recv_reply(struct vhu_conn *c, uint32_t req, struct vhu_msg *m, uint32_t size)
{
	int err = vhu_recv(c, m);

	if (err)
		return err;
	if (!(m->flags & VHU_FLAG_REPLY) || m->request != req) {
		c->dead = true;
		return fail(c, -EPROTO, "expected the reply to %s, got request %u flags %#x",
			    vhu_request_name(req), m->request, m->flags);
	}
	if (size && m->size != size) {
		c->dead = true;
		return fail(c, -EPROTO, "reply to %s has %u bytes, not %u",
			    vhu_request_name(req), m->size, size);
	}
	return 0;
}

/* A request without a reply of its own; with REPLY_ACK, waits for the ack. */
static int send_acked(struct vhu_conn *c, uint32_t req, const void *payload, uint32_t size,
		      const int *fds, unsigned int nfds)
{
	static struct vhu_msg m;
	bool ack = vhu_has_pf(c, VHU_PF_REPLY_ACK);
	int err;

	err = vhu_send(c, req, ack ? VHU_FLAG_NEED_REPLY : 0, payload, size, fds, nfds);
	if (err || !ack)
		return err;
	err = recv_reply(c, req, &m, 8);
	if (err)
		return err;
	if (get64(m.payload))
		return fail(c, -EIO, "the backend refused %s (%llu)", vhu_request_name(req),
			    (unsigned long long)get64(m.payload));
	return 0;
}

static int get_u64(struct vhu_conn *c, uint32_t req, uint64_t *val)
{
	static struct vhu_msg m;
	int err = vhu_send(c, req, 0, NULL, 0, NULL, 0);

	if (!err)
		err = recv_reply(c, req, &m, 8);
	if (!err)
		*val = get64(m.payload);
	return err;
}

int vhu_set_u64(struct vhu_conn *c, uint32_t req, uint64_t val)
{
	return send_acked(c, req, &val, sizeof(val), NULL, 0);
}

int vhu_set_u64_fd(struct vhu_conn *c, uint32_t req, uint64_t val, int fd)
{
	return send_acked(c, req, &val, sizeof(val), &fd, fd >= 0 ? 1 : 0);
}

int vhu_simple(struct vhu_conn *c, uint32_t req)
{
	return send_acked(c, req, NULL, 0, NULL, 0);
}

int vhu_set_state(struct vhu_conn *c, uint32_t req, uint32_t index, uint32_t num)
{
	uint32_t st[2] = { index, num };

	return send_acked(c, req, st, sizeof(st), NULL, 0);
}

int vhu_get_vring_base(struct vhu_conn *c, uint32_t index, uint32_t *num)
{
	static struct vhu_msg m;
	uint32_t st[2] = { index, 0 };
	int err = vhu_send(c, VHU_GET_VRING_BASE, 0, st, sizeof(st), NULL, 0);

	if (!err)
		err = recv_reply(c, VHU_GET_VRING_BASE, &m, 8);
	if (!err)
		*num = get32(m.payload + 4);
	return err;
}

int vhu_set_vring_addr(struct vhu_conn *c, uint32_t index, uint64_t desc, uint64_t used,
		       uint64_t avail)
{
	struct {
		uint32_t index;
		uint32_t flags;
		uint64_t desc;
		uint64_t used;
		uint64_t avail;
		uint64_t log;
	} a = { index, 0, desc, used, avail, 0 };

	return send_acked(c, VHU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
}

int vhu_set_mem_table(struct vhu_conn *c, uint64_t gpa, uint64_t size, uint64_t uaddr,
		      uint64_t mmap_offset, int fd)
{
	struct {
		uint32_t nregions;
		uint32_t padding;
		uint64_t gpa;
		uint64_t size;
		uint64_t uaddr;
		uint64_t mmap_offset;
	} t = { 1, 0, gpa, size, uaddr, mmap_offset };

	return send_acked(c, VHU_SET_MEM_TABLE, &t, sizeof(t), &fd, 1);
}

int vhu_get_config(struct vhu_conn *c, uint32_t offset, uint32_t size, uint8_t *buf)
{
	static struct vhu_msg m;
	uint8_t p[VHU_CONFIG_HDR + VHU_CONFIG_MAX];
	int err;

	if (size > VHU_CONFIG_MAX)
		return fail(c, -EINVAL, "config space of %u bytes", size);
	memset(p, 0, sizeof(p));
	put32(p, offset);
	put32(p + 4, size);
	err = vhu_send(c, VHU_GET_CONFIG, 0, p, VHU_CONFIG_HDR + size, NULL, 0);
	if (!err)
		err = recv_reply(c, VHU_GET_CONFIG, &m, 0);
	if (err)
		return err;
	/* A failed GET_CONFIG is answered with an empty payload. */
	if (m.size != VHU_CONFIG_HDR + size || get32(m.payload + 4) != size)
		return fail(c, -ENOTSUP, "GET_CONFIG of %u bytes answered with %u", size, m.size);
	memcpy(buf, m.payload + VHU_CONFIG_HDR, size);
	return 0;
}

int vhu_set_config(struct vhu_conn *c, uint32_t offset, uint32_t size, const uint8_t *buf)
{
	uint8_t p[VHU_CONFIG_HDR + VHU_CONFIG_MAX];

	if (size > VHU_CONFIG_MAX)
		return fail(c, -EINVAL, "config write of %u bytes", size);
	memset(p, 0, VHU_CONFIG_HDR);
	put32(p, offset);
	put32(p + 4, size);
	memcpy(p + VHU_CONFIG_HDR, buf, size);
	return send_acked(c, VHU_SET_CONFIG, p, VHU_CONFIG_HDR + size, NULL, 0);
}

int vhu_handshake(struct vhu_conn *c)
{
	uint64_t pf = 0, qn = 0;
	int err;

	c->protocol_features = 0;
	c->queue_num = 0;
	err = get_u64(c, VHU_GET_FEATURES, &c->features);
	if (err)
		return err;
	if (c->features & (1ULL << VHU_F_PROTOCOL_FEATURES)) {
		err = get_u64(c, VHU_GET_PROTOCOL_FEATURES, &pf);
		if (err)
			return err;
		pf &= VHU_PF_WANTED;
		err = vhu_send(c, VHU_SET_PROTOCOL_FEATURES, 0, &pf, sizeof(pf), NULL, 0);
		if (err)
			return err;
		c->protocol_features = pf;
	}
	if (vhu_has_pf(c, VHU_PF_MQ)) {
		err = get_u64(c, VHU_GET_QUEUE_NUM, &qn);
		if (err)
			return err;
		c->queue_num = qn > 0xffff ? 0xffff : (uint32_t)qn;
	}
	return vhu_simple(c, VHU_SET_OWNER);
}
