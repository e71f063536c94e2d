// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmsg-hostile core: an ordinary loopback peer that scenarios bend.
 *
 * One serving thread answers /dev/virtio-msg-N with tools/backend's device
 * models and serves kicks from the kick eventfds, unthreaded otherwise (no
 * vq workers): what a simple single-threaded backend does.  Scenario
 * threads are the hostile part; they race it on purpose.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "hostile.h"

#define LB_NODE		"/dev/virtio-msg-lb"

void hostile_die(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	fputs("vmsg-hostile: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", strerror(err));
	exit(2);
}

unsigned long hostile_num(const char *s)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end) {
		fprintf(stderr, "vmsg-hostile: not a number: %s\n", s);
		exit(2);
	}
	return v;
}

uint64_t hostile_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void *hostile_ptr(struct hostile *h, uint64_t addr, uint64_t len)
{
	return vmsg_pool_ptr(&h->be.pool, addr, len);
}

static struct hostile_vring *find_vring(struct hostile *h, uint16_t dev_num,
					unsigned int index)
{
	unsigned int i;

	for (i = 0; i < h->num_vrings; i++)
		if (h->vrings[i].dev_num == dev_num && h->vrings[i].index == index)
			return &h->vrings[i];
	return NULL;
}

struct hostile_vring *hostile_vring(struct hostile *h, uint16_t dev_num, unsigned int index)
{
	struct hostile_vring *v;

	pthread_mutex_lock(&h->lock);
	v = find_vring(h, dev_num, index);
	pthread_mutex_unlock(&h->lock);
	return v;
}

struct vmsg_vq *hostile_vq(struct hostile *h, uint16_t dev_num, unsigned int index)
{
	struct vmsg_device *dev = backend_find_device(&h->be, dev_num);

	return dev && index < dev->num_vqs ? &dev->vqs[index] : NULL;
}

int hostile_bind(struct hostile *h, uint16_t dev_num, unsigned int index, bool call, int fd)
{
	struct virtio_msg_lb_vring_fd b = { .dev_num = dev_num, .index = index, .fd = fd };

	/* A closed node is -1: ioctl() says EBADF. */
	return ioctl(h->lb, call ? VIRTIO_MSG_LB_IOC_SET_VRING_CALL :
			   VIRTIO_MSG_LB_IOC_SET_VRING_KICK, &b) ? errno : 0;
}

/* From the serving thread on SET_VQUEUE, while ADD may wait for it. */
static void bind_vring(struct hostile *h, uint16_t dev_num, unsigned int index)
{
	struct hostile_vring *v;

	if (find_vring(h, dev_num, index) || h->num_vrings == HOSTILE_MAX_VRINGS)
		return;
	v = &h->vrings[h->num_vrings];
	v->dev_num = dev_num;
	v->index = index;
	v->kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	v->call = eventfd(0, EFD_CLOEXEC);
	if (v->kick < 0 || v->call < 0)
		hostile_die("eventfd");
	if (hostile_bind(h, dev_num, index, false, v->kick) ||
	    hostile_bind(h, dev_num, index, true, v->call))
		hostile_die("binding the eventfds of device %u queue %u", dev_num, index);
	/* Published last: other threads look vrings up without the lock. */
	__atomic_store_n(&h->num_vrings, h->num_vrings + 1, __ATOMIC_RELEASE);
}

static int write_msg(struct hostile *h, const void *buf, size_t len)
{
	ssize_t n;

	if (h->msg < 0)
		return -EBADF;
	n = write(h->msg, buf, len);
	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

/* Used buffers go to the queue's call eventfd while one is bound. */
static int core_send_event(struct backend *be, const void *buf, size_t len)
{
	struct hostile *h = be->send_ctx;
	struct vmsg_msg *m = malloc(sizeof(*m));
	struct hostile_vring *v = NULL;

	if (!m)
		return -ENOMEM;
	if (!vmsg_decode(be->wire_format, buf, len, m) && m->msg_id == VIRTIO_MSG_EVENT_USED) {
		const struct virtio_msg_event_used *used = (const void *)m->payload;

		v = find_vring(h, m->dev_num, le32toh(used->vq_index));
	}
	free(m);
	if (v && v->call >= 0) {
		h->calls++;
		return eventfd_write(v->call, 1) ? -errno : 0;
	}
	return write_msg(h, buf, len);
}

int hostile_send_used(struct hostile *h, uint16_t dev_num, unsigned int index)
{
	struct vmsg_msg *m = calloc(1, sizeof(*m));
	struct virtio_msg_event_used *used;
	uint8_t buf[64];
	ssize_t n;

	if (!m)
		return -ENOMEM;
	used = (void *)m->payload;
	m->msg_id = VIRTIO_MSG_EVENT_USED;
	m->dev_num = dev_num;
	m->token = VIRTIO_MSG_TOKEN_EVENT;
	m->payload_len = sizeof(*used);
	used->vq_index = htole32(index);
	n = vmsg_encode(h->be.wire_format, m, buf, sizeof(buf));
	free(m);
	return n < 0 ? (int)n : write_msg(h, buf, n);
}

void hostile_reopen_msg(struct hostile *h)
{
	char path[64];

	if (h->msg >= 0)
		return;
	snprintf(path, sizeof(path), "/dev/%s", h->info.msg_dev_name);
	h->msg = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (h->msg < 0)
		hostile_die("%s", path);
	h->closed = false;
}

void hostile_open(struct hostile *h)
{
	struct vmsg_pool pool;

	memset(h, 0, sizeof(*h));
	h->msg = -1;
	pthread_mutex_init(&h->lock, NULL);
	h->lb = open(LB_NODE, O_RDWR | O_CLOEXEC);
	if (h->lb < 0 || ioctl(h->lb, VIRTIO_MSG_LB_IOC_INFO, &h->info))
		hostile_die(LB_NODE);
	h->map_len = h->info.pool_size;
	h->map = mmap(NULL, h->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, h->lb, 0);
	if (h->map == MAP_FAILED)
		hostile_die("mmap of the pool");
	pool.base = h->map;
	pool.size = h->map_len;
	pool.bus_base = h->info.bus_addr_base;
	if (backend_init(&h->be, h->info.wire_format, h->info.max_msg_size, &pool)) {
		fprintf(stderr, "vmsg-hostile: unusable bus\n");
		exit(2);
	}
	h->be.send_event = core_send_event;
	h->be.send_ctx = h;
	h->rx = malloc(h->info.max_msg_size);
	h->tx = malloc(h->info.max_msg_size);
	if (!h->rx || !h->tx || pipe(h->stop_pipe))
		hostile_die("setup");
	hostile_reopen_msg(h);
}

void hostile_close_msg(struct hostile *h)
{
	if (h->serving && !pthread_equal(pthread_self(), h->server))
		hostile_serve_stop(h);
	if (h->msg >= 0)
		close(h->msg);
	h->msg = -1;
}

void hostile_close(struct hostile *h)
{
	unsigned int i;

	hostile_serve_stop(h);
	hostile_close_msg(h);
	for (i = 0; i < h->num_vrings; i++) {
		if (h->vrings[i].kick >= 0)
			close(h->vrings[i].kick);
		if (h->vrings[i].call >= 0)
			close(h->vrings[i].call);
	}
	if (h->map && h->map != MAP_FAILED)
		munmap(h->map, h->map_len);
	h->map = NULL;
	if (h->lb >= 0)
		close(h->lb);
	h->lb = -1;
}

static struct vmsg_device *add_model(struct hostile *h, struct vmsg_device *dev)
{
	if (!dev)
		hostile_die("device model");
	pthread_mutex_lock(&h->lock);
	if (backend_add_device(&h->be, dev))
		hostile_die("device %u registered twice", dev->dev_num);
	pthread_mutex_unlock(&h->lock);
	return dev;
}

struct vmsg_device *hostile_rng(struct hostile *h, uint16_t dev_num, uint32_t queue_size)
{
	struct vmsg_dev_opts o = { .queue_size = queue_size };

	return add_model(h, vmsg_rng_create(dev_num, &o));
}

struct vmsg_device *hostile_blk(struct hostile *h, uint16_t dev_num, const char *path,
				uint32_t queue_size)
{
	struct vmsg_dev_opts o = { .queue_size = queue_size };
	char err[256] = "";
	struct vmsg_device *dev = vmsg_blk_create(dev_num, path, false, &o, err, sizeof(err));

	if (!dev) {
		fprintf(stderr, "vmsg-hostile: %s\n", err);
		exit(2);
	}
	return add_model(h, dev);
}

static int lb_ioctl(struct hostile *h, unsigned long req, uint16_t dev_num)
{
	struct virtio_msg_lb_dev d = { .dev_num = dev_num };

	return ioctl(h->lb, req, &d) ? errno : 0;
}

int hostile_add(struct hostile *h, uint16_t dev_num)
{
	struct vmsg_device *dev = backend_find_device(&h->be, dev_num);
	int err;

	if (dev)
		__atomic_store_n(&dev->added, true, __ATOMIC_RELEASE);
	err = lb_ioctl(h, VIRTIO_MSG_LB_IOC_ADD, dev_num);
	if (err && dev)
		__atomic_store_n(&dev->added, false, __ATOMIC_RELEASE);
	return err;
}

int hostile_remove(struct hostile *h, uint16_t dev_num)
{
	return lb_ioctl(h, VIRTIO_MSG_LB_IOC_REMOVE, dev_num);
}

static void serve_kick(struct hostile *h, struct hostile_vring *v)
{
	struct vmsg_device *dev = backend_find_device(&h->be, v->dev_num);
	eventfd_t count;

	if (eventfd_read(v->kick, &count))
		return;
	h->kicks++;
	if (!h->hold && dev && v->index < dev->num_vqs)
		vq_process(dev, &dev->vqs[v->index]);
	backend_run_deferred(&h->be);
}

/* The answer the backend built, through the scenario's answer hook. */
static size_t bend_answer(struct hostile *h, struct vmsg_msg *m, size_t len)
{
	ssize_t n;

	if (!h->answer_hook || vmsg_decode(h->be.wire_format, h->tx, len, m))
		return len;
	h->answer_hook(h, m);
	n = vmsg_encode(h->be.wire_format, m, h->tx, h->be.max_msg_size);
	return n < 0 ? len : (size_t)n;
}

/* One message from the driver; false once the node was closed. */
static bool serve_one(struct hostile *h, struct vmsg_msg *m, size_t n)
{
	enum hostile_verdict verdict = HOSTILE_ANSWER;
	const struct virtio_msg_vqueue *vq = (const void *)m->payload;
	bool decoded, set_vqueue;
	unsigned int i, index = 0;
	uint16_t dev_num = 0;
	size_t out_len;

	h->messages++;
	decoded = !vmsg_decode(h->be.wire_format, h->rx, n, m);
	set_vqueue = decoded && !(m->type & VIRTIO_MSG_TYPE_BUS) &&
		     m->msg_id == VIRTIO_MSG_SET_VQUEUE;
	if (decoded) {
		dev_num = m->dev_num;
		index = le32toh(vq->index);
		if (h->hook)
			verdict = h->hook(h, m);
	}
	if (verdict == HOSTILE_DROP) {
		h->dropped++;
		return true;
	}
	if (!(decoded && m->msg_id == VIRTIO_MSG_EVENT_AVAIL && h->hold)) {
		backend_handle_message(&h->be, h->rx, n, h->tx, h->be.max_msg_size, &out_len);
		if (out_len) {
			out_len = bend_answer(h, m, out_len);
			if (write_msg(h, h->tx, out_len))
				fprintf(stderr, "vmsg-hostile: an answer was refused: %s\n",
					strerror(errno));
		}
	}
	if (set_vqueue && h->eventfd)
		bind_vring(h, dev_num, index);
	/* DRIVER_OK makes the backend look at the rings: not when holding. */
	for (i = 0; h->hold && i < h->be.num_devs; i++)
		h->be.devs[i]->deferred_kick = false;
	backend_run_deferred(&h->be);
	if (verdict == HOSTILE_ANSWER_CLOSE) {
		close(h->msg);
		h->msg = -1;
		h->closed = true;
		return false;
	}
	return true;
}

int hostile_serve_for(struct hostile *h, int timeout_ms)
{
	struct pollfd pfd[2 + HOSTILE_MAX_VRINGS];
	struct vmsg_msg *m = malloc(sizeof(*m));
	uint64_t end = hostile_now_ms() + timeout_ms;
	unsigned int i, nfds, nv;
	int handled = 0, left;
	ssize_t n;

	if (!m)
		hostile_die("malloc");
	for (;;) {
		if (h->msg < 0) {
			handled = -1;
			break;
		}
		nv = __atomic_load_n(&h->num_vrings, __ATOMIC_ACQUIRE);
		pfd[0] = (struct pollfd){ .fd = h->msg, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = h->stop_pipe[0], .events = POLLIN };
		for (i = 0; i < nv; i++)
			pfd[2 + i] = (struct pollfd){ .fd = h->vrings[i].kick, .events = POLLIN };
		nfds = 2 + nv;
		left = (int)(end - hostile_now_ms());
		if (left <= 0)
			break;
		if (poll(pfd, nfds, left > 50 ? 50 : left) < 0 && errno != EINTR)
			hostile_die("poll");
		if (pfd[1].revents & POLLIN)
			break;
		pthread_mutex_lock(&h->lock);
		for (i = 2; i < nfds; i++)
			if (pfd[i].revents & POLLIN)
				serve_kick(h, &h->vrings[i - 2]);
		while (h->msg >= 0 && (n = read(h->msg, h->rx, h->be.max_msg_size)) > 0) {
			handled++;
			if (!serve_one(h, m, n))
				break;
		}
		if (h->msg >= 0 && n < 0 && errno == ENODEV) {
			fprintf(stderr, "vmsg-hostile: the bus is gone\n");
			close(h->msg);
			h->msg = -1;
		}
		pthread_mutex_unlock(&h->lock);
	}
	free(m);
	return handled;
}

static void *server(void *arg)
{
	struct hostile *h = arg;

	while (hostile_serve_for(h, 1000) >= 0) {
		struct pollfd p = { .fd = h->stop_pipe[0], .events = POLLIN };

		if (poll(&p, 1, 0) > 0)
			break;
	}
	return NULL;
}

void hostile_serve_start(struct hostile *h)
{
	char c;

	if (h->serving)
		return;
	/* A stop request left from an earlier run. */
	while (fcntl(h->stop_pipe[0], F_SETFL, O_NONBLOCK) == 0 &&
	       read(h->stop_pipe[0], &c, 1) == 1)
		;
	if (pthread_create(&h->server, NULL, server, h))
		hostile_die("pthread_create");
	h->serving = true;
}

void hostile_serve_stop(struct hostile *h)
{
	if (!h->serving)
		return;
	if (write(h->stop_pipe[1], "s", 1) != 1)
		hostile_die("stop pipe");
	pthread_join(h->server, NULL);
	h->serving = false;
}
