// SPDX-License-Identifier: GPL-2.0-only
/*
 * One thread per enabled virtqueue (when backend.threaded).
 *
 * A worker sleeps in read() on its kick eventfd and runs vq_process() for
 * every wake-up: all available buffers, however many kicks it took.  The
 * kick eventfd is signalled
 *  - by the kernel, when it is bound with VIRTIO_MSG_LB_IOC_SET_VRING_KICK
 *    (no EVENT_AVAIL message then);
 *  - by the serving thread, for every EVENT_AVAIL message it reads (no
 *    binding, --no-eventfd, or a kernel that still sends some);
 *  - by vq_worker_start() (the first pass after DRIVER_OK or SET_VQUEUE)
 *    and vq_worker_stop().
 * Completions are signalled on the call eventfd when it is bound with
 * VIRTIO_MSG_LB_IOC_SET_VRING_CALL, as EVENT_USED messages otherwise.
 *
 * Lifetime: the serving thread starts a worker and stops (joins) it before
 * it changes the queue's ring state: RESET_VQUEUE, SET_VQUEUE, device reset
 * and device removal all go through vq_reset(), which stops it.  The
 * eventfds live as long as our device; they are bound again at every
 * SET_VQUEUE, because the kernel's bindings go with the kernel's device,
 * and someone else may have removed and re-added that one (same number,
 * new device, no bindings) while we kept serving it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "backend.h"

struct vq_worker {
	struct vmsg_device *dev;
	struct vmsg_vq *vq;
	pthread_t thread;
	bool running;		/* serving thread only */
	bool stop;		/* atomic */
	int kick_fd;
	int call_fd;		/* -1 unless bound */
};

static __thread bool in_worker;

bool vq_worker_self(void)
{
	return in_worker;
}

static void *worker_main(void *arg)
{
	struct vq_worker *w = arg;
	eventfd_t n;

	in_worker = true;
	for (;;) {
		if (eventfd_read(w->kick_fd, &n) && errno != EINTR && errno != EAGAIN) {
			vmsg_log("device %u vq %u: reading the kick eventfd: %s", w->dev->dev_num,
				 w->vq->index, strerror(errno));
			break;
		}
		if (__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE))
			break;
		if (w->vq->enabled)
			vq_process(w->dev, w->vq);
	}
	return NULL;
}

/* Binding failures are normal on kernels without VIRTIO_MSG_LB_F_VRING_FDS. */
static bool bind_fd(struct vmsg_device *dev, struct vmsg_vq *vq, bool call, int fd)
{
	struct backend *be = dev->be;
	int err;

	err = be->set_vring_fd(be, dev->dev_num, vq->index, call, fd);
	if (!err) {
		vmsg_info("device %u vq %u: %s eventfd bound", dev->dev_num, vq->index,
			  call ? "call" : "kick");
		return true;
	}
	if (!__atomic_exchange_n(&be->vring_fd_failed, true, __ATOMIC_RELAXED))
		vmsg_log("device %u vq %u: binding the %s eventfd failed (%s); %s",
			 dev->dev_num, vq->index, call ? "call" : "kick", strerror(-err),
			 "such queues use messages");
	else
		vmsg_info("device %u vq %u: binding the %s eventfd failed (%s)", dev->dev_num,
			  vq->index, call ? "call" : "kick", strerror(-err));
	return false;
}

static struct vq_worker *worker_create(struct vmsg_device *dev, struct vmsg_vq *vq)
{
	struct vq_worker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->dev = dev;
	w->vq = vq;
	w->call_fd = -1;
	/* Blocking: the worker sleeps in read(). */
	w->kick_fd = eventfd(0, EFD_CLOEXEC);
	if (w->kick_fd < 0) {
		free(w);
		return NULL;
	}
	return w;
}

/* (Re)binds both eventfds; the worker is not running. */
static void worker_bind(struct vq_worker *w)
{
	struct vmsg_device *dev = w->dev;

	if (!dev->be->set_vring_fd)
		return;
	/* A kick fd that fails to bind still carries the EVENT_AVAIL kicks. */
	bind_fd(dev, w->vq, false, w->kick_fd);
	if (w->call_fd < 0)
		w->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->call_fd >= 0 && !bind_fd(dev, w->vq, true, w->call_fd)) {
		close(w->call_fd);
		w->call_fd = -1;
	}
}

int vq_worker_prepare(struct vmsg_device *dev, struct vmsg_vq *vq)
{
	if (!vq->worker) {
		vq->worker = worker_create(dev, vq);
		if (!vq->worker)
			return -errno;
	}
	worker_bind(vq->worker);
	return 0;
}

int vq_worker_start(struct vmsg_device *dev, struct vmsg_vq *vq)
{
	struct vq_worker *w;
	int err;

	/* Bound at SET_VQUEUE already, unless it had no worker then. */
	if (!vq->worker) {
		err = vq_worker_prepare(dev, vq);
		if (err)
			return err;
	}
	w = vq->worker;
	if (!w->running) {
		__atomic_store_n(&w->stop, false, __ATOMIC_RELEASE);
		err = pthread_create(&w->thread, NULL, worker_main, w);
		if (err) {
			vmsg_log("device %u vq %u: cannot start its thread: %s", dev->dev_num,
				 vq->index, strerror(err));
			return -err;
		}
		w->running = true;
		vmsg_info("device %u vq %u: worker started", dev->dev_num, vq->index);
	}
	/* The first pass: buffers may have been made available before. */
	vq_worker_kick(vq);
	return 0;
}

bool vq_worker_running(const struct vmsg_vq *vq)
{
	return vq->worker && vq->worker->running;
}

void vq_worker_kick(struct vmsg_vq *vq)
{
	if (eventfd_write(vq->worker->kick_fd, 1))
		vmsg_log("vq %u: signalling the kick eventfd: %s", vq->index, strerror(errno));
}

void vq_worker_stop(struct vmsg_vq *vq)
{
	struct vq_worker *w = vq->worker;

	if (!w || !w->running)
		return;
	__atomic_store_n(&w->stop, true, __ATOMIC_RELEASE);
	vq_worker_kick(vq);
	pthread_join(w->thread, NULL);
	w->running = false;
	vmsg_info("device %u vq %u: worker stopped", w->dev->dev_num, vq->index);
}

void vq_worker_free(struct vmsg_vq *vq)
{
	struct vq_worker *w = vq->worker;

	if (!w)
		return;
	vq_worker_stop(vq);
	/*
	 * No unbinding: the device is gone from the bus (REMOVE) or about to
	 * go with our file descriptors, and the kernel holds its own
	 * references to the eventfds.
	 */
	close(w->kick_fd);
	if (w->call_fd >= 0)
		close(w->call_fd);
	free(w);
	vq->worker = NULL;
}

bool vq_worker_stopping(const struct vmsg_vq *vq)
{
	return vq->worker && __atomic_load_n(&vq->worker->stop, __ATOMIC_ACQUIRE);
}

bool vq_worker_call(struct vmsg_vq *vq)
{
	struct vq_worker *w = vq->worker;

	if (!w || w->call_fd < 0)
		return false;
	if (!eventfd_write(w->call_fd, 1))
		return true;
	vmsg_log("device %u vq %u: signalling the call eventfd: %s; sending EVENT_USED",
		 w->dev->dev_num, vq->index, strerror(errno));
	return false;
}

const struct vq_worker_ops vq_worker_ops = {
	.prepare = vq_worker_prepare,
	.start = vq_worker_start,
	.stop = vq_worker_stop,
	.free = vq_worker_free,
	.running = vq_worker_running,
	.kick = vq_worker_kick,
	.stopping = vq_worker_stopping,
	.call = vq_worker_call,
	.self = vq_worker_self,
};
