// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of the vhost-user front end (tools/vhost-user/vhu.c) against
 * a fake backend on the other end of a socketpair: the handshake, the
 * memory table with its fd, ring setup with REPLY_ACK, GET_CONFIG, and the
 * clean errors for a backend that answers with garbage, the wrong reply,
 * a refusal, nothing at all or a closed socket.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "vhu.h"

enum fake_mode { FAKE_GOOD, FAKE_GARBAGE, FAKE_WRONG_REPLY, FAKE_REFUSE, FAKE_SILENT,
	FAKE_CLOSE };

struct fake {
	int fd;
	enum fake_mode mode;
	uint64_t pf_offered;
	int fds_received;
	uint64_t mem[4];	/* gpa, size, uaddr, offset */
	uint32_t requests[64];
	unsigned int nreq;
};

static void reply(struct fake *f, uint32_t req, const void *p, uint32_t size)
{
	struct vhu_conn c = { .fd = f->fd };

	assert(!vhu_send(&c, req, VHU_FLAG_REPLY, p, size, NULL, 0));
}

/* Receives with fds, which vhu_recv would close: counts them instead. */
static int fake_recv(struct fake *f, struct vhu_msg *m)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} ctl;
	uint8_t hdr[VHU_HDR_SIZE];
	struct iovec iov = { .iov_base = hdr, .iov_len = sizeof(hdr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *cm;
	ssize_t n = recvmsg(f->fd, &mh, 0);

	if (n != sizeof(hdr))
		return -1;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		int fd;

		memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
		f->fds_received++;
		close(fd);
	}
	memcpy(&m->request, hdr, 4);
	memcpy(&m->flags, hdr + 4, 4);
	memcpy(&m->size, hdr + 8, 4);
	assert((m->flags & 3) == VHU_VERSION);
	if (m->size && recv(f->fd, m->payload, m->size, MSG_WAITALL) != (ssize_t)m->size)
		return -1;
	return 0;
}

static void *fake_backend(void *arg)
{
	static struct vhu_msg m;
	struct fake *f = arg;
	uint64_t v, ack;
	uint8_t cfg[VHU_CONFIG_HDR + VHU_CONFIG_MAX];

	while (!fake_recv(f, &m)) {
		f->requests[f->nreq++ % 64] = m.request;
		if (f->mode == FAKE_CLOSE)
			break;
		if (f->mode == FAKE_SILENT)
			continue;
		if (f->mode == FAKE_GARBAGE) {
			static const char junk[12] = "\xde\xad\xbe\xef\xde\xad\xbe\xef";

			assert(write(f->fd, junk, sizeof(junk)) == sizeof(junk));
			continue;
		}
		switch (m.request) {
		case VHU_GET_FEATURES:
			v = (1ULL << 32) | (1ULL << VHU_F_PROTOCOL_FEATURES) | 0x3;
			reply(f, f->mode == FAKE_WRONG_REPLY ? VHU_GET_QUEUE_NUM : m.request, &v,
			      8);
			continue;
		case VHU_GET_PROTOCOL_FEATURES:
			reply(f, m.request, &f->pf_offered, 8);
			continue;
		case VHU_GET_QUEUE_NUM:
			v = 4;
			reply(f, m.request, &v, 8);
			continue;
		case VHU_SET_MEM_TABLE:
			memcpy(f->mem, m.payload + 8, sizeof(f->mem));
			break;
		case VHU_GET_VRING_BASE:
			memcpy(m.payload + 4, "\x07\0\0\0", 4);
			reply(f, m.request, m.payload, 8);
			continue;
		case VHU_GET_CONFIG:
			memcpy(cfg, m.payload, VHU_CONFIG_HDR);
			memset(cfg + VHU_CONFIG_HDR, 0xab, m.size - VHU_CONFIG_HDR);
			reply(f, m.request, cfg, m.size);
			continue;
		}
		if (m.flags & VHU_FLAG_NEED_REPLY) {
			ack = f->mode == FAKE_REFUSE && m.request == VHU_SET_MEM_TABLE;
			reply(f, m.request, &ack, 8);
		}
	}
	close(f->fd);
	return NULL;
}

static int tests, failures;
#define CHECK(cond) do {						\
	tests++;							\
	if (!(cond)) {							\
		failures++;						\
		fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
	}								\
} while (0)

static void start(struct fake *f, struct vhu_conn *c, pthread_t *t, enum fake_mode mode,
		  uint64_t pf)
{
	int sv[2];

	assert(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	memset(f, 0, sizeof(*f));
	memset(c, 0, sizeof(*c));
	f->fd = sv[1];
	f->mode = mode;
	f->pf_offered = pf;
	c->fd = sv[0];
	/* Only the silent peer runs into it: a loaded machine must not. */
	c->timeout_ms = mode == FAKE_SILENT ? 300 : 30000;
	assert(!pthread_create(t, NULL, fake_backend, f));
}

static void stop(struct vhu_conn *c, pthread_t t)
{
	shutdown(c->fd, SHUT_RDWR);
	close(c->fd);
	pthread_join(t, NULL);
}

static void test_good(void)
{
	struct fake f;
	struct vhu_conn c;
	pthread_t t;
	uint8_t cfg[60];
	uint32_t base = 0;

	/* Offers more than we want: only the wanted ones are negotiated. */
	start(&f, &c, &t, FAKE_GOOD, VHU_PF_WANTED | (1ULL << 12) | (1ULL << 15));
	CHECK(!vhu_handshake(&c));
	CHECK(c.protocol_features == VHU_PF_WANTED);
	CHECK(c.queue_num == 4);
	CHECK(c.features & (1ULL << 32));
	CHECK(!vhu_set_mem_table(&c, 0x80000000ULL, 16 << 20, 0x7f0000000000ULL, 0, 0));
	CHECK(!vhu_set_state(&c, VHU_SET_VRING_NUM, 0, 256));
	CHECK(!vhu_set_vring_addr(&c, 0, 1, 2, 3));
	CHECK(!vhu_set_u64_fd(&c, VHU_SET_VRING_KICK, 0, 1));
	CHECK(!vhu_get_vring_base(&c, 0, &base));
	CHECK(base == 7);
	CHECK(!vhu_get_config(&c, 0, sizeof(cfg), cfg));
	CHECK(cfg[0] == 0xab && cfg[59] == 0xab);
	stop(&c, t);
	CHECK(f.mem[0] == 0x80000000ULL && f.mem[1] == 16 << 20 && f.mem[2] == 0x7f0000000000ULL);
	CHECK(f.fds_received == 2);	/* the memory fd and the kick fd */
	CHECK(f.requests[0] == VHU_GET_FEATURES && f.requests[1] == VHU_GET_PROTOCOL_FEATURES &&
	      f.requests[2] == VHU_SET_PROTOCOL_FEATURES && f.requests[3] == VHU_GET_QUEUE_NUM &&
	      f.requests[4] == VHU_SET_OWNER);
}

static void test_no_protocol_features(void)
{
	struct fake f;
	struct vhu_conn c;
	pthread_t t;

	start(&f, &c, &t, FAKE_GOOD, 0);
	CHECK(!vhu_handshake(&c));
	CHECK(c.protocol_features == 0 && c.queue_num == 0);
	/* Without REPLY_ACK nothing waits for an answer. */
	CHECK(!vhu_set_state(&c, VHU_SET_VRING_NUM, 0, 256));
	stop(&c, t);
}

static void test_errors(void)
{
	struct fake f;
	struct vhu_conn c;
	pthread_t t;

	start(&f, &c, &t, FAKE_GARBAGE, 0);
	CHECK(vhu_handshake(&c) == -EPROTO);
	CHECK(strstr(c.err, "not vhost-user"));
	stop(&c, t);

	start(&f, &c, &t, FAKE_WRONG_REPLY, 0);
	CHECK(vhu_handshake(&c) == -EPROTO);
	CHECK(strstr(c.err, "expected the reply to GET_FEATURES"));
	stop(&c, t);

	start(&f, &c, &t, FAKE_REFUSE, VHU_PF_WANTED);
	CHECK(!vhu_handshake(&c));
	CHECK(vhu_set_mem_table(&c, 0, 4096, 0, 0, 0) == -EIO);
	CHECK(strstr(c.err, "refused SET_MEM_TABLE"));
	stop(&c, t);

	start(&f, &c, &t, FAKE_SILENT, 0);
	CHECK(vhu_handshake(&c) == -ETIMEDOUT);
	/* Out of step now: every further call fails at once. */
	CHECK(vhu_set_state(&c, VHU_SET_VRING_NUM, 0, 8) == -EPIPE);
	stop(&c, t);

	start(&f, &c, &t, FAKE_CLOSE, 0);
	CHECK(vhu_handshake(&c) == -ECONNRESET);
	CHECK(strstr(c.err, "closed"));
	stop(&c, t);
}

int main(void)
{
	test_good();
	test_no_protocol_features();
	test_errors();
	printf("test_vhost_user: %d checks, %d failed\n", tests, failures);
	return failures ? 1 : 0;
}
