// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-msg-vhost-user: serves the device of any vhost-user backend
 * (virtiofsd, qemu-storage-daemon, vhost-device-*) on the virtio-msg
 * loopback bus.
 *
 * Towards the backend it is the vhost-user front end (vhu.c); towards the
 * kernel it is the device on /dev/virtio-msg-N.  The backend gets the DMA
 * pool as its only memory region (the /dev/virtio-msg-lb fd, guest-physical
 * addresses = bus addresses), and the kick and call eventfds it gets are the
 * ones bound in the kernel with SET_VRING_KICK/_CALL, so buffers and
 * notifications go straight between the kernel and the backend.  Without
 * VIRTIO_MSG_LB_F_VRING_FDS the bridge relays them (EVENT_AVAIL -> kick,
 * call -> EVENT_USED).
 *
 * Threads: the main thread serves the message node, the backend socket
 * and the backend's request channel; the control thread runs ADD (which
 * returns only once the main thread answered the probe).  If the backend
 * goes away the bridge closes the bus nodes, which makes the kernel break
 * and remove the device at once (no request can hang), and with
 * --reconnect waits for the backend to come back and adds it again.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <linux/virtio_config.h>

#include "backend.h"
#include "vhu.h"

#define PROG		"virtio-msg-vhost-user"
#define LB_NODE		"/dev/virtio-msg-lb"
#define MAX_QUEUES	16

int vmsg_verbose = 1;

void vmsg_vlog(const char *fmt, va_list ap)
{
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, PROG ": %s\n", line);
}

void vmsg_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg_vlog(fmt, ap);
	va_end(ap);
}

static const struct {
	const char *name;
	uint32_t id;
	unsigned int queues;
	uint32_t config_size;
} dev_types[] = {
	{ "net", 1, 2, 12 },
	{ "blk", 2, 1, 60 },
	{ "console", 3, 2, 12 },
	{ "rng", 4, 1, 0 },
	{ "gpu", 16, 2, 24 },
	{ "input", 18, 2, 136 },
	{ "vsock", 19, 3, 8 },
	{ "sound", 25, 4, 16 },
	{ "fs", 26, 2, 40 },
	{ "scmi", 32, 2, 0 },
	{ "i2c", 34, 1, 4 },
	{ "can", 36, 3, 2 },
	{ "gpio", 41, 2, 8 },
};

struct opts {
	const char *socket;
	const char *type;
	uint16_t dev_num;
	unsigned int queues;
	uint32_t queue_size;
	int config_size;	/* -1: by type */
	const char *tag;
	uint8_t config[VHU_CONFIG_MAX];
	size_t config_len;	/* --config-hex */
	bool reconnect;
	bool relay;		/* --no-vring-fds */
	int connect_timeout_s;
	const char *ready_file;
};

struct vring {
	bool configured;
	bool started;		/* given to the backend */
	uint32_t size;
	uint64_t desc, driver, device;
	int kick, call, err;
	bool bound;		/* bound in the kernel */
};

struct bridge {
	struct opts o;
	int lb, msg, sigfd, be_req;
	void *map;
	size_t map_len;
	struct virtio_msg_lb_info info;
	struct vmsg_pool pool;
	bool kernel_fds;
	struct vhu_conn vu;

	uint32_t device_id;
	uint64_t features;	/* offered to the driver */
	uint64_t driver_features;
	uint32_t status;
	uint32_t generation;
	uint32_t config_size;
	unsigned int nvqs;
	struct vring vr[MAX_QUEUES];

	struct vmsg_msg *rx, *tx;
	uint8_t *rbuf, *wbuf;

	pthread_t ctl;
	bool ctl_running;
	int add_err;		/* atomic: 0 running, else errno + 1 */
	int add_done;		/* atomic */
	bool gone;		/* the backend is gone or misbehaved */
	unsigned long relayed_kicks, relayed_calls;
};

static void die(const char *what)
{
	vmsg_log("%s: %s", what, strerror(errno));
	exit(2);
}

static void print_help(FILE *f)
{
	unsigned int i;

	fprintf(f,
		"usage: " PROG " --socket PATH [options]\n"
		"Serves a vhost-user backend's device on the virtio-msg loopback bus.\n"
		"  -s, --socket PATH       the backend's vhost-user UNIX socket\n"
		"  -t, --type TYPE         device type (default blk):");
	for (i = 0; i < sizeof(dev_types) / sizeof(dev_types[0]); i++)
		fprintf(f, " %s", dev_types[i].name);
	fprintf(f, "\n"
		"                          or a virtio device id number\n"
		"  -d, --dev N             device number on the bus (default 0)\n"
		"  -q, --queues N          virtqueues (default: by type, or the backend's)\n"
		"      --queue-size N      largest queue size offered (default 256)\n"
		"      --tag TAG           virtio-fs: the tag, for backends without CONFIG\n"
		"      --config-hex HEX    config space for backends without CONFIG\n"
		"      --config-size N     config space size (default: by type)\n"
		"      --reconnect         when the backend goes, wait for it and add again\n"
		"      --connect-timeout S wait this long for the socket (default 30)\n"
		"      --no-vring-fds      relay notifications through the bridge\n"
		"      --ready-file PATH   created once the device is added\n"
		"  -v, --verbose           log every vhost-user request (twice: messages)\n"
		"  -h, --help\n");
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum { OPT_QSIZE = 256, OPT_TAG, OPT_CHEX, OPT_CSIZE, OPT_RECONNECT, OPT_CTIMEOUT, OPT_RELAY,
	OPT_READY };

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "type", required_argument, NULL, 't' },
		{ "dev", required_argument, NULL, 'd' },
		{ "queues", required_argument, NULL, 'q' },
		{ "queue-size", required_argument, NULL, OPT_QSIZE },
		{ "tag", required_argument, NULL, OPT_TAG },
		{ "config-hex", required_argument, NULL, OPT_CHEX },
		{ "config-size", required_argument, NULL, OPT_CSIZE },
		{ "reconnect", no_argument, NULL, OPT_RECONNECT },
		{ "connect-timeout", required_argument, NULL, OPT_CTIMEOUT },
		{ "no-vring-fds", no_argument, NULL, OPT_RELAY },
		{ "ready-file", required_argument, NULL, OPT_READY },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	size_t i, n;
	int c;

	memset(o, 0, sizeof(*o));
	o->type = "blk";
	o->queue_size = 256;
	o->config_size = -1;
	o->connect_timeout_s = 30;
	while ((c = getopt_long(argc, argv, "s:t:d:q:vh", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o->socket = optarg;
			break;
		case 't':
			o->type = optarg;
			break;
		case 'd':
			o->dev_num = (uint16_t)strtoul(optarg, NULL, 0);
			break;
		case 'q':
			o->queues = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case OPT_QSIZE:
			o->queue_size = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case OPT_TAG:
			o->tag = optarg;
			break;
		case OPT_CHEX:
			n = strlen(optarg);
			if (n % 2 || n / 2 > sizeof(o->config))
				goto bad;
			for (i = 0; i < n / 2; i++) {
				int hi = hexval(optarg[2 * i]), lo = hexval(optarg[2 * i + 1]);

				if (hi < 0 || lo < 0)
					goto bad;
				o->config[i] = (uint8_t)(hi << 4 | lo);
			}
			o->config_len = n / 2;
			break;
		case OPT_CSIZE:
			o->config_size = (int)strtoul(optarg, NULL, 0);
			break;
		case OPT_RECONNECT:
			o->reconnect = true;
			break;
		case OPT_CTIMEOUT:
			o->connect_timeout_s = (int)strtol(optarg, NULL, 0);
			break;
		case OPT_RELAY:
			o->relay = true;
			break;
		case OPT_READY:
			o->ready_file = optarg;
			break;
		case 'v':
			vmsg_verbose++;
			break;
		case 'h':
			print_help(stdout);
			exit(0);
		default:
			goto bad;
		}
	}
	if (!o->socket || optind < argc || !o->queue_size || o->queue_size > 32768 ||
	    (o->queue_size & (o->queue_size - 1)) || o->queues > MAX_QUEUES ||
	    o->config_size > VHU_CONFIG_MAX)
		goto bad;
	return;
bad:
	print_help(stderr);
	exit(2);
}

/* ---- the backend connection ---- */

/* Sleeps ms milliseconds; exits if a stop signal comes meanwhile. */
static void nap(int sigfd, int ms)
{
	struct pollfd p = { .fd = sigfd, .events = POLLIN };

	if (poll(&p, 1, ms) > 0) {
		vmsg_log("stopped while waiting for the backend");
		exit(0);
	}
}

static int connect_socket(const char *path, int timeout_s, int sigfd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	time_t end = time(NULL) + timeout_s;
	bool said = false;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		vmsg_log("socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("socket");
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			return fd;
		close(fd);
		if (timeout_s >= 0 && time(NULL) >= end) {
			vmsg_log("cannot connect to %s: %s", path, strerror(errno));
			return -1;
		}
		if (!said)
			vmsg_info("waiting for %s (%s)", path, strerror(errno));
		said = true;
		nap(sigfd, 100);
	}
}

static void log_pf(uint64_t pf)
{
	static const char *const names[] = {
		[VHU_PF_MQ] = "MQ", [VHU_PF_REPLY_ACK] = "REPLY_ACK",
		[VHU_PF_BACKEND_REQ] = "BACKEND_REQ", [VHU_PF_CONFIG] = "CONFIG",
		[VHU_PF_RESET_DEVICE] = "RESET_DEVICE", [VHU_PF_STATUS] = "STATUS",
	};
	char buf[160] = "";
	unsigned int i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i] && (pf & (1ULL << i))) {
			strncat(buf, " ", sizeof(buf) - strlen(buf) - 1);
			strncat(buf, names[i], sizeof(buf) - strlen(buf) - 1);
		}
	vmsg_log("protocol features negotiated: 0x%llx%s", (unsigned long long)pf,
		 buf[0] ? buf : " (none)");
}

static void backend_gone(struct bridge *b, const char *why)
{
	if (!b->gone)
		vmsg_log("backend unusable: %s", why);
	b->gone = true;
}

/*
 * Wraps a vhost-user call: a failure writes the backend off (after a
 * transport error vhu.c fails every further call at once).
 */
static int vu(struct bridge *b, int err)
{
	if (err && !b->gone)
		backend_gone(b, b->vu.err);
	return err;
}

static int open_backend(struct bridge *b)
{
	int sv[2];

	b->vu.fd = connect_socket(b->o.socket, b->o.reconnect ? -1 : b->o.connect_timeout_s,
				  b->sigfd);
	if (b->vu.fd < 0)
		return -1;
	b->vu.timeout_ms = 10000;
	b->gone = false;
	b->be_req = -1;
	if (vhu_handshake(&b->vu)) {
		vmsg_log("vhost-user handshake on %s failed: %s", b->o.socket, b->vu.err);
		return -1;
	}
	vmsg_log("backend features 0x%016llx", (unsigned long long)b->vu.features);
	log_pf(b->vu.protocol_features);
	if (vhu_has_pf(&b->vu, VHU_PF_BACKEND_REQ)) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
			die("socketpair");
		if (vhu_set_u64_fd(&b->vu, VHU_SET_BACKEND_REQ_FD, 0, sv[1])) {
			vmsg_log("SET_BACKEND_REQ_FD: %s", b->vu.err);
			close(sv[0]);
			close(sv[1]);
			return -1;
		}
		close(sv[1]);
		b->be_req = sv[0];
	}
	return 0;
}

static void close_backend(struct bridge *b)
{
	if (b->vu.fd >= 0)
		close(b->vu.fd);
	if (b->be_req >= 0)
		close(b->be_req);
	b->vu.fd = -1;
	b->be_req = -1;
}

/* ---- the device model ---- */

static void setup_device(struct bridge *b)
{
	const char *t = b->o.type;
	unsigned int i, queues = 0;
	uint32_t cfg = 0;
	char *end;

	b->device_id = 0;
	for (i = 0; i < sizeof(dev_types) / sizeof(dev_types[0]); i++)
		if (!strcmp(t, dev_types[i].name)) {
			b->device_id = dev_types[i].id;
			queues = dev_types[i].queues;
			cfg = dev_types[i].config_size;
		}
	if (!b->device_id) {
		b->device_id = (uint32_t)strtoul(t, &end, 0);
		if (*end || !b->device_id) {
			vmsg_log("unknown device type %s", t);
			exit(2);
		}
	}
	if (b->o.queues)
		queues = b->o.queues;
	else if (b->vu.queue_num && (b->device_id == 2 || !queues))
		queues = b->vu.queue_num;	/* blk: one per request queue */
	if (!queues)
		queues = 1;
	b->nvqs = queues > MAX_QUEUES ? MAX_QUEUES : queues;
	if (b->o.config_size >= 0)
		cfg = (uint32_t)b->o.config_size;
	else if (b->o.config_len)
		cfg = (uint32_t)b->o.config_len;
	b->config_size = cfg;

	/* Command-line config for backends without PROTOCOL_F_CONFIG. */
	if (b->o.tag && b->device_id == 26 && !b->o.config_len) {
		uint32_t nrq = htole32(b->nvqs - 1);

		memset(b->o.config, 0, 40);
		memcpy(b->o.config, b->o.tag, strnlen(b->o.tag, 36));
		memcpy(b->o.config + 36, &nrq, 4);
		b->o.config_len = 40;
	}
	b->features = b->vu.features & 0xffffffffffffULL;
	b->features &= ~((1ULL << VHU_F_PROTOCOL_FEATURES) | (1ULL << VHU_F_LOG_ALL) |
			 (1ULL << VIRTIO_F_NOTIFICATION_DATA));
	b->features |= (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_ACCESS_PLATFORM);
	vmsg_log("device %u: type %u, %u queues, config %u bytes%s, features 0x%016llx",
		 b->o.dev_num, b->device_id, b->nvqs, b->config_size,
		 vhu_has_pf(&b->vu, VHU_PF_CONFIG) ? " (from the backend)" : "",
		 (unsigned long long)b->features);
}

static uint64_t uaddr(struct bridge *b, uint64_t bus, uint64_t len)
{
	void *p = vmsg_pool_ptr(&b->pool, bus, len);

	return p ? (uint64_t)(uintptr_t)p : 0;
}

/* SET_VQUEUE: the kernel eventfds, then the ring for the backend. */
static void start_vring(struct bridge *b, unsigned int i)
{
	struct vring *v = &b->vr[i];
	struct virtio_msg_lb_vring_fd f = { .dev_num = b->o.dev_num, .index = i };
	uint64_t d, a, u;
	bool packed = b->driver_features & (1ULL << VIRTIO_F_RING_PACKED);
	uint64_t dlen = (uint64_t)v->size * 16;
	uint64_t alen = packed ? 4 : 6 + 2ULL * v->size;
	uint64_t ulen = packed ? 4 : 6 + 8ULL * v->size;

	if (b->kernel_fds && !v->bound) {
		f.fd = v->kick;
		if (ioctl(b->lb, VIRTIO_MSG_LB_IOC_SET_VRING_KICK, &f))
			die("SET_VRING_KICK");
		f.fd = v->call;
		if (ioctl(b->lb, VIRTIO_MSG_LB_IOC_SET_VRING_CALL, &f))
			die("SET_VRING_CALL");
		v->bound = true;
	}
	d = uaddr(b, v->desc, dlen);
	a = uaddr(b, v->driver, alen);
	u = uaddr(b, v->device, ulen);
	if (!d || !a || !u) {
		vmsg_log("device %u: queue %u rings outside the DMA pool", b->o.dev_num, i);
		b->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
		return;
	}
	if (vu(b, vhu_set_state(&b->vu, VHU_SET_VRING_NUM, i, v->size)) ||
	    vu(b, vhu_set_state(&b->vu, VHU_SET_VRING_BASE, i, 0)) ||
	    vu(b, vhu_set_vring_addr(&b->vu, i, d, u, a)) ||
	    vu(b, vhu_set_u64_fd(&b->vu, VHU_SET_VRING_KICK, i, v->kick)) ||
	    vu(b, vhu_set_u64_fd(&b->vu, VHU_SET_VRING_CALL, i, v->call)) ||
	    vu(b, vhu_set_u64_fd(&b->vu, VHU_SET_VRING_ERR, i, v->err)))
		return;
	v->started = true;
	vmsg_info("device %u: queue %u: %u entries, kick/call %s", b->o.dev_num, i, v->size,
		  b->kernel_fds ? "kernel <-> backend directly" : "relayed");
}

static void stop_vrings(struct bridge *b)
{
	unsigned int i, base;

	for (i = 0; i < b->nvqs; i++) {
		if (b->vr[i].started)
			vu(b, vhu_get_vring_base(&b->vu, i, &base));
		b->vr[i].started = false;
		b->vr[i].configured = false;
	}
}

static void device_reset(struct bridge *b)
{
	stop_vrings(b);
	if (vhu_has_pf(&b->vu, VHU_PF_RESET_DEVICE))
		vu(b, vhu_simple(&b->vu, VHU_RESET_DEVICE));
	else if (vhu_has_pf(&b->vu, VHU_PF_STATUS))
		vu(b, vhu_set_u64(&b->vu, VHU_SET_STATUS, 0));
	b->driver_features = 0;
	b->status = 0;
}

static void set_status(struct bridge *b, uint32_t status)
{
	uint32_t old = b->status;
	uint64_t f;
	unsigned int i;

	if (!status) {
		vmsg_info("device %u: reset", b->o.dev_num);
		device_reset(b);
		return;
	}
	if ((status & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
		f = b->driver_features & b->vu.features & ~(1ULL << VIRTIO_F_ACCESS_PLATFORM);
		if (b->vu.features & (1ULL << VHU_F_PROTOCOL_FEATURES))
			f |= 1ULL << VHU_F_PROTOCOL_FEATURES;
		if ((b->driver_features & ~b->features) ||
		    !(b->driver_features & (1ULL << VIRTIO_F_VERSION_1)) ||
		    vu(b, vhu_set_u64(&b->vu, VHU_SET_FEATURES, f)) ||
		    vu(b, vhu_set_mem_table(&b->vu, b->pool.bus_base, b->pool.size,
					    (uint64_t)(uintptr_t)b->pool.base, 0, b->lb)))
			status &= ~VIRTIO_CONFIG_S_FEATURES_OK;
		else
			vmsg_info("device %u: features 0x%016llx to the backend", b->o.dev_num,
				  (unsigned long long)f);
	}
	b->status = status | (old & VIRTIO_CONFIG_S_NEEDS_RESET);
	if ((status & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
		for (i = 0; i < b->nvqs; i++) {
			if (!b->vr[i].started)
				continue;
			if (b->vu.features & (1ULL << VHU_F_PROTOCOL_FEATURES))
				vu(b, vhu_set_state(&b->vu, VHU_SET_VRING_ENABLE, i, 1));
			/* Buffers made available before DRIVER_OK. */
			eventfd_write(b->vr[i].kick, 1);
		}
		vmsg_log("device %u: DRIVER_OK", b->o.dev_num);
	}
	if (vhu_has_pf(&b->vu, VHU_PF_STATUS))
		vu(b, vhu_set_u64(&b->vu, VHU_SET_STATUS, b->status));
}

static int read_config(struct bridge *b, uint8_t *buf)
{
	memset(buf, 0, VHU_CONFIG_MAX);
	if (vhu_has_pf(&b->vu, VHU_PF_CONFIG) && !b->gone) {
		int err = vhu_get_config(&b->vu, 0, b->config_size, buf);

		if (!err)
			return 0;
		if (err != -ENOTSUP)
			vu(b, err);
	}
	memcpy(buf, b->o.config, b->o.config_len < b->config_size ?
	       b->o.config_len : b->config_size);
	return 0;
}

/* The request's payload if it has at least len bytes. */
static const void *req(const struct vmsg_msg *m, size_t len)
{
	return m->payload_len >= len ? m->payload : NULL;
}

static size_t room(const struct bridge *b)
{
	return b->info.max_msg_size - vmsg_wire_header_size(b->info.wire_format);
}

static int handle_request(struct bridge *b, const struct vmsg_msg *rx, struct vmsg_msg *tx)
{
	uint8_t cfg[VHU_CONFIG_MAX];
	uint32_t i, idx, off, len, num;

	tx->payload_len = 0;
	switch (rx->msg_id) {
	case VIRTIO_MSG_GET_DEVICE_INFO: {
		struct virtio_msg_get_device_info_resp *r = (void *)tx->payload;

		memset(r, 0, sizeof(*r));
		r->device_id = htole32(b->device_id);
		r->vendor_id = htole32(VMSG_VENDOR_ID);
		r->num_feature_bits = htole32(64);
		r->config_size = htole32(b->config_size);
		r->max_virtqueues = htole32(b->nvqs);
		tx->payload_len = sizeof(*r);
		return 0;
	}
	case VIRTIO_MSG_GET_DEVICE_FEATURES: {
		const struct virtio_msg_features *q = req(rx, sizeof(*q));
		struct virtio_msg_features *r = (void *)tx->payload;

		if (!q)
			return -EINVAL;
		idx = le32toh(q->block_index);
		num = le32toh(q->num_blocks);
		if (num > (room(b) - sizeof(*r)) / 4)
			num = (uint32_t)((room(b) - sizeof(*r)) / 4);
		r->block_index = htole32(idx);
		r->num_blocks = htole32(num);
		for (i = 0; i < num; i++)
			r->features[i] = htole32(idx + i < 2 ?
						 (uint32_t)(b->features >> (32 * (idx + i))) : 0);
		tx->payload_len = (uint16_t)(sizeof(*r) + 4 * num);
		return 0;
	}
	case VIRTIO_MSG_SET_DRIVER_FEATURES: {
		const struct virtio_msg_features *q = req(rx, sizeof(*q));

		if (!q)
			return -EINVAL;
		idx = le32toh(q->block_index);
		num = le32toh(q->num_blocks);
		if (num > (rx->payload_len - sizeof(*q)) / 4)
			return -EINVAL;
		for (i = 0; i < num && !(b->status & VIRTIO_CONFIG_S_FEATURES_OK); i++) {
			if (idx + i >= 2)
				continue;
			b->driver_features &= ~(0xffffffffULL << (32 * (idx + i)));
			b->driver_features |= (uint64_t)le32toh(q->features[i]) << (32 * (idx + i));
		}
		return 0;
	}
	case VIRTIO_MSG_GET_CONFIG: {
		const struct virtio_msg_get_config *q = req(rx, sizeof(*q));
		struct virtio_msg_config *r = (void *)tx->payload;

		if (!q)
			return -EINVAL;
		off = le32toh(q->offset);
		len = le32toh(q->length);
		if (off > b->config_size || len > b->config_size - off ||
		    len > room(b) - sizeof(*r))
			len = 0;
		read_config(b, cfg);
		r->generation = htole32(b->generation);
		r->offset = htole32(off);
		r->length = htole32(len);
		memcpy(r->data, cfg + (len ? off : 0), len);
		tx->payload_len = (uint16_t)(sizeof(*r) + len);
		return 0;
	}
	case VIRTIO_MSG_SET_CONFIG: {
		const struct virtio_msg_config *q = req(rx, sizeof(*q));
		struct virtio_msg_config *r = (void *)tx->payload;
		bool ok;

		if (!q)
			return -EINVAL;
		off = le32toh(q->offset);
		len = le32toh(q->length);
		if (len > rx->payload_len - sizeof(*q))
			return -EINVAL;
		ok = len && off <= b->config_size && len <= b->config_size - off &&
		     vhu_has_pf(&b->vu, VHU_PF_CONFIG) &&
		     !vu(b, vhu_set_config(&b->vu, off, len, q->data));
		r->generation = htole32(b->generation);
		r->offset = htole32(off);
		r->length = htole32(ok ? len : 0);
		tx->payload_len = sizeof(*r);
		return 0;
	}
	case VIRTIO_MSG_GET_DEVICE_STATUS:
	case VIRTIO_MSG_SET_DEVICE_STATUS: {
		const struct virtio_msg_status *q = req(rx, sizeof(*q));
		struct virtio_msg_status *r = (void *)tx->payload;

		if (rx->msg_id == VIRTIO_MSG_SET_DEVICE_STATUS) {
			if (!q)
				return -EINVAL;
			set_status(b, le32toh(q->status));
		}
		r->status = htole32(b->status);
		tx->payload_len = sizeof(*r);
		return 0;
	}
	case VIRTIO_MSG_GET_VQUEUE: {
		const struct virtio_msg_vqueue_index *q = req(rx, sizeof(*q));
		struct virtio_msg_vqueue *r = (void *)tx->payload;

		if (!q)
			return -EINVAL;
		idx = le32toh(q->index);
		memset(r, 0, sizeof(*r));
		r->index = htole32(idx);
		if (idx < b->nvqs) {
			r->max_size = htole32(b->o.queue_size);
			if (b->vr[idx].configured) {
				r->size = htole32(b->vr[idx].size);
				r->desc_addr = htole64(b->vr[idx].desc);
				r->driver_addr = htole64(b->vr[idx].driver);
				r->device_addr = htole64(b->vr[idx].device);
			}
		}
		tx->payload_len = sizeof(*r);
		return 0;
	}
	case VIRTIO_MSG_SET_VQUEUE: {
		const struct virtio_msg_vqueue *q = req(rx, sizeof(*q));
		struct vring *v;

		if (!q)
			return -EINVAL;
		idx = le32toh(q->index);
		num = le32toh(q->size);
		if (idx >= b->nvqs || !num || num > b->o.queue_size) {
			vmsg_log("device %u: SET_VQUEUE %u size %u ignored", b->o.dev_num, idx,
				 num);
			return 0;
		}
		v = &b->vr[idx];
		v->size = num;
		v->desc = le64toh(q->desc_addr);
		v->driver = le64toh(q->driver_addr);
		v->device = le64toh(q->device_addr);
		v->configured = true;
		/* The answer first; the ring setup happens right after it. */
		return 1;
	}
	case VIRTIO_MSG_RESET_VQUEUE: {
		const struct virtio_msg_vqueue_index *q = req(rx, sizeof(*q));

		if (!q)
			return -EINVAL;
		idx = le32toh(q->index);
		if (idx < b->nvqs && b->vr[idx].started) {
			vu(b, vhu_get_vring_base(&b->vu, idx, &num));
			b->vr[idx].started = false;
			b->vr[idx].configured = false;
		}
		return 0;
	}
	case VIRTIO_MSG_GET_SHM: {
		const struct virtio_msg_vqueue_index *q = req(rx, sizeof(*q));
		struct virtio_msg_get_shm_resp *r = (void *)tx->payload;

		if (!q)
			return -EINVAL;
		memset(r, 0, sizeof(*r));
		r->index = q->index;
		tx->payload_len = sizeof(*r);
		return 0;
	}
	}
	return -EOPNOTSUPP;
}

static void send_msg(struct bridge *b, struct vmsg_msg *m)
{
	ssize_t n = vmsg_encode(b->info.wire_format, m, b->wbuf, b->info.max_msg_size);

	if (n < 0 || write(b->msg, b->wbuf, (size_t)n) != n)
		vmsg_log("device %u: sending message 0x%02x failed: %s", b->o.dev_num, m->msg_id,
			 n < 0 ? "too long" : strerror(errno));
}

static void send_event(struct bridge *b, uint8_t id, const void *payload, size_t len)
{
	struct vmsg_msg *m = b->tx;

	m->type = 0;
	m->msg_id = id;
	m->dev_num = b->o.dev_num;
	m->token = VIRTIO_MSG_TOKEN_EVENT;
	m->payload_len = (uint16_t)len;
	memcpy(m->payload, payload, len);
	send_msg(b, m);
}

static void config_event(struct bridge *b)
{
	struct virtio_msg_event_config ev = {
		.device_status = htole32(b->status),
		.generation = htole32(b->generation),
	};

	send_event(b, VIRTIO_MSG_EVENT_CONFIG, &ev, sizeof(ev));
}

static void serve_message(struct bridge *b, size_t n)
{
	struct vmsg_msg *rx = b->rx, *tx = b->tx;
	int r;

	if (vmsg_decode(b->info.wire_format, b->rbuf, n, rx)) {
		vmsg_log("malformed message from the kernel dropped");
		return;
	}
	vmsg_trace("<- message 0x%02x type %u device %u", rx->msg_id, rx->type, rx->dev_num);
	if (rx->type & VIRTIO_MSG_TYPE_RESPONSE)
		return;
	if (rx->type & VIRTIO_MSG_TYPE_BUS) {
		if (rx->msg_id & VIRTIO_MSG_ID_EVENT_BIT)
			return;
		memset(tx, 0, offsetof(struct vmsg_msg, payload));
		if (rx->msg_id == VIRTIO_MSG_BUS_PING && rx->payload_len >= 4) {
			memcpy(tx->payload, rx->payload, 4);
			tx->payload_len = 4;
		} else {
			return;
		}
		tx->type = VIRTIO_MSG_TYPE_BUS | VIRTIO_MSG_TYPE_RESPONSE;
		tx->msg_id = rx->msg_id;
		tx->token = rx->token;
		send_msg(b, tx);
		return;
	}
	if (rx->dev_num != b->o.dev_num)
		return;
	if (rx->msg_id == VIRTIO_MSG_EVENT_AVAIL) {
		const struct virtio_msg_event_avail *ev = req(rx, sizeof(*ev));
		uint32_t i = ev ? le32toh(ev->vq_index) : MAX_QUEUES;

		/* No kernel eventfds: the kick goes to the backend from here. */
		if (i < b->nvqs && b->vr[i].started) {
			eventfd_write(b->vr[i].kick, 1);
			b->relayed_kicks++;
		}
		return;
	}
	if (rx->msg_id & VIRTIO_MSG_ID_EVENT_BIT)
		return;
	memset(tx, 0, offsetof(struct vmsg_msg, payload));
	r = handle_request(b, rx, tx);
	if (r < 0) {
		vmsg_log("device %u: request 0x%02x dropped (%s)", b->o.dev_num, rx->msg_id,
			 strerror(-r));
		return;
	}
	tx->type = VIRTIO_MSG_TYPE_RESPONSE;
	tx->msg_id = rx->msg_id;
	tx->dev_num = rx->dev_num;
	tx->token = rx->token;
	send_msg(b, tx);
	if (r == 1)
		start_vring(b, le32toh(((const struct virtio_msg_vqueue *)rx->payload)->index));
}

/* The backend signalled a queue's error eventfd (SET_VRING_ERR). */
static void vring_error(struct bridge *b, unsigned int i)
{
	eventfd_t cnt;

	if (eventfd_read(b->vr[i].err, &cnt))
		return;
	vmsg_log("device %u: the backend reports an error on queue %u: needs reset",
		 b->o.dev_num, i);
	b->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	config_event(b);
}

/* A request on the backend's channel (SET_BACKEND_REQ_FD). */
static void serve_backend_req(struct bridge *b)
{
	static struct vhu_msg m;
	struct vhu_conn c = { .fd = b->be_req, .timeout_ms = 1000 };
	uint64_t ok = 0;

	if (vhu_recv(&c, &m)) {
		vmsg_info("backend request channel: %s", c.err);
		close(b->be_req);
		b->be_req = -1;
		return;
	}
	if (m.request == VHU_BACKEND_CONFIG_CHANGE_MSG) {
		vmsg_info("device %u: the backend's config changed", b->o.dev_num);
		b->generation++;
		config_event(b);
	} else {
		vmsg_log("backend request %u not supported", m.request);
		ok = 1;
	}
	if (m.flags & VHU_FLAG_NEED_REPLY)
		vhu_send(&c, m.request, VHU_FLAG_REPLY, &ok, sizeof(ok), NULL, 0);
}

/* ---- the bus ---- */

static void open_bus(struct bridge *b)
{
	char path[64];

	b->lb = open(LB_NODE, O_RDWR | O_CLOEXEC);
	if (b->lb < 0 || ioctl(b->lb, VIRTIO_MSG_LB_IOC_INFO, &b->info))
		die(LB_NODE);
	b->map_len = b->info.pool_size;
	b->map = mmap(NULL, b->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, b->lb, 0);
	if (b->map == MAP_FAILED)
		die("mmap of the DMA pool");
	b->pool.base = b->map;
	b->pool.size = b->map_len;
	b->pool.bus_base = b->info.bus_addr_base;
	b->kernel_fds = (b->info.features & VIRTIO_MSG_LB_F_VRING_FDS) && !b->o.relay;
	if (!b->rbuf) {
		b->rbuf = malloc(b->info.max_msg_size);
		b->wbuf = malloc(b->info.max_msg_size);
		if (!b->rbuf || !b->wbuf)
			die("malloc");
	}
	snprintf(path, sizeof(path), "/dev/%s", b->info.msg_dev_name);
	b->msg = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (b->msg < 0)
		die(path);
	/*
	 * Every reader of the node gets a share of the messages: one server
	 * per bus (this bridge, or virtio-msg-backend), as the backend does.
	 */
	if (flock(b->msg, LOCK_EX | LOCK_NB)) {
		vmsg_log("%s is in use by another bridge or backend: one per bus", path);
		exit(1);
	}
	vmsg_info("bus: pool %llu bytes at bus address 0x%llx, %s, notifications %s",
		  (unsigned long long)b->info.pool_size,
		  (unsigned long long)b->info.bus_addr_base, path,
		  b->kernel_fds ? "kernel eventfds" : "relayed");
}

/* Closing the nodes makes the kernel break and remove the device at once. */
static void close_bus(struct bridge *b)
{
	unsigned int i;

	if (b->ctl_running) {
		/* ADD fails or returns once the kernel sees the peer go. */
		close(b->msg);
		b->msg = -1;
		pthread_join(b->ctl, NULL);
		b->ctl_running = false;
	}
	if (b->msg >= 0)
		close(b->msg);
	munmap(b->map, b->map_len);
	close(b->lb);
	b->msg = -1;
	b->lb = -1;
	for (i = 0; i < b->nvqs; i++) {
		close(b->vr[i].kick);
		close(b->vr[i].call);
		close(b->vr[i].err);
		memset(&b->vr[i], 0, sizeof(b->vr[i]));
		b->vr[i].kick = -1;
		b->vr[i].call = -1;
		b->vr[i].err = -1;
	}
}

static void *control(void *arg)
{
	struct bridge *b = arg;
	struct virtio_msg_lb_dev d = { .dev_num = b->o.dev_num };
	int err = 0;

	if (ioctl(b->lb, VIRTIO_MSG_LB_IOC_ADD, &d))
		err = errno;
	__atomic_store_n(&b->add_err, err, __ATOMIC_RELEASE);
	__atomic_store_n(&b->add_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void start_device(struct bridge *b)
{
	unsigned int i;

	for (i = 0; i < b->nvqs; i++) {
		memset(&b->vr[i], 0, sizeof(b->vr[i]));
		b->vr[i].kick = eventfd(0, EFD_CLOEXEC);
		b->vr[i].call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		b->vr[i].err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (b->vr[i].kick < 0 || b->vr[i].call < 0 || b->vr[i].err < 0)
			die("eventfd");
	}
	b->status = 0;
	b->driver_features = 0;
	b->add_done = 0;
	b->add_err = 0;
	if (pthread_create(&b->ctl, NULL, control, b))
		die("pthread_create");
	b->ctl_running = true;
}

enum run_end { END_SIGNAL, END_BACKEND, END_ADD_FAILED };

static enum run_end serve(struct bridge *b)
{
	struct pollfd p[4 + 2 * MAX_QUEUES];
	bool announced = false;
	unsigned int i, n;
	ssize_t len;

	for (;;) {
		if (!announced && __atomic_load_n(&b->add_done, __ATOMIC_ACQUIRE)) {
			int err = __atomic_load_n(&b->add_err, __ATOMIC_ACQUIRE);

			announced = true;
			pthread_join(b->ctl, NULL);
			b->ctl_running = false;
			if (err) {
				vmsg_log("ADD of device %u: %s", b->o.dev_num, strerror(err));
				return END_ADD_FAILED;
			}
			vmsg_log("device %u added", b->o.dev_num);
			if (b->o.ready_file) {
				FILE *f = fopen(b->o.ready_file, "w");

				if (f)
					fclose(f);
			}
		}
		if (b->gone)
			return END_BACKEND;
		p[0] = (struct pollfd){ .fd = b->msg, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = b->sigfd, .events = POLLIN };
		p[2] = (struct pollfd){ .fd = b->vu.fd, .events = POLLIN };
		p[3] = (struct pollfd){ .fd = b->be_req, .events = POLLIN };
		n = 4;
		for (i = 0; !b->kernel_fds && i < b->nvqs; i++)
			p[n++] = (struct pollfd){ .fd = b->vr[i].call, .events = POLLIN };
		for (i = 0; i < b->nvqs; i++)
			p[n + i] = (struct pollfd){ .fd = b->vr[i].err, .events = POLLIN };
		if (poll(p, n + b->nvqs, 100) < 0 && errno != EINTR)
			die("poll");
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(b->sigfd, &si, sizeof(si)) == sizeof(si))
				vmsg_log("signal %u: removing the device", si.ssi_signo);
			return END_SIGNAL;
		}
		if (p[2].revents) {
			/* Nothing is due from the backend: EOF or garbage. */
			char c;
			ssize_t k = recv(b->vu.fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);

			backend_gone(b, k == 0 ? "the backend closed its socket" :
				     k < 0 ? strerror(errno) : "unsolicited data on the socket");
			continue;
		}
		if (p[3].revents)
			serve_backend_req(b);
		for (i = 0; i < b->nvqs; i++)
			if (p[n + i].revents & POLLIN)
				vring_error(b, i);
		for (i = 4; i < n; i++) {
			eventfd_t cnt;
			struct virtio_msg_event_used ev = { .vq_index = htole32(i - 4) };

			if ((p[i].revents & POLLIN) && !eventfd_read(b->vr[i - 4].call, &cnt)) {
				send_event(b, VIRTIO_MSG_EVENT_USED, &ev, sizeof(ev));
				b->relayed_calls++;
			}
		}
		while ((len = read(b->msg, b->rbuf, b->info.max_msg_size)) > 0)
			serve_message(b, (size_t)len);
		if (len < 0 && errno == ENODEV) {
			vmsg_log("the bus is gone");
			return END_SIGNAL;
		}
	}
}

static void *remover(void *arg)
{
	struct bridge *b = arg;
	struct virtio_msg_lb_dev d = { .dev_num = b->o.dev_num };

	if (ioctl(b->lb, VIRTIO_MSG_LB_IOC_REMOVE, &d))
		vmsg_log("REMOVE: %s", strerror(errno));
	__atomic_store_n(&b->add_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * REMOVE waits for the driver's goodbye (a reset), so it runs on the
 * control thread while this one serves the node.  Should it take longer
 * than 10 s, closing the nodes breaks the device instead.
 */
static void remove_device(struct bridge *b)
{
	struct pollfd p = { .fd = b->msg, .events = POLLIN };
	time_t end = time(NULL) + 10;
	ssize_t len;

	b->add_done = 0;
	if (pthread_create(&b->ctl, NULL, remover, b))
		die("pthread_create");
	b->ctl_running = true;
	while (!__atomic_load_n(&b->add_done, __ATOMIC_ACQUIRE) && time(NULL) < end) {
		if (poll(&p, 1, 50) < 0 && errno != EINTR)
			die("poll");
		while ((len = read(b->msg, b->rbuf, b->info.max_msg_size)) > 0)
			serve_message(b, (size_t)len);
	}
	if (__atomic_load_n(&b->add_done, __ATOMIC_ACQUIRE)) {
		pthread_join(b->ctl, NULL);
		b->ctl_running = false;
		vmsg_log("device %u removed", b->o.dev_num);
	} else {
		vmsg_log("device %u: REMOVE takes too long, closing the bus", b->o.dev_num);
	}
}

int main(int argc, char **argv)
{
	static struct bridge b;
	enum run_end end;
	sigset_t sigs;

	parse_args(argc, argv, &b.o);
	setvbuf(stderr, NULL, _IOLBF, 0);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	b.sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (b.sigfd < 0)
		die("signalfd");
	b.rx = malloc(sizeof(*b.rx));
	b.tx = malloc(sizeof(*b.tx));
	if (!b.rx || !b.tx)
		die("malloc");
	b.vu.fd = -1;
	b.be_req = -1;

	for (;;) {
		if (open_backend(&b)) {
			close_backend(&b);
			if (!b.o.reconnect)
				return 1;
			nap(b.sigfd, 1000);
			continue;
		}
		setup_device(&b);
		open_bus(&b);
		start_device(&b);
		end = serve(&b);
		if (end == END_SIGNAL)
			remove_device(&b);
		close_bus(&b);
		close_backend(&b);
		if (end == END_BACKEND) {
			vmsg_log("device %u removed: its backend is gone", b.o.dev_num);
			if (b.o.reconnect) {
				vmsg_log("waiting for %s to come back", b.o.socket);
				continue;
			}
			return 1;
		}
		if (b.o.ready_file)
			unlink(b.o.ready_file);
		if (!b.kernel_fds)
			vmsg_info("relayed %lu kicks, %lu calls", b.relayed_kicks, b.relayed_calls);
		return end == END_ADD_FAILED ? 1 : 0;
	}
}
