// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmsg-peer: a loopback-bus peer that behaves the way other people's peers
 * do, run inside the test VM.
 *
 * virtio-msg-backend serves its devices by the letter of the spec and from
 * a dedicated thread.  Real peers are less careful: Linaro's loopback
 * frontend answers GET_DEVICE_FEATURES with fewer blocks than it carries,
 * reports no virtqueue count and checks the pool with lseek(SEEK_END)
 * before mapping it (rust-vmm vm-memory); simple backends serve the
 * message node and issue REMOVE from one thread; backends stall or die in
 * the middle of any exchange.  This program serves virtio-rng devices with
 * the backend's own device code and bends its answers, its mapping and its
 * threading into those shapes, so that the suite can check the kernel
 * copes with each.
 *
 * With --eventfd it takes the data path the way vhost-user backends do:
 * it binds a kick and a call eventfd per queue from the serving thread as
 * soon as SET_VQUEUE arrives (while ADD still waits for it), serves kicks
 * from the kick eventfds and signals used buffers on the call eventfds;
 * SIGUSR1 unbinds them again.
 *
 * Threads: the main thread serves /dev/virtio-msg-N; a control thread
 * issues the ADD ioctls (ADD returns once the device is probed, i.e. after
 * the main thread answered) and, on SIGTERM, the REMOVE ioctls, unless
 * --remove-inline makes the serving thread do that itself.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>

#include "backend.h"
#include "failnth.h"

#define LB_NODE		"/dev/virtio-msg-lb"

struct peer_opts {
	uint16_t devs[VMSG_MAX_DEVICES];
	unsigned int num_devs;
	bool one_feature_block;	/* num_blocks 1, 64 bits of data */
	bool no_max_vqs;	/* max_virtqueues 0 */
	bool loose;		/* echo fields unfilled, empty answers */
	bool lseek_map;		/* size the mapping from lseek(SEEK_END) */
	bool remove_inline;	/* REMOVE from the serving thread */
	bool release_lb;	/* close the control node once the devices are added */
	bool hold;		/* never complete a buffer */
	bool eventfd;		/* kicks and calls through eventfds */
	int stall_id;		/* never answer the first request with this id */
	int die_id;		/* exit on the first request with this id */
	int late_id;		/* answer the first request with this id late */
	unsigned int late_ms;
	unsigned int fail_nth;	/* first ADD with its Nth allocation failed */
	const char *ready_file;
};

/* The notification eventfds of one queue; -1 once unbound. */
struct peer_vring {
	uint16_t dev_num;
	unsigned int index;
	int kick;
	int call;
};

struct peer {
	struct peer_opts o;
	struct backend be;
	int lb;
	int msg;
	int sigfd;
	int ctl_pipe[2];	/* serving thread -> control thread: "remove now" */
	void *map;
	size_t map_len;
	uint8_t *rx;
	uint8_t *tx;
	int add_err;		/* first failed ADD's errno */
	int adds_done;		/* atomic */
	int removes_done;	/* atomic */
	bool stalled, late_done;

	struct peer_vring vrings[VMSG_MAX_DEVICES * VMSG_MAX_VQS];
	unsigned int num_vrings;
	unsigned long efd_kicks;	/* kicks taken from kick eventfds */
	unsigned long efd_calls;	/* used buffers signalled on call eventfds */
	unsigned long msg_kicks_bound;	/* EVENT_AVAIL for a queue with a kick fd */
	struct vmsg_msg scratch;
};

static const struct {
	const char *name;
	int id;
} msg_ids[] = {
	{ "GET_DEVICE_INFO", VIRTIO_MSG_GET_DEVICE_INFO },
	{ "GET_DEVICE_FEATURES", VIRTIO_MSG_GET_DEVICE_FEATURES },
	{ "SET_DRIVER_FEATURES", VIRTIO_MSG_SET_DRIVER_FEATURES },
	{ "GET_CONFIG", VIRTIO_MSG_GET_CONFIG },
	{ "SET_CONFIG", VIRTIO_MSG_SET_CONFIG },
	{ "GET_DEVICE_STATUS", VIRTIO_MSG_GET_DEVICE_STATUS },
	{ "SET_DEVICE_STATUS", VIRTIO_MSG_SET_DEVICE_STATUS },
	{ "GET_VQUEUE", VIRTIO_MSG_GET_VQUEUE },
	{ "SET_VQUEUE", VIRTIO_MSG_SET_VQUEUE },
	{ "RESET_VQUEUE", VIRTIO_MSG_RESET_VQUEUE },
	{ "EVENT_AVAIL", VIRTIO_MSG_EVENT_AVAIL },
};

static int msg_id_of(const char *name)
{
	unsigned int i;

	for (i = 0; i < sizeof(msg_ids) / sizeof(msg_ids[0]); i++)
		if (!strcmp(msg_ids[i].name, name))
			return msg_ids[i].id;
	fprintf(stderr, "vmsg-peer: unknown message name %s\n", name);
	exit(2);
}

static void print_help(FILE *f)
{
	fprintf(f,
		"usage: %s [options] --rng DEVNUM [--rng DEVNUM ...]\n"
		"Serves virtio-rng devices on the loopback bus like other peers do.\n"
		"  --linaro              as Linaro's loopback frontend: --one-feature-block\n"
		"                        --no-max-vqs --lseek-map\n"
		"  --one-feature-block   GET_DEVICE_FEATURES: num_blocks 1, 64 bits of data\n"
		"  --no-max-vqs          GET_DEVICE_INFO: max_virtqueues 0\n"
		"  --loose               leave echo fields unfilled, answer SET_* without payload\n"
		"  --lseek-map           size the pool mapping with lseek(SEEK_END) (vm-memory)\n"
		"  --remove-inline       on SIGTERM, REMOVE from the serving thread\n"
		"  --release-lb          close %s and unmap the pool once added\n"
		"  --eventfd             bind kick and call eventfds on SET_VQUEUE (SIGUSR1:\n"
		"                        unbind)\n"
		"  --hold                never complete a buffer (a source that has nothing\n"
		"                        to give): the driver's buffers stay queued\n"
		"  --stall NAME          never answer the first request NAME\n"
		"  --die-at NAME         exit(3) on the first request NAME\n"
		"  --late NAME:MS        answer the first request NAME after the devices\n"
		"                        are added MS ms late\n"
		"  --fail-nth N          issue the first ADD with /proc/thread-self/fail-nth\n"
		"                        set to N (debug kernel); prints \"fail-nth N ADD\n"
		"                        OK|ERRNO injected|not-injected\" on stdout\n"
		"  --ready-file PATH     created once every device is added\n"
		"NAME: GET_DEVICE_INFO, SET_DEVICE_STATUS, GET_VQUEUE, ... EVENT_AVAIL\n"
		"Exit status: 0 after a clean stop; 1 if an ADD failed.\n", "vmsg-peer", LB_NODE);
}

enum { OPT_RNG = 256, OPT_LINARO, OPT_ONE_BLOCK, OPT_NO_MAX_VQS, OPT_LOOSE, OPT_LSEEK,
	OPT_INLINE, OPT_RELEASE, OPT_HOLD, OPT_EVENTFD, OPT_STALL, OPT_DIE, OPT_LATE,
	OPT_READY, OPT_FAIL_NTH };

static void parse_args(int argc, char **argv, struct peer_opts *o)
{
	static const struct option longopts[] = {
		{ "rng", required_argument, NULL, OPT_RNG },
		{ "linaro", no_argument, NULL, OPT_LINARO },
		{ "one-feature-block", no_argument, NULL, OPT_ONE_BLOCK },
		{ "no-max-vqs", no_argument, NULL, OPT_NO_MAX_VQS },
		{ "loose", no_argument, NULL, OPT_LOOSE },
		{ "lseek-map", no_argument, NULL, OPT_LSEEK },
		{ "remove-inline", no_argument, NULL, OPT_INLINE },
		{ "release-lb", no_argument, NULL, OPT_RELEASE },
		{ "hold", no_argument, NULL, OPT_HOLD },
		{ "eventfd", no_argument, NULL, OPT_EVENTFD },
		{ "stall", required_argument, NULL, OPT_STALL },
		{ "die-at", required_argument, NULL, OPT_DIE },
		{ "late", required_argument, NULL, OPT_LATE },
		{ "ready-file", required_argument, NULL, OPT_READY },
		{ "fail-nth", required_argument, NULL, OPT_FAIL_NTH },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *colon;
	int c;

	memset(o, 0, sizeof(*o));
	o->stall_id = -1;
	o->die_id = -1;
	o->late_id = -1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_RNG:
			if (o->num_devs == VMSG_MAX_DEVICES)
				exit(2);
			o->devs[o->num_devs++] = (uint16_t)strtoul(optarg, NULL, 0);
			break;
		case OPT_LINARO:
			o->one_feature_block = true;
			o->no_max_vqs = true;
			o->lseek_map = true;
			break;
		case OPT_ONE_BLOCK:
			o->one_feature_block = true;
			break;
		case OPT_NO_MAX_VQS:
			o->no_max_vqs = true;
			break;
		case OPT_LOOSE:
			o->loose = true;
			break;
		case OPT_LSEEK:
			o->lseek_map = true;
			break;
		case OPT_INLINE:
			o->remove_inline = true;
			break;
		case OPT_RELEASE:
			o->release_lb = true;
			break;
		case OPT_HOLD:
			o->hold = true;
			break;
		case OPT_EVENTFD:
			o->eventfd = true;
			break;
		case OPT_STALL:
			o->stall_id = msg_id_of(optarg);
			break;
		case OPT_DIE:
			o->die_id = msg_id_of(optarg);
			break;
		case OPT_LATE:
			colon = strchr(optarg, ':');
			if (!colon)
				exit(2);
			*colon = '\0';
			o->late_id = msg_id_of(optarg);
			o->late_ms = strtoul(colon + 1, NULL, 0);
			break;
		case OPT_READY:
			o->ready_file = optarg;
			break;
		case OPT_FAIL_NTH:
			o->fail_nth = strtoul(optarg, NULL, 0);
			break;
		case 'h':
			print_help(stdout);
			exit(0);
		default:
			print_help(stderr);
			exit(2);
		}
	}
	if (!o->num_devs || optind < argc) {
		print_help(stderr);
		exit(2);
	}
}

static void die(const char *what)
{
	fprintf(stderr, "vmsg-peer: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* The way rust-vmm's vm-memory checks a file before mapping it. */
static size_t pool_length(struct peer *p, const struct virtio_msg_lb_info *info)
{
	off_t end;

	if (!p->o.lseek_map)
		return info->pool_size;
	end = lseek(p->lb, 0, SEEK_END);
	if (end < 0)
		die("lseek(SEEK_END) of " LB_NODE);
	if ((uint64_t)end != info->pool_size) {
		fprintf(stderr, "vmsg-peer: lseek says %lld bytes, INFO %llu\n",
			(long long)end, (unsigned long long)info->pool_size);
		exit(2);
	}
	if (lseek(p->lb, 0, SEEK_SET) != 0)
		die("lseek(SEEK_SET)");
	return end;
}

static void open_bus(struct peer *p)
{
	struct virtio_msg_lb_info info = { 0 };
	struct vmsg_pool pool;
	char path[64];

	p->lb = open(LB_NODE, O_RDWR | O_CLOEXEC);
	if (p->lb < 0 || ioctl(p->lb, VIRTIO_MSG_LB_IOC_INFO, &info))
		die(LB_NODE);
	p->map_len = pool_length(p, &info);
	p->map = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, p->lb, 0);
	if (p->map == MAP_FAILED)
		die("mmap of the pool");
	pool.base = p->map;
	pool.size = p->map_len;
	pool.bus_base = info.bus_addr_base;
	if (backend_init(&p->be, info.wire_format, info.max_msg_size, &pool)) {
		fprintf(stderr, "vmsg-peer: unusable bus\n");
		exit(2);
	}
	p->rx = malloc(info.max_msg_size);
	p->tx = malloc(info.max_msg_size);
	if (!p->rx || !p->tx)
		die("malloc");
	snprintf(path, sizeof(path), "/dev/%s", info.msg_dev_name);
	p->msg = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (p->msg < 0)
		die(path);
}

static int write_all(struct peer *p, const void *buf, size_t len)
{
	ssize_t n = write(p->msg, buf, len);

	return n == (ssize_t)len ? 0 : -1;
}

static struct peer_vring *find_vring(struct peer *p, uint16_t dev_num, unsigned int index)
{
	unsigned int i;

	for (i = 0; i < p->num_vrings; i++)
		if (p->vrings[i].dev_num == dev_num && p->vrings[i].index == index)
			return &p->vrings[i];
	return NULL;
}

/* From the serving thread, while the kernel may wait in ADD for it. */
static void bind_vring(struct peer *p, uint16_t dev_num, unsigned int index)
{
	struct virtio_msg_lb_vring_fd b = { .dev_num = dev_num, .index = index };
	struct peer_vring *v;

	if (find_vring(p, dev_num, index) ||
	    p->num_vrings == sizeof(p->vrings) / sizeof(p->vrings[0]))
		return;
	v = &p->vrings[p->num_vrings++];
	v->dev_num = dev_num;
	v->index = index;
	v->kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	v->call = eventfd(0, EFD_CLOEXEC);
	if (v->kick < 0 || v->call < 0)
		die("eventfd");
	b.fd = v->kick;
	if (ioctl(p->lb, VIRTIO_MSG_LB_IOC_SET_VRING_KICK, &b))
		die("SET_VRING_KICK");
	b.fd = v->call;
	if (ioctl(p->lb, VIRTIO_MSG_LB_IOC_SET_VRING_CALL, &b))
		die("SET_VRING_CALL");
}

static void unbind_vrings(struct peer *p)
{
	struct virtio_msg_lb_vring_fd b = { .fd = -1 };
	unsigned int i;

	for (i = 0; i < p->num_vrings; i++) {
		struct peer_vring *v = &p->vrings[i];

		if (v->kick < 0)
			continue;
		b.dev_num = v->dev_num;
		b.index = v->index;
		if (ioctl(p->lb, VIRTIO_MSG_LB_IOC_SET_VRING_KICK, &b) ||
		    ioctl(p->lb, VIRTIO_MSG_LB_IOC_SET_VRING_CALL, &b))
			die("unbinding");
		close(v->kick);
		close(v->call);
		v->kick = -1;
		v->call = -1;
	}
	fprintf(stderr, "vmsg-peer: eventfds unbound\n");
}

/* Used buffers go to the queue's call eventfd while one is bound. */
static int send_event(struct backend *be, const void *buf, size_t len)
{
	struct peer *p = be->send_ctx;
	struct virtio_msg_event_used *used = (void *)p->scratch.payload;
	struct peer_vring *v = NULL;

	if (!vmsg_decode(be->wire_format, buf, len, &p->scratch) &&
	    p->scratch.msg_id == VIRTIO_MSG_EVENT_USED)
		v = find_vring(p, p->scratch.dev_num, le32toh(used->vq_index));
	if (v && v->call >= 0) {
		p->efd_calls++;
		return eventfd_write(v->call, 1) ? -errno : 0;
	}
	return write_all(p, buf, len);
}

static void serve_kick(struct peer *p, struct peer_vring *v)
{
	struct vmsg_device *dev = backend_find_device(&p->be, v->dev_num);
	eventfd_t count;

	if (eventfd_read(v->kick, &count))
		return;
	p->efd_kicks++;
	if (!p->o.hold && dev && v->index < dev->num_vqs)
		vq_process(dev, &dev->vqs[v->index]);
	backend_run_deferred(&p->be);
}

/* Rewrites a correct answer into the loose shape the options ask for. */
static size_t bend_answer(struct peer *p, size_t len)
{
	struct vmsg_msg *m = p->be.ev;
	struct virtio_msg_get_device_info_resp *info = (void *)m->payload;
	struct virtio_msg_features *f = (void *)m->payload;
	struct virtio_msg_config *c = (void *)m->payload;
	struct virtio_msg_vqueue *vq = (void *)m->payload;
	ssize_t n;

	if (vmsg_decode(p->be.wire_format, p->tx, len, m))
		return len;
	switch (m->msg_id) {
	case VIRTIO_MSG_GET_DEVICE_INFO:
		if (p->o.no_max_vqs)
			info->max_virtqueues = 0;
		break;
	case VIRTIO_MSG_GET_DEVICE_FEATURES:
		/* Linaro's frontend: "1 block", 64 bits of data all the same. */
		if (p->o.one_feature_block)
			f->num_blocks = htole32(1);
		break;
	case VIRTIO_MSG_GET_CONFIG:
		if (p->o.loose) {
			c->offset = 0;
			c->length = 0;
		}
		break;
	case VIRTIO_MSG_SET_CONFIG:
	case VIRTIO_MSG_SET_DEVICE_STATUS:
		if (p->o.loose)
			m->payload_len = 0;
		break;
	case VIRTIO_MSG_GET_VQUEUE:
		if (p->o.loose)
			vq->index = htole32(0xffff);
		break;
	}
	n = vmsg_encode(p->be.wire_format, m, p->tx, p->be.max_msg_size);
	return n < 0 ? len : (size_t)n;
}

/* Handles one message, unless the options hold it back or end here. */
static void serve_one(struct peer *p, size_t n)
{
	struct vmsg_msg *m = p->be.ev;
	const struct virtio_msg_vqueue *vq = (const void *)m->payload;
	unsigned int i, vq_index = 0;
	uint16_t dev_num = 0;
	size_t out_len;
	int id = -1;

	if (!vmsg_decode(p->be.wire_format, p->rx, n, m) &&
	    !(m->type & VIRTIO_MSG_TYPE_BUS)) {
		id = m->msg_id;
		dev_num = m->dev_num;
		/* EVENT_AVAIL and SET_VQUEUE both start with the queue index. */
		vq_index = le32toh(vq->index);
	}
	if (id == VIRTIO_MSG_EVENT_AVAIL && find_vring(p, dev_num, vq_index) &&
	    find_vring(p, dev_num, vq_index)->kick >= 0)
		p->msg_kicks_bound++;
	/* Without the pool there are no rings to serve: kicks go unanswered. */
	if (id == VIRTIO_MSG_EVENT_AVAIL && (!p->map || p->o.hold))
		return;
	if (id >= 0 && id == p->o.die_id) {
		fprintf(stderr, "vmsg-peer: dying at message %#x\n", id);
		_exit(3);
	}
	if (id >= 0 && id == p->o.stall_id && !p->stalled) {
		p->stalled = true;
		fprintf(stderr, "vmsg-peer: not answering message %#x\n", id);
		return;
	}
	/* Late answers are for teardown: only once the devices are added. */
	if (id >= 0 && id == p->o.late_id && !p->late_done &&
	    __atomic_load_n(&p->adds_done, __ATOMIC_ACQUIRE)) {
		p->late_done = true;
		fprintf(stderr, "vmsg-peer: answering message %#x in %u ms\n", id, p->o.late_ms);
		usleep(p->o.late_ms * 1000);
	}
	backend_handle_message(&p->be, p->rx, n, p->tx, p->be.max_msg_size, &out_len);
	if (out_len) {
		out_len = bend_answer(p, out_len);
		if (write_all(p, p->tx, out_len))
			fprintf(stderr, "vmsg-peer: answer to %#x refused: %s\n", id,
				strerror(errno));
	}
	if (id == VIRTIO_MSG_SET_VQUEUE && p->o.eventfd)
		bind_vring(p, dev_num, vq_index);
	/* DRIVER_OK makes the backend look at the rings: not when holding. */
	for (i = 0; p->o.hold && i < p->be.num_devs; i++)
		p->be.devs[i]->deferred_kick = false;
	backend_run_deferred(&p->be);
}

static int lb_ioctl(struct peer *p, unsigned long req, uint16_t dev_num)
{
	struct virtio_msg_lb_dev d = { .dev_num = dev_num };

	return ioctl(p->lb, req, &d) ? errno : 0;
}

static void remove_all(struct peer *p)
{
	unsigned int i;
	int err;

	for (i = 0; i < p->o.num_devs; i++) {
		err = lb_ioctl(p, VIRTIO_MSG_LB_IOC_REMOVE, p->o.devs[i]);
		if (err)
			fprintf(stderr, "vmsg-peer: REMOVE %u: %s\n", p->o.devs[i], strerror(err));
	}
}

static void release_lb(struct peer *p)
{
	/* Serving goes on without the pool: only control messages come. */
	munmap(p->map, p->map_len);
	p->map = NULL;
	p->be.pool.base = NULL;
	close(p->lb);
	p->lb = -1;
}

/*
 * The first ADD with its Nth fallible call failed: bus registration of the
 * device, probe, virtqueue setup and the pool all run in this thread.
 */
static int add_fail_nth(struct peer *p, uint16_t dev_num)
{
	int fd = failnth_open();
	long left;
	int err;

	if (fd < 0 || failnth_set(fd, p->o.fail_nth))
		die("/proc/thread-self/fail-nth");
	err = lb_ioctl(p, VIRTIO_MSG_LB_IOC_ADD, dev_num);
	left = failnth_get(fd);
	failnth_set(fd, 0);
	close(fd);
	if (left < 0)
		die("/proc/thread-self/fail-nth");
	printf("fail-nth %u ADD %s %s\n", p->o.fail_nth,
	       err ? strerrorname_np(err) : "OK", left ? "not-injected" : "injected");
	fflush(stdout);
	return err;
}

static void *control(void *arg)
{
	struct peer *p = arg;
	unsigned int i;
	char c;
	int err;

	for (i = 0; i < p->o.num_devs; i++) {
		if (i == 0 && p->o.fail_nth)
			err = add_fail_nth(p, p->o.devs[i]);
		else
			err = lb_ioctl(p, VIRTIO_MSG_LB_IOC_ADD, p->o.devs[i]);
		if (err) {
			fprintf(stderr, "vmsg-peer: ADD %u: %s\n", p->o.devs[i], strerror(err));
			if (!p->add_err)
				p->add_err = err;
		}
	}
	__atomic_store_n(&p->adds_done, 1, __ATOMIC_RELEASE);
	if (read(p->ctl_pipe[0], &c, 1) == 1 && p->lb >= 0)
		remove_all(p);
	__atomic_store_n(&p->removes_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void ready(struct peer *p)
{
	FILE *f;

	if (p->o.release_lb)
		release_lb(p);
	if (!p->o.ready_file)
		return;
	f = fopen(p->o.ready_file, "w");
	if (!f || fclose(f))
		die(p->o.ready_file);
}

int main(int argc, char **argv)
{
	static struct peer p;
	struct pollfd pfd[2 + VMSG_MAX_DEVICES * VMSG_MAX_VQS];
	bool stopping = false, announced = false;
	unsigned int nfds;
	pthread_t ctl;
	unsigned int i;
	sigset_t sigs;
	ssize_t n;

	parse_args(argc, argv, &p.o);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	p.sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (p.sigfd < 0 || pipe(p.ctl_pipe))
		die("signalfd/pipe");

	open_bus(&p);
	p.be.send_event = send_event;
	p.be.send_ctx = &p;
	for (i = 0; i < p.o.num_devs; i++) {
		struct vmsg_dev_opts dopts = { .queue_size = 64 };
		struct vmsg_device *dev = vmsg_rng_create(p.o.devs[i], &dopts);

		if (!dev || backend_add_device(&p.be, dev))
			die("device");
	}
	if (pthread_create(&ctl, NULL, control, &p))
		die("pthread_create");

	pfd[0] = (struct pollfd){ .fd = p.msg, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = p.sigfd, .events = POLLIN };
	for (;;) {
		/* Unbound or not yet bound: fd -1, which poll() skips. */
		for (i = 0; i < p.num_vrings; i++)
			pfd[2 + i] = (struct pollfd){ .fd = p.vrings[i].kick, .events = POLLIN };
		nfds = 2 + p.num_vrings;
		if (!announced && __atomic_load_n(&p.adds_done, __ATOMIC_ACQUIRE)) {
			announced = true;
			if (p.add_err)
				break;
			ready(&p);
		}
		if (stopping && __atomic_load_n(&p.removes_done, __ATOMIC_ACQUIRE))
			break;
		if (poll(pfd, nfds, 50) < 0 && errno != EINTR)
			die("poll");
		for (i = 2; i < nfds; i++)
			if (pfd[i].revents & POLLIN)
				serve_kick(&p, &p.vrings[i - 2]);
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(p.sigfd, &si, sizeof(si)) != sizeof(si))
				die("signalfd");
			if (si.ssi_signo == SIGUSR1) {
				unbind_vrings(&p);
				continue;
			}
			if (stopping)
				continue;
			stopping = true;
			if (p.o.remove_inline && p.lb >= 0) {
				/* Nobody serves the node while this blocks. */
				remove_all(&p);
				break;
			}
			if (write(p.ctl_pipe[1], "r", 1) != 1)
				die("pipe");
		}
		while ((n = read(p.msg, p.rx, p.be.max_msg_size)) > 0)
			serve_one(&p, n);
		if (n < 0 && errno == ENODEV) {
			fprintf(stderr, "vmsg-peer: the bus is gone\n");
			break;
		}
	}
	if (!__atomic_load_n(&p.removes_done, __ATOMIC_ACQUIRE)) {
		close(p.ctl_pipe[1]);
		pthread_join(ctl, NULL);
	}
	if (p.map)
		munmap(p.map, p.map_len);
	if (p.lb >= 0)
		close(p.lb);
	close(p.msg);
	if (p.o.ready_file)
		unlink(p.o.ready_file);
	if (p.o.eventfd)
		fprintf(stderr, "vmsg-peer: eventfd kicks %lu calls %lu, %s %lu\n",
			p.efd_kicks, p.efd_calls, "message kicks on bound queues",
			p.msg_kicks_bound);
	return p.add_err ? 1 : 0;
}
