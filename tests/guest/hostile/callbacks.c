// SPDX-License-Identifier: GPL-2.0-only
/*
 * The "callbacks" group: a backend that races the kernel's used-buffer
 * path and its teardown, as the UAPI lets any backend do.
 *
 *   used-race-call   virtio-rng with 4 ring entries, kick and call eventfds
 *                    bound; the serving thread completes buffers and
 *                    signals the call eventfd, two more threads on other
 *                    CPUs signal it spuriously, while /dev/hwrng is read.
 *   used-race-event  the same, the two threads sending EVENT_USED.
 *   remove-race      ADD (served rng) and REMOVE in a loop; another thread
 *                    keeps rebinding a kick eventfd (each rebind waits for
 *                    an RCU grace period under the bus's binding lock) and
 *                    the backend closes its message node right after it
 *                    answered the removal's last message, or a little
 *                    later, sweeping the removal's teardown.
 *
 * Spurious used notifications are allowed: a device may notify whenever
 * it likes, and the driver finds nothing new.  The kernel must neither
 * run a queue's used path on two CPUs at once nor let a work item of a
 * device outlive it.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <linux/virtio_config.h>

#include "hostile.h"

#define CB_DEV		1
#define RNG_SYSFS	"/sys/class/misc/hw_random/"

/* A racing thread on a CPU of its own, if the machine has one. */
static void cb_pin(unsigned int cpu)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	if (ncpu < 1)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu % ncpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* Makes the virtio-rng the source that /dev/hwrng reads. */
static int cb_select_rng(void)
{
	char avail[512], *tok, *save;
	FILE *f = fopen(RNG_SYSFS "rng_available", "r");
	int ret = -1;

	if (!f)
		return -1;
	if (!fgets(avail, sizeof(avail), f))
		avail[0] = '\0';
	fclose(f);
	avail[strcspn(avail, "\n")] = '\0';
	for (tok = strtok_r(avail, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (strncmp(tok, "virtio_rng.", 11))
			continue;
		f = fopen(RNG_SYSFS "rng_current", "w");
		if (f) {
			ret = fputs(tok, f) < 0 ? -1 : 0;
			if (fclose(f))
				ret = -1;
		}
		break;
	}
	return ret;
}

static void cb_print_bus(struct hostile *h)
{
	struct virtio_msg_lb_info info;

	if (ioctl(h->lb, VIRTIO_MSG_LB_IOC_INFO, &info))
		hostile_die("INFO");
	printf("pool_in_use=%llu num_devices=%u\n", (unsigned long long)info.pool_in_use,
	       info.num_devices);
}

/* ---- used-race-call, used-race-event ---- */

struct cb_race {
	struct hostile *h;
	int call;
	bool by_event;
	int stop;
	int reader_done;
	int reader_err;
	unsigned long long bytes;
};

struct cb_spurious {
	struct cb_race *r;
	unsigned int cpu;
	unsigned long sent;
};

/* Says "used buffers" when there are none, as fast as it can. */
static void *cb_spurious_thread(void *arg)
{
	struct cb_spurious *s = arg;
	struct cb_race *r = s->r;

	cb_pin(s->cpu);
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		if (r->by_event ? !hostile_send_used(r->h, CB_DEV, 0) : !eventfd_write(r->call, 1))
			s->sent++;
	}
	return NULL;
}

static void *cb_reader_thread(void *arg)
{
	struct cb_race *r = arg;
	uint8_t buf[64];
	ssize_t n;
	int fd;

	cb_pin(3);
	fd = open("/dev/hwrng", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r->reader_err = errno;
	} else {
		while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
			n = read(fd, buf, sizeof(buf));
			if (n <= 0) {
				r->reader_err = n ? errno : EIO;
				break;
			}
			__atomic_fetch_add(&r->bytes, n, __ATOMIC_RELAXED);
		}
		close(fd);
	}
	__atomic_store_n(&r->reader_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Waits up to @ms for the reader; whether it finished. */
static bool cb_reader_wait(struct cb_race *r, uint64_t ms)
{
	uint64_t end = hostile_now_ms() + ms;

	while (!__atomic_load_n(&r->reader_done, __ATOMIC_ACQUIRE) && hostile_now_ms() < end)
		usleep(10000);
	return __atomic_load_n(&r->reader_done, __ATOMIC_ACQUIRE);
}

static int cb_used_race(struct hostile *h, int argc, char **argv, bool by_event)
{
	struct cb_race r = { .h = h, .by_event = by_event };
	struct cb_spurious sp[2] = { { .r = &r, .cpu = 1 }, { .r = &r, .cpu = 2 } };
	unsigned long secs = argc > 1 ? hostile_num(argv[1]) : 4;
	struct hostile_vring *v;
	pthread_t st[2], rt;
	bool finished;
	int err, i;

	/* The serving thread inherits CPU 0; the racers take the others. */
	cb_pin(0);
	hostile_open(h);
	h->eventfd = true;
	hostile_rng(h, CB_DEV, 4);
	hostile_serve_start(h);
	err = hostile_add(h, CB_DEV);
	if (err) {
		printf("add=%s\n", strerror(err));
		hostile_close(h);
		return 2;
	}
	v = hostile_vring(h, CB_DEV, 0);
	if (!v || v->call < 0 || cb_select_rng()) {
		fprintf(stderr, "vmsg-hostile: no call eventfd bound or no virtio_rng\n");
		hostile_remove(h, CB_DEV);
		hostile_close(h);
		return 2;
	}
	r.call = v->call;

	if (pthread_create(&rt, NULL, cb_reader_thread, &r))
		hostile_die("pthread_create");
	for (i = 0; i < 2; i++)
		if (pthread_create(&st[i], NULL, cb_spurious_thread, &sp[i]))
			hostile_die("pthread_create");
	cb_reader_wait(&r, secs * 1000);
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 2; i++)
		pthread_join(st[i], NULL);
	/* A reader of a dead queue waits for ever; REMOVE wakes it. */
	finished = cb_reader_wait(&r, 20000);
	printf("spurious=%lu %lu\n", sp[0].sent, sp[1].sent);
	printf("read_bytes=%llu\n", r.bytes);
	printf("reader=%s\n", finished ? (r.reader_err ? strerror(r.reader_err) : "finished") :
	       "stuck");

	err = hostile_remove(h, CB_DEV);
	printf("remove=%s\n", err ? strerror(err) : "ok");
	if (finished || cb_reader_wait(&r, 10000))
		pthread_join(rt, NULL);
	pthread_mutex_lock(&h->lock);
	printf("messages=%lu kicks=%lu calls=%lu\n", h->messages, h->kicks, h->calls);
	pthread_mutex_unlock(&h->lock);
	cb_print_bus(h);
	hostile_close(h);
	/* Nothing spurious went out, or the serving thread never called: no race. */
	return sp[0].sent && sp[1].sent && h->calls ? 0 : 1;
}

static int cb_used_race_call(struct hostile *h, int argc, char **argv)
{
	return cb_used_race(h, argc, argv, false);
}

static int cb_used_race_event(struct hostile *h, int argc, char **argv)
{
	return cb_used_race(h, argc, argv, true);
}

HOSTILE_SCENARIO(used_race_call, "used-race-call",
		 "[SECONDS]: rng of 4 entries read while 2 threads signal its call eventfd",
		 cb_used_race_call)
HOSTILE_SCENARIO(used_race_event, "used-race-event",
		 "[SECONDS]: rng of 4 entries read while 2 threads send EVENT_USED",
		 cb_used_race_event)

/* ---- remove-race ---- */

struct cb_removal {
	struct hostile *h;
	int removing;
	int acked;		/* the removal's ACKNOWLEDGE was answered */
	int removed;
	int remove_err;
	bool close_at_ack;	/* close right after the answer, in the hook */
	int stop;
	int fds[2];
	unsigned long rebinds;
};

/* virtio_dev_remove() writes ACKNOWLEDGE last: nothing is asked after it. */
static enum hostile_verdict cb_removal_hook(struct hostile *h, struct vmsg_msg *m)
{
	struct cb_removal *c = h->priv;
	const struct virtio_msg_status *st = (const void *)m->payload;

	if (!__atomic_load_n(&c->removing, __ATOMIC_ACQUIRE) || (m->type & VIRTIO_MSG_TYPE_BUS) ||
	    m->msg_id != VIRTIO_MSG_SET_DEVICE_STATUS || m->payload_len < sizeof(*st) ||
	    le32toh(st->status) != VIRTIO_CONFIG_S_ACKNOWLEDGE)
		return HOSTILE_ANSWER;
	__atomic_store_n(&c->acked, 1, __ATOMIC_RELEASE);
	return c->close_at_ack ? HOSTILE_ANSWER_CLOSE : HOSTILE_ANSWER;
}

static void *cb_remove_thread(void *arg)
{
	struct cb_removal *c = arg;

	/* Off the serving CPU: the removal and the close race for real. */
	cb_pin(2);
	__atomic_store_n(&c->removing, 1, __ATOMIC_RELEASE);
	c->remove_err = hostile_remove(c->h, CB_DEV);
	__atomic_store_n(&c->removed, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Replaces a bound kick eventfd again and again: each replacement waits
 * for an RCU grace period under the lock that also unpublishes a device.
 * Queue 1 does not exist on a virtio-rng: nothing kicks through it.
 */
static void *cb_rebind_thread(void *arg)
{
	struct cb_removal *c = arg;
	unsigned int i = 0;

	cb_pin(1);
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		if (!hostile_bind(c->h, CB_DEV, 1, false, c->fds[i++ & 1]))
			c->rebinds++;
		else
			usleep(100);
	}
	return NULL;
}

/* The last close took the pool back: map it afresh for the next device. */
static void cb_remap(struct hostile *h)
{
	munmap(h->map, h->map_len);
	h->map = mmap(NULL, h->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, h->lb, 0);
	if (h->map == MAP_FAILED)
		hostile_die("mmap of the pool");
	h->be.pool.base = h->map;
}

static int cb_remove_race(struct hostile *h, int argc, char **argv)
{
	unsigned long iters = argc > 1 ? hostile_num(argv[1]) : 100;
	unsigned long secs = argc > 2 ? hostile_num(argv[2]) : 90;
	uint64_t end = hostile_now_ms() + secs * 1000;
	struct cb_removal c = { .h = h };
	unsigned long it, acked = 0;
	pthread_t rt, ct;
	int err = 0;

	cb_pin(0);
	hostile_open(h);
	hostile_rng(h, CB_DEV, 64);
	h->priv = &c;
	h->hook = cb_removal_hook;
	c.fds[0] = eventfd(0, EFD_CLOEXEC);
	c.fds[1] = eventfd(0, EFD_CLOEXEC);
	if (c.fds[0] < 0 || c.fds[1] < 0)
		hostile_die("eventfd");
	if (pthread_create(&rt, NULL, cb_rebind_thread, &c))
		hostile_die("pthread_create");

	for (it = 0; it < iters && hostile_now_ms() < end; it++) {
		/* Sweeps the close over the removal's teardown: 0-3.5 ms late. */
		unsigned int delay_us = (it % 8) * 500;

		if (it) {
			hostile_reopen_msg(h);
			cb_remap(h);
		}
		__atomic_store_n(&c.removing, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&c.acked, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&c.removed, 0, __ATOMIC_RELEASE);
		c.close_at_ack = !delay_us;
		hostile_serve_start(h);
		err = hostile_add(h, CB_DEV);
		if (err) {
			printf("add=%s iteration=%lu\n", strerror(err), it);
			break;
		}
		if (pthread_create(&ct, NULL, cb_remove_thread, &c))
			hostile_die("pthread_create");
		while (!__atomic_load_n(&c.acked, __ATOMIC_ACQUIRE) &&
		       !__atomic_load_n(&c.removed, __ATOMIC_ACQUIRE))
			usleep(200);
		if (__atomic_load_n(&c.acked, __ATOMIC_ACQUIRE))
			acked++;
		if (delay_us)
			usleep(delay_us);
		/* Stops the serving thread once the answer is out, then closes. */
		hostile_close_msg(h);
		pthread_join(ct, NULL);
		if (c.remove_err) {
			printf("remove=%s iteration=%lu\n", strerror(c.remove_err), it);
			err = c.remove_err;
			break;
		}
	}
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
	pthread_join(rt, NULL);
	printf("iterations=%lu closed_after_ack=%lu rebinds=%lu\n", it, acked, c.rebinds);
	if (err)
		hostile_remove(h, CB_DEV);
	cb_print_bus(h);
	hostile_close(h);
	close(c.fds[0]);
	close(c.fds[1]);
	if (err)
		return 2;
	/* Never closed at the end of a removal, or nothing rebound: no race. */
	return acked && c.rebinds ? 0 : 1;
}

HOSTILE_SCENARIO(remove_race, "remove-race",
		 "[ITERATIONS [SECONDS]]: ADD+REMOVE rng, kick rebound, node closed at the end",
		 cb_remove_race)
