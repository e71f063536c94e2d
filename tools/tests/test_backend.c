// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of virtio-msg-backend without a kernel: the test plays the
 * virtio driver.  Messages are built byte by byte (independently of the
 * backend's codec) and fed to backend_handle_message(); virtqueues live in a
 * malloc'd "DMA pool", so AddressSanitizer or valgrind flag any access
 * outside it.
 *
 * Output: one line per test case, then "N passed, N failed".
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "backend.h"

#define POOL_SIZE	(1u << 20)
#define BUS_BASE	0x40000000ull
#define QSIZE		128
/* Ring layout used by the simulated driver: pool offsets. */
#define DESC_OFF	0x0000
#define AVAIL_OFF	0x1000
#define USED_OFF	0x2000
#define DATA_OFF	0x10000
#define DISK_SECTORS	2048

#define DEV_RNG		1
#define DEV_BLK		2
#define DEV_BLK_RO	3

/* ---- minimal test framework ---- */

static unsigned int n_passed, n_failed;
static unsigned int case_failures;

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			case_failures++;				\
			printf("    %s:%d: check failed: %s\n",		\
				__FILE__, __LINE__, #cond);		\
		}							\
	} while (0)

static const char *only;	/* VMSG_TEST_ONLY: run the cases containing this */

static bool verbose;

/*
 * quiet: the case provokes thousands of backend log lines (fuzzing); send
 * them to /dev/null unless VMSG_TEST_VERBOSE is set.  Check failures go to
 * stdout and stay visible.
 */
static void run_case_q(const char *name, void (*fn)(void), bool quiet)
{
	int saved = -1, null;

	if (only && !strstr(name, only))
		return;
	case_failures = 0;
	fflush(stderr);
	if (quiet && !verbose) {
		null = open("/dev/null", O_WRONLY);
		saved = dup(STDERR_FILENO);
		if (null >= 0 && saved >= 0)
			dup2(null, STDERR_FILENO);
		if (null >= 0)
			close(null);
	}
	fn();
	if (saved >= 0) {
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
	if (case_failures) {
		n_failed++;
		printf("FAIL %s\n", name);
	} else {
		n_passed++;
		printf("ok   %s\n", name);
	}
	fflush(stdout);
}

static void run_case(const char *name, void (*fn)(void))
{
	run_case_q(name, fn, false);
}

/* ---- little-endian helpers ---- */

static void put16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

/* ---- test bed: a backend, a pool, recorded events ---- */

struct event {
	uint8_t buf[64];
	size_t len;
};

struct tb {
	struct backend be;
	uint32_t fmt;
	uint8_t *pool;
	uint16_t token;
	struct event ev[256];
	unsigned int n_ev;
	unsigned int n_ev_at_response;	/* n_ev when the last response was out */
	uint64_t alloc_next;
	char blk_path[64];
	int blk_fd;
	size_t max_msg;
	/* Threaded test beds: eventfds the backend bound (our duplicates). */
	int kick_fd[4][VMSG_MAX_VQS];
	int call_fd[4][VMSG_MAX_VQS];
	int bind_err;		/* what set_vring_fd answers */
	unsigned int n_bind;
	unsigned int n_bind_new;	/* binds of an fd other than the slot's last */
	int bound_src[4][VMSG_MAX_VQS][2];	/* the backend's fd, per slot */
};

static struct tb *cur_tb;
/* Events come from the worker threads of a threaded test bed too. */
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;

static int record_event(struct backend *be, const void *buf, size_t len)
{
	struct tb *t = be->send_ctx;

	pthread_mutex_lock(&ev_lock);
	if (t->n_ev < sizeof(t->ev) / sizeof(t->ev[0]) && len <= sizeof(t->ev[0].buf)) {
		memcpy(t->ev[t->n_ev].buf, buf, len);
		t->ev[t->n_ev].len = len;
	}
	t->n_ev++;
	pthread_mutex_unlock(&ev_lock);
	return 0;
}

static int tb_set_vring_fd(struct backend *be, uint16_t dev_num, unsigned int index, bool call,
			   int fd)
{
	struct tb *t = be->send_ctx;
	int *slot;

	if (t->bind_err)
		return t->bind_err;
	if (dev_num >= 4 || index >= VMSG_MAX_VQS)
		return -EINVAL;
	slot = call ? &t->call_fd[dev_num][index] : &t->kick_fd[dev_num][index];
	if (t->bound_src[dev_num][index][call] != fd)
		t->n_bind_new++;
	t->bound_src[dev_num][index][call] = fd;
	if (*slot >= 0)
		close(*slot);
	*slot = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	t->n_bind++;
	return 0;
}

static size_t hdr_size(const struct tb *t)
{
	return t->fmt == VIRTIO_MSG_WIRE_RFC1 ? 6 : 8;
}

static struct vmsg_dev_opts default_opts(void)
{
	struct vmsg_dev_opts o = { .queue_size = QSIZE };

	return o;
}

static void tb_init_opts(struct tb *t, uint32_t fmt, const struct vmsg_dev_opts *opts)
{
	struct vmsg_pool pool;
	struct vmsg_device *dev;
	char err[256];
	int ret;

	memset(t, 0, sizeof(*t));
	memset(t->kick_fd, 0xff, sizeof(t->kick_fd));
	memset(t->bound_src, 0xff, sizeof(t->bound_src));
	memset(t->call_fd, 0xff, sizeof(t->call_fd));
	cur_tb = t;
	t->fmt = fmt;
	t->token = 1;
	t->max_msg = 256;
	/* Exactly POOL_SIZE bytes so the sanitizers catch any overrun. */
	t->pool = aligned_alloc(4096, POOL_SIZE);
	memset(t->pool, 0, POOL_SIZE);
	pool.base = t->pool;
	pool.size = POOL_SIZE;
	pool.bus_base = BUS_BASE;
	ret = backend_init(&t->be, fmt, t->max_msg, &pool);
	CHECK(ret == 0);
	t->be.send_event = record_event;
	t->be.send_ctx = t;
	t->alloc_next = DATA_OFF;

	dev = vmsg_rng_create(DEV_RNG, opts);
	CHECK(dev && backend_add_device(&t->be, dev) == 0);

	strcpy(t->blk_path, "/tmp/vmsg-test-XXXXXX");
	t->blk_fd = mkstemp(t->blk_path);
	CHECK(t->blk_fd >= 0);
	CHECK(ftruncate(t->blk_fd, DISK_SECTORS * 512) == 0);
	dev = vmsg_blk_create(DEV_BLK, t->blk_path, false, opts, err, sizeof(err));
	if (!dev)
		fprintf(stderr, "    blk: %s\n", err);
	CHECK(dev && backend_add_device(&t->be, dev) == 0);
	/* Read-only view of the same file: shared lock is fine. */
	close(t->blk_fd);
	t->blk_fd = open(t->blk_path, O_RDWR);
}

static void tb_init(struct tb *t, uint32_t fmt)
{
	struct vmsg_dev_opts o = default_opts();

	tb_init_opts(t, fmt, &o);
}

static void tb_add_ro(struct tb *t)
{
	struct vmsg_dev_opts o = default_opts();
	struct vmsg_device *dev;
	char err[256];
	int fd;

	/* A second file: the first is exclusively locked by DEV_BLK. */
	char path[64] = "/tmp/vmsg-test-ro-XXXXXX";

	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, "readonly", 8, 0) == 8);
	CHECK(ftruncate(fd, 64 * 512) == 0);
	close(fd);
	dev = vmsg_blk_create(DEV_BLK_RO, path, true, &o, err, sizeof(err));
	CHECK(dev && backend_add_device(&t->be, dev) == 0);
	unlink(path);
}

/* Serve queues from worker threads; bind_err < 0: the bus refuses eventfds. */
static void tb_init_threaded(struct tb *t, const struct vmsg_dev_opts *opts, bool vring_fds,
			     int bind_err)
{
	tb_init_opts(t, VIRTIO_MSG_WIRE_SPEC, opts);
	t->be.workers = &vq_worker_ops;
	if (vring_fds)
		t->be.set_vring_fd = tb_set_vring_fd;
	t->bind_err = bind_err;
}

static void tb_fini(struct tb *t)
{
	unsigned int i, j;

	backend_destroy(&t->be);
	for (i = 0; i < 4; i++) {
		for (j = 0; j < VMSG_MAX_VQS; j++) {
			if (t->kick_fd[i][j] >= 0)
				close(t->kick_fd[i][j]);
			if (t->call_fd[i][j] >= 0)
				close(t->call_fd[i][j]);
		}
	}
	free(t->pool);
	close(t->blk_fd);
	unlink(t->blk_path);
	cur_tb = NULL;
}

static uint8_t *pool_at(struct tb *t, uint64_t bus)
{
	return t->pool + (bus - BUS_BASE);
}

static uint64_t tb_alloc(struct tb *t, uint32_t len, uint32_t align)
{
	uint64_t off = (t->alloc_next + align - 1) & ~(uint64_t)(align - 1);

	t->alloc_next = off + len;
	if (t->alloc_next > POOL_SIZE) {
		fprintf(stderr, "test pool exhausted\n");
		abort();
	}
	return BUS_BASE + off;
}

/* ---- messages ---- */

static size_t build_msg(const struct tb *t, uint8_t *buf, uint8_t type, uint8_t id,
			uint16_t dev, uint16_t token, const void *payload, size_t plen)
{
	size_t h = hdr_size(t);

	buf[0] = type;
	buf[1] = id;
	put16(buf + 2, dev);
	if (t->fmt == VIRTIO_MSG_WIRE_RFC1) {
		put16(buf + 4, (uint16_t)(h + plen));
	} else {
		put16(buf + 4, token);
		put16(buf + 6, (uint16_t)(h + plen));
	}
	if (plen)
		memcpy(buf + h, payload, plen);
	return h + plen;
}

/*
 * Send a request with a wire-layout payload; returns the length of the
 * response payload (copied to resp) or -1 if there was no response.
 */
static int tb_req_type(struct tb *t, uint8_t type, uint16_t dev, uint8_t id, const void *payload,
		       size_t plen, uint8_t *resp)
{
	uint8_t in[512], out[512];
	size_t len, out_len = 0, h = hdr_size(t);
	uint16_t token = t->token++;

	len = build_msg(t, in, type, id, dev, token, payload, plen);
	backend_handle_message(&t->be, in, len, out, sizeof(out), &out_len);
	/* Events caused by a request only come after its response. */
	t->n_ev_at_response = t->n_ev;
	backend_run_deferred(&t->be);
	if (!out_len)
		return -1;
	CHECK(out_len >= h && out_len <= t->max_msg);
	CHECK(out[0] == (type | VIRTIO_MSG_TYPE_RESPONSE));
	CHECK(out[1] == id);
	CHECK(get16(out + 2) == dev);
	if (t->fmt == VIRTIO_MSG_WIRE_RFC1) {
		CHECK(get16(out + 4) == out_len);
	} else {
		CHECK(get16(out + 4) == token);
		CHECK(get16(out + 6) == out_len);
	}
	if (resp)
		memcpy(resp, out + h, out_len - h);
	return (int)(out_len - h);
}

static int tb_req(struct tb *t, uint16_t dev, uint8_t id, const void *payload, size_t plen,
		  uint8_t *resp)
{
	return tb_req_type(t, 0, dev, id, payload, plen, resp);
}

static int tb_req32(struct tb *t, uint16_t dev, uint8_t id, uint32_t a, uint8_t *resp)
{
	uint8_t p[4];

	put32(p, a);
	return tb_req(t, dev, id, p, sizeof(p), resp);
}

static int tb_req64(struct tb *t, uint16_t dev, uint8_t id, uint32_t a, uint32_t b,
		    uint8_t *resp)
{
	uint8_t p[8];

	put32(p, a);
	put32(p + 4, b);
	return tb_req(t, dev, id, p, sizeof(p), resp);
}

static uint32_t tb_set_status(struct tb *t, uint16_t dev, uint32_t status)
{
	uint8_t r[64];

	CHECK(tb_req32(t, dev, VIRTIO_MSG_SET_DEVICE_STATUS, status, r) == 4);
	return get32(r);
}

static uint32_t tb_get_status(struct tb *t, uint16_t dev)
{
	uint8_t r[64];

	CHECK(tb_req(t, dev, VIRTIO_MSG_GET_DEVICE_STATUS, NULL, 0, r) == 4);
	return get32(r);
}

static uint64_t tb_get_features(struct tb *t, uint16_t dev)
{
	uint8_t r[64];

	CHECK(tb_req64(t, dev, VIRTIO_MSG_GET_DEVICE_FEATURES, 0, 2, r) == 16);
	return get32(r + 8) | (uint64_t)get32(r + 12) << 32;
}

static void tb_set_features(struct tb *t, uint16_t dev, uint64_t f)
{
	uint8_t p[16];

	put32(p, 0);
	put32(p + 4, 2);
	put32(p + 8, (uint32_t)f);
	put32(p + 12, (uint32_t)(f >> 32));
	CHECK(tb_req(t, dev, VIRTIO_MSG_SET_DRIVER_FEATURES, p, sizeof(p), NULL) == 0);
}

/* SET_VQUEUE in the wire layout of the test bed's format. */
static void tb_set_vqueue(struct tb *t, uint16_t dev, uint32_t index, uint32_t size,
			  uint64_t desc, uint64_t drv, uint64_t devaddr)
{
	uint8_t p[40];
	size_t a = t->fmt == VIRTIO_MSG_WIRE_RFC1 ? 12 : 16;

	memset(p, 0, sizeof(p));
	put32(p, index);
	put32(p + 8, size);
	put64(p + a, desc);
	put64(p + a + 8, drv);
	put64(p + a + 16, devaddr);
	CHECK(tb_req(t, dev, VIRTIO_MSG_SET_VQUEUE, p, a + 24, NULL) == 0);
}

static void tb_kick(struct tb *t, uint16_t dev, uint32_t vq)
{
	uint8_t in[64], out[512], p[8];
	size_t len, out_len = 1;

	put32(p, vq);
	put32(p + 4, 0);
	len = build_msg(t, in, 0, VIRTIO_MSG_EVENT_AVAIL, dev, 0, p, sizeof(p));
	backend_handle_message(&t->be, in, len, out, sizeof(out), &out_len);
	CHECK(out_len == 0);
	backend_run_deferred(&t->be);
}

static unsigned int count_events(struct tb *t, uint8_t id, uint16_t dev)
{
	unsigned int i, n = 0;

	pthread_mutex_lock(&ev_lock);
	for (i = 0; i < t->n_ev && i < 256; i++) {
		const uint8_t *b = t->ev[i].buf;

		if (b[1] == id && get16(b + 2) == dev)
			n++;
	}
	pthread_mutex_unlock(&ev_lock);
	return n;
}

/* ---- simulated driver side of a split virtqueue ---- */

struct dvq {
	uint32_t size;
	uint64_t desc, avail, used;	/* bus addresses */
	uint16_t avail_idx;
	uint16_t next_desc;
	uint16_t last_used;
};

struct buf {
	uint64_t addr;
	uint32_t len;
	bool write;
};

static void dvq_init(struct dvq *q, uint32_t size)
{
	memset(q, 0, sizeof(*q));
	q->size = size;
	q->desc = BUS_BASE + DESC_OFF;
	q->avail = BUS_BASE + AVAIL_OFF;
	q->used = BUS_BASE + USED_OFF;
}

static void set_desc(uint8_t *table, uint32_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t *d = table + 16 * (size_t)i;

	put64(d, addr);
	put32(d + 8, len);
	put16(d + 12, flags);
	put16(d + 14, next);
}

static void dvq_publish(struct tb *t, struct dvq *q, uint16_t head)
{
	uint8_t *avail = pool_at(t, q->avail);

	put16(avail + 4 + 2 * (q->avail_idx % q->size), head);
	q->avail_idx++;
	__atomic_store_n((uint16_t *)(void *)(avail + 2), htole16(q->avail_idx), __ATOMIC_RELEASE);
}

static uint16_t dvq_add(struct tb *t, struct dvq *q, const struct buf *b, unsigned int n,
			bool indirect)
{
	uint8_t *desc = pool_at(t, q->desc);
	uint16_t head = q->next_desc;
	unsigned int i;

	if (indirect) {
		uint64_t table = tb_alloc(t, 16 * n, 16);

		for (i = 0; i < n; i++)
			set_desc(pool_at(t, table), i, b[i].addr, b[i].len,
				 (b[i].write ? VRING_DESC_F_WRITE : 0) |
				 (i + 1 < n ? VRING_DESC_F_NEXT : 0), (uint16_t)(i + 1));
		set_desc(desc, head, table, 16 * n, VRING_DESC_F_INDIRECT, 0);
		q->next_desc = (uint16_t)((head + 1) % q->size);
	} else {
		for (i = 0; i < n; i++) {
			uint16_t idx = (uint16_t)((head + i) % q->size);

			set_desc(desc, idx, b[i].addr, b[i].len,
				 (b[i].write ? VRING_DESC_F_WRITE : 0) |
				 (i + 1 < n ? VRING_DESC_F_NEXT : 0),
				 (uint16_t)((idx + 1) % q->size));
		}
		q->next_desc = (uint16_t)((head + n) % q->size);
	}
	dvq_publish(t, q, head);
	return head;
}

static uint16_t used_idx(struct tb *t, struct dvq *q)
{
	/* Acquire: a worker thread may be publishing it. */
	return le16toh(__atomic_load_n((uint16_t *)(void *)(pool_at(t, q->used) + 2),
				       __ATOMIC_ACQUIRE));
}

/* Pop one used element; false if none. */
static bool dvq_pop(struct tb *t, struct dvq *q, uint32_t *id, uint32_t *len)
{
	uint8_t *e;

	if (used_idx(t, q) == q->last_used)
		return false;
	e = pool_at(t, q->used) + 4 + 8 * (q->last_used % q->size);
	*id = get32(e);
	*len = get32(e + 4);
	q->last_used++;
	return true;
}

/* The driver's probe: negotiate, set up vq 0, DRIVER_OK. */
static void tb_probe(struct tb *t, uint16_t dev, struct dvq *q, uint64_t drop_features)
{
	uint64_t f;

	CHECK(tb_set_status(t, dev, 0) == 0);
	tb_set_status(t, dev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	f = tb_get_features(t, dev) & ~drop_features;
	tb_set_features(t, dev, f);
	CHECK(tb_set_status(t, dev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			    VIRTIO_CONFIG_S_FEATURES_OK) & VIRTIO_CONFIG_S_FEATURES_OK);
	dvq_init(q, QSIZE);
	memset(pool_at(t, q->desc), 0, 16 * QSIZE);
	memset(pool_at(t, q->avail), 0, 6 + 2 * QSIZE);
	memset(pool_at(t, q->used), 0, 6 + 8 * QSIZE);
	tb_set_vqueue(t, dev, 0, QSIZE, q->desc, q->avail, q->used);
	CHECK(tb_set_status(t, dev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			    VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK) ==
	      (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
	       VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK));
}

/* A virtio-blk request: header, optional data, status. */
struct blkreq {
	uint64_t hdr, status;
	uint16_t head;
};

static void blk_submit(struct tb *t, struct dvq *q, struct blkreq *r, uint32_t type,
		       uint64_t sector, uint64_t data, uint32_t data_len, bool indirect)
{
	struct buf b[3];
	unsigned int n = 0;

	r->hdr = tb_alloc(t, 16, 8);
	r->status = tb_alloc(t, 1, 1);
	put32(pool_at(t, r->hdr), type);
	put32(pool_at(t, r->hdr) + 4, 0);
	put64(pool_at(t, r->hdr) + 8, sector);
	*pool_at(t, r->status) = 0xff;
	b[n++] = (struct buf){ r->hdr, 16, false };
	if (data_len)
		b[n++] = (struct buf){ data, data_len, type != VIRTIO_BLK_T_OUT };
	b[n++] = (struct buf){ r->status, 1, true };
	r->head = dvq_add(t, q, b, n, indirect);
}

/* Submit, kick, pop; returns the status byte (0xff: not completed). */
static uint8_t blk_do(struct tb *t, struct dvq *q, uint16_t dev, uint32_t type,
		      uint64_t sector, uint64_t data, uint32_t data_len, bool indirect,
		      uint32_t *used_len)
{
	struct blkreq r;
	uint32_t id = 0xffff, len = 0;

	blk_submit(t, q, &r, type, sector, data, data_len, indirect);
	tb_kick(t, dev, 0);
	if (!dvq_pop(t, q, &id, &len))
		return 0xff;
	CHECK(id == r.head);
	if (used_len)
		*used_len = len;
	return *pool_at(t, r.status);
}

static struct vmsg_device *dev_of(struct tb *t, uint16_t num)
{
	return backend_find_device(&t->be, num);
}

/* ---- test cases: codec and transport messages ---- */

static void test_pool_ptr(void)
{
	uint8_t mem[64];
	struct vmsg_pool p = { mem, sizeof(mem), 0x1000 };

	CHECK(vmsg_pool_ptr(&p, 0x1000, 64) == mem);
	CHECK(vmsg_pool_ptr(&p, 0x1000 + 63, 1) == mem + 63);
	CHECK(vmsg_pool_ptr(&p, 0x1000 + 64, 0) == mem + 64);
	CHECK(!vmsg_pool_ptr(&p, 0x1000 + 64, 1));
	CHECK(!vmsg_pool_ptr(&p, 0x1000, 65));
	CHECK(!vmsg_pool_ptr(&p, 0xfff, 1));
	CHECK(!vmsg_pool_ptr(&p, 0, 0));
	CHECK(!vmsg_pool_ptr(&p, UINT64_MAX, 2));
	CHECK(!vmsg_pool_ptr(&p, 0x1000 + 8, UINT64_MAX));
	CHECK(!vmsg_pool_ptr(&p, 0x1000 + 65, 0));
}

static void test_codec(void)
{
	static struct vmsg_msg m, d;
	uint8_t buf[128];
	ssize_t n;

	/* GET_VQUEUE response: addresses at payload offset 16 (spec) / 12 (RFC1). */
	memset(&m, 0, sizeof(m));
	m.type = VIRTIO_MSG_TYPE_RESPONSE;
	m.msg_id = VIRTIO_MSG_GET_VQUEUE;
	m.dev_num = 7;
	m.token = 0x1234;
	m.payload_len = 40;
	put32(m.payload, 3);
	put32(m.payload + 4, 256);
	put32(m.payload + 8, 64);
	put64(m.payload + 16, 0x1111222233334444ull);
	put64(m.payload + 24, 0x5555);
	put64(m.payload + 32, 0x6666);

	n = vmsg_encode(VIRTIO_MSG_WIRE_SPEC, &m, buf, sizeof(buf));
	CHECK(n == 48);
	CHECK(get16(buf + 4) == 0x1234 && get16(buf + 6) == 48);
	CHECK(get64(buf + 8 + 16) == 0x1111222233334444ull);

	n = vmsg_encode(VIRTIO_MSG_WIRE_RFC1, &m, buf, sizeof(buf));
	CHECK(n == 42);
	CHECK(get16(buf + 2) == 7 && get16(buf + 4) == 42);
	CHECK(get32(buf + 6 + 8) == 64);
	CHECK(get64(buf + 6 + 12) == 0x1111222233334444ull);
	CHECK(get64(buf + 6 + 20) == 0x5555 && get64(buf + 6 + 28) == 0x6666);
	CHECK(vmsg_decode(VIRTIO_MSG_WIRE_RFC1, buf, (size_t)n, &d) == 0);
	CHECK(d.payload_len == 40 && !memcmp(d.payload, m.payload, 40) && d.token == 0);

	/* Too small a buffer. */
	CHECK(vmsg_encode(VIRTIO_MSG_WIRE_SPEC, &m, buf, 47) == -EMSGSIZE);

	/* Other messages are identical in both formats apart from the header. */
	m.msg_id = VIRTIO_MSG_GET_CONFIG;
	m.payload_len = 13;
	n = vmsg_encode(VIRTIO_MSG_WIRE_RFC1, &m, buf, sizeof(buf));
	CHECK(n == 19 && !memcmp(buf + 6, m.payload, 13));

	/* Malformed input. */
	memset(buf, 0, sizeof(buf));
	CHECK(vmsg_decode(VIRTIO_MSG_WIRE_SPEC, buf, 7, &d) == -EINVAL);
	put16(buf + 6, 7);
	CHECK(vmsg_decode(VIRTIO_MSG_WIRE_SPEC, buf, 8, &d) == -EINVAL);
	put16(buf + 6, 20);
	CHECK(vmsg_decode(VIRTIO_MSG_WIRE_SPEC, buf, 19, &d) == -EINVAL);
	CHECK(vmsg_decode(VIRTIO_MSG_WIRE_SPEC, buf, 64, &d) == 0 && d.payload_len == 12);
	/* A truncated RFC1 SET_VQUEUE stays truncated (and is rejected later). */
	buf[1] = VIRTIO_MSG_SET_VQUEUE;
	put16(buf + 4, 6 + 20);
	CHECK(vmsg_decode(VIRTIO_MSG_WIRE_RFC1, buf, 26, &d) == 0 && d.payload_len == 24);
	put16(buf + 4, 6 + 8);
	CHECK(vmsg_decode(VIRTIO_MSG_WIRE_RFC1, buf, 26, &d) == 0 && d.payload_len == 8);
}

static void device_info_fmt(uint32_t fmt)
{
	struct tb t;
	uint8_t r[256];

	tb_init(&t, fmt);
	CHECK(tb_req(&t, DEV_RNG, VIRTIO_MSG_GET_DEVICE_INFO, NULL, 0, r) == 24);
	CHECK(get32(r) == 4);
	CHECK(get32(r + 4) == VMSG_VENDOR_ID);
	CHECK(get32(r + 8) == 64);
	CHECK(get32(r + 12) == 0);
	CHECK(get32(r + 16) == 1);
	CHECK(tb_req(&t, DEV_BLK, VIRTIO_MSG_GET_DEVICE_INFO, NULL, 0, r) == 24);
	CHECK(get32(r) == 2);
	CHECK(get32(r + 12) == offsetof(struct virtio_blk_config, max_discard_sectors));
	CHECK(get32(r + 16) == 1);
	tb_fini(&t);
}

static void test_device_info_spec(void) { device_info_fmt(VIRTIO_MSG_WIRE_SPEC); }
static void test_device_info_rfc1(void) { device_info_fmt(VIRTIO_MSG_WIRE_RFC1); }

static void features_fmt(uint32_t fmt)
{
	struct vmsg_dev_opts o = default_opts();
	struct tb t;
	uint8_t r[256];
	uint64_t f;

	o.notification_data = true;
	tb_init_opts(&t, fmt, &o);
	tb_add_ro(&t);
	f = tb_get_features(&t, DEV_BLK);
	CHECK(f & (1ULL << VIRTIO_F_VERSION_1));
	CHECK(f & (1ULL << VIRTIO_F_ACCESS_PLATFORM));
	CHECK(f & (1ULL << VIRTIO_F_NOTIFICATION_DATA));
	CHECK(f & (1ULL << VIRTIO_RING_F_INDIRECT_DESC));
	CHECK(!(f & (1ULL << VIRTIO_RING_F_EVENT_IDX)));
	CHECK(f & (1ULL << VIRTIO_BLK_F_SEG_MAX));
	CHECK(f & (1ULL << VIRTIO_BLK_F_BLK_SIZE));
	CHECK(f & (1ULL << VIRTIO_BLK_F_FLUSH));
	CHECK(!(f & (1ULL << VIRTIO_BLK_F_RO)));
	CHECK(tb_get_features(&t, DEV_BLK_RO) & (1ULL << VIRTIO_BLK_F_RO));
	/* Blocks past num_feature_bits read as 0; block_index is echoed. */
	CHECK(tb_req64(&t, DEV_RNG, VIRTIO_MSG_GET_DEVICE_FEATURES, 1, 3, r) == 20);
	CHECK(get32(r) == 1 && get32(r + 4) == 3);
	CHECK(get32(r + 8) == (uint32_t)((1ULL << (VIRTIO_F_VERSION_1 - 32)) |
					 (1ULL << (VIRTIO_F_ACCESS_PLATFORM - 32)) |
					 (1ULL << (VIRTIO_F_NOTIFICATION_DATA - 32))));
	CHECK(get32(r + 12) == 0 && get32(r + 16) == 0);
	CHECK(tb_req64(&t, DEV_RNG, VIRTIO_MSG_GET_DEVICE_FEATURES, 0xffffffff, 2, r) == 16);
	CHECK(get32(r + 8) == 0 && get32(r + 12) == 0);
	/* Too many blocks for the 256-byte messages: clipped, still valid. */
	CHECK(tb_req64(&t, DEV_RNG, VIRTIO_MSG_GET_DEVICE_FEATURES, 0, 1000, r) > 0);
	CHECK(get32(r + 4) < 1000 && get32(r + 4) > 2);
	/* Short request: dropped. */
	CHECK(tb_req32(&t, DEV_RNG, VIRTIO_MSG_GET_DEVICE_FEATURES, 0, r) == -1);
	tb_fini(&t);
}

static void test_features_spec(void) { features_fmt(VIRTIO_MSG_WIRE_SPEC); }
static void test_features_rfc1(void) { features_fmt(VIRTIO_MSG_WIRE_RFC1); }

static void test_feature_negotiation(void)
{
	const uint32_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
	struct tb t;
	uint64_t f;
	uint8_t p[16];

	tb_init(&t, VIRTIO_MSG_WIRE_SPEC);
	f = tb_get_features(&t, DEV_BLK);

	/* A feature the device did not offer: FEATURES_OK refused. */
	tb_set_status(&t, DEV_BLK, s);
	tb_set_features(&t, DEV_BLK, f | (1ULL << VIRTIO_BLK_F_DISCARD));
	CHECK(!(tb_set_status(&t, DEV_BLK, s | VIRTIO_CONFIG_S_FEATURES_OK) &
		VIRTIO_CONFIG_S_FEATURES_OK));
	CHECK(tb_get_status(&t, DEV_BLK) == s);

	/* Without ACCESS_PLATFORM: refused. */
	tb_set_status(&t, DEV_BLK, 0);
	tb_set_status(&t, DEV_BLK, s);
	tb_set_features(&t, DEV_BLK, f & ~(1ULL << VIRTIO_F_ACCESS_PLATFORM));
	CHECK(!(tb_set_status(&t, DEV_BLK, s | VIRTIO_CONFIG_S_FEATURES_OK) &
		VIRTIO_CONFIG_S_FEATURES_OK));

	/* Bits beyond num_feature_bits: refused. */
	tb_set_status(&t, DEV_BLK, 0);
	tb_set_status(&t, DEV_BLK, s);
	tb_set_features(&t, DEV_BLK, f);
	put32(p, 2);
	put32(p + 4, 1);
	put32(p + 8, 1);
	CHECK(tb_req(&t, DEV_BLK, VIRTIO_MSG_SET_DRIVER_FEATURES, p, 12, NULL) == 0);
	CHECK(!(tb_set_status(&t, DEV_BLK, s | VIRTIO_CONFIG_S_FEATURES_OK) &
		VIRTIO_CONFIG_S_FEATURES_OK));

	/* The offered set: accepted, and later feature writes are ignored. */
	tb_set_status(&t, DEV_BLK, 0);
	CHECK(dev_of(&t, DEV_BLK)->driver_features == 0);
	tb_set_status(&t, DEV_BLK, s);
	tb_set_features(&t, DEV_BLK, f);
	CHECK(tb_set_status(&t, DEV_BLK, s | VIRTIO_CONFIG_S_FEATURES_OK) ==
	      (s | VIRTIO_CONFIG_S_FEATURES_OK));
	tb_set_features(&t, DEV_BLK, 0);
	CHECK(dev_of(&t, DEV_BLK)->driver_features == f);

	/* num_blocks larger than the payload: malformed, no response. */
	put32(p, 0);
	put32(p + 4, 4);
	CHECK(tb_req(&t, DEV_BLK, VIRTIO_MSG_SET_DRIVER_FEATURES, p, 16, NULL) == -1);
	tb_fini(&t);
}

static void test_config(void)
{
	struct tb t;
	uint8_t r[256], p[32];

	tb_init(&t, VIRTIO_MSG_WIRE_SPEC);
	CHECK(tb_req64(&t, DEV_BLK, VIRTIO_MSG_GET_CONFIG, 0, 8, r) == 20);
	CHECK(get32(r) == 0 && get32(r + 4) == 0 && get32(r + 8) == 8);
	CHECK(get64(r + 12) == DISK_SECTORS);
	CHECK(tb_req64(&t, DEV_BLK, VIRTIO_MSG_GET_CONFIG, 12, 4, r) == 16);
	CHECK(get32(r + 12) == QSIZE - 2);
	CHECK(tb_req64(&t, DEV_BLK, VIRTIO_MSG_GET_CONFIG, 20, 4, r) == 16);
	CHECK(get32(r + 12) == 512);
	/* Whole config space in one go. */
	CHECK(tb_req64(&t, DEV_BLK, VIRTIO_MSG_GET_CONFIG, 0, 36, r) == 48);
	/* Out of range, overflowing, empty config: length 0, generation valid. */
	CHECK(tb_req64(&t, DEV_BLK, VIRTIO_MSG_GET_CONFIG, 34, 4, r) == 12);
	CHECK(get32(r + 8) == 0);
	CHECK(tb_req64(&t, DEV_BLK, VIRTIO_MSG_GET_CONFIG, 0xffffffff, 2, r) == 12);
	CHECK(get32(r + 4) == 0xffffffff && get32(r + 8) == 0);
	CHECK(tb_req64(&t, DEV_BLK, VIRTIO_MSG_GET_CONFIG, 4, 0xfffffffe, r) == 12);
	CHECK(tb_req64(&t, DEV_RNG, VIRTIO_MSG_GET_CONFIG, 0, 4, r) == 12);
	CHECK(get32(r + 8) == 0);
	/* Length 0 reads just the generation. */
	CHECK(tb_req64(&t, DEV_BLK, VIRTIO_MSG_GET_CONFIG, 0, 0, r) == 12);

	/* SET_CONFIG: nothing is writable here, so rejected (length 0). */
	memset(p, 0, sizeof(p));
	put32(p + 4, 32);
	put32(p + 8, 1);
	p[12] = 1;
	CHECK(tb_req(&t, DEV_BLK, VIRTIO_MSG_SET_CONFIG, p, 13, r) == 12);
	CHECK(get32(r + 4) == 32 && get32(r + 8) == 0);
	/* Length beyond the payload: malformed, no response. */
	put32(p + 8, 8);
	CHECK(tb_req(&t, DEV_BLK, VIRTIO_MSG_SET_CONFIG, p, 13, r) == -1);
	tb_fini(&t);
}

static void vqueue_fmt(uint32_t fmt)
{
	size_t a = fmt == VIRTIO_MSG_WIRE_RFC1 ? 12 : 16;
	struct tb t;
	uint8_t r[256];
	struct dvq q;

	tb_init(&t, fmt);
	CHECK(tb_req32(&t, DEV_BLK, VIRTIO_MSG_GET_VQUEUE, 0, r) == (int)(a + 24));
	CHECK(get32(r) == 0 && get32(r + 4) == QSIZE && get32(r + 8) == 0);
	CHECK(get64(r + a) == 0);
	CHECK(tb_req32(&t, DEV_BLK, VIRTIO_MSG_GET_VQUEUE, 1, r) == (int)(a + 24));
	CHECK(get32(r) == 1 && get32(r + 4) == 0);
	CHECK(tb_req32(&t, DEV_BLK, VIRTIO_MSG_GET_VQUEUE, 0xffffffff, r) == (int)(a + 24));
	CHECK(get32(r + 4) == 0);

	tb_probe(&t, DEV_BLK, &q, 0);
	CHECK(dev_of(&t, DEV_BLK)->vqs[0].enabled);
	CHECK(tb_req32(&t, DEV_BLK, VIRTIO_MSG_GET_VQUEUE, 0, r) == (int)(a + 24));
	CHECK(get32(r + 8) == QSIZE);
	CHECK(get64(r + a) == q.desc && get64(r + a + 8) == q.avail &&
	      get64(r + a + 16) == q.used);

	/* A working request proves the addresses were decoded right. */
	CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL) ==
	      VIRTIO_BLK_S_OK);

	CHECK(tb_req32(&t, DEV_BLK, VIRTIO_MSG_RESET_VQUEUE, 0, r) == 0);
	CHECK(!dev_of(&t, DEV_BLK)->vqs[0].enabled);
	CHECK(tb_req32(&t, DEV_BLK, VIRTIO_MSG_GET_VQUEUE, 0, r) == (int)(a + 24));
	CHECK(get32(r + 8) == 0);

	/* SET_VQUEUE for a queue that does not exist: answered, ignored. */
	tb_set_vqueue(&t, DEV_BLK, 5, QSIZE, q.desc, q.avail, q.used);
	/* Truncated SET_VQUEUE: dropped. */
	CHECK(tb_req32(&t, DEV_BLK, VIRTIO_MSG_SET_VQUEUE, 0, r) == -1);

	/* GET_SHM: no regions. */
	CHECK(tb_req32(&t, DEV_BLK, VIRTIO_MSG_GET_SHM, 3, r) == 12);
	CHECK(get32(r) == 3 && get32(r + 4) == 0);
	tb_fini(&t);
}

static void test_vqueue_spec(void) { vqueue_fmt(VIRTIO_MSG_WIRE_SPEC); }
static void test_vqueue_rfc1(void) { vqueue_fmt(VIRTIO_MSG_WIRE_RFC1); }

static void test_status_reset(void)
{
	struct vmsg_device *dev;
	struct tb t;
	struct dvq q;

	tb_init(&t, VIRTIO_MSG_WIRE_SPEC);
	tb_probe(&t, DEV_BLK, &q, 0);
	dev = dev_of(&t, DEV_BLK);
	CHECK(dev->vqs[0].enabled && dev->driver_features);
	CHECK(tb_set_status(&t, DEV_BLK, 0) == 0);
	CHECK(!dev->vqs[0].enabled && !dev->vqs[0].configured && !dev->driver_features);
	CHECK(tb_get_status(&t, DEV_BLK) == 0);
	/* FAILED is just recorded. */
	CHECK(tb_set_status(&t, DEV_BLK, VIRTIO_CONFIG_S_FAILED) == VIRTIO_CONFIG_S_FAILED);
	tb_fini(&t);
}

static void test_bus_and_misc(void)
{
	struct tb t;
	uint8_t r[256], p[8], in[64], out[512];
	size_t len, out_len;
	unsigned int i;

	tb_init(&t, VIRTIO_MSG_WIRE_SPEC);
	/* PING is echoed. */
	put32(p, 0xdeadbeef);
	CHECK(tb_req_type(&t, VIRTIO_MSG_TYPE_BUS, 0, VIRTIO_MSG_BUS_PING, p, 4, r) == 4);
	CHECK(get32(r) == 0xdeadbeef);
	/* GET_DEVICES: devices 1 and 2. */
	put16(p, 0);
	put16(p + 2, 16);
	CHECK(tb_req_type(&t, VIRTIO_MSG_TYPE_BUS, 0, VIRTIO_MSG_BUS_GET_DEVICES, p, 4, r) == 8);
	CHECK(get16(r) == 0 && get16(r + 2) == 16 && get16(r + 4) == 0);
	CHECK(r[6] == 0x06 && r[7] == 0);
	put16(p, 0xfff8);
	put16(p + 2, 64);
	CHECK(tb_req_type(&t, VIRTIO_MSG_TYPE_BUS, 0, VIRTIO_MSG_BUS_GET_DEVICES, p, 4, r) == 7);
	CHECK(get16(r + 2) == 8);
	/* Unknown bus request, bus event: no response. */
	CHECK(tb_req_type(&t, VIRTIO_MSG_TYPE_BUS, 0, 0x30, p, 4, r) == -1);
	CHECK(tb_req_type(&t, VIRTIO_MSG_TYPE_BUS, 0, VIRTIO_MSG_BUS_EVENT_DEVICE, p, 4, r) == -1);
	/* Unknown device, unknown request, responses, events: no response. */
	CHECK(tb_req(&t, 99, VIRTIO_MSG_GET_DEVICE_INFO, NULL, 0, r) == -1);
	CHECK(tb_req(&t, DEV_BLK, 0x3f, NULL, 0, r) == -1);
	CHECK(tb_req(&t, DEV_BLK, 0x85, NULL, 0, r) == -1);
	CHECK(tb_req_type(&t, VIRTIO_MSG_TYPE_RESPONSE, DEV_BLK, VIRTIO_MSG_GET_DEVICE_INFO, NULL,
			  0, r) == -1);
	CHECK(tb_req(&t, DEV_BLK, VIRTIO_MSG_EVENT_CONFIG, NULL, 0, r) == -1);
	/* Short payloads of every request: dropped. */
	for (i = 0; i < 0x10; i++)
		if (i != VIRTIO_MSG_GET_DEVICE_INFO && i != VIRTIO_MSG_GET_DEVICE_STATUS)
			CHECK(tb_req(&t, DEV_BLK, (uint8_t)i, p, 2, r) == -1);
	/* Reserved type bits are ignored on input and zero on output. */
	len = build_msg(&t, in, 0x80, VIRTIO_MSG_GET_DEVICE_STATUS, DEV_BLK, 9, NULL, 0);
	backend_handle_message(&t.be, in, len, out, sizeof(out), &out_len);
	backend_run_deferred(&t.be);
	CHECK(out_len == 12 && out[0] == VIRTIO_MSG_TYPE_RESPONSE);
	/* Kicks for nonexistent or unconfigured queues. */
	tb_kick(&t, DEV_BLK, 7);
	tb_kick(&t, DEV_BLK, 0);
	tb_kick(&t, 77, 0);
	CHECK(t.n_ev == 0);
	tb_fini(&t);
}

/* ---- test cases: virtio-blk and virtio-rng through the rings ---- */

static void fill_pattern(uint8_t *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + seed * 13 + (i >> 8));
}

static void blk_roundtrip_fmt(uint32_t fmt, bool indirect)
{
	struct tb t;
	struct dvq q;
	struct blkreq r;
	uint64_t wbuf, rbuf;
	uint8_t file[3 * 512];
	uint32_t len = 0, id = 0;
	struct buf b[5];
	const uint8_t *ev;

	tb_init(&t, fmt);
	tb_probe(&t, DEV_BLK, &q, 0);
	wbuf = tb_alloc(&t, 3 * 512, 512);
	rbuf = tb_alloc(&t, 3 * 512 + 1, 512);
	fill_pattern(pool_at(&t, wbuf), 3 * 512, 1);

	/* Write: header, data split over two descriptors, status. */
	r.hdr = tb_alloc(&t, 16, 8);
	r.status = tb_alloc(&t, 1, 1);
	put32(pool_at(&t, r.hdr), VIRTIO_BLK_T_OUT);
	put32(pool_at(&t, r.hdr) + 4, 0);
	put64(pool_at(&t, r.hdr) + 8, 5);
	*pool_at(&t, r.status) = 0xff;
	b[0] = (struct buf){ r.hdr, 16, false };
	b[1] = (struct buf){ wbuf, 1000, false };
	b[2] = (struct buf){ wbuf + 1000, 3 * 512 - 1000, false };
	b[3] = (struct buf){ r.status, 1, true };
	r.head = dvq_add(&t, &q, b, 4, indirect);
	tb_kick(&t, DEV_BLK, 0);
	CHECK(dvq_pop(&t, &q, &id, &len));
	CHECK(id == r.head && len == 1);
	CHECK(*pool_at(&t, r.status) == VIRTIO_BLK_S_OK);
	CHECK(pread(t.blk_fd, file, sizeof(file), 5 * 512) == sizeof(file));
	CHECK(!memcmp(file, pool_at(&t, wbuf), sizeof(file)));

	/* Exactly one EVENT_USED, vq 0, token 0, in the bed's wire format. */
	CHECK(t.n_ev == 1);
	ev = t.ev[0].buf;
	CHECK(ev[0] == 0 && ev[1] == VIRTIO_MSG_EVENT_USED && get16(ev + 2) == DEV_BLK);
	if (fmt == VIRTIO_MSG_WIRE_RFC1) {
		CHECK(t.ev[0].len == 10 && get16(ev + 4) == 10 && get32(ev + 6) == 0);
	} else {
		CHECK(t.ev[0].len == 12 && get16(ev + 4) == 0 && get16(ev + 6) == 12);
		CHECK(get32(ev + 8) == 0);
	}

	/* Read it back; the header itself split 10 + 6 ("any layout"). */
	r.hdr = tb_alloc(&t, 16, 8);
	put32(pool_at(&t, r.hdr), VIRTIO_BLK_T_IN);
	put32(pool_at(&t, r.hdr) + 4, 0);
	put64(pool_at(&t, r.hdr) + 8, 5);
	b[0] = (struct buf){ r.hdr, 10, false };
	b[1] = (struct buf){ r.hdr + 10, 6, false };
	b[2] = (struct buf){ rbuf, 512, true };
	/* The status byte right behind the data, in the same descriptor. */
	b[3] = (struct buf){ rbuf + 512, 2 * 512 + 1, true };
	*pool_at(&t, rbuf + 3 * 512) = 0xff;
	r.head = dvq_add(&t, &q, b, 4, indirect);
	tb_kick(&t, DEV_BLK, 0);
	CHECK(dvq_pop(&t, &q, &id, &len));
	CHECK(id == r.head && len == 3 * 512 + 1);
	CHECK(*pool_at(&t, rbuf + 3 * 512) == VIRTIO_BLK_S_OK);
	CHECK(!memcmp(pool_at(&t, rbuf), pool_at(&t, wbuf), 3 * 512));
	CHECK(t.n_ev == 2);
	CHECK(!dev_of(&t, DEV_BLK)->vqs[0].broken);
	tb_fini(&t);
}

static void test_blk_roundtrip_spec(void) { blk_roundtrip_fmt(VIRTIO_MSG_WIRE_SPEC, false); }
static void test_blk_roundtrip_rfc1(void) { blk_roundtrip_fmt(VIRTIO_MSG_WIRE_RFC1, false); }
static void test_blk_roundtrip_indirect(void) { blk_roundtrip_fmt(VIRTIO_MSG_WIRE_SPEC, true); }

static void test_blk_inflight(void)
{
	struct blkreq r[16];
	uint64_t buf[16];
	uint32_t id = 0, len = 0;
	unsigned int i, n;
	struct tb t;
	struct dvq q;

	tb_init(&t, VIRTIO_MSG_WIRE_SPEC);
	tb_probe(&t, DEV_BLK, &q, 0);
	/* 8 writes then 8 reads of the same sectors, all before one kick. */
	for (i = 0; i < 8; i++) {
		buf[i] = tb_alloc(&t, 1024, 512);
		fill_pattern(pool_at(&t, buf[i]), 1024, 100 + i);
		blk_submit(&t, &q, &r[i], VIRTIO_BLK_T_OUT, 100 + 2 * i, buf[i], 1024, i & 1);
	}
	for (i = 8; i < 16; i++) {
		buf[i] = tb_alloc(&t, 1024, 512);
		blk_submit(&t, &q, &r[i], VIRTIO_BLK_T_IN, 100 + 2 * (i - 8), buf[i], 1024,
			   !(i & 1));
	}
	tb_kick(&t, DEV_BLK, 0);
	for (n = 0; dvq_pop(&t, &q, &id, &len); n++) {
		CHECK(id == r[n].head);
		CHECK(len == (n < 8 ? 1u : 1025u));
		CHECK(*pool_at(&t, r[n].status) == VIRTIO_BLK_S_OK);
	}
	CHECK(n == 16);
	for (i = 0; i < 8; i++)
		CHECK(!memcmp(pool_at(&t, buf[i]), pool_at(&t, buf[i + 8]), 1024));
	CHECK(count_events(&t, VIRTIO_MSG_EVENT_USED, DEV_BLK) == 1);

	/* The ring wraps: many more requests than the queue size. */
	for (i = 0; i < 3 * QSIZE; i++)
		CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_IN, i % DISK_SECTORS, buf[0], 512,
			     i % 3 == 0, NULL) == VIRTIO_BLK_S_OK);
	CHECK(!dev_of(&t, DEV_BLK)->vqs[0].broken);
	tb_fini(&t);
}

static void test_blk_requests(void)
{
	struct tb t;
	struct dvq q, qro;
	uint64_t data;
	uint32_t len;
	char id[21];

	tb_init(&t, VIRTIO_MSG_WIRE_SPEC);
	tb_add_ro(&t);
	tb_probe(&t, DEV_BLK, &q, 0);
	data = tb_alloc(&t, 4096, 512);

	CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, &len) ==
	      VIRTIO_BLK_S_OK);
	CHECK(len == 1);
	memset(pool_at(&t, data), 0x55, 32);
	CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_GET_ID, 0, data, VIRTIO_BLK_ID_BYTES, false,
		     &len) == VIRTIO_BLK_S_OK);
	CHECK(len == VIRTIO_BLK_ID_BYTES + 1);
	memcpy(id, pool_at(&t, data), 20);
	id[20] = 0;
	CHECK(!strcmp(id, "vmsg-blk-2"));
	CHECK(pool_at(&t, data)[19] == 0);
	/* GET_ID into a short buffer: truncated, no overrun. */
	CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_GET_ID, 0, data, 4, false, NULL) ==
	      VIRTIO_BLK_S_OK);

	CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_DISCARD, 0, data, 16, false, NULL) ==
	      VIRTIO_BLK_S_UNSUPP);
	CHECK(blk_do(&t, &q, DEV_BLK, 0x1234, 0, 0, 0, false, NULL) == VIRTIO_BLK_S_UNSUPP);
	/* Capacity: the last sector is fine, one beyond is not. */
	CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, data, 512, false,
		     NULL) == VIRTIO_BLK_S_OK);
	CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, data, 1024, false,
		     NULL) == VIRTIO_BLK_S_IOERR);
	CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_OUT, DISK_SECTORS, data, 512, false,
		     NULL) == VIRTIO_BLK_S_IOERR);
	CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_IN, UINT64_MAX, data, 512, false, NULL) ==
	      VIRTIO_BLK_S_IOERR);
	CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_IN, UINT64_MAX >> 9, data, 512, false,
		     NULL) == VIRTIO_BLK_S_IOERR);
	/* Not a multiple of 512. */
	CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_OUT, 0, data, 100, false, NULL) ==
	      VIRTIO_BLK_S_IOERR);
	/* Zero-length read: fine. */
	CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_IN, 0, 0, 0, false, NULL) ==
	      VIRTIO_BLK_S_OK);
	CHECK(!dev_of(&t, DEV_BLK)->vqs[0].broken);

	/* Read-only device: reads work, writes fail, the file is unchanged. */
	dvq_init(&qro, QSIZE);
	qro.desc = tb_alloc(&t, 16 * QSIZE, 16);
	qro.avail = tb_alloc(&t, 6 + 2 * QSIZE, 2);
	qro.used = tb_alloc(&t, 6 + 8 * QSIZE, 4);
	tb_set_status(&t, DEV_BLK_RO, VIRTIO_CONFIG_S_DRIVER);
	tb_set_features(&t, DEV_BLK_RO, tb_get_features(&t, DEV_BLK_RO));
	tb_set_status(&t, DEV_BLK_RO, VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
	tb_set_vqueue(&t, DEV_BLK_RO, 0, QSIZE, qro.desc, qro.avail, qro.used);
	tb_set_status(&t, DEV_BLK_RO, VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
		      VIRTIO_CONFIG_S_DRIVER_OK);
	CHECK(blk_do(&t, &qro, DEV_BLK_RO, VIRTIO_BLK_T_IN, 0, data, 512, false, NULL) ==
	      VIRTIO_BLK_S_OK);
	CHECK(!memcmp(pool_at(&t, data), "readonly", 8));
	memset(pool_at(&t, data), 'X', 512);
	CHECK(blk_do(&t, &qro, DEV_BLK_RO, VIRTIO_BLK_T_OUT, 0, data, 512, false, NULL) ==
	      VIRTIO_BLK_S_IOERR);
	CHECK(blk_do(&t, &qro, DEV_BLK_RO, VIRTIO_BLK_T_IN, 0, data, 512, false, NULL) ==
	      VIRTIO_BLK_S_OK);
	CHECK(!memcmp(pool_at(&t, data), "readonly", 8));
	CHECK(blk_do(&t, &qro, DEV_BLK_RO, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL) ==
	      VIRTIO_BLK_S_OK);
	tb_fini(&t);
}

static void test_no_interrupt(void)
{
	struct tb t;
	struct dvq q;
	uint8_t *avail;

	tb_init(&t, VIRTIO_MSG_WIRE_SPEC);
	tb_probe(&t, DEV_BLK, &q, 0);
	avail = pool_at(&t, q.avail);
	put16(avail, VRING_AVAIL_F_NO_INTERRUPT);
	CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL) ==
	      VIRTIO_BLK_S_OK);
	CHECK(t.n_ev == 0);
	put16(avail, 0);
	CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL) ==
	      VIRTIO_BLK_S_OK);
	CHECK(t.n_ev == 1);
	tb_fini(&t);
}

static void test_event_idx(void)
{
	struct vmsg_dev_opts o = default_opts();
	struct blkreq r;
	struct tb t;
	struct dvq q;
	uint8_t *avail, *used;
	unsigned int i;
	uint32_t id = 0, len = 0;

	o.event_idx = true;
	tb_init_opts(&t, VIRTIO_MSG_WIRE_SPEC, &o);
	tb_probe(&t, DEV_BLK, &q, 0);
	CHECK(dev_of(&t, DEV_BLK)->vqs[0].event_idx);
	avail = pool_at(&t, q.avail);
	used = pool_at(&t, q.used);
	/* NO_INTERRUPT is ignored with EVENT_IDX: used_event rules. */
	put16(avail, VRING_AVAIL_F_NO_INTERRUPT);
	put16(avail + 4 + 2 * QSIZE, 0);	/* used_event: interrupt after entry 0 */
	CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL) ==
	      VIRTIO_BLK_S_OK);
	CHECK(t.n_ev == 1);
	/* avail_event tells the driver to kick for the next buffer. */
	CHECK(get16(used + 4 + 8 * QSIZE) == 1);
	/* used_event = 3: no interrupt for entries 1 and 2, one for entry 3. */
	put16(avail + 4 + 2 * QSIZE, 3);
	for (i = 1; i <= 3; i++) {
		blk_submit(&t, &q, &r, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
		tb_kick(&t, DEV_BLK, 0);
		CHECK(dvq_pop(&t, &q, &id, &len));
		CHECK(t.n_ev == (i < 3 ? 1u : 2u));
	}
	/* A batch crossing used_event interrupts once. */
	put16(avail + 4 + 2 * QSIZE, 6);
	for (i = 0; i < 5; i++)
		blk_submit(&t, &q, &r, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	tb_kick(&t, DEV_BLK, 0);
	CHECK(t.n_ev == 3);
	CHECK(get16(used + 4 + 8 * QSIZE) == 9);
	CHECK(used_idx(&t, &q) == 9);
	tb_fini(&t);
}

static void test_kick_before_driver_ok(void)
{
	struct tb t;
	struct dvq q;
	struct blkreq r;
	const uint32_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			   VIRTIO_CONFIG_S_FEATURES_OK;

	tb_init(&t, VIRTIO_MSG_WIRE_SPEC);
	tb_set_status(&t, DEV_BLK, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	tb_set_features(&t, DEV_BLK, tb_get_features(&t, DEV_BLK));
	CHECK(tb_set_status(&t, DEV_BLK, s) == s);
	dvq_init(&q, QSIZE);
	tb_set_vqueue(&t, DEV_BLK, 0, QSIZE, q.desc, q.avail, q.used);
	blk_submit(&t, &q, &r, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	tb_kick(&t, DEV_BLK, 0);
	CHECK(used_idx(&t, &q) == 0);
	CHECK(tb_set_status(&t, DEV_BLK, s | VIRTIO_CONFIG_S_DRIVER_OK) ==
	      (s | VIRTIO_CONFIG_S_DRIVER_OK));
	CHECK(used_idx(&t, &q) == 1);
	CHECK(*pool_at(&t, r.status) == VIRTIO_BLK_S_OK);
	CHECK(t.n_ev == 1);
	/* ... and the EVENT_USED went out after the response to DRIVER_OK. */
	CHECK(t.n_ev_at_response == 0);
	tb_fini(&t);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	while (len--)
		if (*p++)
			return false;
	return true;
}

static void test_rng(void)
{
	struct tb t;
	struct dvq q;
	struct buf b[2];
	uint64_t a, c, big;
	uint32_t id = 0, len = 0;
	uint16_t head;

	tb_init(&t, VIRTIO_MSG_WIRE_RFC1);
	tb_probe(&t, DEV_RNG, &q, 0);
	a = tb_alloc(&t, 64, 8);
	c = tb_alloc(&t, 100, 8);
	b[0] = (struct buf){ a, 64, true };
	b[1] = (struct buf){ c, 100, true };
	head = dvq_add(&t, &q, b, 2, false);
	tb_kick(&t, DEV_RNG, 0);
	CHECK(dvq_pop(&t, &q, &id, &len));
	CHECK(id == head && len == 164);
	CHECK(!all_zero(pool_at(&t, a), 32) && !all_zero(pool_at(&t, a) + 32, 32));
	CHECK(!all_zero(pool_at(&t, c), 50) && !all_zero(pool_at(&t, c) + 50, 50));
	CHECK(count_events(&t, VIRTIO_MSG_EVENT_USED, DEV_RNG) == 1);

	/* A huge buffer is filled only partly, and len says how much. */
	big = tb_alloc(&t, 200 * 1024, 8);
	b[0] = (struct buf){ big, 200 * 1024, true };
	head = dvq_add(&t, &q, b, 1, true);
	tb_kick(&t, DEV_RNG, 0);
	CHECK(dvq_pop(&t, &q, &id, &len));
	CHECK(id == head && len == 64 * 1024);
	CHECK(all_zero(pool_at(&t, big) + 64 * 1024, 16));
	tb_fini(&t);
}

/*
 * Linux sizes indirect tables by seg_max, derived from the queue size we
 * offered, even when it picked a smaller queue: such tables must work.
 */
static void test_indirect_reduced_queue(void)
{
	const uint32_t s = VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
	struct buf b[QSIZE];
	uint32_t id = 0, len = 0, i;
	struct blkreq r;
	uint64_t data;
	struct tb t;
	struct dvq q;

	tb_init(&t, VIRTIO_MSG_WIRE_SPEC);
	tb_set_status(&t, DEV_BLK, VIRTIO_CONFIG_S_DRIVER);
	tb_set_features(&t, DEV_BLK, tb_get_features(&t, DEV_BLK));
	tb_set_status(&t, DEV_BLK, s);
	dvq_init(&q, QSIZE / 4);
	tb_set_vqueue(&t, DEV_BLK, 0, QSIZE / 4, q.desc, q.avail, q.used);
	tb_set_status(&t, DEV_BLK, s | VIRTIO_CONFIG_S_DRIVER_OK);

	/* seg_max (QSIZE - 2) data segments of 512 bytes, plus header and status. */
	data = tb_alloc(&t, (QSIZE - 2) * 512, 512);
	r.hdr = tb_alloc(&t, 16, 8);
	r.status = tb_alloc(&t, 1, 1);
	put32(pool_at(&t, r.hdr), VIRTIO_BLK_T_IN);
	b[0] = (struct buf){ r.hdr, 16, false };
	for (i = 1; i < QSIZE - 1; i++)
		b[i] = (struct buf){ data + (i - 1) * 512, 512, true };
	b[QSIZE - 1] = (struct buf){ r.status, 1, true };
	r.head = dvq_add(&t, &q, b, QSIZE, true);
	tb_kick(&t, DEV_BLK, 0);
	CHECK(dvq_pop(&t, &q, &id, &len));
	CHECK(id == r.head && len == (QSIZE - 2) * 512 + 1);
	CHECK(*pool_at(&t, r.status) == VIRTIO_BLK_S_OK);
	CHECK(!dev_of(&t, DEV_BLK)->vqs[0].broken);
	tb_fini(&t);
}

/* ---- test cases: malicious drivers ---- */

/*
 * Set up a probed blk device, let `corrupt` write a bad chain into the ring,
 * kick, and check: queue broken, NEEDS_RESET + EVENT_CONFIG, nothing used,
 * the file unmodified, later kicks ignored, a reset recovers.
 */
struct mal_ctx {
	struct tb *t;
	struct dvq *q;
	uint8_t *desc;
	uint64_t data;		/* 4 KiB of pattern in the pool */
	uint64_t hdr_out;	/* a valid OUT header for sector 0 */
	uint64_t status;
};

static void run_malicious(const char *what, void (*corrupt)(struct mal_ctx *c),
			  bool event_idx)
{
	struct vmsg_dev_opts o = default_opts();
	struct vmsg_device *dev;
	struct mal_ctx c;
	struct tb t;
	struct dvq q;
	uint8_t file[512];
	unsigned int n_ev;
	uint32_t s;

	o.event_idx = event_idx;
	tb_init_opts(&t, VIRTIO_MSG_WIRE_SPEC, &o);
	tb_probe(&t, DEV_BLK, &q, 0);
	dev = dev_of(&t, DEV_BLK);
	c.t = &t;
	c.q = &q;
	c.desc = pool_at(&t, q.desc);
	c.data = tb_alloc(&t, 4096, 512);
	fill_pattern(pool_at(&t, c.data), 4096, 9);
	c.hdr_out = tb_alloc(&t, 16, 8);
	put32(pool_at(&t, c.hdr_out), VIRTIO_BLK_T_OUT);
	put64(pool_at(&t, c.hdr_out) + 8, 0);
	c.status = tb_alloc(&t, 1, 1);

	corrupt(&c);
	tb_kick(&t, DEV_BLK, 0);
	if (!dev->vqs[0].broken)
		fprintf(stderr, "    case '%s': queue not marked broken\n", what);
	CHECK(dev->vqs[0].broken);
	CHECK(used_idx(&t, &q) == 0);
	s = tb_get_status(&t, DEV_BLK);
	CHECK(s & VIRTIO_CONFIG_S_NEEDS_RESET);
	CHECK(count_events(&t, VIRTIO_MSG_EVENT_CONFIG, DEV_BLK) == 1);
	CHECK(t.n_ev >= 1 && get32(t.ev[0].buf + 8) == s);
	CHECK(pread(t.blk_fd, file, sizeof(file), 0) == sizeof(file) && all_zero(file, 512));
	/* Stays broken and quiet. */
	n_ev = t.n_ev;
	tb_kick(&t, DEV_BLK, 0);
	CHECK(t.n_ev == n_ev && used_idx(&t, &q) == 0);
	/* NEEDS_RESET survives status writes; a reset recovers the device. */
	CHECK(tb_set_status(&t, DEV_BLK, s & ~VIRTIO_CONFIG_S_NEEDS_RESET) &
	      VIRTIO_CONFIG_S_NEEDS_RESET);
	tb_probe(&t, DEV_BLK, &q, 0);
	CHECK(!dev->vqs[0].broken && !(tb_get_status(&t, DEV_BLK) & VIRTIO_CONFIG_S_NEEDS_RESET));
	CHECK(blk_do(&t, &q, DEV_BLK, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL) ==
	      VIRTIO_BLK_S_OK);
	tb_fini(&t);
}

/* A valid 3-descriptor OUT chain at 0..2 that `fix` then breaks. */
static void good_chain(struct mal_ctx *c)
{
	set_desc(c->desc, 0, c->hdr_out, 16, VRING_DESC_F_NEXT, 1);
	set_desc(c->desc, 1, c->data, 512, VRING_DESC_F_NEXT, 2);
	set_desc(c->desc, 2, c->status, 1, VRING_DESC_F_WRITE, 0);
	dvq_publish(c->t, c->q, 0);
}

static void mal_head_range(struct mal_ctx *c)
{
	good_chain(c);
	put16(pool_at(c->t, c->q->avail) + 4, QSIZE);
}

static void mal_head_huge(struct mal_ctx *c)
{
	good_chain(c);
	put16(pool_at(c->t, c->q->avail) + 4, 0xffff);
}

static void mal_next_range(struct mal_ctx *c)
{
	good_chain(c);
	set_desc(c->desc, 1, c->data, 512, VRING_DESC_F_NEXT, QSIZE + 5);
}

static void mal_loop(struct mal_ctx *c)
{
	good_chain(c);
	set_desc(c->desc, 1, c->data, 512, VRING_DESC_F_NEXT, 0);
}

static void mal_self_loop(struct mal_ctx *c)
{
	good_chain(c);
	set_desc(c->desc, 1, c->data, 512, VRING_DESC_F_NEXT, 1);
}

static void mal_write_loop(struct mal_ctx *c)
{
	/* A loop among writable descriptors (no ordering error to stop it). */
	good_chain(c);
	set_desc(c->desc, 2, c->status, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
	set_desc(c->desc, 3, c->status, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
}

static void mal_addr_above(struct mal_ctx *c)
{
	good_chain(c);
	set_desc(c->desc, 1, BUS_BASE + POOL_SIZE, 512, VRING_DESC_F_NEXT, 2);
}

static void mal_addr_straddle(struct mal_ctx *c)
{
	good_chain(c);
	set_desc(c->desc, 1, BUS_BASE + POOL_SIZE - 256, 512, VRING_DESC_F_NEXT, 2);
}

static void mal_addr_below(struct mal_ctx *c)
{
	good_chain(c);
	set_desc(c->desc, 1, BUS_BASE - 512, 512, VRING_DESC_F_NEXT, 2);
}

static void mal_addr_zero(struct mal_ctx *c)
{
	good_chain(c);
	set_desc(c->desc, 1, 0, 512, VRING_DESC_F_NEXT, 2);
}

static void mal_len_huge(struct mal_ctx *c)
{
	good_chain(c);
	set_desc(c->desc, 1, c->data, 0xffffffff, VRING_DESC_F_NEXT, 2);
}

static void mal_addr_wrap(struct mal_ctx *c)
{
	good_chain(c);
	set_desc(c->desc, 1, UINT64_MAX - 8, 512, VRING_DESC_F_NEXT, 2);
}

static void mal_status_outside(struct mal_ctx *c)
{
	good_chain(c);
	set_desc(c->desc, 2, BUS_BASE + POOL_SIZE, 1, VRING_DESC_F_WRITE, 0);
}

static void mal_avail_jump(struct mal_ctx *c)
{
	good_chain(c);
	put16(pool_at(c->t, c->q->avail) + 2, QSIZE + 1);
}

static void mal_order(struct mal_ctx *c)
{
	set_desc(c->desc, 0, c->hdr_out, 16, VRING_DESC_F_NEXT, 1);
	set_desc(c->desc, 1, c->status, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	set_desc(c->desc, 2, c->data, 512, 0, 0);
	dvq_publish(c->t, c->q, 0);
}

static void mal_short_header(struct mal_ctx *c)
{
	set_desc(c->desc, 0, c->hdr_out, 8, VRING_DESC_F_NEXT, 1);
	set_desc(c->desc, 1, c->status, 1, VRING_DESC_F_WRITE, 0);
	dvq_publish(c->t, c->q, 0);
}

static void mal_no_status(struct mal_ctx *c)
{
	set_desc(c->desc, 0, c->hdr_out, 16, VRING_DESC_F_NEXT, 1);
	set_desc(c->desc, 1, c->data, 512, 0, 0);
	dvq_publish(c->t, c->q, 0);
}

static void mal_zero_len_status(struct mal_ctx *c)
{
	good_chain(c);
	set_desc(c->desc, 2, c->status, 0, VRING_DESC_F_WRITE, 0);
}

static uint64_t indirect_table(struct mal_ctx *c, unsigned int n)
{
	uint64_t table = tb_alloc(c->t, 16 * n, 16);
	uint8_t *p = pool_at(c->t, table);

	set_desc(p, 0, c->hdr_out, 16, VRING_DESC_F_NEXT, 1);
	set_desc(p, 1, c->data, 512, VRING_DESC_F_NEXT, 2);
	set_desc(p, 2, c->status, 1, VRING_DESC_F_WRITE, 0);
	return table;
}

static void mal_ind_len(struct mal_ctx *c)
{
	set_desc(c->desc, 0, indirect_table(c, 3), 40, VRING_DESC_F_INDIRECT, 0);
	dvq_publish(c->t, c->q, 0);
}

static void mal_ind_len0(struct mal_ctx *c)
{
	set_desc(c->desc, 0, indirect_table(c, 3), 0, VRING_DESC_F_INDIRECT, 0);
	dvq_publish(c->t, c->q, 0);
}

static void mal_ind_outside(struct mal_ctx *c)
{
	set_desc(c->desc, 0, BUS_BASE + POOL_SIZE - 32, 48, VRING_DESC_F_INDIRECT, 0);
	dvq_publish(c->t, c->q, 0);
}

static void mal_ind_nested(struct mal_ctx *c)
{
	uint64_t table = indirect_table(c, 3);

	set_desc(pool_at(c->t, table), 1, indirect_table(c, 3), 48, VRING_DESC_F_INDIRECT, 0);
	set_desc(c->desc, 0, table, 48, VRING_DESC_F_INDIRECT, 0);
	dvq_publish(c->t, c->q, 0);
}

static void mal_ind_next(struct mal_ctx *c)
{
	set_desc(c->desc, 0, indirect_table(c, 3), 48, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT,
		 1);
	set_desc(c->desc, 1, c->status, 1, VRING_DESC_F_WRITE, 0);
	dvq_publish(c->t, c->q, 0);
}

static void mal_ind_in_chain(struct mal_ctx *c)
{
	set_desc(c->desc, 0, c->hdr_out, 16, VRING_DESC_F_NEXT, 1);
	set_desc(c->desc, 1, indirect_table(c, 3), 48, VRING_DESC_F_INDIRECT, 0);
	dvq_publish(c->t, c->q, 0);
}

static void mal_ind_loop(struct mal_ctx *c)
{
	uint64_t table = indirect_table(c, 3);

	set_desc(pool_at(c->t, table), 2, c->status, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(pool_at(c->t, table), 1, c->status, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	set_desc(c->desc, 0, table, 48, VRING_DESC_F_INDIRECT, 0);
	dvq_publish(c->t, c->q, 0);
}

static void mal_ind_next_range(struct mal_ctx *c)
{
	uint64_t table = indirect_table(c, 3);

	set_desc(pool_at(c->t, table), 1, c->data, 512, VRING_DESC_F_NEXT, 3);
	set_desc(c->desc, 0, table, 48, VRING_DESC_F_INDIRECT, 0);
	dvq_publish(c->t, c->q, 0);
}

static void mal_ind_too_big(struct mal_ctx *c)
{
	uint64_t table = tb_alloc(c->t, 16 * (QSIZE + 1), 16);

	set_desc(c->desc, 0, table, 16 * (QSIZE + 1), VRING_DESC_F_INDIRECT, 0);
	dvq_publish(c->t, c->q, 0);
}

static void mal_ind_not_negotiated(struct mal_ctx *c)
{
	/* Re-probe without INDIRECT_DESC, then use it anyway. */
	tb_probe(c->t, DEV_BLK, c->q, 1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	set_desc(c->desc, 0, indirect_table(c, 3), 48, VRING_DESC_F_INDIRECT, 0);
	dvq_publish(c->t, c->q, 0);
}

static void mal_valid_then_bad(struct mal_ctx *c)
{
	/* One good request, then one with a buffer outside the pool. */
	good_chain(c);
	set_desc(c->desc, 3, BUS_BASE + POOL_SIZE, 16, VRING_DESC_F_NEXT, 4);
	set_desc(c->desc, 4, c->status, 1, VRING_DESC_F_WRITE, 0);
	dvq_publish(c->t, c->q, 3);
}

static void test_malicious_rings(void)
{
	static const struct {
		const char *name;
		void (*fn)(struct mal_ctx *c);
	} cases[] = {
		{ "head index == size", mal_head_range },
		{ "head index 0xffff", mal_head_huge },
		{ "next index out of range", mal_next_range },
		{ "chain loop", mal_loop },
		{ "self loop", mal_self_loop },
		{ "writable loop", mal_write_loop },
		{ "address above pool", mal_addr_above },
		{ "buffer straddles pool end", mal_addr_straddle },
		{ "address below pool", mal_addr_below },
		{ "address 0", mal_addr_zero },
		{ "length 0xffffffff", mal_len_huge },
		{ "address + length wraps", mal_addr_wrap },
		{ "status outside pool", mal_status_outside },
		{ "avail idx jump", mal_avail_jump },
		{ "readable after writable", mal_order },
		{ "blk header too short", mal_short_header },
		{ "blk without status", mal_no_status },
		{ "blk zero-length status", mal_zero_len_status },
		{ "indirect len % 16", mal_ind_len },
		{ "indirect len 0", mal_ind_len0 },
		{ "indirect table outside pool", mal_ind_outside },
		{ "nested indirect", mal_ind_nested },
		{ "indirect with NEXT", mal_ind_next },
		{ "indirect inside a chain", mal_ind_in_chain },
		{ "loop inside indirect table", mal_ind_loop },
		{ "indirect next out of range", mal_ind_next_range },
		{ "indirect table > queue size", mal_ind_too_big },
		{ "indirect not negotiated", mal_ind_not_negotiated },
	};
	unsigned int i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_malicious(cases[i].name, cases[i].fn, false);
		run_malicious(cases[i].name, cases[i].fn, true);
	}
}

static void test_valid_then_bad(void)
{
	struct tb t;
	struct dvq q;
	struct mal_ctx c;
	uint32_t id = 0, len = 0;

	tb_init(&t, VIRTIO_MSG_WIRE_SPEC);
	tb_probe(&t, DEV_BLK, &q, 0);
	c.t = &t;
	c.q = &q;
	c.desc = pool_at(&t, q.desc);
	c.data = tb_alloc(&t, 4096, 512);
	c.hdr_out = tb_alloc(&t, 16, 8);
	put32(pool_at(&t, c.hdr_out), VIRTIO_BLK_T_OUT);
	c.status = tb_alloc(&t, 1, 1);
	mal_valid_then_bad(&c);
	tb_kick(&t, DEV_BLK, 0);
	/* The good request completes (and is signalled), the bad one breaks the queue. */
	CHECK(dev_of(&t, DEV_BLK)->vqs[0].broken);
	CHECK(dvq_pop(&t, &q, &id, &len) && id == 0);
	CHECK(!dvq_pop(&t, &q, &id, &len));
	CHECK(count_events(&t, VIRTIO_MSG_EVENT_USED, DEV_BLK) == 1);
	tb_fini(&t);
}

static void test_bad_set_vqueue(void)
{
	static const struct {
		uint32_t size;
		uint64_t desc, avail, used;
	} cases[] = {
		{ 0, BUS_BASE, BUS_BASE + 0x1000, BUS_BASE + 0x2000 },
		{ 100, BUS_BASE, BUS_BASE + 0x1000, BUS_BASE + 0x2000 },
		{ 2 * QSIZE, BUS_BASE, BUS_BASE + 0x1000, BUS_BASE + 0x2000 },
		{ QSIZE, BUS_BASE + POOL_SIZE, BUS_BASE + 0x1000, BUS_BASE + 0x2000 },
		{ QSIZE, BUS_BASE + POOL_SIZE - 16, BUS_BASE + 0x1000, BUS_BASE + 0x2000 },
		{ QSIZE, BUS_BASE, BUS_BASE + POOL_SIZE - 100, BUS_BASE + 0x2000 },
		{ QSIZE, BUS_BASE, BUS_BASE + 0x1000, BUS_BASE + POOL_SIZE - 1030 + 8 },
		{ QSIZE, 0, 0x1000, 0x2000 },
		{ QSIZE, UINT64_MAX - 15, BUS_BASE + 0x1000, BUS_BASE + 0x2000 },
		{ QSIZE, BUS_BASE + 8, BUS_BASE + 0x1000, BUS_BASE + 0x2000 },
		{ QSIZE, BUS_BASE, BUS_BASE + 0x1001, BUS_BASE + 0x2000 },
		{ QSIZE, BUS_BASE, BUS_BASE + 0x1000, BUS_BASE + 0x2002 },
		{ QSIZE, BUS_BASE, BUS_BASE + 0x1000, BUS_BASE + 0x400 },
		{ QSIZE, BUS_BASE, BUS_BASE + 0x1000, BUS_BASE + 0x1000 },
	};
	const uint32_t s = VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
	struct vmsg_device *dev;
	unsigned int i;
	struct tb t;

	tb_init(&t, VIRTIO_MSG_WIRE_SPEC);
	dev = dev_of(&t, DEV_BLK);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tb_set_status(&t, DEV_BLK, 0);
		tb_set_status(&t, DEV_BLK, VIRTIO_CONFIG_S_DRIVER);
		tb_set_features(&t, DEV_BLK, tb_get_features(&t, DEV_BLK));
		tb_set_status(&t, DEV_BLK, s);
		tb_set_vqueue(&t, DEV_BLK, 0, cases[i].size, cases[i].desc, cases[i].avail,
			      cases[i].used);
		if (!dev->vqs[0].broken || dev->vqs[0].enabled)
			fprintf(stderr, "    SET_VQUEUE case %u accepted\n", i);
		CHECK(dev->vqs[0].broken && !dev->vqs[0].enabled);
		CHECK(tb_get_status(&t, DEV_BLK) & VIRTIO_CONFIG_S_NEEDS_RESET);
		tb_set_status(&t, DEV_BLK, s | VIRTIO_CONFIG_S_DRIVER_OK);
		tb_kick(&t, DEV_BLK, 0);
	}
	/* Rings ending exactly at the end of the pool are fine. */
	tb_set_status(&t, DEV_BLK, 0);
	tb_set_status(&t, DEV_BLK, VIRTIO_CONFIG_S_DRIVER);
	tb_set_features(&t, DEV_BLK, tb_get_features(&t, DEV_BLK));
	tb_set_status(&t, DEV_BLK, s);
	tb_set_vqueue(&t, DEV_BLK, 0, QSIZE, BUS_BASE + POOL_SIZE - 0x4000,
		      BUS_BASE + POOL_SIZE - 0x2000 - (4 + 2 * QSIZE),
		      BUS_BASE + POOL_SIZE - (4 + 8 * QSIZE));
	CHECK(dev->vqs[0].enabled && !dev->vqs[0].broken);

	/* After DRIVER_OK: EVENT_CONFIG, but only after the SET_VQUEUE response. */
	tb_set_status(&t, DEV_BLK, s | VIRTIO_CONFIG_S_DRIVER_OK);
	t.n_ev = 0;
	tb_set_vqueue(&t, DEV_BLK, 0, QSIZE, 0, 0, 0);
	CHECK(dev->vqs[0].broken);
	CHECK(t.n_ev_at_response == 0 && t.n_ev == 1);
	CHECK(count_events(&t, VIRTIO_MSG_EVENT_CONFIG, DEV_BLK) == 1);
	tb_fini(&t);
}

/* ---- test cases: worker threads, eventfds, multi-queue ---- */

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Wait (up to 5 s) until the worker has used want buffers of q. */
static bool wait_used_idx(struct tb *t, struct dvq *q, uint16_t want)
{
	unsigned int i;

	for (i = 0; i < 5000; i++) {
		if (used_idx(t, q) == want)
			return true;
		sleep_ms(1);
	}
	return false;
}

static bool wait_used_idx_min(struct tb *t, struct dvq *q, uint16_t min)
{
	unsigned int i;

	for (i = 0; i < 5000000; i++)
		if (used_idx(t, q) >= min)
			return true;
	return false;
}

/* Signals on a call eventfd within timeout_ms (the eventfd counts them). */
static uint64_t wait_call(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	eventfd_t v = 0;

	if (fd < 0 || poll(&p, 1, timeout_ms) != 1 || eventfd_read(fd, &v))
		return 0;
	return v;
}

static bool wait_events(struct tb *t, uint8_t id, uint16_t dev, unsigned int want)
{
	unsigned int i;

	for (i = 0; i < 5000; i++) {
		if (count_events(t, id, dev) >= want)
			return true;
		sleep_ms(1);
	}
	return false;
}

static void kick_fd(struct tb *t, uint16_t dev, unsigned int index)
{
	CHECK(t->kick_fd[dev][index] >= 0 && eventfd_write(t->kick_fd[dev][index], 1) == 0);
}

/* Ring fields a worker thread reads or writes concurrently. */
static uint16_t ld16(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_ACQUIRE));
}

static void st16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, htole16(v), __ATOMIC_RELEASE);
}

static struct vmsg_vq *vq_of(struct tb *t, uint16_t dev, unsigned int index)
{
	return &dev_of(t, dev)->vqs[index];
}

static void test_thr_eventfd(void)
{
	struct vmsg_dev_opts o = default_opts();
	struct blkreq r[16];
	uint8_t file[1024];
	uint64_t buf[16];
	unsigned int i;
	struct tb t;
	struct dvq q;

	tb_init_threaded(&t, &o, true, 0);
	tb_probe(&t, DEV_BLK, &q, 0);
	/* Bound on SET_VQUEUE, before DRIVER_OK; the worker runs. */
	CHECK(t.kick_fd[DEV_BLK][0] >= 0 && t.call_fd[DEV_BLK][0] >= 0);
	CHECK(vq_worker_running(vq_of(&t, DEV_BLK, 0)));
	/* Sixteen writes, one kick through the eventfd: all served. */
	for (i = 0; i < 16; i++) {
		buf[i] = tb_alloc(&t, 1024, 512);
		fill_pattern(pool_at(&t, buf[i]), 1024, 300 + i);
		blk_submit(&t, &q, &r[i], VIRTIO_BLK_T_OUT, 2 * i, buf[i], 1024, i & 1);
	}
	kick_fd(&t, DEV_BLK, 0);
	CHECK(wait_used_idx(&t, &q, 16));
	CHECK(wait_call(t.call_fd[DEV_BLK][0], 5000) >= 1);
	for (i = 0; i < 16; i++) {
		CHECK(*pool_at(&t, r[i].status) == VIRTIO_BLK_S_OK);
		CHECK(pread(t.blk_fd, file, sizeof(file), 2 * i * 512) == sizeof(file));
		CHECK(!memcmp(file, pool_at(&t, buf[i]), sizeof(file)));
	}
	/* An EVENT_AVAIL message wakes the same worker; still no EVENT_USED. */
	blk_submit(&t, &q, &r[0], VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	tb_kick(&t, DEV_BLK, 0);
	CHECK(wait_used_idx(&t, &q, 17));
	CHECK(wait_call(t.call_fd[DEV_BLK][0], 5000) >= 1);
	CHECK(count_events(&t, VIRTIO_MSG_EVENT_USED, DEV_BLK) == 0);
	/* The rng's queue has its own worker and eventfds. */
	CHECK(t.kick_fd[DEV_RNG][0] < 0);
	tb_fini(&t);
}

/* The bus refuses the eventfds, or has none: kicks and calls are messages. */
static void thr_messages(bool vring_fds)
{
	struct vmsg_dev_opts o = default_opts();
	struct blkreq r;
	unsigned int i;
	struct tb t;
	struct dvq q;

	tb_init_threaded(&t, &o, vring_fds, -ENOTTY);
	tb_probe(&t, DEV_BLK, &q, 0);
	CHECK(t.kick_fd[DEV_BLK][0] < 0 && t.call_fd[DEV_BLK][0] < 0);
	CHECK(t.be.vring_fd_failed == vring_fds);
	CHECK(vq_worker_running(vq_of(&t, DEV_BLK, 0)));
	for (i = 1; i <= 3; i++) {
		blk_submit(&t, &q, &r, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
		tb_kick(&t, DEV_BLK, 0);
		CHECK(wait_used_idx(&t, &q, (uint16_t)i));
		CHECK(wait_events(&t, VIRTIO_MSG_EVENT_USED, DEV_BLK, i));
		CHECK(*pool_at(&t, r.status) == VIRTIO_BLK_S_OK);
	}
	tb_fini(&t);
}

static void test_thr_bind_fails(void) { thr_messages(true); }
static void test_thr_no_vring_fds(void) { thr_messages(false); }

static void test_thr_event_idx(void)
{
	struct vmsg_dev_opts o = default_opts();
	uint8_t *avail, *used;
	struct blkreq r;
	unsigned int i;
	struct tb t;
	struct dvq q;
	int call;

	o.event_idx = true;
	tb_init_threaded(&t, &o, true, 0);
	tb_probe(&t, DEV_BLK, &q, 0);
	CHECK(vq_of(&t, DEV_BLK, 0)->event_idx);
	avail = pool_at(&t, q.avail);
	used = pool_at(&t, q.used);
	call = t.call_fd[DEV_BLK][0];
	/* Let the first pass after DRIVER_OK finish: it publishes avail_event 0. */
	sleep_ms(20);
	/* used_event 7: eight buffers, one kick, exactly one call. */
	st16(avail + 4 + 2 * QSIZE, 7);
	for (i = 0; i < 8; i++)
		blk_submit(&t, &q, &r, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	kick_fd(&t, DEV_BLK, 0);
	CHECK(wait_used_idx(&t, &q, 8));
	CHECK(wait_call(call, 5000) == 1);
	/* avail_event: kick me for buffer 8. */
	CHECK(ld16(used + 4 + 8 * QSIZE) == 8);
	/* used_event behind: four more buffers, no call. */
	st16(avail + 4 + 2 * QSIZE, 3);
	for (i = 0; i < 4; i++)
		blk_submit(&t, &q, &r, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	kick_fd(&t, DEV_BLK, 0);
	CHECK(wait_used_idx(&t, &q, 12));
	CHECK(wait_call(call, 50) == 0);
	CHECK(ld16(used + 4 + 8 * QSIZE) == 12);
	/* The driver side: the first new buffer needs a kick, the second not. */
	st16(avail + 4 + 2 * QSIZE, 13);
	blk_submit(&t, &q, &r, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	CHECK(vring_need_event(ld16(used + 4 + 8 * QSIZE), 13, 12));
	blk_submit(&t, &q, &r, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	CHECK(!vring_need_event(ld16(used + 4 + 8 * QSIZE), 14, 13));
	/* One kick serves both; used 12 -> 14 crosses used_event 13: one call. */
	kick_fd(&t, DEV_BLK, 0);
	CHECK(wait_used_idx(&t, &q, 14));
	CHECK(wait_call(call, 5000) == 1);
	CHECK(wait_call(call, 50) == 0);
	CHECK(count_events(&t, VIRTIO_MSG_EVENT_USED, DEV_BLK) == 0);
	tb_fini(&t);
}

#define MQ_QUEUES	4

static void test_thr_multiqueue(void)
{
	const uint32_t s = VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
	struct vmsg_dev_opts o = default_opts();
	struct blkreq r[MQ_QUEUES][8];
	uint64_t buf[MQ_QUEUES][8];
	struct dvq q[MQ_QUEUES];
	uint8_t resp[64], p[8], file[512];
	unsigned int i, k;
	uint64_t f;
	struct tb t;

	o.num_queues = MQ_QUEUES;
	tb_init_threaded(&t, &o, true, 0);
	CHECK(tb_req(&t, DEV_BLK, VIRTIO_MSG_GET_DEVICE_INFO, NULL, 0, resp) == 24);
	CHECK(get32(resp + 16) == MQ_QUEUES);
	f = tb_get_features(&t, DEV_BLK);
	CHECK(f & (1ULL << VIRTIO_BLK_F_MQ));
	/* The rng has one queue and no MQ. */
	CHECK(!(tb_get_features(&t, DEV_RNG) & (1ULL << VIRTIO_BLK_F_MQ)));
	put32(p, offsetof(struct virtio_blk_config, num_queues));
	put32(p + 4, 2);
	CHECK(tb_req(&t, DEV_BLK, VIRTIO_MSG_GET_CONFIG, p, 8, resp) == 14);
	CHECK(get16(resp + 12) == MQ_QUEUES);

	tb_set_status(&t, DEV_BLK, VIRTIO_CONFIG_S_DRIVER);
	tb_set_features(&t, DEV_BLK, f);
	CHECK(tb_set_status(&t, DEV_BLK, s) == s);
	for (i = 0; i < MQ_QUEUES; i++) {
		dvq_init(&q[i], QSIZE);
		q[i].desc = tb_alloc(&t, 16 * QSIZE, 16);
		q[i].avail = tb_alloc(&t, 6 + 2 * QSIZE, 2);
		q[i].used = tb_alloc(&t, 6 + 8 * QSIZE, 4);
		tb_set_vqueue(&t, DEV_BLK, i, QSIZE, q[i].desc, q[i].avail, q[i].used);
		CHECK(t.kick_fd[DEV_BLK][i] >= 0 && t.call_fd[DEV_BLK][i] >= 0);
	}
	CHECK(tb_set_status(&t, DEV_BLK, s | VIRTIO_CONFIG_S_DRIVER_OK) ==
	      (s | VIRTIO_CONFIG_S_DRIVER_OK));
	for (i = 0; i < MQ_QUEUES; i++)
		CHECK(vq_worker_running(vq_of(&t, DEV_BLK, i)));
	/* Eight writes on every queue, to sectors of their own; all kicked at once. */
	for (i = 0; i < MQ_QUEUES; i++) {
		for (k = 0; k < 8; k++) {
			buf[i][k] = tb_alloc(&t, 512, 512);
			fill_pattern(pool_at(&t, buf[i][k]), 512, 10 * i + k);
			blk_submit(&t, &q[i], &r[i][k], VIRTIO_BLK_T_OUT, 100 * i + k, buf[i][k],
				   512, k & 1);
		}
	}
	for (i = 0; i < MQ_QUEUES; i++)
		kick_fd(&t, DEV_BLK, i);
	for (i = 0; i < MQ_QUEUES; i++) {
		CHECK(wait_used_idx(&t, &q[i], 8));
		CHECK(wait_call(t.call_fd[DEV_BLK][i], 5000) >= 1);
		for (k = 0; k < 8; k++) {
			CHECK(*pool_at(&t, r[i][k].status) == VIRTIO_BLK_S_OK);
			CHECK(pread(t.blk_fd, file, 512, (100 * i + k) * 512) == 512);
			CHECK(!memcmp(file, pool_at(&t, buf[i][k]), 512));
		}
	}
	/* A queue that does not exist stays without worker. */
	CHECK(!vq_worker_running(vq_of(&t, DEV_BLK, MQ_QUEUES)));
	tb_fini(&t);
}

/* A ring full of big writes, each followed by a flush; returns how many. */
static unsigned int busy_blk(struct tb *t, struct dvq *q, uint64_t data)
{
	struct blkreq r;
	unsigned int i, n = QSIZE / 3;

	for (i = 0; i < n; i++)
		blk_submit(t, q, &r, i & 1 ? VIRTIO_BLK_T_FLUSH : VIRTIO_BLK_T_OUT, 0, data,
			   i & 1 ? 0 : 256 * 1024, false);
	return n;
}

/* RESET_VQUEUE, fresh rings, SET_VQUEUE: what a driver does to recover a queue. */
static void requeue(struct tb *t, struct dvq *q)
{
	struct vmsg_vq *vq = vq_of(t, DEV_BLK, 0);

	CHECK(tb_req32(t, DEV_BLK, VIRTIO_MSG_RESET_VQUEUE, 0, NULL) == 0);
	CHECK(!vq_worker_running(vq) && !vq->enabled && !vq->configured);
	memset(pool_at(t, q->avail), 0, 6 + 2 * QSIZE);
	memset(pool_at(t, q->used), 0, 6 + 8 * QSIZE);
	dvq_init(q, QSIZE);
	tb_set_vqueue(t, DEV_BLK, 0, QSIZE, q->desc, q->avail, q->used);
	CHECK(vq_worker_running(vq));
}

static void test_thr_queue_reset_busy(void)
{
	struct vmsg_dev_opts o = default_opts();
	unsigned int n, round, done, mid_batch = 0;
	struct blkreq r;
	uint64_t data;
	struct tb t;
	struct dvq q;

	tb_init_threaded(&t, &o, true, 0);
	tb_probe(&t, DEV_BLK, &q, 0);
	data = tb_alloc(&t, 256 * 1024, 4096);
	for (round = 0; round < 4; round++) {
		n = busy_blk(&t, &q, data);
		kick_fd(&t, DEV_BLK, 0);
		/*
		 * Reset before the worker got to the ring, or once it
		 * completed the first request: in the middle of the batch,
		 * unless it finished all of it in the meantime.
		 */
		if (round & 1)
			CHECK(wait_used_idx_min(&t, &q, 1));
		CHECK(tb_req32(&t, DEV_BLK, VIRTIO_MSG_RESET_VQUEUE, 0, NULL) == 0);
		done = used_idx(&t, &q);
		CHECK(done <= n);
		if (done && done < n)
			mid_batch++;
		requeue(&t, &q);
		/* The queue works again, kicked through the same eventfd. */
		blk_submit(&t, &q, &r, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
		kick_fd(&t, DEV_BLK, 0);
		CHECK(wait_used_idx(&t, &q, 1));
		CHECK(*pool_at(&t, r.status) == VIRTIO_BLK_S_OK);
		requeue(&t, &q);
	}
	if (verbose)
		fprintf(stderr, "    %u of 2 resets hit the middle of a batch\n", mid_batch);
	/*
	 * The same two eventfds throughout: bound again at each SET_VQUEUE
	 * (the kernel's device may be a new one), never replaced.
	 */
	CHECK(t.n_bind_new == 2);
	CHECK(t.n_bind >= 2 && t.n_bind % 2 == 0);
	CHECK(!vq_of(&t, DEV_BLK, 0)->broken);
	tb_fini(&t);
}

static void test_thr_reset_and_removal(void)
{
	struct vmsg_dev_opts o = default_opts();
	struct dvq q, qr;
	struct buf b;
	uint64_t data, big;
	unsigned int i;
	struct tb t;

	o.num_queues = 2;
	tb_init_threaded(&t, &o, true, 0);
	tb_probe(&t, DEV_BLK, &q, 0);
	data = tb_alloc(&t, 256 * 1024, 4096);
	/* Device reset while the worker is busy: joined, everything cleared. */
	busy_blk(&t, &q, data);
	kick_fd(&t, DEV_BLK, 0);
	CHECK(tb_set_status(&t, DEV_BLK, 0) == 0);
	CHECK(!vq_worker_running(vq_of(&t, DEV_BLK, 0)));
	CHECK(!vq_of(&t, DEV_BLK, 0)->enabled);
	/* Probe again (rings re-zeroed by tb_probe) and get busy again. */
	tb_probe(&t, DEV_BLK, &q, 0);
	CHECK(vq_worker_running(vq_of(&t, DEV_BLK, 0)));
	busy_blk(&t, &q, data);
	/* The rng on rings of its own, busy with large buffers too. */
	dvq_init(&qr, QSIZE);
	qr.desc = tb_alloc(&t, 16 * QSIZE, 16);
	qr.avail = tb_alloc(&t, 6 + 2 * QSIZE, 2);
	qr.used = tb_alloc(&t, 6 + 8 * QSIZE, 4);
	tb_set_status(&t, DEV_RNG, VIRTIO_CONFIG_S_DRIVER);
	tb_set_features(&t, DEV_RNG, tb_get_features(&t, DEV_RNG));
	tb_set_status(&t, DEV_RNG, VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
	tb_set_vqueue(&t, DEV_RNG, 0, QSIZE, qr.desc, qr.avail, qr.used);
	tb_set_status(&t, DEV_RNG, VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
		      VIRTIO_CONFIG_S_DRIVER_OK);
	big = tb_alloc(&t, 64 * 1024, 8);
	for (i = 0; i < 32; i++) {
		b = (struct buf){ big, 64 * 1024, true };
		dvq_add(&t, &qr, &b, 1, false);
	}
	kick_fd(&t, DEV_RNG, 0);
	kick_fd(&t, DEV_BLK, 0);
	/* Removal with workers running: they are stopped before the rings go. */
	tb_fini(&t);
}

/* ---- fuzzing ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic, so failures reproduce. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_addr(void)
{
	switch (rnd() % 32) {
	case 0:
		return rnd();
	case 1:
		return BUS_BASE + POOL_SIZE - rnd() % 64;
	case 2:
		return BUS_BASE - rnd() % 64;
	default:
		return BUS_BASE + DATA_OFF + rnd() % (POOL_SIZE - DATA_OFF);
	}
}

static uint32_t rnd_len(void)
{
	switch (rnd() % 16) {
	case 0:
		return (uint32_t)rnd();
	case 1:
	case 2:
	case 3:
		return 16;
	default:
		return (uint32_t)(rnd() % 4096);
	}
}

static void fuzz_rings_once(struct tb *t, uint16_t dev_num, bool event_idx)
{
	struct dvq q;
	uint8_t *desc;
	unsigned int i, n;
	uint16_t flags;

	tb_probe(t, dev_num, &q, event_idx ? 0 : 1ULL << VIRTIO_RING_F_EVENT_IDX);
	desc = pool_at(t, q.desc);
	n = 1 + (unsigned int)(rnd() % 8);
	/* Mostly plausible descriptors, so that chains get deep before failing. */
	for (i = 0; i < QSIZE; i++) {
		flags = 0;
		if (rnd() % 4)
			flags |= VRING_DESC_F_NEXT;
		if (rnd() % 2)
			flags |= VRING_DESC_F_WRITE;
		if (rnd() % 32 == 0)
			flags |= VRING_DESC_F_INDIRECT;
		set_desc(desc, i, rnd_addr(), rnd_len(), flags,
			 (uint16_t)(rnd() % 16 ? rnd() % QSIZE : rnd()));
	}
	/* Some indirect tables with random content. */
	for (i = 0; i < 4; i++) {
		uint64_t table = BUS_BASE + DATA_OFF + (rnd() % 256) * 256;
		unsigned int j;

		for (j = 0; j < 16; j++)
			set_desc(pool_at(t, table), j, rnd_addr(), rnd_len(),
				 (uint16_t)(rnd() % 16 ? rnd() & 3 : rnd() & 7),
				 (uint16_t)(rnd() % 20));
		set_desc(desc, (uint32_t)(rnd() % QSIZE), table,
			 (uint32_t)(rnd() % 2 ? 16 * (1 + rnd() % 16) : rnd_len()),
			 VRING_DESC_F_INDIRECT, 0);
	}
	/* Random blk headers where headers might be found. */
	for (i = 0; i < 32; i++) {
		uint8_t *h = pool_at(t, BUS_BASE + DATA_OFF + (rnd() % 1024) * 512);

		put32(h, (uint32_t)(rnd() % 10));
		put64(h + 8, rnd() % 4 ? rnd() % (DISK_SECTORS + 4) : rnd());
	}
	for (i = 0; i < n; i++)
		dvq_publish(t, &q, (uint16_t)(rnd() % 8 ? rnd() % QSIZE : rnd()));
	if (rnd() % 8 == 0)
		put16(pool_at(t, q.avail) + 2, (uint16_t)rnd());
	put16(pool_at(t, q.avail), (uint16_t)(rnd() & 1));
	put16(pool_at(t, q.avail) + 4 + 2 * QSIZE, (uint16_t)rnd());
	tb_kick(t, dev_num, 0);
	tb_kick(t, dev_num, 0);
	/* Whatever happened, no more than a ring's worth was completed. */
	CHECK(used_idx(t, &q) <= QSIZE);
}

static void test_fuzz_rings(void)
{
	struct vmsg_dev_opts o = default_opts();
	struct tb t;
	unsigned int i;

	o.event_idx = true;
	tb_init_opts(&t, VIRTIO_MSG_WIRE_SPEC, &o);
	for (i = 0; i < 3000; i++)
		fuzz_rings_once(&t, i % 3 ? DEV_BLK : DEV_RNG, i % 2);
	tb_fini(&t);
}

static void test_fuzz_messages(void)
{
	uint8_t in[300], out[512];
	struct tb t;
	size_t len, out_len, h;
	unsigned int i, j;
	uint32_t fmt;

	for (fmt = 0; fmt < 2; fmt++) {
		tb_init(&t, fmt);
		h = hdr_size(&t);
		for (i = 0; i < 20000; i++) {
			len = (size_t)(rnd() % sizeof(in));
			for (j = 0; j < len; j++)
				in[j] = (uint8_t)rnd();
			if (len >= h && rnd() % 4) {
				/* Mostly plausible headers so the handlers run. */
				in[0] = (uint8_t)(rnd() % 4);
				in[1] = (uint8_t)(rnd() % 2 ? rnd() % 0x10 : rnd());
				put16(in + 2, (uint16_t)(rnd() % 4));
				put16(in + h - 2, (uint16_t)(rnd() % 8 ? len : rnd()));
				if (in[1] == VIRTIO_MSG_SET_DEVICE_STATUS && rnd() % 2)
					put32(in + h, 0);
			}
			backend_handle_message(&t.be, in, len, out, t.max_msg, &out_len);
			CHECK(out_len <= t.max_msg);
			backend_run_deferred(&t.be);
		}
		tb_fini(&t);
	}
}

int main(void)
{
	/*
	 * Backend log lines go to stderr: the expected complaints about the
	 * malicious rings show what was detected.  VMSG_TEST_QUIET drops them,
	 * VMSG_TEST_VERBOSE adds a trace of every message.
	 */
	if (getenv("VMSG_TEST_QUIET") && !freopen("/dev/null", "w", stderr))
		return 1;
	verbose = getenv("VMSG_TEST_VERBOSE");
	vmsg_verbose = verbose ? 2 : 0;
	only = getenv("VMSG_TEST_ONLY");

	run_case("pool_ptr bounds", test_pool_ptr);
	run_case("codec both wire formats", test_codec);
	run_case("device info (spec)", test_device_info_spec);
	run_case("device info (rfc1)", test_device_info_rfc1);
	run_case("features (spec)", test_features_spec);
	run_case("features (rfc1)", test_features_rfc1);
	run_case("feature negotiation", test_feature_negotiation);
	run_case("config space", test_config);
	run_case("vqueue messages (spec)", test_vqueue_spec);
	run_case("vqueue messages (rfc1)", test_vqueue_rfc1);
	run_case("status and reset", test_status_reset);
	run_case("bus messages, drops", test_bus_and_misc);
	run_case("blk write/read (spec)", test_blk_roundtrip_spec);
	run_case("blk write/read (rfc1)", test_blk_roundtrip_rfc1);
	run_case("blk write/read (indirect)", test_blk_roundtrip_indirect);
	run_case("blk many requests in flight", test_blk_inflight);
	run_case("blk request types, bounds, ro", test_blk_requests);
	run_case("VRING_AVAIL_F_NO_INTERRUPT", test_no_interrupt);
	run_case("EVENT_IDX", test_event_idx);
	run_case("kick before DRIVER_OK", test_kick_before_driver_ok);
	run_case("rng fills buffers", test_rng);
	run_case("indirect table > reduced queue", test_indirect_reduced_queue);
	run_case("malicious rings", test_malicious_rings);
	run_case("valid request then a bad one", test_valid_then_bad);
	run_case("malicious SET_VQUEUE", test_bad_set_vqueue);
	run_case("threads: eventfd kick and call", test_thr_eventfd);
	run_case("threads: eventfd binding fails", test_thr_bind_fails);
	run_case("threads: bus without eventfds", test_thr_no_vring_fds);
	run_case("threads: EVENT_IDX both ways", test_thr_event_idx);
	run_case("threads: multi-queue blk", test_thr_multiqueue);
	run_case("threads: queue reset while busy", test_thr_queue_reset_busy);
	run_case("threads: reset and removal while busy", test_thr_reset_and_removal);
	run_case_q("fuzz rings", test_fuzz_rings, true);
	run_case_q("fuzz messages", test_fuzz_messages, true);

	printf("%u passed, %u failed\n", n_passed, n_failed);
	return n_failed ? 1 : 0;
}
