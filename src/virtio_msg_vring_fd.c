// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-msg transport: virtqueue notifications through eventfds.
 *
 * When the device side runs in user space (the loopback bus), the data
 * path can bypass messages the way vhost does: per virtqueue, a kick
 * eventfd that the transport signals where it would send EVENT_AVAIL, and
 * a call eventfd that the backend signals where it would send EVENT_USED.
 *
 * The call side is a wait-queue entry on the eventfd, as KVM's irqfd is.
 * Its wakeup runs in the signaller's context under the eventfd's lock, so
 * the used-buffer path runs from an irq_work instead: in hard interrupt
 * context on the same CPU, like a device interrupt, and outside the
 * wakeup, where a driver callback that kicks again would have signalled
 * an eventfd from inside an eventfd wakeup (eventfd_signal() refuses).
 *
 * Lifetime: bindings are made and replaced under bus->vfd_lock, which the
 * core also takes to unpublish a device, so a binder never sees a device
 * being freed; they are all released with the device, after the last
 * irq_work ran.  Kicks read the kick context under RCU.  A call may come
 * at any time, for a queue that is gone too: vmsg_vq_interrupt() looks the
 * queue up under the lock that del_vqs() waits on.
 */
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/irq_work.h>
#include <linux/poll.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/virtio.h>

#include "virtio_msg_internal.h"
#include "virtio_msg_trace.h"

struct vmsg_vring_fd {
	struct virtio_msg_device *vmdev;
	unsigned int index;
	struct eventfd_ctx __rcu *kick;
	struct eventfd_ctx *call;
	wait_queue_entry_t wait;
	poll_table pt;
	struct irq_work used_work;
};

static struct vmsg_vring_fd *vmsg_vring_fd_get(struct virtio_msg_device *vmdev,
					       unsigned int index)
{
	/* Pairs with the releases in _slot(): a slot is seen initialised. */
	struct vmsg_vring_fd **vfds = smp_load_acquire(&vmdev->vfds);

	if (!vfds || index >= VMSG_MAX_VQS)
		return NULL;
	/* As above, for the slot itself. */
	return smp_load_acquire(&vfds[index]);
}

/* A call, in hard interrupt context like a device interrupt. */
static void vmsg_vring_fd_used(struct irq_work *work)
{
	struct vmsg_vring_fd *vfd = container_of(work, struct vmsg_vring_fd,
						 used_work);
	struct virtio_msg_device *vmdev = vfd->vmdev;

	atomic64_inc(&vmdev->stats.used);
	trace_virtio_msg_event(vmdev->bus->id, vmdev->dev_num,
			       VIRTIO_MSG_EVENT_USED, vfd->index, true);
	/* irq_work runs again on another CPU before it is done here. */
	vmsg_vq_interrupt(vmdev, vfd->index);
}

static int vmsg_vring_fd_wakeup(wait_queue_entry_t *wait, unsigned int mode,
				int sync, void *key)
{
	struct vmsg_vring_fd *vfd = container_of(wait, struct vmsg_vring_fd,
						 wait);
	u64 count;

	if (key_to_poll(key) & EPOLLIN) {
		/* Calls coalesce like interrupts: the count only says "some". */
		eventfd_ctx_do_read(vfd->call, &count);
		irq_work_queue(&vfd->used_work);
	}
	return 0;
}

static void vmsg_vring_fd_queue(struct file *file, wait_queue_head_t *wqh,
				poll_table *pt)
{
	struct vmsg_vring_fd *vfd = container_of(pt, struct vmsg_vring_fd, pt);

	add_wait_queue(wqh, &vfd->wait);
}

static void vmsg_vring_fd_unhook_call(struct vmsg_vring_fd *vfd)
{
	u64 count;

	if (!vfd->call)
		return;
	eventfd_ctx_remove_wait_queue(vfd->call, &vfd->wait, &count);
	irq_work_sync(&vfd->used_work);
	eventfd_ctx_put(vfd->call);
	vfd->call = NULL;
}

static int vmsg_vring_fd_set_call(struct vmsg_vring_fd *vfd, int fd)
{
	struct eventfd_ctx *ctx;
	__poll_t events;

	if (fd < 0) {
		vmsg_vring_fd_unhook_call(vfd);
		return 0;
	}

	CLASS(fd, f)(fd);
	if (fd_empty(f))
		return -EBADF;
	ctx = eventfd_ctx_fileget(fd_file(f));
	if (IS_ERR(ctx))
		return PTR_ERR(ctx);
	/* Backends bind again at every SET_VQUEUE: keep what is there. */
	if (ctx == vfd->call) {
		eventfd_ctx_put(ctx);
		return 0;
	}

	vmsg_vring_fd_unhook_call(vfd);
	vfd->call = ctx;
	init_waitqueue_func_entry(&vfd->wait, vmsg_vring_fd_wakeup);
	init_poll_funcptr(&vfd->pt, vmsg_vring_fd_queue);
	events = vfs_poll(fd_file(f), &vfd->pt);
	/* Signalled before it was bound: look at the queue once. */
	if (events & EPOLLIN)
		irq_work_queue(&vfd->used_work);
	return 0;
}

static int vmsg_vring_fd_set_kick(struct virtio_msg_bus *bus,
				  struct vmsg_vring_fd *vfd, int fd)
{
	struct eventfd_ctx *ctx = NULL, *old;

	if (fd >= 0) {
		ctx = eventfd_ctx_fdget(fd);
		if (IS_ERR(ctx))
			return PTR_ERR(ctx);
	}
	/* Bound again as it is: no grace period to wait for. */
	if (ctx && ctx == rcu_access_pointer(vfd->kick)) {
		eventfd_ctx_put(ctx);
		return 0;
	}
	old = rcu_replace_pointer(vfd->kick, ctx,
				  lockdep_is_held(&bus->vfd_lock));
	if (old) {
		/* A kick in flight may still signal the old one. */
		synchronize_rcu();
		eventfd_ctx_put(old);
	}
	return 0;
}

/* The binding slot of queue @index, made on first use; under vfd_lock. */
static struct vmsg_vring_fd *vmsg_vring_fd_slot(struct virtio_msg_device *vmdev,
						unsigned int index)
{
	struct vmsg_vring_fd **vfds = vmdev->vfds;
	struct vmsg_vring_fd *vfd;

	if (!vfds) {
		vfds = kcalloc(VMSG_MAX_VQS, sizeof(*vfds), GFP_KERNEL);
		if (!vfds)
			return NULL;
		/* Zeroed before kicks may read it: pairs with _get(). */
		smp_store_release(&vmdev->vfds, vfds);
	}
	if (vfds[index])
		return vfds[index];
	vfd = kzalloc(sizeof(*vfd), GFP_KERNEL);
	if (!vfd)
		return NULL;
	vfd->vmdev = vmdev;
	vfd->index = index;
	init_irq_work(&vfd->used_work, vmsg_vring_fd_used);
	/* Initialised before kicks may read it: pairs with _get(). */
	smp_store_release(&vfds[index], vfd);
	return vfd;
}

/**
 * virtio_msg_bus_set_vring_fd - bind a notification eventfd of a virtqueue
 * @bus: the bus
 * @dev_num: the device, which may still be being added
 * @index: the virtqueue
 * @call: the call (used buffers) side; otherwise the kick side
 * @fd: an eventfd of the calling process, or -1 to unbind
 *
 * Never waits for the device or the bus's device lock, so the thread that
 * serves the device's messages may bind while an ADD waits for it.
 *
 * Return: 0; -ENODEV, -EINVAL (not an eventfd, index out of range),
 * -EBADF, -ENOMEM.
 */
int virtio_msg_bus_set_vring_fd(struct virtio_msg_bus *bus, u16 dev_num,
				u32 index, bool call, int fd)
{
	struct virtio_msg_device *vmdev;
	struct vmsg_vring_fd *vfd;

	if (index >= VMSG_MAX_VQS)
		return -EINVAL;
	guard(mutex)(&bus->vfd_lock);
	vmdev = xa_load(&bus->devices, dev_num);
	if (!vmdev)
		return -ENODEV;
	vfd = vmsg_vring_fd_slot(vmdev, index);
	if (!vfd)
		return -ENOMEM;
	return call ? vmsg_vring_fd_set_call(vfd, fd) :
		      vmsg_vring_fd_set_kick(bus, vfd, fd);
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_set_vring_fd, "VIRTIO_MSG");

/* Signals the queue's kick eventfd if one is bound; any context. */
bool vmsg_vring_fd_kick(struct virtio_msg_device *vmdev, unsigned int index)
{
	struct vmsg_vring_fd *vfd = vmsg_vring_fd_get(vmdev, index);
	struct eventfd_ctx *kick;
	bool sent = false;

	if (!vfd)
		return false;
	rcu_read_lock();
	kick = rcu_dereference(vfd->kick);
	if (kick) {
		eventfd_signal(kick);
		sent = true;
	}
	rcu_read_unlock();
	return sent;
}

/* Drops every binding of a device that is going; under vfd_lock. */
void vmsg_vring_fds_release(struct virtio_msg_device *vmdev)
{
	struct vmsg_vring_fd **vfds = vmdev->vfds;
	struct eventfd_ctx *kick;
	unsigned int i;

	if (!vfds)
		return;
	for (i = 0; i < VMSG_MAX_VQS; i++)
		if (vfds[i])
			vmsg_vring_fd_unhook_call(vfds[i]);
	/* Its queues are gone: nothing kicks any more. */
	for (i = 0; i < VMSG_MAX_VQS; i++) {
		if (!vfds[i])
			continue;
		kick = rcu_dereference_protected(vfds[i]->kick, true);
		if (kick)
			eventfd_ctx_put(kick);
		kfree(vfds[i]);
	}
	kfree(vfds);
	vmdev->vfds = NULL;
}
