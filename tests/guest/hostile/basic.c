// SPDX-License-Identifier: GPL-2.0-only
/*
 * The well-behaved baseline: serve devices correctly until SIGTERM, then
 * REMOVE them.  The other scenarios differ from this in one thing each;
 * the suite runs it first so that a failure there means the core, not
 * the kernel.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostile.h"

static int serve(struct hostile *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rng", required_argument, NULL, 'r' },
		{ "blk", required_argument, NULL, 'b' },
		{ "queue-size", required_argument, NULL, 'q' },
		{ "eventfd", no_argument, NULL, 'e' },
		{ "ready-file", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	uint16_t devs[VMSG_MAX_DEVICES];
	const char *ready = NULL;
	unsigned int n = 0, i;
	uint32_t qsize = 64;
	bool eventfd = false;
	char *colon;
	sigset_t term;
	FILE *f;
	int c, sig, err, ret = 0;

	hostile_open(h);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (n == VMSG_MAX_DEVICES && (c == 'r' || c == 'b'))
			return 2;
		switch (c) {
		case 'r':
			devs[n] = hostile_num(optarg);
			hostile_rng(h, devs[n++], qsize);
			break;
		case 'b':
			colon = strchr(optarg, ':');
			if (!colon)
				return 2;
			*colon = '\0';
			devs[n] = hostile_num(optarg);
			hostile_blk(h, devs[n++], colon + 1, qsize);
			break;
		case 'q':
			qsize = hostile_num(optarg);
			break;
		case 'e':
			eventfd = true;
			break;
		case 'R':
			ready = optarg;
			break;
		default:
			return 2;
		}
	}
	h->eventfd = eventfd;
	/* Blocked in every thread: the main one waits for it. */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, NULL);
	hostile_serve_start(h);
	for (i = 0; i < n; i++) {
		err = hostile_add(h, devs[i]);
		if (err) {
			fprintf(stderr, "vmsg-hostile: ADD %u: %s\n", devs[i], strerror(err));
			ret = 1;
		}
	}
	if (ready) {
		f = fopen(ready, "w");
		if (!f || fclose(f))
			hostile_die("%s", ready);
	}
	if (!ret)
		sigwait(&term, &sig);
	for (i = 0; i < n; i++) {
		err = hostile_remove(h, devs[i]);
		if (err && err != ENODEV)
			fprintf(stderr, "vmsg-hostile: REMOVE %u: %s\n", devs[i], strerror(err));
	}
	printf("messages=%lu kicks=%lu calls=%lu\n", h->messages, h->kicks, h->calls);
	hostile_close(h);
	return ret;
}

HOSTILE_SCENARIO(serve, "serve",
		 "[--queue-size N] [--eventfd] [--ready-file F] --rng N | --blk N:PATH ...: serve correctly",
		 serve)
