// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmsg-test: hostile-peer checks of the loopback bus, run inside the test VM.
 *
 * Each subcommand plays a misbehaving backend (or user) against
 * /dev/virtio-msg-lb and /dev/virtio-msg-N and checks the kernel answers
 * with the right errno, keeps its state consistent and never hangs.  It
 * prints one "ok <name>" or "FAIL <name>: why" line per check and exits
 * non-zero if any check failed.
 *
 * The device side here speaks the spec wire format only; the RFC v1 format
 * is exercised end to end with the real backend.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_msg.h>
#include <linux/virtio_msg_loopback.h>

#include "failnth.h"

#define LB_NODE		"/dev/virtio-msg-lb"
#define TIMEOUT_PARAM	"/sys/module/virtio_msg_transport/parameters/timeout_ms"
#define VIRTIO_F_VERSION_1		32
#define VIRTIO_F_ACCESS_PLATFORM	33

static int virtio_msg_id_is_event(uint8_t id)
{
	return id & VIRTIO_MSG_ID_EVENT_BIT;
}

static int failures;

static void check(int cond, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (cond) {
		printf("ok %s\n", name);
		return;
	}
	failures++;
	printf("FAIL %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct bus {
	int lb;
	int msg;
	struct virtio_msg_lb_info info;
};

static void bus_open(struct bus *b)
{
	char path[64];

	b->lb = open(LB_NODE, O_RDWR);
	if (b->lb < 0) {
		perror(LB_NODE);
		exit(2);
	}
	if (ioctl(b->lb, VIRTIO_MSG_LB_IOC_INFO, &b->info)) {
		perror("INFO");
		exit(2);
	}
	snprintf(path, sizeof(path), "/dev/%s", b->info.msg_dev_name);
	b->msg = open(path, O_RDWR | O_NONBLOCK);
	if (b->msg < 0) {
		perror(path);
		exit(2);
	}
}

static void bus_close(struct bus *b)
{
	close(b->msg);
	close(b->lb);
}

/* Waits up to @ms for a message and reads it; returns read()'s result. */
static ssize_t read_msg(struct bus *b, void *buf, size_t len, int ms)
{
	struct pollfd pfd = { .fd = b->msg, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, ms) <= 0)
		return -ETIME;
	n = read(b->msg, buf, len);
	return n < 0 ? -errno : n;
}

static ssize_t write_msg(struct bus *b, const void *buf, size_t len)
{
	ssize_t n = write(b->msg, buf, len);

	return n < 0 ? -errno : n;
}

struct add_job {
	struct bus *b;
	unsigned long cmd;
	uint32_t dev_num;
	int err;		/* errno of the ioctl, 0 on success */
	double seconds;
	int done;
	pthread_t thread;
};

static void *add_thread(void *arg)
{
	struct add_job *job = arg;
	struct virtio_msg_lb_dev dev = { .dev_num = job->dev_num };
	double t = now();

	job->err = ioctl(job->b->lb, job->cmd, &dev) ? errno : 0;
	job->seconds = now() - t;
	__atomic_store_n(&job->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void start_add(struct add_job *job, struct bus *b, uint32_t dev_num)
{
	memset(job, 0, sizeof(*job));
	job->b = b;
	job->cmd = VIRTIO_MSG_LB_IOC_ADD;
	job->dev_num = dev_num;
	pthread_create(&job->thread, NULL, add_thread, job);
}

static void set_timeout_ms(unsigned int ms)
{
	FILE *f = fopen(TIMEOUT_PARAM, "w");

	if (!f || fprintf(f, "%u\n", ms) < 0 || fclose(f)) {
		perror(TIMEOUT_PARAM);
		exit(2);
	}
}

static void respond(struct bus *b, const struct virtio_msg_header *req,
		    const void *payload, size_t len)
{
	uint8_t buf[512];
	struct virtio_msg_header *r = (void *)buf;

	*r = *req;
	r->type |= VIRTIO_MSG_TYPE_RESPONSE;
	r->msg_size = sizeof(*r) + len;
	memcpy(r + 1, payload, len);
	write_msg(b, buf, r->msg_size);
}

/*
 * A minimal device: answers GET_DEVICE_INFO and GET_DEVICE_FEATURES, with
 * or without VIRTIO_F_ACCESS_PLATFORM, then everything else with an empty
 * or zero response, until @stop_id has been answered or the add finished.
 */
static void serve_device(struct bus *b, struct add_job *job, uint32_t dev_id,
			 int access_platform, int *saw_set_features_ok)
{
	uint8_t buf[4096];
	struct virtio_msg_header *h = (void *)buf;
	double end = now() + 20;
	uint32_t status = 0;

	while (now() < end) {
		ssize_t n = read_msg(b, buf, sizeof(buf), 100);

		if (n == -ETIME) {
			if (job && __atomic_load_n(&job->done, __ATOMIC_ACQUIRE))
				break;
			continue;
		}
		if (n < 0)
			break;
		if (virtio_msg_id_is_event(h->msg_id))
			continue;
		switch (h->msg_id) {
		case VIRTIO_MSG_GET_DEVICE_INFO: {
			struct virtio_msg_get_device_info_resp info = {
				.device_id = dev_id, .vendor_id = 0x1af4,
				.num_feature_bits = 64, .config_size = 8,
				.max_virtqueues = 1,
			};
			respond(b, h, &info, sizeof(info));
			break;
		}
		case VIRTIO_MSG_GET_DEVICE_FEATURES: {
			struct { struct virtio_msg_features f; uint32_t w[2]; } f = {
				.f.num_blocks = 2,
			};
			f.w[1] = (1u << (VIRTIO_F_VERSION_1 - 32)) |
				 (access_platform ? 1u << (VIRTIO_F_ACCESS_PLATFORM - 32) : 0);
			respond(b, h, &f, sizeof(f));
			break;
		}
		case VIRTIO_MSG_SET_DRIVER_FEATURES: {
			struct virtio_msg_features *f = (void *)(h + 1);

			/* Seed bug 3: msg_size must cover the feature blocks. */
			if (saw_set_features_ok)
				*saw_set_features_ok = h->msg_size ==
					sizeof(*h) + sizeof(*f) + 4 * f->num_blocks &&
					f->num_blocks == 2;
			respond(b, h, NULL, 0);
			break;
		}
		case VIRTIO_MSG_SET_DEVICE_STATUS:
			status = *(uint32_t *)(h + 1);
			respond(b, h, &status, sizeof(status));
			break;
		case VIRTIO_MSG_GET_DEVICE_STATUS:
			respond(b, h, &status, sizeof(status));
			break;
		case VIRTIO_MSG_GET_CONFIG: {
			struct { struct virtio_msg_config c; uint8_t d[256]; } c = {};
			const struct virtio_msg_get_config *g = (void *)(h + 1);

			c.c.offset = g->offset;
			c.c.length = g->length;
			respond(b, h, &c, sizeof(c.c) + (g->length > 256 ? 256 : g->length));
			break;
		}
		default:
			respond(b, h, NULL, 0);
		}
	}
}

/* Seed bugs 10/11: read() hands out exactly one message, bounded by its size. */
static void test_read_bounds(struct bus *b)
{
	uint8_t buf[8192], small[4];
	struct virtio_msg_header *h = (void *)buf;
	struct add_job job;
	ssize_t n;

	memset(buf, 0xa5, sizeof(buf));
	start_add(&job, b, 100);
	n = read_msg(b, small, sizeof(small), 5000);
	check(n == -EINVAL, "read-short-buffer-einval", "got %zd", n);
	n = read(b->msg, buf, sizeof(buf));
	check(n == VIRTIO_MSG_HEADER_SIZE && h->msg_id == VIRTIO_MSG_GET_DEVICE_INFO &&
	      h->msg_size == n && h->token != 0,
	      "read-oversized-one-message", "n=%zd id=%#x size=%u token=%u", n,
	      h->msg_id, h->msg_size, h->token);
	check(buf[n] == 0xa5, "read-no-overread", "byte after message written");
	n = read(b->msg, buf, sizeof(buf));
	check(n < 0 && errno == EAGAIN, "read-nonblock-eagain", "n=%zd errno=%d", n, errno);

	/* device_id 0: there is no device */
	{
		struct virtio_msg_get_device_info_resp info = {};

		respond(b, h, &info, sizeof(info));
	}
	pthread_join(job.thread, NULL);
	check(job.err == ENODEV, "add-no-device-enodev", "errno %d", job.err);
}

/* Seed bug 12: bad writes get negative errnos, never a crash or 0. */
static void test_bad_writes(struct bus *b)
{
	uint8_t buf[70000];
	struct virtio_msg_header *h = (void *)buf;
	ssize_t n;

	memset(buf, 0, sizeof(buf));
	n = write_msg(b, buf, 3);
	check(n == -EINVAL, "write-short-einval", "got %zd", n);
	n = write_msg(b, buf, b->info.max_msg_size + 1);
	check(n == -EINVAL, "write-oversized-einval", "got %zd", n);
	n = write_msg(b, buf, sizeof(buf));
	check(n == -EINVAL, "write-huge-einval", "got %zd", n);

	h->type = VIRTIO_MSG_TYPE_RESPONSE;
	h->msg_id = VIRTIO_MSG_GET_DEVICE_STATUS;
	h->msg_size = 200;	/* more than written */
	n = write_msg(b, buf, 16);
	check(n == -EINVAL, "write-truncated-einval", "got %zd", n);
	h->msg_size = 4;	/* less than a header */
	n = write_msg(b, buf, 16);
	check(n == -EINVAL, "write-undersized-einval", "got %zd", n);

	for (int i = 0; i < 2000; i++) {
		for (size_t j = 0; j < 64; j++)
			buf[j] = rand();
		h->msg_size = 8 + rand() % 56;
		n = write_msg(b, buf, 64);
		if (n != -EINVAL && n != -ENODEV && n != -EOPNOTSUPP && n != 64) {
			check(0, "write-garbage", "iteration %d got %zd", i, n);
			return;
		}
	}
	check(1, "write-garbage", "");

	/* The device side sends no requests to the driver. */
	memset(buf, 0, 64);
	h->msg_id = VIRTIO_MSG_GET_DEVICE_INFO;
	h->msg_size = 8;
	n = write_msg(b, buf, 8);
	check(n == -EINVAL, "write-request-from-device-einval", "got %zd", n);

	/* An answer to an event needs no one: dropped quietly. */
	h->type = VIRTIO_MSG_TYPE_RESPONSE;
	h->msg_id = VIRTIO_MSG_EVENT_AVAIL;
	n = write_msg(b, buf, 8);
	check(n == 8, "write-answer-to-event-ignored", "got %zd", n);

	/* Padding after msg_size, up to the bus maximum, is ignored. */
	h->type = 0;
	h->msg_id = VIRTIO_MSG_EVENT_USED;
	h->dev_num = 4242;
	h->msg_size = 12;
	n = write_msg(b, buf, b->info.max_msg_size);
	check(n == -ENODEV, "write-event-unknown-device-enodev", "got %zd", n);
}

/* Seed bugs 13/21: responses are matched by token; late ones are rejected. */
static void test_matching_and_timeout(struct bus *b)
{
	uint8_t buf[512];
	struct virtio_msg_header *h = (void *)buf;
	struct virtio_msg_get_device_info_resp info = { .device_id = 4 };
	struct add_job job;
	ssize_t n;

	set_timeout_ms(700);
	start_add(&job, b, 101);
	n = read_msg(b, buf, sizeof(buf), 5000);
	check(n == 8 && h->msg_id == VIRTIO_MSG_GET_DEVICE_INFO, "timeout-request-read",
	      "n=%zd", n);

	/* Wrong token: not the answer to this request. */
	h->token ^= 0x5555;
	h->type |= VIRTIO_MSG_TYPE_RESPONSE;
	h->msg_size = sizeof(*h) + sizeof(info);
	memcpy(h + 1, &info, sizeof(info));
	n = write_msg(b, buf, h->msg_size);
	check(n == -EINVAL, "response-wrong-token-einval", "got %zd", n);
	h->token ^= 0x5555;

	/* Never answer: the add must fail with ETIMEDOUT, bounded in time. */
	pthread_join(job.thread, NULL);
	check(job.err == ETIMEDOUT && job.seconds < 5, "timeout-add-etimedout",
	      "errno %d after %.1fs", job.err, job.seconds);

	/* The late answer finds nothing to complete. */
	n = write_msg(b, buf, h->msg_size);
	check(n == -EINVAL || n == -ENODEV, "late-response-rejected", "got %zd", n);

	/* A response nobody asked for at all. */
	h->dev_num = 101;
	h->token = 1234;
	n = write_msg(b, buf, h->msg_size);
	check(n == -EINVAL || n == -ENODEV, "unsolicited-response-rejected", "got %zd", n);
	set_timeout_ms(3000);
}

/* Seed bugs 34 and the ioctl contract. */
static void test_ioctls(struct bus *b)
{
	struct virtio_msg_lb_dev dev = { .dev_num = 5, .flags = 1 };
	uint32_t rfc1 = 4321;
	int ret;

	ret = ioctl(b->lb, VIRTIO_MSG_LB_IOC_ADD, &dev) ? errno : 0;
	check(ret == EINVAL, "ioctl-add-flags-einval", "errno %d", ret);
	dev.flags = 0;
	dev.reserved[1] = 7;
	ret = ioctl(b->lb, VIRTIO_MSG_LB_IOC_ADD, &dev) ? errno : 0;
	check(ret == EINVAL, "ioctl-add-reserved-einval", "errno %d", ret);
	dev.reserved[1] = 0;
	dev.dev_num = 70000;
	ret = ioctl(b->lb, VIRTIO_MSG_LB_IOC_ADD, &dev) ? errno : 0;
	check(ret == EINVAL, "ioctl-add-range-einval", "errno %d", ret);
	dev.dev_num = 4321;
	ret = ioctl(b->lb, VIRTIO_MSG_LB_IOC_REMOVE, &dev) ? errno : 0;
	check(ret == ENODEV, "ioctl-remove-unknown-enodev", "errno %d", ret);
	ret = ioctl(b->lb, VIRTIO_MSG_LB_IOC_REMOVE_RFC1, &rfc1) ? errno : 0;
	check(ret == ENODEV, "ioctl-rfc1-remove-unknown-enodev", "errno %d", ret);
	ret = ioctl(b->lb, _IO('P', 77)) ? errno : 0;
	check(ret == ENOTTY, "ioctl-unknown-enotty", "errno %d", ret);
	ret = ioctl(b->lb, VIRTIO_MSG_LB_IOC_ADD, (void *)16) ? errno : 0;
	check(ret == EFAULT, "ioctl-bad-pointer-efault", "errno %d", ret);
	check(b->info.pool_size >= 8 << 20 && b->info.max_msg_size >= 48 &&
	      b->info.wire_format == VIRTIO_MSG_WIRE_SPEC &&
	      !strncmp(b->info.msg_dev_name, "virtio-msg-", 11),
	      "ioctl-info", "pool %llu max %u fmt %u name %s",
	      (unsigned long long)b->info.pool_size, b->info.max_msg_size,
	      b->info.wire_format, b->info.msg_dev_name);
}

/* Seed bug 32: mmap is confined to the pool. */
static void test_mmap(struct bus *b)
{
	size_t size = b->info.pool_size;
	long pg = sysconf(_SC_PAGESIZE);
	void *p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, b->lb, 0);
	check(p != MAP_FAILED, "mmap-pool", "%s", strerror(errno));
	if (p != MAP_FAILED) {
		/* The last byte of the pool is backed: no SIGBUS. */
		char *last = (char *)p + size - 1;

		*last = 1;
		check(*last == 1, "mmap-pool-last-byte", "read back %d", *last);
		munmap(p, size);
	}
	p = mmap(NULL, size + pg, PROT_READ, MAP_SHARED, b->lb, 0);
	check(p == MAP_FAILED && errno == EINVAL, "mmap-past-pool-einval", "%s",
	      strerror(errno));
	p = mmap(NULL, pg, PROT_READ, MAP_SHARED, b->lb, size);
	check(p == MAP_FAILED && errno == EINVAL, "mmap-offset-at-end-einval", "%s",
	      strerror(errno));
	p = mmap(NULL, 2 * pg, PROT_READ, MAP_SHARED, b->lb, size - pg);
	check(p == MAP_FAILED && errno == EINVAL, "mmap-straddling-end-einval", "%s",
	      strerror(errno));
	p = mmap(NULL, pg, PROT_READ, MAP_SHARED, b->lb, (off_t)1 << 40);
	check(p == MAP_FAILED, "mmap-huge-offset-fails", "mapped");
}

/* rust-vmm vm-memory sizes a mapping with lseek(SEEK_END) first. */
static void test_lseek(struct bus *b)
{
	off_t size = b->info.pool_size, r;

	r = lseek(b->lb, 0, SEEK_END);
	check(r == size, "lseek-end-is-pool-size", "got %lld", (long long)r);
	r = lseek(b->lb, 4096, SEEK_SET);
	check(r == 4096 && lseek(b->lb, 0, SEEK_CUR) == 4096, "lseek-set-cur",
	      "got %lld", (long long)r);
	r = lseek(b->lb, size + 1, SEEK_SET);
	check(r < 0 && errno == EINVAL, "lseek-past-end-einval", "got %lld", (long long)r);
	r = lseek(b->lb, -1, SEEK_SET);
	check(r < 0 && errno == EINVAL, "lseek-negative-einval", "got %lld", (long long)r);
	lseek(b->lb, 0, SEEK_SET);
}

/* Seed bug 35: a device that could DMA outside the pool is refused. */
static void test_access_platform(struct bus *b)
{
	struct add_job job;
	int ok = 0;

	start_add(&job, b, 102);
	serve_device(b, &job, 4, 0, NULL);
	pthread_join(job.thread, NULL);
	check(job.err == ENODEV, "refuse-no-access-platform", "errno %d", job.err);

	/* With it, the device is accepted (virtio-rng id, 1 queue). */
	start_add(&job, b, 103);
	serve_device(b, &job, 4, 1, &ok);
	pthread_join(job.thread, NULL);
	check(job.err == 0, "accept-access-platform", "errno %d", job.err);
	check(ok, "set-features-msg-size", "SET_DRIVER_FEATURES msg_size wrong");
}

/* Seed bug 7: EVENT_USED with nothing used is no error. */
static void test_spurious_used(struct bus *b)
{
	struct { struct virtio_msg_header h; struct virtio_msg_event_used u; } ev = {
		.h = { .msg_id = VIRTIO_MSG_EVENT_USED, .dev_num = 103,
		       .msg_size = sizeof(ev) },
	};
	ssize_t n;

	n = write_msg(b, &ev, sizeof(ev));
	check(n == sizeof(ev), "event-used-spurious-ok", "got %zd", n);
	ev.u.vq_index = 999;
	n = write_msg(b, &ev, sizeof(ev));
	check(n == -EINVAL, "event-used-bad-queue-einval", "got %zd", n);
}

static int vring_fd(struct bus *b, unsigned long cmd, uint32_t dev, uint32_t index, int fd,
		    uint32_t flags)
{
	struct virtio_msg_lb_vring_fd v = {
		.dev_num = dev, .index = index, .fd = fd, .flags = flags,
	};

	return ioctl(b->lb, cmd, &v) ? errno : 0;
}

/* Kick and call eventfds: what a confused or hostile backend may pass. */
static void test_vring_fds(struct bus *b)
{
	const unsigned long kick = VIRTIO_MSG_LB_IOC_SET_VRING_KICK;
	const unsigned long call = VIRTIO_MSG_LB_IOC_SET_VRING_CALL;
	int efd = eventfd(0, EFD_CLOEXEC), efd2 = eventfd(0, EFD_CLOEXEC);
	int closed, pipefd[2], ret;

	if (pipe(pipefd)) {
		pipefd[0] = -1;
		pipefd[1] = -1;
	}
	/* Opened last: nothing takes its number before it is used. */
	closed = dup(efd);
	close(closed);
	check(b->info.features & VIRTIO_MSG_LB_F_VRING_FDS, "vring-fds-offered",
	      "features %#x", b->info.features);
	ret = vring_fd(b, kick, 4242, 0, efd, 0);
	check(ret == ENODEV, "vring-fd-unknown-device-enodev", "errno %d", ret);
	ret = vring_fd(b, call, 103, 0, closed, 0);
	check(ret == EBADF, "vring-fd-closed-fd-ebadf", "errno %d", ret);
	ret = vring_fd(b, kick, 103, 0, pipefd[0], 0);
	check(ret == EINVAL, "vring-fd-not-eventfd-einval", "errno %d", ret);
	ret = vring_fd(b, call, 103, 0, pipefd[0], 0);
	check(ret == EINVAL, "vring-fd-call-not-eventfd-einval", "errno %d", ret);
	ret = vring_fd(b, kick, 103, 1024, efd, 0);
	check(ret == EINVAL, "vring-fd-index-range-einval", "errno %d", ret);
	ret = vring_fd(b, kick, 103, 0, efd, 1);
	check(ret == EINVAL, "vring-fd-flags-einval", "errno %d", ret);
	ret = vring_fd(b, kick, 103, 0, efd, 0) || vring_fd(b, call, 103, 0, efd, 0);
	check(ret == 0, "vring-fd-bind", "errno %d", ret);
	ret = vring_fd(b, kick, 103, 0, efd2, 0) || vring_fd(b, call, 103, 0, efd2, 0);
	check(ret == 0, "vring-fd-rebind", "errno %d", ret);
	/* The device has no queue: a call must be harmless. */
	check(eventfd_write(efd2, 1) == 0, "vring-fd-call-without-queue", "%s",
	      strerror(errno));
	ret = vring_fd(b, kick, 103, 0, -1, 0) || vring_fd(b, call, 103, 0, -1, 0);
	check(ret == 0, "vring-fd-unbind", "errno %d", ret);
	/* Left bound on purpose: removing the device releases them. */
	ret = vring_fd(b, call, 103, 3, efd, 0);
	check(ret == 0, "vring-fd-bind-for-removal", "errno %d", ret);
	close(efd);
	close(efd2);
	close(pipefd[0]);
	close(pipefd[1]);
}

static void test_remove_103(struct bus *b)
{
	struct add_job job;

	memset(&job, 0, sizeof(job));
	job.b = b;
	job.cmd = VIRTIO_MSG_LB_IOC_REMOVE;
	job.dev_num = 103;
	pthread_create(&job.thread, NULL, add_thread, &job);
	serve_device(b, &job, 4, 1, NULL);
	pthread_join(job.thread, NULL);
	check(job.err == 0, "remove-bound-device", "errno %d", job.err);
}

/*
 * Per-open state: when the opener that reads requests goes away, what it
 * read fails at once although another opener (an event writer) remains.
 */
static void test_reader_gone(struct bus *b)
{
	uint8_t buf[512];
	struct add_job job;
	char path[64];
	int writer;
	ssize_t n;

	snprintf(path, sizeof(path), "/dev/%s", b->info.msg_dev_name);
	writer = open(path, O_RDWR);
	set_timeout_ms(5000);
	start_add(&job, b, 104);
	n = read_msg(b, buf, sizeof(buf), 5000);
	close(b->msg);
	pthread_join(job.thread, NULL);
	check(n > 0 && job.err == ECONNRESET && job.seconds < 3,
	      "reader-gone-fails-fast", "read %zd, errno %d after %.1fs", n,
	      job.err, job.seconds);
	b->msg = open(path, O_RDWR | O_NONBLOCK);
	close(writer);
	set_timeout_ms(3000);
}

/*
 * When the bus's peer goes, the pool is taken back from every process that
 * maps it: a backend the peer handed it to (another process, its own open
 * file) faults instead of writing rings the transport now completes itself.
 * A mapping made afterwards, by the next peer, works.
 */
static void test_revoke(struct bus *b)
{
	long pg = sysconf(_SC_PAGESIZE);
	int ready[2], go[2], status = 0;
	char path[64], c, *p;
	pid_t pid;

	snprintf(path, sizeof(path), "/dev/%s", b->info.msg_dev_name);
	if (pipe(ready) || pipe(go)) {
		check(0, "peer-gone-revokes-pool-mappings", "pipe: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (!pid) {
		int fd;

		/* Only the parent may hold the peer's node: its close is the loss. */
		close(b->msg);
		fd = open(LB_NODE, O_RDWR);

		p = fd < 0 ? MAP_FAILED : mmap(NULL, pg, PROT_READ | PROT_WRITE,
					       MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			_exit(3);
		/* mapped and usable while the peer is there */
		__atomic_store_n(&p[0], 0x5a, __ATOMIC_RELAXED);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(4);
		/* the peer is gone now */
		c = __atomic_load_n(&p[0], __ATOMIC_RELAXED);
		_exit(c == 0x5a ? 0 : 5);
	}
	if (pid < 0 || read(ready[0], &c, 1) != 1) {
		check(0, "peer-gone-revokes-pool-mappings", "child: %s", strerror(errno));
		return;
	}
	close(b->msg);
	if (write(go[1], "g", 1) != 1)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	check(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS,
	      "peer-gone-revokes-pool-mappings", "child %s %d",
	      WIFSIGNALED(status) ? "killed by signal" : "exited",
	      WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);

	b->msg = open(path, O_RDWR | O_NONBLOCK);
	p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, b->lb, 0);
	if (p != MAP_FAILED) {
		p[1] = 0x33;
		check(p[0] == 0x5a && p[1] == 0x33, "pool-mappable-after-revoke",
		      "read back %#x %#x", p[0], p[1]);
		munmap(p, pg);
	} else {
		check(0, "pool-mappable-after-revoke", "%s", strerror(errno));
	}
}

static int print_usage(void)
{
	fprintf(stderr,
		"usage: vmsg-test all | info | ioctl-add N | ioctl-remove N |\n"
		"                 failnth N load MODULE.ko [PARAMS]\n"
		"  all: hostile-backend checks (needs an idle loopback bus)\n"
		"  info: print the bus's VIRTIO_MSG_LB_IOC_INFO\n"
		"  ioctl-add/remove N: print the errno name of one ioctl\n"
		"  failnth N load: finit_module() with its Nth allocation failed\n"
		"    (debug kernel); prints \"OK|ERRNO injected|not-injected\"\n");
	return 2;
}

/*
 * Loads a module with /proc/thread-self/fail-nth armed for exactly the
 * finit_module() call.  "not-injected": the load made fewer than N
 * fallible calls.  Exit status 0 whatever the load did; 2 if the
 * injection could not be set up.
 */
static int failnth_load(unsigned int nth, const char *path, const char *params)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int fnth = failnth_open();
	long left;
	int err;

	if (fd < 0 || fnth < 0) {
		perror(fd < 0 ? path : "/proc/thread-self/fail-nth");
		return 2;
	}
	if (failnth_set(fnth, nth)) {
		perror("fail-nth");
		return 2;
	}
	err = syscall(SYS_finit_module, fd, params, 0) ? errno : 0;
	left = failnth_get(fnth);
	failnth_set(fnth, 0);
	printf("%s %s\n", err ? strerrorname_np(err) : "OK",
	       left == 0 ? "injected" : "not-injected");
	close(fnth);
	close(fd);
	return left < 0 ? 2 : 0;
}

int main(int argc, char **argv)
{
	struct bus b;

	if (argc < 2)
		return print_usage();

	if (!strcmp(argv[1], "ioctl-add") || !strcmp(argv[1], "ioctl-remove")) {
		struct virtio_msg_lb_dev dev = {};
		int lb = open(LB_NODE, O_RDWR);

		if (argc != 3 || lb < 0)
			return print_usage();
		dev.dev_num = strtoul(argv[2], NULL, 0);
		if (ioctl(lb, !strcmp(argv[1], "ioctl-add") ? VIRTIO_MSG_LB_IOC_ADD :
			  VIRTIO_MSG_LB_IOC_REMOVE, &dev))
			printf("%s\n", strerrorname_np(errno));
		else
			printf("OK\n");
		return 0;
	}
	if (!strcmp(argv[1], "failnth")) {
		if (argc < 5 || argc > 6 || strcmp(argv[3], "load"))
			return print_usage();
		return failnth_load(strtoul(argv[2], NULL, 0), argv[4],
				    argc == 6 ? argv[5] : "");
	}
	if (!strcmp(argv[1], "info")) {
		/* Not the message node: closing it as last opener is "backend gone". */
		b.lb = open(LB_NODE, O_RDWR);
		if (b.lb < 0 || ioctl(b.lb, VIRTIO_MSG_LB_IOC_INFO, &b.info)) {
			perror(LB_NODE);
			return 2;
		}
		printf("pool_size=%llu bus_addr_base=0x%llx wire_format=%u ",
		       (unsigned long long)b.info.pool_size,
		       (unsigned long long)b.info.bus_addr_base, b.info.wire_format);
		printf("max_msg_size=%u num_devices=%u max_devices=%u msg_dev=%s ",
		       b.info.max_msg_size, b.info.num_devices, b.info.max_devices,
		       b.info.msg_dev_name);
		printf("pool_in_use=%llu\n", (unsigned long long)b.info.pool_in_use);
		close(b.lb);
		return 0;
	}
	if (strcmp(argv[1], "all"))
		return print_usage();

	srand(1);
	bus_open(&b);
	test_ioctls(&b);
	test_mmap(&b);
	test_lseek(&b);
	test_read_bounds(&b);
	test_bad_writes(&b);
	test_matching_and_timeout(&b);
	test_access_platform(&b);
	test_spurious_used(&b);
	test_vring_fds(&b);
	test_remove_103(&b);
	test_reader_gone(&b);
	test_revoke(&b);
	bus_close(&b);
	return failures ? 1 : 0;
}
