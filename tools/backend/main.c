// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-msg-backend: serves virtio devices to the kernel running it over
 * the virtio-msg loopback bus (/dev/virtio-msg-lb, /dev/virtio-msg-N).
 *
 * Threads:
 *  - the serving thread reads /dev/virtio-msg-N and answers every message;
 *    it owns all device state (features, status, config, queue setup);
 *  - one worker thread per enabled virtqueue (vq_worker.c) processes its
 *    ring, woken by its kick eventfd: bound to the bus when the kernel
 *    offers VIRTIO_MSG_LB_F_VRING_FDS (unless --no-eventfd), else signalled
 *    by the serving thread for each EVENT_AVAIL; it notifies the driver
 *    through its call eventfd or with EVENT_USED.  The serving thread stops
 *    a queue's worker before it resets or reconfigures the queue;
 *  - the main thread issues the ADD ioctls (which block until the kernel has
 *    probed the device, i.e. until the serving thread answered the probe
 *    messages), waits for SIGINT/SIGTERM/SIGHUP, issues the REMOVE ioctls
 *    (the driver's teardown again goes through the serving thread), and only
 *    then stops the serving thread through a pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "backend.h"

#ifndef VMSG_VERSION
#define VMSG_VERSION "0.1"
#endif

#define DEFAULT_LB_DEV		"/dev/virtio-msg-lb"
/* How long write() may keep failing with EAGAIN before we give up. */
#define WRITE_RETRY_MS		5000

enum dev_type { DEV_RNG, DEV_BLK };

struct dev_spec {
	enum dev_type type;
	uint16_t dev_num;
	const char *path;	/* blk */
	bool read_only;		/* blk */
};

struct options {
	struct dev_spec devs[VMSG_MAX_DEVICES];
	unsigned int num_devs;
	struct vmsg_dev_opts dev_opts;
	const char *lb_dev;
	const char *msg_dev;
	const char *ready_file;
	bool no_remove;
	bool no_eventfd;
};

struct app {
	struct backend be;
	int lb_fd;
	int msg_fd;
	int stop_pipe[2];
	void *pool_map;
	size_t pool_len;
	uint8_t *rxbuf;
	uint8_t *txbuf;
	pthread_t server;
	bool server_started;
	int server_failed;	/* atomic */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: virtio-msg-backend [options] --rng DEVNUM | --blk DEVNUM:FILE[:ro] ...\n"
		"\n"
		"Serve virtio devices to the running kernel over the virtio-msg loopback bus.\n"
		"Devices are added when the program starts and removed when it gets SIGINT,\n"
		"SIGTERM or SIGHUP.\n"
		"\n"
		"Devices (repeatable, device numbers 0-65535, unique):\n"
		"  --rng DEVNUM              virtio-rng, entropy from getrandom()\n"
		"  --blk DEVNUM:FILE[:ro]    virtio-blk backed by a regular file or block device;\n"
		"                            capacity = size / 512; ':ro' makes it read-only\n"
		"\n"
		"Options:\n"
		"  -q, --queue-size N        virtqueue max size, a power of 2 in 2-32768 (default %u)\n"
		"      --queues N            request queues of each virtio-blk (VIRTIO_BLK_F_MQ),\n"
		"                            1-%u, at most the number of online CPUs (default 1)\n"
		"      --lb-dev PATH         loopback control device (default " DEFAULT_LB_DEV ")\n"
		"      --msg-dev PATH        message device (default /dev/<name reported by the bus>)\n"
		"      --no-remove           exit without removing the devices (the kernel\n"
		"                            removes them once nobody serves the bus)\n"
		"      --notification-data   offer VIRTIO_F_NOTIFICATION_DATA\n"
		"      --event-idx           offer VIRTIO_RING_F_EVENT_IDX\n"
		"      --no-eventfd          kick and call notifications as messages even when\n"
		"                            the bus offers eventfds (for comparisons)\n"
		"      --ready-file PATH     write our pid to PATH once all devices are added;\n"
		"                            removed again on exit\n"
		"      --foreground          run in the foreground (the default and only mode)\n"
		"  -v, --verbose             log lifecycle events; twice: every message\n"
		"  -V, --version             print the version and exit\n"
		"  -h, --help                print this help and exit\n",
		VMSG_QUEUE_SIZE_DEFAULT, VMSG_MAX_VQS);
}

static bool parse_u32(const char *s, unsigned long max, uint32_t *out, const char **end)
{
	unsigned long v;
	char *e;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &e, 0);
	if (errno || v > max)
		return false;
	if (end)
		*end = e;
	else if (*e)
		return false;
	*out = (uint32_t)v;
	return true;
}

static int add_spec(struct options *o, enum dev_type type, const char *arg)
{
	struct dev_spec *d;
	const char *end;
	uint32_t num;
	unsigned int i;
	size_t len;
	char *path;

	if (!parse_u32(arg, 0xffff, &num, &end) || (type == DEV_RNG && *end) ||
	    (type == DEV_BLK && *end != ':')) {
		fprintf(stderr, "virtio-msg-backend: invalid device specification '%s'\n", arg);
		return -1;
	}
	if (o->num_devs >= VMSG_MAX_DEVICES) {
		fprintf(stderr, "virtio-msg-backend: at most %u devices\n", VMSG_MAX_DEVICES);
		return -1;
	}
	for (i = 0; i < o->num_devs; i++) {
		if (o->devs[i].dev_num == num) {
			fprintf(stderr, "virtio-msg-backend: device number %u used twice\n", num);
			return -1;
		}
	}
	d = &o->devs[o->num_devs];
	memset(d, 0, sizeof(*d));
	d->type = type;
	d->dev_num = (uint16_t)num;
	if (type == DEV_BLK) {
		path = strdup(end + 1);
		if (!path)
			return -1;
		len = strlen(path);
		/* A trailing ":ro"/":rw" is the mode; other colons belong to the name. */
		if (len > 3 && (!strcmp(path + len - 3, ":ro") || !strcmp(path + len - 3, ":rw"))) {
			d->read_only = path[len - 1] == 'o';
			path[len - 3] = '\0';
		}
		if (!*path) {
			fprintf(stderr, "virtio-msg-backend: no file in '%s'\n", arg);
			free(path);
			return -1;
		}
		d->path = path;
	}
	o->num_devs++;
	return 0;
}

enum {
	OPT_RNG = 256, OPT_BLK, OPT_LB_DEV, OPT_MSG_DEV, OPT_NO_REMOVE, OPT_NOTIF_DATA,
	OPT_EVENT_IDX, OPT_READY_FILE, OPT_FOREGROUND, OPT_QUEUES, OPT_NO_EVENTFD,
};

/* Returns -1 to exit with 0 (help/version), 1 on usage errors, 0 to run. */
static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "rng", required_argument, NULL, OPT_RNG },
		{ "blk", required_argument, NULL, OPT_BLK },
		{ "queue-size", required_argument, NULL, 'q' },
		{ "lb-dev", required_argument, NULL, OPT_LB_DEV },
		{ "msg-dev", required_argument, NULL, OPT_MSG_DEV },
		{ "no-remove", no_argument, NULL, OPT_NO_REMOVE },
		{ "notification-data", no_argument, NULL, OPT_NOTIF_DATA },
		{ "event-idx", no_argument, NULL, OPT_EVENT_IDX },
		{ "queues", required_argument, NULL, OPT_QUEUES },
		{ "no-eventfd", no_argument, NULL, OPT_NO_EVENTFD },
		{ "ready-file", required_argument, NULL, OPT_READY_FILE },
		{ "foreground", no_argument, NULL, OPT_FOREGROUND },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint32_t qs;
	long cpus;
	int c;

	memset(o, 0, sizeof(*o));
	o->lb_dev = DEFAULT_LB_DEV;
	o->dev_opts.queue_size = VMSG_QUEUE_SIZE_DEFAULT;

	while ((c = getopt_long(argc, argv, "q:vVh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_RNG:
			if (add_spec(o, DEV_RNG, optarg))
				return 1;
			break;
		case OPT_BLK:
			if (add_spec(o, DEV_BLK, optarg))
				return 1;
			break;
		case 'q':
			if (!parse_u32(optarg, VMSG_QUEUE_SIZE_MAX, &qs, NULL) || qs < 2 ||
			    (qs & (qs - 1))) {
				fprintf(stderr,
					"virtio-msg-backend: --queue-size must be a power of 2 in 2-%u\n",
					VMSG_QUEUE_SIZE_MAX);
				return 1;
			}
			o->dev_opts.queue_size = qs;
			break;
		case OPT_LB_DEV:
			o->lb_dev = optarg;
			break;
		case OPT_MSG_DEV:
			o->msg_dev = optarg;
			break;
		case OPT_NO_REMOVE:
			o->no_remove = true;
			break;
		case OPT_NOTIF_DATA:
			o->dev_opts.notification_data = true;
			break;
		case OPT_EVENT_IDX:
			o->dev_opts.event_idx = true;
			break;
		case OPT_QUEUES:
			if (!parse_u32(optarg, VMSG_MAX_VQS, &qs, NULL) || !qs) {
				fprintf(stderr, "virtio-msg-backend: --queues must be in 1-%u\n",
					VMSG_MAX_VQS);
				return 1;
			}
			/* More queues than CPUs only adds threads. */
			cpus = sysconf(_SC_NPROCESSORS_ONLN);
			if (cpus > 0 && qs > (unsigned long)cpus) {
				fprintf(stderr,
					"virtio-msg-backend: --queues %u reduced to the %ld online CPUs\n",
					qs, cpus);
				qs = (uint32_t)cpus;
			}
			o->dev_opts.num_queues = qs;
			break;
		case OPT_NO_EVENTFD:
			o->no_eventfd = true;
			break;
		case OPT_READY_FILE:
			o->ready_file = optarg;
			break;
		case OPT_FOREGROUND:
			break;
		case 'v':
			vmsg_verbose++;
			break;
		case 'V':
			printf("virtio-msg-backend %s\n", VMSG_VERSION);
			return -1;
		case 'h':
			usage(stdout);
			return -1;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "virtio-msg-backend: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 1;
	}
	if (!o->num_devs) {
		fprintf(stderr, "virtio-msg-backend: no device given (--rng, --blk)\n");
		usage(stderr);
		return 1;
	}
	return 0;
}

/* ---- message I/O ---- */

/* write() exactly one message; the node takes whole messages only. */
static int write_msg(int fd, const void *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int waited = 0;
	ssize_t n;

	for (;;) {
		n = write(fd, buf, len);
		if (n == (ssize_t)len)
			return 0;
		if (n >= 0)
			return -EIO;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		/* Back-pressure from the kernel: wait, but not forever. */
		if (waited >= WRITE_RETRY_MS)
			return -ETIMEDOUT;
		poll(&pfd, 1, 10);
		waited += 10;
	}
}

/*
 * Any thread: the serving thread and the workers.  One write() is one whole
 * message, so concurrent writers cannot interleave.
 */
static int send_event(struct backend *be, const void *buf, size_t len)
{
	struct app *app = be->send_ctx;

	return write_msg(app->msg_fd, buf, len);
}

static int set_vring_fd(struct backend *be, uint16_t dev_num, unsigned int index, bool call,
			int fd)
{
	struct app *app = be->send_ctx;
	struct virtio_msg_lb_vring_fd v = { .dev_num = dev_num, .index = index, .fd = fd };

	if (ioctl(app->lb_fd, call ? VIRTIO_MSG_LB_IOC_SET_VRING_CALL :
		  VIRTIO_MSG_LB_IOC_SET_VRING_KICK, &v))
		return -errno;
	return 0;
}

/* Tell the main thread (blocked in sigwait) that serving has ended. */
static void server_fail(struct app *app)
{
	__atomic_store_n(&app->server_failed, 1, __ATOMIC_SEQ_CST);
	kill(getpid(), SIGTERM);
}

static void *serve(void *arg)
{
	struct app *app = arg;
	struct pollfd pfd[2] = {
		{ .fd = app->msg_fd, .events = POLLIN },
		{ .fd = app->stop_pipe[0], .events = POLLIN },
	};
	bool got_any;
	size_t out_len;
	ssize_t n;
	int err;

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			vmsg_log("poll: %s", strerror(errno));
			server_fail(app);
			return NULL;
		}
		if (pfd[1].revents)
			return NULL;
		if (pfd[0].revents & (POLLERR | POLLNVAL)) {
			vmsg_log("message device reported an error; stopping");
			server_fail(app);
			return NULL;
		}
		if (!(pfd[0].revents & (POLLIN | POLLHUP)))
			continue;
		/* Drain everything queued before sleeping again. */
		got_any = false;
		for (;;) {
			n = read(app->msg_fd, app->rxbuf, app->be.max_msg_size);
			if (n < 0) {
				if (errno == EAGAIN && !got_any && (pfd[0].revents & POLLHUP)) {
					/* Would poll() again at once, forever. */
					vmsg_log("message device hung up");
					server_fail(app);
					return NULL;
				}
				if (errno == EAGAIN)
					break;
				if (errno == EINTR)
					continue;
				vmsg_log("reading the message device: %s", strerror(errno));
				server_fail(app);
				return NULL;
			}
			if (n == 0) {
				vmsg_log("message device closed by the kernel");
				server_fail(app);
				return NULL;
			}
			got_any = true;
			backend_handle_message(&app->be, app->rxbuf, (size_t)n, app->txbuf,
					       app->be.max_msg_size, &out_len);
			if (out_len) {
				err = write_msg(app->msg_fd, app->txbuf, out_len);
				if (err)
					vmsg_log("writing a response: %s", strerror(-err));
			}
			/* Events caused by the message go out after its response. */
			backend_run_deferred(&app->be);
		}
	}
}

/* ---- setup ---- */

static int open_bus(struct app *app, const struct options *o)
{
	struct virtio_msg_lb_info info;
	struct vmsg_pool pool;
	char path[64];
	const char *msg_dev;
	int err;

	app->lb_fd = open(o->lb_dev, O_RDWR | O_CLOEXEC);
	if (app->lb_fd < 0) {
		vmsg_log("cannot open %s: %s%s", o->lb_dev, strerror(errno),
			 errno == ENOENT ? " (is the virtio-msg loopback bus driver loaded?)" : "");
		return -1;
	}
	memset(&info, 0, sizeof(info));
	if (ioctl(app->lb_fd, VIRTIO_MSG_LB_IOC_INFO, &info)) {
		vmsg_log("%s: VIRTIO_MSG_LB_IOC_INFO: %s%s", o->lb_dev, strerror(errno),
			 errno == ENOTTY ? " (not a virtio-msg loopback bus, or an older module)" :
			 "");
		return -1;
	}
	if (!memchr(info.msg_dev_name, '\0', sizeof(info.msg_dev_name))) {
		vmsg_log("%s: message device name not terminated", o->lb_dev);
		return -1;
	}
	vmsg_info("bus: %s, wire format %u, max message %u bytes, pool %llu bytes at bus address 0x%llx, %u/%u devices, features 0x%x",
		  info.msg_dev_name, info.wire_format, info.max_msg_size,
		  (unsigned long long)info.pool_size, (unsigned long long)info.bus_addr_base,
		  info.num_devices, info.max_devices, info.features);
	if (!info.pool_size || info.pool_size > SIZE_MAX ||
	    info.bus_addr_base > UINT64_MAX - info.pool_size) {
		vmsg_log("%s: unusable DMA pool (size %llu at 0x%llx)", o->lb_dev,
			 (unsigned long long)info.pool_size,
			 (unsigned long long)info.bus_addr_base);
		return -1;
	}
	app->pool_len = (size_t)info.pool_size;
	app->pool_map = mmap(NULL, app->pool_len, PROT_READ | PROT_WRITE, MAP_SHARED, app->lb_fd,
			     0);
	if (app->pool_map == MAP_FAILED) {
		app->pool_map = NULL;
		vmsg_log("mapping the %zu-byte DMA pool of %s: %s", app->pool_len, o->lb_dev,
			 strerror(errno));
		return -1;
	}
	pool.base = app->pool_map;
	pool.size = info.pool_size;
	pool.bus_base = info.bus_addr_base;

	err = backend_init(&app->be, info.wire_format, info.max_msg_size, &pool);
	if (err == -EPROTONOSUPPORT) {
		vmsg_log("bus uses unknown wire format %u", info.wire_format);
		return -1;
	} else if (err == -EMSGSIZE) {
		vmsg_log("bus max message size %u is below the %zu bytes the protocol needs",
			 info.max_msg_size, vmsg_wire_min_msg_size(info.wire_format));
		return -1;
	} else if (err) {
		vmsg_log("%s", strerror(-err));
		return -1;
	}
	app->be.send_event = send_event;
	app->be.send_ctx = app;
	app->be.workers = &vq_worker_ops;
	if (!(info.features & VIRTIO_MSG_LB_F_VRING_FDS))
		vmsg_info("bus has no kick/call eventfds: notifications are messages");
	else if (o->no_eventfd)
		vmsg_info("kick/call eventfds not used (--no-eventfd)");
	else
		app->be.set_vring_fd = set_vring_fd;
	app->rxbuf = malloc(app->be.max_msg_size);
	app->txbuf = malloc(app->be.max_msg_size);
	if (!app->rxbuf || !app->txbuf) {
		vmsg_log("out of memory");
		return -1;
	}

	msg_dev = o->msg_dev;
	if (!msg_dev) {
		if (!info.msg_dev_name[0] || strchr(info.msg_dev_name, '/')) {
			vmsg_log("bus reports an invalid message device name; use --msg-dev");
			return -1;
		}
		snprintf(path, sizeof(path), "/dev/%s", info.msg_dev_name);
		msg_dev = path;
	}
	/* Non-blocking: the serving thread sleeps in poll(), not in read(). */
	app->msg_fd = open(msg_dev, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (app->msg_fd < 0) {
		vmsg_log("cannot open %s: %s", msg_dev, strerror(errno));
		return -1;
	}
	/*
	 * Every reader of the node gets a share of the messages, so a second
	 * backend on the same bus would answer (or drop) the first one's.
	 */
	if (flock(app->msg_fd, LOCK_EX | LOCK_NB)) {
		if (errno == EWOULDBLOCK)
			vmsg_log("%s is in use by another virtio-msg-backend", msg_dev);
		else
			vmsg_log("locking %s: %s", msg_dev, strerror(errno));
		return -1;
	}
	if (info.num_devices)
		vmsg_log("note: %u device(s) already on the bus, not served by this backend",
			 info.num_devices);
	return 0;
}

static int create_devices(struct app *app, const struct options *o)
{
	struct vmsg_device *dev;
	char err[256];
	unsigned int i;

	for (i = 0; i < o->num_devs; i++) {
		const struct dev_spec *s = &o->devs[i];

		err[0] = '\0';
		if (s->type == DEV_RNG) {
			dev = vmsg_rng_create(s->dev_num, &o->dev_opts);
			if (!dev)
				snprintf(err, sizeof(err), "out of memory");
		} else {
			dev = vmsg_blk_create(s->dev_num, s->path, s->read_only, &o->dev_opts, err,
					      sizeof(err));
		}
		if (!dev) {
			vmsg_log("device %u: %s", s->dev_num, err);
			return -1;
		}
		if (backend_add_device(&app->be, dev)) {
			vmsg_device_free(dev);
			vmsg_log("device %u: cannot register", s->dev_num);
			return -1;
		}
	}
	return 0;
}

static int lb_ioctl(struct app *app, unsigned long req, uint16_t dev_num)
{
	struct virtio_msg_lb_dev d = { .dev_num = dev_num };

	return ioctl(app->lb_fd, req, &d) ? -errno : 0;
}

static int add_device(struct app *app, struct vmsg_device *dev)
{
	int err;

	vmsg_info("adding device %u (%s)", dev->dev_num, dev->ops->name);
	err = lb_ioctl(app, VIRTIO_MSG_LB_IOC_ADD, dev->dev_num);
	if (!err) {
		dev->added = true;
		vmsg_info("device %u (%s) added", dev->dev_num, dev->ops->name);
		return 0;
	}
	switch (-err) {
	case EEXIST:
		vmsg_log("device %u already exists on the bus", dev->dev_num);
		break;
	case EINVAL:
		vmsg_log("device %u: the bus rejected the device number", dev->dev_num);
		break;
	case ENOTTY:
		vmsg_log("device %u: VIRTIO_MSG_LB_IOC_ADD not supported by the bus",
			 dev->dev_num);
		break;
	default:
		vmsg_log("adding device %u (%s) failed: %s", dev->dev_num, dev->ops->name,
			 strerror(-err));
		break;
	}
	return err;
}

static void remove_devices(struct app *app)
{
	struct vmsg_device *dev;
	unsigned int i;
	int err;

	for (i = app->be.num_devs; i-- > 0;) {
		dev = app->be.devs[i];
		if (!dev->added)
			continue;
		vmsg_info("removing device %u (%s)", dev->dev_num, dev->ops->name);
		err = lb_ioctl(app, VIRTIO_MSG_LB_IOC_REMOVE, dev->dev_num);
		if (err == -ENODEV)
			vmsg_log("device %u was already gone from the bus", dev->dev_num);
		else if (err)
			vmsg_log("removing device %u failed: %s", dev->dev_num, strerror(-err));
		dev->added = false;
	}
}

static int write_ready_file(const char *path)
{
	char tmp[PATH_MAX];
	FILE *f;

	/* Written under a temporary name: whoever sees the file sees all of it. */
	if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp)) {
		vmsg_log("--ready-file path too long");
		return -1;
	}
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f)) {
		vmsg_log("writing %s: %s", tmp, strerror(errno));
		if (f)
			unlink(tmp);
		return -1;
	}
	if (rename(tmp, path)) {
		vmsg_log("renaming %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static void stop_server(struct app *app)
{
	if (!app->server_started)
		return;
	if (write(app->stop_pipe[1], "x", 1) < 0)
		vmsg_log("stopping the serving thread: %s", strerror(errno));
	pthread_join(app->server, NULL);
	app->server_started = false;
}

static void cleanup(struct app *app)
{
	stop_server(app);
	backend_destroy(&app->be);
	if (app->msg_fd >= 0)
		close(app->msg_fd);
	if (app->pool_map)
		munmap(app->pool_map, app->pool_len);
	if (app->lb_fd >= 0)
		close(app->lb_fd);
	if (app->stop_pipe[0] >= 0)
		close(app->stop_pipe[0]);
	if (app->stop_pipe[1] >= 0)
		close(app->stop_pipe[1]);
	free(app->rxbuf);
	free(app->txbuf);
}

static bool signal_ignored(int sig)
{
	struct sigaction sa;

	return sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
}

int main(int argc, char **argv)
{
	static struct app app;
	struct options opts;
	sigset_t sigs;
	unsigned int i;
	int ret, sig, err;

	ret = parse_args(argc, argv, &opts);
	if (ret)
		return ret < 0 ? 0 : 2;

	app.lb_fd = -1;
	app.msg_fd = -1;
	app.stop_pipe[0] = -1;
	app.stop_pipe[1] = -1;
	ret = 1;

	/*
	 * Block the termination signals in every thread (the serving thread
	 * inherits the mask); the main thread collects them with sigwait().
	 * SIGINT and SIGHUP that were ignored when we were started (nohup, or
	 * a background job of a non-interactive shell) stay ignored: Linux
	 * would queue them for sigwait() once they are blocked.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	if (!signal_ignored(SIGINT))
		sigaddset(&sigs, SIGINT);
	if (!signal_ignored(SIGHUP))
		sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (open_bus(&app, &opts))
		goto out;
	if (create_devices(&app, &opts))
		goto out;
	if (pipe2(app.stop_pipe, O_CLOEXEC)) {
		vmsg_log("pipe: %s", strerror(errno));
		goto out;
	}
	err = pthread_create(&app.server, NULL, serve, &app);
	if (err) {
		vmsg_log("cannot start the serving thread: %s", strerror(err));
		goto out;
	}
	app.server_started = true;

	for (i = 0; i < app.be.num_devs; i++) {
		if (add_device(&app, app.be.devs[i]))
			goto out_remove;
	}
	if (__atomic_load_n(&app.server_failed, __ATOMIC_SEQ_CST))
		goto out_remove;
	if (opts.ready_file && write_ready_file(opts.ready_file))
		goto out_remove;
	vmsg_log("%u device(s) ready", app.be.num_devs);

	if (sigwait(&sigs, &sig) == 0)
		vmsg_info("got signal %d, shutting down", sig);
	/*
	 * A second signal now terminates at once: the way out if the kernel
	 * never completes a REMOVE.
	 */
	pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
	ret = __atomic_load_n(&app.server_failed, __ATOMIC_SEQ_CST) ? 1 : 0;
	if (opts.ready_file)
		unlink(opts.ready_file);
	if (opts.no_remove) {
		vmsg_log("leaving the devices on the bus (--no-remove)");
		goto out;
	}
	remove_devices(&app);
	goto out;

out_remove:
	/* A failed start leaves nothing behind. */
	remove_devices(&app);
out:
	cleanup(&app);
	for (i = 0; i < opts.num_devs; i++)
		free((char *)opts.devs[i].path);
	return ret;
}
