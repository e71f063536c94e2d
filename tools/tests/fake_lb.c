// SPDX-License-Identifier: GPL-2.0-only
/*
 * LD_PRELOAD stand-in for the kernel side of the loopback bus, to test the
 * real virtio-msg-backend binary (threads, poll loop, ADD/REMOVE ordering,
 * signal handling) on a host without the module.
 *
 *  - open(FAKE_LB_PATH) returns a memfd: mmap() of it is the DMA pool.
 *  - open("/dev/" FAKE_MSG_NAME) returns one end of a SOCK_SEQPACKET pair,
 *    which keeps message boundaries like /dev/virtio-msg-N.
 *  - ioctl(INFO) describes them.  ioctl(ADD) then plays the virtio driver's
 *    probe over the other end, synchronously, as the kernel does: device
 *    info, features, FEATURES_OK, virtqueue setup, DRIVER_OK; for a blk
 *    device also a write and a read through the ring of every queue (all
 *    num_queues with VIRTIO_BLK_F_MQ).  ioctl(REMOVE) sends
 *    SET_DEVICE_STATUS 0 and drops the device's eventfd bindings.
 *  - ioctl(SET_VRING_KICK/_CALL) bind eventfds (VIRTIO_MSG_LB_F_VRING_FDS):
 *    the fake driver then kicks a queue by signalling its kick eventfd
 *    instead of sending EVENT_AVAIL, and waits for completions on its call
 *    eventfd instead of for EVENT_USED; any EVENT_USED for such a queue is
 *    a failure.  REMOVE reports "device N: K/M kicks, C/U calls by eventfd".
 *
 * Environment: FAKE_LB_WIRE=1 selects the RFC1 wire format;
 * FAKE_LB_EXISTS=N makes ADD of device N fail with EEXIST;
 * FAKE_LB_HANG_REMOVE=1 makes REMOVE hang for 30 s;
 * FAKE_LB_VRING_FDS=1 offers VIRTIO_MSG_LB_F_VRING_FDS, FAKE_LB_VRING_FDS=2
 * offers it but fails both ioctls with EIO (a kernel that refuses);
 * FAKE_LB_EVENT_IDX=1 negotiates VIRTIO_RING_F_EVENT_IDX when offered and
 * kicks only when avail_event asks for it; FAKE_LB_BUSY_REMOVE=1 makes
 * REMOVE of a blk device fill and kick all its queues right before the
 * reset.
 * Results go to stderr as "fake-lb: ..." lines; a failed check makes the
 * ioctl fail with EIO.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_msg.h>
#include <linux/virtio_msg_loopback.h>
#include <linux/virtio_ring.h>

#define FAKE_LB_PATH	"/fake/virtio-msg-lb"
#define FAKE_MSG_NAME	"fake-msg-7"
#define POOL_SIZE	(4u << 20)
#define BUS_BASE	0x80000000ull
#define MAX_MSG		64
#define QSIZE		64
#define MAX_VQS		16
#define MAX_BIND	256

static int lb_fd = -1;		/* memfd handed out as the control device */
static int k_fd = -1;		/* kernel end of the message socket pair */
static int b_fd = -1;		/* backend end */
static uint8_t *pool;
static uint32_t wire;
static uint16_t token = 1;
static uint64_t alloc_next;
static int failures;
static bool devs[65536];
static int vring_fds;		/* FAKE_LB_VRING_FDS */
static bool event_idx;		/* FAKE_LB_EVENT_IDX */

/*
 * Eventfd bindings.  The ioctls come from the backend's serving thread
 * while ADD (on the main thread) plays the driver: hence the lock.
 */
struct binding {
	uint16_t dev;
	uint32_t index;
	int kick, call;		/* our duplicates, -1 if unbound */
};

static struct binding binds[MAX_BIND];
static unsigned int n_binds;
static pthread_mutex_t bind_lock = PTHREAD_MUTEX_INITIALIZER;
/* Per device being probed: notifications by eventfd and by message. */
static unsigned int kicks_fd, kicks_msg, calls_fd, calls_msg;

static int (*real_open)(const char *, int, ...);
static int (*real_ioctl)(int, unsigned long, ...);

static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "fake-lb: %s\n", line);
}

#define EXPECT(cond)							\
	do {								\
		if (!(cond)) {						\
			failures++;					\
			say("FAILED %s:%d: %s", __FILE__, __LINE__, #cond); \
		}							\
	} while (0)

static void put16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }

static size_t hdr(void)
{
	return wire == VIRTIO_MSG_WIRE_RFC1 ? 6 : 8;
}

static void __attribute__((constructor)) fake_init(void)
{
	int sv[2];

	real_open = dlsym(RTLD_NEXT, "open");
	real_ioctl = dlsym(RTLD_NEXT, "ioctl");
	wire = getenv("FAKE_LB_WIRE") ? (uint32_t)atoi(getenv("FAKE_LB_WIRE")) : 0;
	if (getenv("FAKE_LB_EXISTS"))
		devs[atoi(getenv("FAKE_LB_EXISTS")) & 0xffff] = true;
	vring_fds = getenv("FAKE_LB_VRING_FDS") ? atoi(getenv("FAKE_LB_VRING_FDS")) : 0;
	event_idx = getenv("FAKE_LB_EVENT_IDX") && atoi(getenv("FAKE_LB_EVENT_IDX"));
	lb_fd = memfd_create("fake-lb-pool", MFD_CLOEXEC);
	if (lb_fd < 0 || ftruncate(lb_fd, POOL_SIZE))
		abort();
	pool = mmap(NULL, POOL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, lb_fd, 0);
	if (pool == MAP_FAILED)
		abort();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		abort();
	k_fd = sv[0];
	b_fd = sv[1];
	alloc_next = 0x10000;
}

static int open_common(const char *path, int flags, mode_t mode)
{
	int fd;

	if (!strcmp(path, FAKE_LB_PATH))
		return fcntl(lb_fd, F_DUPFD_CLOEXEC, 0);
	if (!strcmp(path, "/dev/" FAKE_MSG_NAME)) {
		fd = fcntl(b_fd, F_DUPFD_CLOEXEC, 0);
		if (fd >= 0 && (flags & O_NONBLOCK))
			fcntl(fd, F_SETFL, O_NONBLOCK);
		return fd;
	}
	return real_open(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	return open_common(path, flags, mode);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

static bool is_lb(int fd)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && fstat(lb_fd, &b) == 0 && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev;
}

/* ---- the fake driver ---- */

static uint64_t pool_alloc(uint32_t len, uint32_t align)
{
	uint64_t off = (alloc_next + align - 1) & ~(uint64_t)(align - 1);

	alloc_next = off + len;
	return BUS_BASE + off;
}

static uint8_t *at(uint64_t bus)
{
	return pool + (bus - BUS_BASE);
}

/* Receive one message from the backend, waiting up to 5 s. */
static ssize_t recv_msg(uint8_t *buf)
{
	struct pollfd p = { .fd = k_fd, .events = POLLIN };

	if (poll(&p, 1, 5000) != 1) {
		say("timeout waiting for the backend");
		return -1;
	}
	return read(k_fd, buf, MAX_MSG);
}

static void send_msg(uint8_t type, uint8_t id, uint16_t dev, uint16_t tok, const uint8_t *pl,
		     size_t plen)
{
	uint8_t buf[MAX_MSG];
	size_t h = hdr();

	buf[0] = type;
	buf[1] = id;
	put16(buf + 2, dev);
	if (wire == VIRTIO_MSG_WIRE_RFC1) {
		put16(buf + 4, (uint16_t)(h + plen));
	} else {
		put16(buf + 4, tok);
		put16(buf + 6, (uint16_t)(h + plen));
	}
	if (plen)
		memcpy(buf + h, pl, plen);
	EXPECT(write(k_fd, buf, h + plen) == (ssize_t)(h + plen));
}

/* A request and its response; returns the response payload length. */
static int request(uint16_t dev, uint8_t id, const uint8_t *pl, size_t plen, uint8_t *resp)
{
	uint8_t buf[MAX_MSG];
	uint16_t tok = token++;
	ssize_t n;

	send_msg(0, id, dev, tok, pl, plen);
	/* Completions of requests in flight may come first (FAKE_LB_BUSY_REMOVE). */
	do {
		n = recv_msg(buf);
		if (n < (ssize_t)hdr()) {
			failures++;
			return -1;
		}
	} while (buf[0] == 0 && buf[1] == VIRTIO_MSG_EVENT_USED);
	EXPECT(buf[0] == VIRTIO_MSG_TYPE_RESPONSE && buf[1] == id && get16(buf + 2) == dev);
	if (wire != VIRTIO_MSG_WIRE_RFC1)
		EXPECT(get16(buf + 4) == tok);
	memcpy(resp, buf + hdr(), (size_t)n - hdr());
	return (int)(n - (ssize_t)hdr());
}

static uint32_t set_status(uint16_t dev, uint32_t s)
{
	uint8_t p[4], r[MAX_MSG];

	put32(p, s);
	EXPECT(request(dev, VIRTIO_MSG_SET_DEVICE_STATUS, p, 4, r) == 4);
	return get32(r);
}

struct ring {
	uint32_t index;
	uint64_t desc, avail, used;
	uint16_t avail_idx, used_seen;
};

/* The rings of the writable blk devices, for FAKE_LB_BUSY_REMOVE. */
#define MAX_BLK		8
static struct blk_dev {
	uint16_t dev;
	uint32_t nvq;
	struct ring q[MAX_VQS];
} blks[MAX_BLK];
static unsigned int n_blks;

/* The bound eventfd of (dev, index), or -1; a duplicate the caller closes. */
static int bound_fd(uint16_t dev, uint32_t index, bool call)
{
	unsigned int i;
	int fd = -1;

	pthread_mutex_lock(&bind_lock);
	for (i = 0; i < n_binds; i++) {
		if (binds[i].dev == dev && binds[i].index == index) {
			fd = call ? binds[i].call : binds[i].kick;
			if (fd >= 0)
				fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
			break;
		}
	}
	pthread_mutex_unlock(&bind_lock);
	return fd;
}

static int set_vring_fd(const struct virtio_msg_lb_vring_fd *v, bool call)
{
	struct binding *b = NULL;
	unsigned int i;
	int fd = -1;

	if (v->dev_num > 0xffff || v->index >= MAX_VQS || v->flags)
		return -EINVAL;
	if (vring_fds == 2)
		return -EIO;
	if (v->fd >= 0) {
		fd = fcntl(v->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return -EBADF;
	}
	pthread_mutex_lock(&bind_lock);
	for (i = 0; i < n_binds; i++)
		if (binds[i].dev == v->dev_num && binds[i].index == v->index)
			b = &binds[i];
	if (!b && n_binds < MAX_BIND) {
		b = &binds[n_binds++];
		b->dev = (uint16_t)v->dev_num;
		b->index = v->index;
		b->kick = -1;
		b->call = -1;
	}
	if (b) {
		if ((call ? b->call : b->kick) >= 0)
			close(call ? b->call : b->kick);
		if (call)
			b->call = fd;
		else
			b->kick = fd;
	}
	pthread_mutex_unlock(&bind_lock);
	if (!b) {
		if (fd >= 0)
			close(fd);
		return -ENOSPC;
	}
	return 0;
}

/* The bindings go with the device. */
static void unbind_dev(uint16_t dev)
{
	unsigned int i;

	pthread_mutex_lock(&bind_lock);
	for (i = 0; i < n_binds; i++) {
		if (binds[i].dev != dev)
			continue;
		if (binds[i].kick >= 0)
			close(binds[i].kick);
		if (binds[i].call >= 0)
			close(binds[i].call);
		binds[i--] = binds[--n_binds];
	}
	pthread_mutex_unlock(&bind_lock);
}

/*
 * Wait for the completion notification: on the call eventfd if one is
 * bound, as EVENT_USED otherwise; like the kernel, accept either while
 * waiting (a binding may be made at any time).  One kick, one batch, one
 * notification: after it the buffer is used.
 */
static void wait_used(uint16_t dev, struct ring *q, uint16_t want)
{
	struct pollfd p[2] = { { .fd = k_fd, .events = POLLIN }, { .events = POLLIN } };
	uint8_t buf[MAX_MSG];
	eventfd_t v;
	int i, n;

	for (i = 0; i < 500; i++) {
		p[1].fd = bound_fd(dev, q->index, true);
		n = poll(p, p[1].fd >= 0 ? 2 : 1, 10);
		if (n > 0 && p[1].fd >= 0 && (p[1].revents & POLLIN)) {
			EXPECT(eventfd_read(p[1].fd, &v) == 0);
			close(p[1].fd);
			calls_fd++;
			EXPECT(get16(at(q->used) + 2) == want);
			return;
		}
		if (p[1].fd >= 0)
			close(p[1].fd);
		if (n > 0 && (p[0].revents & POLLIN)) {
			if (read(k_fd, buf, MAX_MSG) < (ssize_t)hdr() + 4) {
				failures++;
				return;
			}
			calls_msg++;
			EXPECT(buf[1] == VIRTIO_MSG_EVENT_USED && get16(buf + 2) == dev);
			EXPECT(get32(buf + hdr()) == q->index);
			EXPECT(get16(at(q->used) + 2) == want);
			return;
		}
	}
	say("timeout waiting for the completion on device %u vq %u", dev, q->index);
	failures++;
}

static void kick(uint16_t dev, struct ring *q, uint16_t old_idx)
{
	uint8_t p[8];
	int fd;

	if (event_idx) {
		uint16_t avail_event;

		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_event = get16(at(q->used) + 4 + 8 * QSIZE);
		if (!vring_need_event(avail_event, q->avail_idx, old_idx))
			return;
	}
	fd = bound_fd(dev, q->index, false);
	if (fd >= 0) {
		EXPECT(eventfd_write(fd, 1) == 0);
		close(fd);
		kicks_fd++;
		return;
	}
	kicks_msg++;
	put32(p, q->index);
	put32(p + 4, 0);
	send_msg(0, VIRTIO_MSG_EVENT_AVAIL, dev, 0, p, 8);
}

/* One request on q at sector 3 + 8 * sector_of (one 4 KiB block per queue). */
/* Make the request available, returns its status byte's address. */
static uint64_t blk_submit(struct ring *q, uint32_t type, uint64_t data, uint32_t sector_of)
{
	uint64_t h = pool_alloc(16, 8), st = pool_alloc(1, 1);
	uint8_t *d = at(q->desc);
	uint16_t head = (uint16_t)((q->avail_idx * 3) % QSIZE);

	put32(at(h), type);
	put32(at(h) + 4, 0);
	put64(at(h) + 8, 3 + 8 * (uint64_t)sector_of);
	*at(st) = 0xff;
	put64(d + 16 * head, h);
	put32(d + 16 * head + 8, 16);
	put16(d + 16 * head + 12, VRING_DESC_F_NEXT);
	put16(d + 16 * head + 14, (uint16_t)(head + 1));
	put64(d + 16 * (head + 1), data);
	put32(d + 16 * (head + 1) + 8, 4096);
	put16(d + 16 * (head + 1) + 12,
	      VRING_DESC_F_NEXT | (type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0));
	put16(d + 16 * (head + 1) + 14, (uint16_t)(head + 2));
	put64(d + 16 * (head + 2), st);
	put32(d + 16 * (head + 2) + 8, 1);
	put16(d + 16 * (head + 2) + 12, VRING_DESC_F_WRITE);
	put16(at(q->avail) + 4 + 2 * (q->avail_idx % QSIZE), head);
	q->avail_idx++;
	/* used_event: an interrupt for this very buffer. */
	put16(at(q->avail) + 4 + 2 * QSIZE, (uint16_t)(q->avail_idx - 1));
	__atomic_store_n((uint16_t *)(void *)(at(q->avail) + 2), htole16(q->avail_idx),
			 __ATOMIC_RELEASE);
	return st;
}

static void blk_io(uint16_t dev, struct ring *q, uint32_t type, uint64_t data,
		   uint32_t sector_of)
{
	uint64_t st = blk_submit(q, type, data, sector_of);

	kick(dev, q, (uint16_t)(q->avail_idx - 1));
	wait_used(dev, q, q->avail_idx);
	EXPECT(*at(st) == VIRTIO_BLK_S_OK);
}

static void setup_vq(uint16_t dev, struct ring *q, uint32_t index)
{
	size_t a = wire == VIRTIO_MSG_WIRE_RFC1 ? 12 : 16;
	uint8_t p[48], r[MAX_MSG];

	put32(p, index);
	EXPECT(request(dev, VIRTIO_MSG_GET_VQUEUE, p, 4, r) == (int)(a + 24));
	EXPECT(get32(r + 4) >= QSIZE);
	memset(q, 0, sizeof(*q));
	q->index = index;
	q->desc = pool_alloc(16 * QSIZE, 4096);
	q->avail = pool_alloc(6 + 2 * QSIZE, 2);
	q->used = pool_alloc(6 + 8 * QSIZE, 4096);
	memset(p, 0, sizeof(p));
	put32(p, index);
	put32(p + 8, QSIZE);
	put64(p + a, q->desc);
	put64(p + a + 8, q->avail);
	put64(p + a + 16, q->used);
	EXPECT(request(dev, VIRTIO_MSG_SET_VQUEUE, p, a + 24, r) == 0);
}

static int fake_add(uint16_t dev)
{
	const uint32_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
	uint8_t p[48], r[MAX_MSG];
	uint32_t device_id, f_lo, nvq = 1, i;
	struct ring q[MAX_VQS];
	int before = failures, j;

	if (devs[dev])
		return -EEXIST;
	kicks_fd = 0;
	kicks_msg = 0;
	calls_fd = 0;
	calls_msg = 0;
	EXPECT(request(dev, VIRTIO_MSG_GET_DEVICE_INFO, NULL, 0, r) == 24);
	device_id = get32(r);
	say("device %u: device id %u, %u feature bits, config %u bytes, %u vqs", dev, device_id,
	    get32(r + 8), get32(r + 12), get32(r + 16));
	set_status(dev, 0);
	set_status(dev, s);
	put32(p, 0);
	put32(p + 4, 2);
	EXPECT(request(dev, VIRTIO_MSG_GET_DEVICE_FEATURES, p, 8, r) == 16);
	EXPECT(get32(r + 12) & (1u << (VIRTIO_F_ACCESS_PLATFORM - 32)));
	/* Everything offered; EVENT_IDX only if asked to do it. */
	f_lo = get32(r + 8);
	if (!event_idx)
		f_lo &= ~(1u << VIRTIO_RING_F_EVENT_IDX);
	put32(p + 8, f_lo);
	memcpy(p + 12, r + 12, 4);
	EXPECT(request(dev, VIRTIO_MSG_SET_DRIVER_FEATURES, p, 16, r) == 0);
	EXPECT(set_status(dev, s | VIRTIO_CONFIG_S_FEATURES_OK) & VIRTIO_CONFIG_S_FEATURES_OK);

	if (device_id == 2 && (f_lo & (1u << VIRTIO_BLK_F_MQ))) {
		put32(p, offsetof(struct virtio_blk_config, num_queues));
		put32(p + 4, 2);
		EXPECT(request(dev, VIRTIO_MSG_GET_CONFIG, p, 8, r) == 14);
		nvq = get16(r + 12);
		EXPECT(nvq >= 1 && nvq <= MAX_VQS);
		if (nvq < 1 || nvq > MAX_VQS)
			nvq = 1;
		say("device %u: %u request queues", dev, nvq);
	}
	for (i = 0; i < nvq; i++)
		setup_vq(dev, &q[i], i);
	EXPECT(set_status(dev, s | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK) ==
	       (s | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK));

	for (i = 0; i < nvq; i++) {
		if (device_id == 2 && !(f_lo & (1u << VIRTIO_BLK_F_RO))) {
			uint64_t w = pool_alloc(4096, 4096), rd = pool_alloc(4096, 4096);

			for (j = 0; j < 4096; j++)
				at(w)[j] = (uint8_t)(j * 31 + dev + i);
			blk_io(dev, &q[i], VIRTIO_BLK_T_OUT, w, i);
			blk_io(dev, &q[i], VIRTIO_BLK_T_IN, rd, i);
			EXPECT(!memcmp(at(w), at(rd), 4096));
		} else if (device_id == 2) {
			blk_io(dev, &q[i], VIRTIO_BLK_T_IN, pool_alloc(4096, 4096), i);
		}
	}
	if (device_id == 2)
		say("device %u: %u/%u kicks, %u/%u calls by eventfd", dev, kicks_fd,
		    kicks_fd + kicks_msg, calls_fd, calls_fd + calls_msg);
	if (device_id == 2 && !(f_lo & (1u << VIRTIO_BLK_F_RO)) && n_blks < MAX_BLK) {
		blks[n_blks].dev = dev;
		blks[n_blks].nvq = nvq;
		memcpy(blks[n_blks].q, q, sizeof(q[0]) * nvq);
		n_blks++;
	}
	if (failures != before)
		return -EIO;
	devs[dev] = true;
	say("device %u added", dev);
	return 0;
}

/*
 * FAKE_LB_BUSY_REMOVE: a ring full of writes on every queue, kicked, and
 * the reset right behind: the backend must stop its workers in the middle.
 */
static void busy_before_remove(uint16_t dev)
{
	uint64_t data = pool_alloc(4096, 4096);
	unsigned int i, k;
	uint16_t old;
	struct ring *q;

	for (i = 0; i < n_blks; i++) {
		if (blks[i].dev != dev)
			continue;
		for (k = 0; k < blks[i].nvq; k++) {
			q = &blks[i].q[k];
			old = q->avail_idx;
			while ((uint16_t)(q->avail_idx - old) < 16)
				blk_submit(q, VIRTIO_BLK_T_OUT, data, k);
			kick(dev, q, old);
		}
		say("device %u: reset with %u queue(s) busy", dev, blks[i].nvq);
		blks[i] = blks[--n_blks];
		return;
	}
}

static int fake_remove(uint16_t dev)
{
	struct pollfd p = { .fd = k_fd, .events = POLLIN };
	int before = failures;

	if (!devs[dev])
		return -ENODEV;
	if (getenv("FAKE_LB_HANG_REMOVE"))
		sleep(30);	/* a kernel that never finishes the unbind */
	if (getenv("FAKE_LB_BUSY_REMOVE"))
		busy_before_remove(dev);
	EXPECT(set_status(dev, 0) == 0);
	/* The workers are joined before the reset is answered: nothing after. */
	EXPECT(poll(&p, 1, 50) == 0);
	unbind_dev(dev);
	devs[dev] = false;
	say("device %u removed", dev);
	return failures != before ? -EIO : 0;
}

int ioctl(int fd, unsigned long req, ...)
{
	struct virtio_msg_lb_info *info;
	struct virtio_msg_lb_dev *d;
	bool call;
	va_list ap;
	void *arg;
	int ret;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!is_lb(fd))
		return real_ioctl(fd, req, arg);

	switch (req) {
	case VIRTIO_MSG_LB_IOC_INFO:
		info = arg;
		memset(info, 0, sizeof(*info));
		info->pool_size = POOL_SIZE;
		info->bus_addr_base = BUS_BASE;
		info->wire_format = wire;
		info->max_msg_size = MAX_MSG;
		info->max_devices = 65536;
		strcpy(info->msg_dev_name, FAKE_MSG_NAME);
		if (vring_fds)
			info->features = VIRTIO_MSG_LB_F_VRING_FDS;
		return 0;
	case VIRTIO_MSG_LB_IOC_SET_VRING_KICK:
	case VIRTIO_MSG_LB_IOC_SET_VRING_CALL:
		if (!vring_fds)
			break;	/* ENOTTY, like today's kernel */
		call = req == VIRTIO_MSG_LB_IOC_SET_VRING_CALL;
		ret = set_vring_fd(arg, call);
		if (ret) {
			errno = -ret;
			return -1;
		}
		return 0;
	case VIRTIO_MSG_LB_IOC_ADD:
	case VIRTIO_MSG_LB_IOC_REMOVE:
		d = arg;
		if (d->dev_num > 0xffff || d->flags || d->reserved[0] || d->reserved[1]) {
			errno = EINVAL;
			return -1;
		}
		ret = req == VIRTIO_MSG_LB_IOC_ADD ? fake_add((uint16_t)d->dev_num) :
						    fake_remove((uint16_t)d->dev_num);
		if (ret) {
			errno = -ret;
			return -1;
		}
		return 0;
	}
	errno = ENOTTY;
	return -1;
}
