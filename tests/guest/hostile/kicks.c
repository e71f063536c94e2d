// SPDX-License-Identifier: GPL-2.0-only
/*
 * A backend that stops reading its message node while its devices go on
 * working: it serves the rng queue by polling the ring in the pool and
 * completes with EVENT_USED (writing the node is not reading it), so the
 * driver keeps adding buffers and kicking.  Every kick is an EVENT_AVAIL
 * the kernel must queue for a reader that does not come; with
 * VIRTIO_F_NOTIFICATION_DATA no two are identical.  The kernel must hold
 * a bounded number of them and stay responsive; when the backend reads
 * again it gets each queued kick once.
 *
 * "vmsg-hostile kicks --rng N [--queue-size Q] [--notification-data]
 * --ready-file F": serves normally until the queue is set up, stops
 * reading, creates F, and reads again on SIGUSR1, printing
 * "queued_kicks=N" (EVENT_AVAIL messages found queued) once the node is
 * drained; REMOVE and exit on SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_config.h>

#include "hostile.h"

struct kicks {
	struct vmsg_device *dev;
	unsigned long avail;		/* EVENT_AVAIL messages read */
	bool poll_stop;
};

static enum hostile_verdict kicks_hook(struct hostile *h, struct vmsg_msg *m)
{
	struct kicks *k = h->priv;

	if (!(m->type & VIRTIO_MSG_TYPE_BUS) && m->msg_id == VIRTIO_MSG_EVENT_AVAIL)
		k->avail++;
	return HOSTILE_ANSWER;
}

/* Serves the queue from the pool, as if kicks came by some other way. */
static void *kicks_poller(void *arg)
{
	struct hostile *h = arg;
	struct kicks *k = h->priv;

	for (;;) {
		pthread_mutex_lock(&h->lock);
		if (k->poll_stop) {
			pthread_mutex_unlock(&h->lock);
			return NULL;
		}
		if (k->dev->vqs[0].enabled)
			vq_process(k->dev, &k->dev->vqs[0]);
		pthread_mutex_unlock(&h->lock);
		usleep(200);
	}
}

static bool kicks_queue_ready(struct hostile *h, struct kicks *k)
{
	bool ready;

	pthread_mutex_lock(&h->lock);
	ready = k->dev->num_vqs && k->dev->vqs[0].enabled &&
		(vmsg_dev_status(k->dev) & VIRTIO_CONFIG_S_DRIVER_OK);
	pthread_mutex_unlock(&h->lock);
	return ready;
}

static int kicks(struct hostile *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rng", required_argument, NULL, 'r' },
		{ "queue-size", required_argument, NULL, 'q' },
		{ "notification-data", no_argument, NULL, 'n' },
		{ "ready-file", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	struct vmsg_dev_opts o = { .queue_size = 64 };
	struct kicks k = { 0 };
	const char *ready = NULL;
	unsigned long before, seen, now;
	uint16_t dev_num = 0;
	pthread_t poller;
	sigset_t sigs;
	unsigned int i;
	int c, sig, err;
	FILE *f;

	hostile_open(h);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			dev_num = hostile_num(optarg);
			break;
		case 'q':
			o.queue_size = hostile_num(optarg);
			break;
		case 'n':
			o.notification_data = true;
			break;
		case 'R':
			ready = optarg;
			break;
		default:
			return 2;
		}
	}
	if (!ready)
		return 2;
	k.dev = vmsg_rng_create(dev_num, &o);
	if (!k.dev)
		hostile_die("rng model");
	pthread_mutex_lock(&h->lock);
	if (backend_add_device(&h->be, k.dev))
		hostile_die("device %u registered twice", dev_num);
	h->priv = &k;
	h->hook = kicks_hook;
	pthread_mutex_unlock(&h->lock);

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	hostile_serve_start(h);
	err = hostile_add(h, dev_num);
	if (err) {
		fprintf(stderr, "vmsg-hostile: ADD %u: %s\n", dev_num, strerror(err));
		return 1;
	}
	for (i = 0; i < 1000 && !kicks_queue_ready(h, &k); i++)
		usleep(10000);
	if (i == 1000) {
		fprintf(stderr, "vmsg-hostile: the driver never set the queue up\n");
		return 1;
	}

	/* From here on nobody reads the node. */
	hostile_serve_stop(h);
	if (pthread_create(&poller, NULL, kicks_poller, h))
		hostile_die("pthread_create");
	f = fopen(ready, "w");
	if (!f || fclose(f))
		hostile_die("%s", ready);
	do {
		if (sigwait(&sigs, &sig))
			hostile_die("sigwait");
	} while (sig != SIGUSR1 && sig != SIGTERM);

	pthread_mutex_lock(&h->lock);
	k.poll_stop = true;
	before = k.avail;
	pthread_mutex_unlock(&h->lock);
	pthread_join(poller, NULL);
	/* Reads what the kernel kept: done when no kick came for 500 ms. */
	hostile_serve_start(h);
	do {
		pthread_mutex_lock(&h->lock);
		seen = k.avail;
		pthread_mutex_unlock(&h->lock);
		usleep(500000);
		pthread_mutex_lock(&h->lock);
		now = k.avail;
		pthread_mutex_unlock(&h->lock);
	} while (now != seen);
	printf("queued_kicks=%lu\n", now - before);
	fflush(stdout);
	while (sig != SIGTERM)
		if (sigwait(&sigs, &sig))
			hostile_die("sigwait");
	err = hostile_remove(h, dev_num);
	if (err && err != ENODEV)
		fprintf(stderr, "vmsg-hostile: REMOVE %u: %s\n", dev_num, strerror(err));
	hostile_close(h);
	return 0;
}

HOSTILE_SCENARIO(kicks, "kicks",
		 "--rng N [--queue-size Q] [--notification-data] --ready-file F: stop reading the node, SIGUSR1 reads it again",
		 kicks)
