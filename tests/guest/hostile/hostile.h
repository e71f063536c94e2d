/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vmsg-hostile: the device side of the loopback bus as a hostile or merely
 * buggy backend behaves, for the tests (and later fuzzing) of the kernel.
 *
 * The core (core.c) is an ordinary peer built on tools/backend: it opens
 * the bus, maps the pool, serves the message node with the backend's
 * device models from a thread of its own and binds eventfds on request.
 * Scenarios, one file per group, bend it: a hook sees every message before
 * the backend does and may drop it, delay it or close the node after
 * answering it; scenario threads may rewrite the rings in the pool, signal
 * call eventfds or send events at any time, as a real hostile peer can.
 *
 * Each scenario registers itself with HOSTILE_SCENARIO() and is run as
 * "vmsg-hostile NAME [ARGS]".  It prints "key=value" result lines on
 * stdout and diagnostics on stderr; its exit status is 0 when it ran as
 * intended (what the kernel did is judged by the suite's shell checks).
 */
#ifndef VMSG_HOSTILE_H
#define VMSG_HOSTILE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

struct hostile;

struct hostile_scenario {
	const char *name;
	const char *help;	/* one line: arguments and what it does */
	int (*run)(struct hostile *h, int argc, char **argv);
	struct hostile_scenario *next;
};

void hostile_register(struct hostile_scenario *s);

#define HOSTILE_SCENARIO(id, name_, help_, fn_)					\
	static struct hostile_scenario hostile_sc_##id = {			\
		.name = name_, .help = help_, .run = fn_,			\
	};									\
	__attribute__((constructor)) static void hostile_reg_##id(void)	\
	{									\
		hostile_register(&hostile_sc_##id);				\
	}

/* What the hook decides for one message from the driver. */
enum hostile_verdict {
	HOSTILE_ANSWER,		/* let the backend handle it (after any delay) */
	HOSTILE_DROP,		/* never answer it */
	HOSTILE_ANSWER_CLOSE,	/* answer it, then close the message node */
};

/* The notification eventfds of one queue; -1 when not bound. */
struct hostile_vring {
	uint16_t dev_num;
	unsigned int index;
	int kick;
	int call;
};

#define HOSTILE_MAX_VRINGS	64

struct hostile {
	int lb;				/* /dev/virtio-msg-lb, -1 once closed */
	int msg;			/* /dev/virtio-msg-N, -1 once closed */
	struct virtio_msg_lb_info info;
	void *map;			/* the pool, mapped read-write */
	size_t map_len;
	struct backend be;
	uint8_t *rx, *tx;

	/*
	 * Held by the serving thread while it handles a message or a kick:
	 * take it to change devices or the hook's state consistently.  Ring
	 * memory is not under it: hostile threads write that when they like.
	 */
	pthread_mutex_t lock;

	/*
	 * Called by the serving thread for every message from the driver,
	 * decoded, before the backend sees it; under h->lock, which it may
	 * drop to sleep (a late answer).  NULL: answer everything.
	 */
	enum hostile_verdict (*hook)(struct hostile *h, struct vmsg_msg *m);
	/* Called with each answer, decoded, before it is sent; may rewrite it. */
	void (*answer_hook)(struct hostile *h, struct vmsg_msg *m);
	void *priv;			/* the scenario's */

	bool eventfd;			/* bind kick and call eventfds on SET_VQUEUE */
	bool hold;			/* never process available buffers */
	struct hostile_vring vrings[HOSTILE_MAX_VRINGS];
	unsigned int num_vrings;	/* only grows; read under h->lock */

	pthread_t server;
	bool serving;
	int stop_pipe[2];
	bool closed;			/* the node was closed by the hook's verdict */

	/* Counters, for the scenario's result lines (under h->lock). */
	unsigned long messages, kicks, calls, dropped;
};

/* Opens the bus and maps its pool; exits with status 2 if it cannot. */
void hostile_open(struct hostile *h);
/* Stops serving, closes everything still open. */
void hostile_close(struct hostile *h);
/*
 * Closes the message node: the kernel sees its peer go.  From another
 * thread this stops the serving thread first; the hook closes it with
 * HOSTILE_ANSWER_CLOSE instead.
 */
void hostile_close_msg(struct hostile *h);
/* Opens the message node again (a backend that comes back). */
void hostile_reopen_msg(struct hostile *h);

/* Device models of tools/backend, registered with the backend, not ADDed. */
struct vmsg_device *hostile_rng(struct hostile *h, uint16_t dev_num, uint32_t queue_size);
struct vmsg_device *hostile_blk(struct hostile *h, uint16_t dev_num, const char *path,
				uint32_t queue_size);

/* Starts and stops the serving thread (messages, kicks, call forwarding). */
void hostile_serve_start(struct hostile *h);
void hostile_serve_stop(struct hostile *h);
/*
 * Without the thread: serves what arrives for up to @timeout_ms, returns
 * the number of messages handled or -1 once the bus or node is gone.
 */
int hostile_serve_for(struct hostile *h, int timeout_ms);

/* VIRTIO_MSG_LB_IOC_ADD / _REMOVE: 0 or an errno.  Blocks; serve meanwhile. */
int hostile_add(struct hostile *h, uint16_t dev_num);
int hostile_remove(struct hostile *h, uint16_t dev_num);

/* The backend's view of a queue (ring pointers into the pool), or NULL. */
struct vmsg_vq *hostile_vq(struct hostile *h, uint16_t dev_num, unsigned int index);
/* The queue's eventfds, or NULL before SET_VQUEUE bound them. */
struct hostile_vring *hostile_vring(struct hostile *h, uint16_t dev_num, unsigned int index);
/* Rebinds a queue's kick (call false) or call eventfd to @fd (-1 unbinds). */
int hostile_bind(struct hostile *h, uint16_t dev_num, unsigned int index, bool call, int fd);

/* Sends a device->driver event as a raw message (EVENT_USED etc.). */
int hostile_send_used(struct hostile *h, uint16_t dev_num, unsigned int index);

/* Pointer into the pool for a bus address, or NULL if outside it. */
void *hostile_ptr(struct hostile *h, uint64_t addr, uint64_t len);

/* Reads a whole-number argument, or exits with status 2. */
unsigned long hostile_num(const char *s);
/* Milliseconds since an arbitrary start (CLOCK_MONOTONIC). */
uint64_t hostile_now_ms(void);

__attribute__((noreturn, format(printf, 1, 2)))
void hostile_die(const char *fmt, ...);

#endif /* VMSG_HOSTILE_H */
