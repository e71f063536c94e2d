// SPDX-License-Identifier: GPL-2.0-only
/*
 * Removal group: devices that cannot or will not make progress, and rings
 * that change size under the transport.
 *
 *  blk-stuck  a virtio-blk device the driver cannot finish with: a ring
 *             too short for its requests without indirect descriptors
 *             (--queue-size 8 --seg-max 32 --no-indirect), or one that
 *             stops completing requests once added (--hold) while it
 *             answers every message.  REMOVE on SIGTERM, timed.
 *  net-resize a virtio-net device (MAC, VIRTIO_F_RING_RESET, one queue
 *             pair, never a packet) whose rx ring the scenario resizes
 *             with SIOCETHTOOL, as "ethtool -G" does; then REMOVE, or
 *             the backend goes away with the ring full (--vanish).
 *  shm-region a virtio-fs device that reports a shared memory region the
 *             bus does not have (GET_SHM), as a hostile device may.
 *
 * Result lines: key=value on stdout; the shell side (removal.sh) judges.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include "hostile.h"

#define FEATURE(bit)	(1ULL << (bit))

#ifndef VIRTIO_F_RING_RESET
#define VIRTIO_F_RING_RESET	40
#endif
#ifndef VIRTIO_ID_FS
#define VIRTIO_ID_FS		26
#endif

static void put_le32(struct vmsg_device *dev, size_t off, uint32_t v)
{
	v = htole32(v);
	memcpy(dev->config + off, &v, sizeof(v));
}

static bool ready_file(const char *path)
{
	FILE *f;

	return !path || ((f = fopen(path, "w")) && !fclose(f));
}

static void block_term(void)
{
	sigset_t term;

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, NULL);
}

static void wait_term(void)
{
	sigset_t term;
	int sig;

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigwait(&term, &sig);
}

/* REMOVE, timed; the shell bounds how long it may take. */
static void timed_remove(struct hostile *h, uint16_t dev_num)
{
	uint64_t t0 = hostile_now_ms();
	int err = hostile_remove(h, dev_num);

	printf("remove=%s remove_ms=%llu\n", err ? strerror(err) : "ok",
	       (unsigned long long)(hostile_now_ms() - t0));
	fflush(stdout);
}

static int blk_stuck(struct hostile *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "blk", required_argument, NULL, 'b' },
		{ "queue-size", required_argument, NULL, 'q' },
		{ "seg-max", required_argument, NULL, 's' },
		{ "no-indirect", no_argument, NULL, 'n' },
		{ "hold", no_argument, NULL, 'H' },
		{ "ready-file", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *ready = NULL;
	bool no_indirect = false, hold = false;
	uint32_t qsize = 64, seg_max = 0;
	struct vmsg_device *dev;
	uint16_t dev_num = 0;
	char *colon;
	int c, err;

	hostile_open(h);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			colon = strchr(optarg, ':');
			if (!colon)
				return 2;
			*colon = '\0';
			dev_num = hostile_num(optarg);
			path = colon + 1;
			break;
		case 'q':
			qsize = hostile_num(optarg);
			break;
		case 's':
			seg_max = hostile_num(optarg);
			break;
		case 'n':
			no_indirect = true;
			break;
		case 'H':
			hold = true;
			break;
		case 'R':
			ready = optarg;
			break;
		default:
			return 2;
		}
	}
	if (!path)
		return 2;
	dev = hostile_blk(h, dev_num, path, qsize);
	/* What a device may well say: the driver takes it at its word. */
	if (no_indirect)
		dev->features &= ~FEATURE(VIRTIO_RING_F_INDIRECT_DESC);
	if (seg_max)
		put_le32(dev, offsetof(struct virtio_blk_config, seg_max), seg_max);

	block_term();
	hostile_serve_start(h);
	err = hostile_add(h, dev_num);
	printf("add=%s\n", err ? strerror(err) : "ok");
	fflush(stdout);
	if (err) {
		hostile_close(h);
		return 1;
	}
	if (hold) {
		/* Answers every message, completes nothing from now on. */
		pthread_mutex_lock(&h->lock);
		h->hold = true;
		pthread_mutex_unlock(&h->lock);
	}
	if (!ready_file(ready))
		hostile_die("%s", ready);
	wait_term();
	timed_remove(h, dev_num);
	hostile_close(h);
	return 0;
}

HOSTILE_SCENARIO(blk_stuck, "blk-stuck",
		 "--blk N:PATH [--queue-size Q] [--seg-max S] [--no-indirect] [--hold] [--ready-file F]: a blk device that cannot or will not finish; REMOVE on SIGTERM",
		 blk_stuck)

/* ---- virtio-net ---- */

/* Never called while the rings are held; a buffer would simply be consumed. */
static int64_t net_chain(struct vmsg_device *dev, struct vmsg_vq *vq,
			 const struct vq_chain *chain)
{
	(void)dev;
	(void)vq;
	(void)chain;
	return 0;
}

static const struct vmsg_device_ops net_ops = {
	.name = "net",
	.device_id = VIRTIO_ID_NET,
	.handle_chain = net_chain,
};

static struct vmsg_device *net_device(struct hostile *h, uint16_t dev_num, uint32_t qsize)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	struct vmsg_dev_opts o = { .queue_size = qsize };
	struct vmsg_device *dev;

	dev = vmsg_device_alloc(&net_ops, dev_num, 2,
				FEATURE(VIRTIO_NET_F_MAC) | FEATURE(VIRTIO_F_RING_RESET), &o);
	if (!dev)
		hostile_die("net device");
	dev->config_size = 8;	/* mac, status */
	memcpy(dev->config, mac, sizeof(mac));
	pthread_mutex_lock(&h->lock);
	if (backend_add_device(&h->be, dev))
		hostile_die("device %u registered twice", dev_num);
	pthread_mutex_unlock(&h->lock);
	return dev;
}

/*
 * The interface of a virtio device on a virtio-msg bus: QEMU's machine may
 * bring a virtio-net of its own (on PCI).
 */
static bool net_ifname(char *name, size_t len)
{
	char link[PATH_MAX], target[PATH_MAX];
	struct dirent *d;
	bool found = false;
	DIR *dir;

	dir = opendir("/sys/class/net");
	if (!dir)
		return false;
	while (!found && (d = readdir(dir))) {
		if (d->d_name[0] == '.' || strlen(d->d_name) >= len)
			continue;
		snprintf(link, sizeof(link), "/sys/class/net/%s/device", d->d_name);
		if (!realpath(link, target) || !strstr(target, "/virtio-msg-bus"))
			continue;
		memcpy(name, d->d_name, strlen(d->d_name) + 1);
		found = true;
	}
	closedir(dir);
	return found;
}

static int ethtool(int sock, const char *ifname, void *cmd)
{
	struct ifreq ifr = { 0 };

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = cmd;
	return ioctl(sock, SIOCETHTOOL, &ifr) ? errno : 0;
}

static void print_ring(int sock, const char *ifname, const char *what)
{
	struct ethtool_ringparam r = { .cmd = ETHTOOL_GRINGPARAM };
	int err = ethtool(sock, ifname, &r);

	if (err)
		printf("%s_get=%s\n", what, strerror(err));
	else
		printf("%s_rx=%u %s_rx_max=%u\n", what, r.rx_pending, what, r.rx_max_pending);
}

static int net_resize(struct hostile *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "net", required_argument, NULL, 'N' },
		{ "queue-size", required_argument, NULL, 'q' },
		{ "ring", required_argument, NULL, 'r' },
		{ "vanish", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned int rings[8], nrings = 0, i;
	struct ifreq ifr = { 0 };
	uint16_t dev_num = 1;
	uint32_t qsize = 8;
	bool vanish = false;
	char ifname[IFNAMSIZ];
	int c, err, sock;

	hostile_open(h);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'N':
			dev_num = hostile_num(optarg);
			break;
		case 'q':
			qsize = hostile_num(optarg);
			break;
		case 'r':
			if (nrings == sizeof(rings) / sizeof(rings[0]))
				return 2;
			rings[nrings++] = hostile_num(optarg);
			break;
		case 'V':
			vanish = true;
			break;
		default:
			return 2;
		}
	}
	net_device(h, dev_num, qsize);
	/* Receive buffers stay with the device: the rx ring is full. */
	h->hold = true;
	hostile_serve_start(h);
	err = hostile_add(h, dev_num);
	printf("add=%s\n", err ? strerror(err) : "ok");
	fflush(stdout);
	if (err) {
		hostile_close(h);
		return 1;
	}
	sock = socket(AF_INET, SOCK_DGRAM, 0);
	if (sock < 0)
		hostile_die("socket");
	if (!net_ifname(ifname, sizeof(ifname))) {
		printf("ifname=none\n");
		timed_remove(h, dev_num);
		hostile_close(h);
		return 1;
	}
	printf("ifname=%s\n", ifname);
	/* Up: virtio_net fills the rx ring. */
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr))
		hostile_die("SIOCGIFFLAGS");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr))
		hostile_die("SIOCSIFFLAGS");
	print_ring(sock, ifname, "before");
	for (i = 0; i < nrings; i++) {
		struct ethtool_ringparam r = { .cmd = ETHTOOL_GRINGPARAM };

		err = ethtool(sock, ifname, &r);
		if (!err) {
			r.cmd = ETHTOOL_SRINGPARAM;
			r.rx_pending = rings[i];
			err = ethtool(sock, ifname, &r);
		}
		printf("resize_%u=%s\n", rings[i], err ? strerror(err) : "ok");
		print_ring(sock, ifname, "after");
		fflush(stdout);
		/* Let virtio_net refill the ring and kick. */
		usleep(300 * 1000);
	}
	close(sock);
	if (vanish) {
		/* The device goes with its rx ring full: the kernel fails it. */
		printf("vanished=1\n");
		fflush(stdout);
		hostile_close(h);
		return 0;
	}
	timed_remove(h, dev_num);
	hostile_close(h);
	return 0;
}

HOSTILE_SCENARIO(net_resize, "net-resize",
		 "[--net N] [--queue-size Q] [--ring R]... [--vanish]: resize a virtio-net rx ring with SIOCETHTOOL, then REMOVE (or go away)",
		 net_resize)

/* ---- shared memory regions ---- */

static uint32_t shm_addr, shm_len;

/* GET_SHM: every region exists, at the address the scenario was told. */
static void shm_answer(struct hostile *h, struct vmsg_msg *m)
{
	struct virtio_msg_get_shm_resp *r = (void *)m->payload;

	(void)h;
	if (m->msg_id != VIRTIO_MSG_GET_SHM)
		return;
	r->address = htole32(shm_addr);
	r->length = htole32(shm_len);
	m->payload_len = sizeof(*r);
}

static const struct vmsg_device_ops fs_ops = {
	.name = "fs",
	.device_id = VIRTIO_ID_FS,
	.handle_chain = net_chain,
};

static int shm_region(struct hostile *h, int argc, char **argv)
{
	struct vmsg_dev_opts o = { .queue_size = 8 };
	const char *ready = NULL;
	struct vmsg_device *dev;
	uint16_t dev_num = 1;
	int err;

	if (argc == 5 && !strcmp(argv[1], "--ready-file")) {
		ready = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc != 3)
		return 2;
	shm_addr = hostile_num(argv[1]);
	shm_len = hostile_num(argv[2]);
	hostile_open(h);
	/* virtio-fs: a tag, one request queue besides the high-priority one. */
	dev = vmsg_device_alloc(&fs_ops, dev_num, 2, 0, &o);
	if (!dev)
		hostile_die("fs device");
	dev->config_size = 40;
	memcpy(dev->config, "hostile", 7);
	put_le32(dev, 36, 1);
	pthread_mutex_lock(&h->lock);
	if (backend_add_device(&h->be, dev))
		hostile_die("device registered twice");
	pthread_mutex_unlock(&h->lock);
	h->answer_hook = shm_answer;
	h->hold = true;
	block_term();
	hostile_serve_start(h);
	err = hostile_add(h, dev_num);
	printf("add=%s\n", err ? strerror(err) : "ok");
	fflush(stdout);
	if (!err) {
		if (!ready_file(ready))
			hostile_die("%s", ready);
		wait_term();
		timed_remove(h, dev_num);
	}
	hostile_close(h);
	return err ? 1 : 0;
}

HOSTILE_SCENARIO(shm_region, "shm-region",
		 "[--ready-file F] ADDR LEN: a virtio-fs device whose GET_SHM reports region ADDR+LEN; REMOVE on SIGTERM",
		 shm_region)
