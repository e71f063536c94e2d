// SPDX-License-Identifier: GPL-2.0-only
/*
 * What a device that fails, or lies, does to the transport's fail path and
 * to the bounce buffers (issue 17, items 3, 4 and 5):
 *
 *  stale-read      a blk device that reports reads done without writing
 *                  them: the reader must get its own bytes back, never
 *                  those of another request.
 *  indirect-bomb   an rng buffer whose descriptor is rewritten to an
 *                  indirect table of 65536 entries, then the node closed:
 *                  the fail path must stay bounded.
 *  late-status     a blk device under O_DIRECT load whose GET_DEVICE_STATUS
 *                  is answered after the timeout while another thread keeps
 *                  completing its ring: the transport and the backend must
 *                  never both write the used ring.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include "hostile.h"

#define FP_SECTOR	512

static void fp_sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void fp_ready(const char *ready)
{
	FILE *f;

	if (!ready)
		return;
	f = fopen(ready, "w");
	if (!f || fclose(f))
		hostile_die("%s", ready);
}

/* The first /dev/vdX that appears within @ms, or exits. */
static void fp_find_disk(char *path, size_t len, unsigned int ms)
{
	uint64_t end = hostile_now_ms() + ms;
	struct dirent *de;
	DIR *d;

	do {
		d = opendir("/sys/block");
		while (d && (de = readdir(d))) {
			if (strncmp(de->d_name, "vd", 2))
				continue;
			snprintf(path, len, "/dev/%.32s", de->d_name);
			closedir(d);
			if (!access(path, R_OK | W_OK))
				return;
			d = NULL;
			break;
		}
		if (d)
			closedir(d);
		fp_sleep_ms(50);
	} while (hostile_now_ms() < end);
	fprintf(stderr, "vmsg-hostile: no virtio disk appeared\n");
	exit(2);
}

/* ---- stale-read ------------------------------------------------------ */

/* Reads from this sector on are "done" without a byte written. */
#define STALE_FROM_SECTOR	2048
static struct vmsg_device_ops stale_ops;
static const struct vmsg_device_ops *stale_real_ops;

static int64_t stale_handle_chain(struct vmsg_device *dev, struct vmsg_vq *vq,
				  const struct vq_chain *chain)
{
	struct virtio_blk_outhdr hdr;
	uint8_t status = VIRTIO_BLK_S_OK;

	if (chain->out_len >= sizeof(hdr) && chain->in_len >= 1) {
		vq_chain_read(chain, 0, &hdr, sizeof(hdr));
		if (le32toh(hdr.type) == VIRTIO_BLK_T_IN &&
		    le64toh(hdr.sector) >= STALE_FROM_SECTOR) {
			/* Only the status byte; the data is left as it is. */
			vq_chain_write(chain, chain->in_len - 1, &status, 1);
			return (int64_t)chain->in_len;
		}
	}
	return stale_real_ops->handle_chain(dev, vq, chain);
}

/* own: the reader's bytes came back; marker: the other request's. */
static const char *stale_verdict(const unsigned char *buf, const unsigned char *marker,
				 unsigned char own)
{
	size_t i;

	if (!memcmp(buf, marker, 4096))
		return "marker";
	if (memmem(buf, 4096, marker, 64))
		return "marker-part";
	for (i = 0; i < 4096 && buf[i] == own; i++)
		;
	return i == 4096 ? "own" : "other";
}

static int stale_read(struct hostile *h, int argc, char **argv)
{
	unsigned char *marker, *buf;
	struct vmsg_device *dev;
	const char *verdict;
	char disk[64];
	size_t i;
	int fd, err;

	if (argc != 2)
		return 2;
	hostile_open(h);
	dev = hostile_blk(h, 1, argv[1], 64);
	stale_real_ops = dev->ops;
	stale_ops = *dev->ops;
	stale_ops.handle_chain = stale_handle_chain;
	dev->ops = &stale_ops;
	hostile_serve_start(h);
	err = hostile_add(h, 1);
	if (err) {
		fprintf(stderr, "vmsg-hostile: ADD: %s\n", strerror(err));
		return 1;
	}
	fp_find_disk(disk, sizeof(disk), 10000);

	/* Both buffers live to the end: no page of the marker is reused. */
	if (posix_memalign((void **)&marker, 4096, 4096) ||
	    posix_memalign((void **)&buf, 4096, 4096))
		hostile_die("posix_memalign");
	for (i = 0; i < 4096; i++)
		marker[i] = "STALE-MARKER-of-another-request "[i % 32];

	fd = open(disk, O_RDWR | O_DIRECT);
	if (fd < 0)
		hostile_die("%s", disk);
	if (pwrite(fd, marker, 4096, 0) != 4096)
		hostile_die("O_DIRECT write");
	memset(buf, 'r', 4096);
	if (pread(fd, buf, 4096, STALE_FROM_SECTOR * FP_SECTOR) != 4096)
		hostile_die("O_DIRECT read");
	verdict = stale_verdict(buf, marker, 'r');
	printf("direct=%s\n", verdict);
	close(fd);

	/* Through the page cache: the marker once more, then a cold read. */
	fd = open(disk, O_RDWR | O_DIRECT);
	if (fd < 0 || pwrite(fd, marker, 4096, 0) != 4096)
		hostile_die("O_DIRECT write");
	close(fd);
	fd = open(disk, O_RDONLY);
	if (fd < 0)
		hostile_die("%s", disk);
	if (ioctl(fd, BLKFLSBUF, 0))
		hostile_die("BLKFLSBUF");
	if (pread(fd, buf, 4096, (STALE_FROM_SECTOR + 64) * FP_SECTOR) != 4096)
		hostile_die("read");
	/* A page cache page holds whatever it held: only the marker is wrong. */
	verdict = stale_verdict(buf, marker, 0);
	printf("cached=%s\n", !strncmp(verdict, "marker", 6) ? verdict : "not-marker");
	close(fd);

	err = hostile_remove(h, 1);
	if (err)
		fprintf(stderr, "vmsg-hostile: REMOVE: %s\n", strerror(err));
	hostile_close(h);
	return err ? 1 : 0;
}

HOSTILE_SCENARIO(stale_read, "stale-read",
		 "PATH: blk on PATH that reports reads from sector 2048 on without writing them",
		 stale_read)

/* ---- indirect-bomb --------------------------------------------------- */

#define BOMB_ENTRIES	65536u

static int indirect_bomb(struct hostile *h, int argc, char **argv)
{
	uint64_t table_addr, buf_addr, buf_len, start;
	struct vring_desc *table, *desc;
	struct vring_avail *avail;
	struct vmsg_vq *vq = NULL;
	unsigned int i, head;
	size_t pool = 0;
	bool gone = false;
	int err;

	(void)argc;
	(void)argv;
	hostile_open(h);
	pool = h->info.pool_size;
	if (pool < BOMB_ENTRIES * sizeof(*table) * 4) {
		fprintf(stderr, "vmsg-hostile: pool of %zu bytes too small\n", pool);
		return 2;
	}
	hostile_rng(h, 1, 8);
	h->hold = true;		/* the buffer the driver posts stays ours */
	hostile_serve_start(h);
	err = hostile_add(h, 1);
	if (err) {
		fprintf(stderr, "vmsg-hostile: ADD: %s\n", strerror(err));
		return 1;
	}
	/* virtio-rng posts a buffer when hwrng asks for early randomness. */
	start = hostile_now_ms();
	for (;;) {
		pthread_mutex_lock(&h->lock);
		vq = hostile_vq(h, 1, 0);
		avail = vq && vq->enabled ? (struct vring_avail *)vq->avail : NULL;
		if (avail && le16toh(__atomic_load_n(&avail->idx, __ATOMIC_ACQUIRE)))
			break;
		pthread_mutex_unlock(&h->lock);
		if (hostile_now_ms() - start > 10000) {
			fprintf(stderr, "vmsg-hostile: no rng buffer posted\n");
			return 1;
		}
		fp_sleep_ms(20);
	}
	head = le16toh(avail->ring[0]) % vq->size;
	desc = (struct vring_desc *)vq->desc;

	/*
	 * In the upper half of the pool, which one rng device leaves alone:
	 * a table of 65536 entries, each naming the same quarter of the pool
	 * as device-writable.  Poisoned as the table says, that is 256 GiB
	 * of a 16 MiB pool: minutes with interrupts off.
	 */
	table_addr = h->info.bus_addr_base + pool / 2;
	buf_addr = h->info.bus_addr_base + pool / 4 * 3;
	buf_len = pool / 4 < (64u << 20) ? pool / 4 : (64u << 20);
	table = hostile_ptr(h, table_addr, BOMB_ENTRIES * sizeof(*table));
	if (!table || !hostile_ptr(h, buf_addr, buf_len))
		hostile_die("pool layout");
	for (i = 0; i < BOMB_ENTRIES; i++) {
		table[i].addr = htole64(buf_addr);
		table[i].len = htole32(buf_len);
		table[i].flags = htole16(VRING_DESC_F_WRITE |
					 (i + 1 < BOMB_ENTRIES ? VRING_DESC_F_NEXT : 0));
		table[i].next = htole16(i + 1);
	}
	desc[head].addr = htole64(table_addr);
	desc[head].len = htole32(BOMB_ENTRIES * sizeof(*table));
	desc[head].flags = htole16(VRING_DESC_F_INDIRECT);
	pthread_mutex_unlock(&h->lock);

	/* The peer goes: the transport fails the buffer it held. */
	start = hostile_now_ms();
	hostile_close_msg(h);
	while (hostile_now_ms() - start < 60000) {
		DIR *d = opendir("/sys/bus/virtio/drivers/virtio_rng");
		struct dirent *de;

		gone = true;
		while (d && (de = readdir(d)))
			if (!strncmp(de->d_name, "virtio", 6))
				gone = false;
		if (d)
			closedir(d);
		if (gone)
			break;
		fp_sleep_ms(50);
	}
	printf("rng_gone=%d\n", gone);
	hostile_close(h);
	return 0;
}

HOSTILE_SCENARIO(indirect_bomb, "indirect-bomb",
		 ": rewrite a held rng buffer to a 65536-entry indirect table, close the node",
		 indirect_bomb)

/* ---- late-status ----------------------------------------------------- */

struct late {
	unsigned int delay_ms;
	const char *arm;	/* delay only once this file exists */
	bool late_done;		/* one late answer is enough */
	bool stop;
	unsigned long completer_rounds;
};

/*
 * GET_DEVICE_STATUS once the load runs (sysfs "status" reads it; the
 * shell creates the arm file first, probe reads it too): answer it late,
 * and meanwhile let the completer thread go on serving the ring.
 */
static enum hostile_verdict late_hook(struct hostile *h, struct vmsg_msg *m)
{
	struct late *l = h->priv;
	struct vmsg_device *dev;

	if ((m->type & VIRTIO_MSG_TYPE_BUS) || m->msg_id != VIRTIO_MSG_GET_DEVICE_STATUS ||
	    l->late_done)
		return HOSTILE_ANSWER;
	dev = backend_find_device(&h->be, m->dev_num);
	if (!dev || !(vmsg_dev_status(dev) & 4 /* DRIVER_OK */) ||
	    (l->arm && access(l->arm, F_OK)))
		return HOSTILE_ANSWER;
	l->late_done = true;
	pthread_mutex_unlock(&h->lock);
	fp_sleep_ms(l->delay_ms);
	pthread_mutex_lock(&h->lock);
	return HOSTILE_ANSWER;
}

/* A second hand on the rings: polls the queue and completes what it finds. */
static void *late_completer(void *arg)
{
	struct hostile *h = arg;
	struct late *l = h->priv;

	while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
		struct vmsg_device *dev;

		pthread_mutex_lock(&h->lock);
		dev = backend_find_device(&h->be, 1);
		if (dev && dev->num_vqs && dev->vqs[0].enabled && !dev->vqs[0].broken)
			vq_process(dev, &dev->vqs[0]);
		backend_run_deferred(&h->be);
		l->completer_rounds++;
		pthread_mutex_unlock(&h->lock);
		/* As often as it can: the race is with the transport's writes. */
		sched_yield();
	}
	return NULL;
}

static int late_status(struct hostile *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "ready-file", required_argument, NULL, 'R' },
		{ "arm-file", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	struct late l = { .delay_ms = 1500 };
	const char *ready = NULL;
	pthread_t completer;
	sigset_t term;
	int c, sig, err;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			l.delay_ms = hostile_num(optarg);
			break;
		case 'R':
			ready = optarg;
			break;
		case 'a':
			l.arm = optarg;
			break;
		default:
			return 2;
		}
	}
	if (optind != argc - 1)
		return 2;
	hostile_open(h);
	hostile_blk(h, 1, argv[optind], 64);
	h->priv = &l;
	h->hook = late_hook;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, NULL);
	hostile_serve_start(h);
	err = hostile_add(h, 1);
	if (err) {
		fprintf(stderr, "vmsg-hostile: ADD: %s\n", strerror(err));
		return 1;
	}
	if (pthread_create(&completer, NULL, late_completer, h))
		hostile_die("pthread_create");
	fp_ready(ready);
	sigwait(&term, &sig);
	__atomic_store_n(&l.stop, true, __ATOMIC_RELEASE);
	pthread_join(completer, NULL);
	err = hostile_remove(h, 1);
	if (err && err != ENODEV)
		fprintf(stderr, "vmsg-hostile: REMOVE: %s\n", strerror(err));
	printf("late=%d completer_rounds=%lu remove=%d\n", l.late_done, l.completer_rounds, err);
	hostile_close(h);
	return err && err != ENODEV ? 1 : 0;
}

HOSTILE_SCENARIO(late_status, "late-status",
		 "[--delay-ms N] [--ready-file F] [--arm-file F] PATH: blk, GET_DEVICE_STATUS late once F exists",
		 late_status)
