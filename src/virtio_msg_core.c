// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-msg transport core: buses and the lifecycle of their devices.
 *
 * Bus drivers (FF-A, loopback, ...) register a struct virtio_msg_bus, add
 * and remove devices by number and feed everything they receive to
 * virtio_msg_bus_receive() (virtio_msg_xfer.c).  A device is asked for its
 * identity, checked for safe use on the bus and registered with the virtio
 * core, whose drivers then use it through virtio_msg_config.c.
 */
#define pr_fmt(fmt) "virtio-msg: " fmt

#include <linux/device.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/workqueue.h>

#include "virtio_msg_internal.h"

static DEFINE_IDA(virtio_msg_bus_ida);

/**
 * virtio_msg_bus_device_gone - the device side removed a device
 * @bus: the bus
 * @dev_num: the device
 *
 * For hot-unplug announced by the device side: the device will answer
 * nothing more, so it is marked broken at once (its outstanding requests
 * and buffers fail) and the bus driver removes it later, from process
 * context, with virtio_msg_bus_remove_device().  Any context but hard
 * interrupt.
 *
 * Return: 0 or -ENODEV.
 */
int virtio_msg_bus_device_gone(struct virtio_msg_bus *bus, u16 dev_num)
{
	struct virtio_msg_device *vmdev;

	spin_lock_bh(&bus->lookup_lock);
	vmdev = xa_load(&bus->devices, dev_num);
	if (vmdev) {
		vmsg_fail_pending(vmdev, -ENODEV);
		vmsg_mark_broken(vmdev, "the device was unplugged");
	}
	spin_unlock_bh(&bus->lookup_lock);
	return vmdev ? 0 : -ENODEV;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_device_gone, "VIRTIO_MSG");

/**
 * virtio_msg_bus_lost - the device side of a bus went away
 * @bus: the bus
 *
 * Nothing will answer any more: outstanding requests fail at once instead
 * of running into the timeout, and every device is marked broken, its
 * outstanding buffers returned to the drivers as failed.  A broken device
 * never recovers, and a reader of it (/dev/hwrng) would wait forever, so
 * the devices are then removed, from a work item: a peer that comes back
 * adds them afresh.  Any context but hard interrupt.
 */
void virtio_msg_bus_lost(struct virtio_msg_bus *bus)
{
	struct virtio_msg_device *vmdev;
	unsigned long index;

	spin_lock_bh(&bus->lookup_lock);
	xa_for_each(&bus->devices, index, vmdev) {
		vmsg_fail_pending(vmdev, -ECONNRESET);
		vmsg_mark_broken(vmdev, "the device side went away");
	}
	/* An unregistered bus has no devices left to remove. */
	if (!bus->unregistered)
		queue_work(system_long_wq, &bus->lost_work);
	spin_unlock_bh(&bus->lookup_lock);
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_lost, "VIRTIO_MSG");

static void vmsg_device_release(struct device *dev)
{
	struct virtio_msg_device *vmdev =
		to_vmsg_device(dev_to_virtio(dev));

	kfree(vmdev->vqs);
	kfree(vmdev->track);
	kfree(vmdev->req);
	kfree(vmdev->resp);
	kfree(vmdev->wire);
	kfree(vmdev);
}

/*
 * A driver's remove waits for what the device still holds: virtio-blk's
 * del_gendisk() for every request in flight, for ever.  So whenever a
 * driver lets go of one of our devices (REMOVE, the peer gone, module
 * unload, a sysfs unbind, the driver's module unloaded: every path goes
 * through the bus's UNBIND notification), the removal gets a period of
 * timeout_ms after each sign of life of the device (a buffer completed, as
 * the used rings show, or a request answered, so that the driver went on to
 * the next); a device that lets a whole period pass without one, or keeps
 * the removal going for VMSG_REMOVE_PERIODS periods, is marked broken.  On
 * a bus with a pool the transport then completes all it holds, failed, and
 * every later buffer too: the driver's waits end (virtio-blk fails the
 * requests, restarts its queues and finishes).  Without a pool the
 * virtqueues can only be marked broken, and a driver already waiting for
 * the buffers keeps waiting (README).
 */
#define VMSG_REMOVE_PERIODS	20

/*
 * Requests sent (one at a time: each means the one before was answered)
 * plus the used indexes of the split rings: moves as the device works.
 */
static u32 vmsg_progress(struct virtio_msg_device *vmdev)
{
	u32 sum = atomic64_read(&vmdev->stats.requests);
	struct virtio_msg_bus *bus = vmdev->bus;
	struct vring_used *used;
	struct virtqueue *vq;
	unsigned int i;

	if (__virtio_test_bit(&vmdev->vdev, VIRTIO_F_RING_PACKED))
		return sum;
	spin_lock_bh(&bus->lookup_lock);
	for (i = 0; vmdev->vqs && i < vmdev->max_vqs; i++) {
		vq = vmdev->vqs[i];
		if (!vq)
			continue;
		used = virtqueue_get_vring(vq)->used;
		sum += virtio16_to_cpu(&vmdev->vdev, READ_ONCE(used->idx));
	}
	spin_unlock_bh(&bus->lookup_lock);
	return sum;
}

static unsigned long vmsg_remove_period(void)
{
	return msecs_to_jiffies(max(vmsg_timeout_ms(), 100U));
}

static void vmsg_unbind_watchdog(struct work_struct *work)
{
	struct virtio_msg_device *vmdev =
		container_of(to_delayed_work(work), struct virtio_msg_device,
			     unbind_wd.work);
	struct vmsg_unbind_watchdog *wd = &vmdev->unbind_wd;
	u32 progress = vmsg_progress(vmdev);

	if (progress != wd->progress && ++wd->periods < VMSG_REMOVE_PERIODS) {
		wd->progress = progress;
		schedule_delayed_work(&wd->work, vmsg_remove_period());
		return;
	}
	vmsg_mark_broken(vmdev, "its removal makes no progress");
}

static int vmsg_unbind_notify(struct notifier_block *nb, unsigned long action,
			      void *data)
{
	struct device *dev = data;
	struct virtio_msg_device *vmdev;

	/* Every virtio device of the system comes by: ours only. */
	if (dev->release != vmsg_device_release)
		return NOTIFY_DONE;
	vmdev = to_vmsg_device(dev_to_virtio(dev));

	switch (action) {
	case BUS_NOTIFY_UNBIND_DRIVER:	/* before the driver's remove */
		vmdev->unbind_wd.periods = 0;
		vmdev->unbind_wd.progress = vmsg_progress(vmdev);
		schedule_delayed_work(&vmdev->unbind_wd.work,
				      vmsg_remove_period());
		break;
	case BUS_NOTIFY_UNBOUND_DRIVER:	/* after it */
		cancel_delayed_work_sync(&vmdev->unbind_wd.work);
		break;
	}
	return NOTIFY_OK;
}

static struct notifier_block vmsg_unbind_nb = {
	.notifier_call = vmsg_unbind_notify,
};

/* The virtio bus, known once a first device is on it. */
static const struct bus_type *vmsg_virtio_bus;
static DEFINE_MUTEX(vmsg_virtio_bus_lock);

static void vmsg_watch_unbind(const struct bus_type *bus)
{
	int ret;

	guard(mutex)(&vmsg_virtio_bus_lock);
	if (vmsg_virtio_bus)
		return;
	ret = bus_register_notifier(bus, &vmsg_unbind_nb);
	if (ret)
		pr_warn("removals of its devices are not bounded: %d\n", ret);
	else
		vmsg_virtio_bus = bus;
}

static struct virtio_msg_device *vmsg_device_alloc(struct virtio_msg_bus *bus,
						   u16 dev_num)
{
	struct virtio_msg_device *vmdev;

	vmdev = kzalloc(sizeof(*vmdev), GFP_KERNEL);
	if (!vmdev)
		return NULL;

	vmdev->bus = bus;
	vmdev->dev_num = dev_num;
	mutex_init(&vmdev->xfer_lock);
	vmsg_fail_init(vmdev);
	INIT_DELAYED_WORK(&vmdev->unbind_wd.work, vmsg_unbind_watchdog);
	vmdev->canon_size = bus->max_msg_size + VIRTIO_MSG_CANON_EXTRA;
	vmdev->req = kzalloc(vmdev->canon_size, GFP_KERNEL);
	vmdev->resp = kzalloc(vmdev->canon_size, GFP_KERNEL);
	vmdev->wire = kzalloc(bus->max_msg_size, GFP_KERNEL);
	if (!vmdev->req || !vmdev->resp || !vmdev->wire) {
		kfree(vmdev->req);
		kfree(vmdev->resp);
		kfree(vmdev->wire);
		kfree(vmdev);
		return NULL;
	}

	vmdev->vdev.dev.parent = &bus->dev;
	vmdev->vdev.dev.release = vmsg_device_release;
	vmdev->vdev.config = &virtio_msg_config_ops;
	/*
	 * register_virtio_device() sets these up again; a request that times
	 * out before it runs still needs them for virtio_break_device().
	 */
	INIT_LIST_HEAD(&vmdev->vdev.vqs);
	spin_lock_init(&vmdev->vdev.vqs_list_lock);
	if (bus->pool)
		virtio_msg_pool_setup_vdev(bus->pool, &vmdev->vdev);
	return vmdev;
}

static void vmsg_device_unpublish(struct virtio_msg_device *vmdev)
{
	struct virtio_msg_bus *bus = vmdev->bus;

	/* Binders find the device under vfd_lock: gone for them after this. */
	scoped_guard(mutex, &bus->vfd_lock) {
		xa_erase(&bus->devices, vmdev->dev_num);
		vmsg_vring_fds_release(vmdev);
	}
	/* Wait for receivers that found the device before the erase. */
	spin_lock_bh(&bus->lookup_lock);
	vmdev->registered = false;
	spin_unlock_bh(&bus->lookup_lock);
	/*
	 * Only now: a lost peer or an unplug finds the device through the
	 * bus and may have queued the work until the erase.  The driver,
	 * the only other source, is gone or was never bound.
	 */
	cancel_work_sync(&vmdev->fail_work);
}

/**
 * virtio_msg_bus_add_device - create and register the virtio device @dev_num
 * @bus: the bus
 * @dev_num: device number on the bus
 *
 * Asks the device for its identity, checks it can be used safely on this
 * bus and registers it with the virtio core, which probes a driver.  Sleeps
 * while the device answers.
 *
 * Return: 0, -EEXIST, -ENODEV (no usable device), -ETIMEDOUT, ...
 */
int virtio_msg_bus_add_device(struct virtio_msg_bus *bus, u16 dev_num)
{
	struct virtio_msg_vq_track *track;
	struct virtio_msg_device *vmdev;
	u64 features[VMSG_FEATURE_WORDS];
	unsigned int i;
	int ret;

	/* A peer that came back re-adds what its predecessor left broken. */
	flush_work(&bus->lost_work);
	guard(mutex)(&bus->devices_lock);
	if (xa_load(&bus->devices, dev_num))
		return -EEXIST;

	vmdev = vmsg_device_alloc(bus, dev_num);
	if (!vmdev)
		return -ENOMEM;
	ret = xa_insert(&bus->devices, dev_num, vmdev, GFP_KERNEL);
	if (ret)
		goto err_free;

	ret = vmsg_get_device_info(vmdev);
	if (ret)
		goto err_unpublish;

	if (bus->pool) {
		ret = vmsg_read_features(vmdev, features);
		if (ret)
			goto err_unpublish;
		if (!(features[0] & BIT_ULL(VIRTIO_F_ACCESS_PLATFORM))) {
			dev_err(bus->parent,
				"device %u does not offer VIRTIO_F_ACCESS_PLATFORM: refusing it, its DMA would bypass the memory pool\n",
				dev_num);
			ret = -ENODEV;
			goto err_unpublish;
		}
	}

	vmdev->vqs = kcalloc(vmdev->max_vqs, sizeof(*vmdev->vqs), GFP_KERNEL);
	track = kcalloc(vmdev->max_vqs, sizeof(*track), GFP_KERNEL);
	if (vmdev->max_vqs && (!vmdev->vqs || !track)) {
		kfree(track);
		ret = -ENOMEM;
		goto err_unpublish;
	}
	for (i = 0; i < vmdev->max_vqs; i++) {
		spin_lock_init(&track[i].lock);
		spin_lock_init(&track[i].irq_lock);
	}
	/* A call through an eventfd may look for the queues already. */
	smp_store_release(&vmdev->track, track);

	vmdev->vdev.id.device = vmdev->device_id;
	vmdev->vdev.id.vendor = vmdev->vendor_id;
	ret = register_virtio_device(&vmdev->vdev);
	if (ret) {
		dev_err(bus->parent, "cannot register device %u: %d\n", dev_num, ret);
		vmsg_device_unpublish(vmdev);
		put_device(&vmdev->vdev.dev);
		return ret;
	}

	vmsg_watch_unbind(vmdev->vdev.dev.bus);
	spin_lock_bh(&bus->lookup_lock);
	vmdev->registered = true;
	spin_unlock_bh(&bus->lookup_lock);
	dev_info(bus->parent, "device %u: virtio id %u as %s\n", dev_num,
		 vmdev->device_id, dev_name(&vmdev->vdev.dev));
	return 0;

err_unpublish:
	vmsg_device_unpublish(vmdev);
err_free:
	vmsg_device_release(&vmdev->vdev.dev);
	return ret;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_add_device, "VIRTIO_MSG");

static void vmsg_device_remove(struct virtio_msg_device *vmdev)
{
	/* The device must stay reachable while its driver shuts it down. */
	get_device(&vmdev->vdev.dev);
	unregister_virtio_device(&vmdev->vdev);
	vmsg_device_unpublish(vmdev);
	put_device(&vmdev->vdev.dev);
}

/**
 * virtio_msg_bus_remove_device - unregister the virtio device @dev_num
 * @bus: the bus
 * @dev_num: device number
 *
 * The driver is unbound first and may still talk to the device.
 *
 * Return: 0 or -ENODEV.
 */
int virtio_msg_bus_remove_device(struct virtio_msg_bus *bus, u16 dev_num)
{
	struct virtio_msg_device *vmdev;

	guard(mutex)(&bus->devices_lock);
	vmdev = xa_load(&bus->devices, dev_num);
	if (!vmdev)
		return -ENODEV;
	vmsg_device_remove(vmdev);
	return 0;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_remove_device, "VIRTIO_MSG");

unsigned int virtio_msg_bus_num_devices(struct virtio_msg_bus *bus)
{
	struct virtio_msg_device *vmdev;
	unsigned long index;
	unsigned int n = 0;

	xa_for_each(&bus->devices, index, vmdev)
		n++;
	return n;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_num_devices, "VIRTIO_MSG");

#ifdef CONFIG_PM_SLEEP
/**
 * virtio_msg_bus_freeze - freeze every device of the bus for suspend
 * @bus: the bus
 *
 * Return: 0, or the error of the device that failed, after the devices
 * frozen so far have been restored.
 */
int virtio_msg_bus_freeze(struct virtio_msg_bus *bus)
{
	struct virtio_msg_device *vmdev;
	unsigned long index, failed;
	int ret = 0;

	guard(mutex)(&bus->devices_lock);
	xa_for_each(&bus->devices, index, vmdev) {
		ret = virtio_device_freeze(&vmdev->vdev);
		if (ret) {
			failed = index;
			break;
		}
	}
	if (!ret)
		return 0;

	xa_for_each(&bus->devices, index, vmdev) {
		if (index == failed)
			break;
		virtio_device_restore(&vmdev->vdev);
	}
	return ret;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_freeze, "VIRTIO_MSG");

int virtio_msg_bus_restore(struct virtio_msg_bus *bus)
{
	struct virtio_msg_device *vmdev;
	unsigned long index;
	int ret, first = 0;

	guard(mutex)(&bus->devices_lock);
	xa_for_each(&bus->devices, index, vmdev) {
		ret = virtio_device_restore(&vmdev->vdev);
		if (ret && !first)
			first = ret;
	}
	return first;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_restore, "VIRTIO_MSG");
#endif /* CONFIG_PM_SLEEP */

/* Removes the devices virtio_msg_bus_lost() broke; later ones stay. */
static void vmsg_bus_lost_work(struct work_struct *work)
{
	struct virtio_msg_bus *bus = container_of(work, struct virtio_msg_bus,
						  lost_work);
	struct virtio_msg_device *vmdev;
	unsigned long index;

	guard(mutex)(&bus->devices_lock);
	xa_for_each(&bus->devices, index, vmdev) {
		if (READ_ONCE(vmdev->broken)) {
			dev_info(bus->parent, "device %u: removing it, its peer is gone\n",
				 vmdev->dev_num);
			vmsg_device_remove(vmdev);
		}
	}
}

static void vmsg_bus_dev_release(struct device *dev)
{
	struct virtio_msg_bus *bus = container_of(dev, struct virtio_msg_bus, dev);

	complete(&bus->released);
}

/**
 * virtio_msg_bus_register - register a bus
 * @bus: filled in by the bus driver (parent, ops, name, format,
 *	max_msg_size, pool); parent is required
 *
 * Return: 0 or a negative errno.
 */
int virtio_msg_bus_register(struct virtio_msg_bus *bus)
{
	int ret;

	if (!bus->parent || !bus->ops || !bus->ops->send || !bus->name ||
	    bus->max_msg_size < virtio_msg_wire_min_max_size(bus->format) ||
	    bus->max_msg_size > VIRTIO_MSG_MAX_SIZE)
		return -EINVAL;

	ret = ida_alloc(&virtio_msg_bus_ida, GFP_KERNEL);
	if (ret < 0)
		return ret;
	bus->id = ret;

	mutex_init(&bus->devices_lock);
	mutex_init(&bus->vfd_lock);
	xa_init(&bus->devices);
	spin_lock_init(&bus->lookup_lock);
	atomic_set(&bus->token_seq, 0);
	INIT_WORK(&bus->lost_work, vmsg_bus_lost_work);
	bus->unregistered = false;
	init_completion(&bus->released);

	device_initialize(&bus->dev);
	bus->dev.parent = bus->parent;
	bus->dev.release = vmsg_bus_dev_release;
	bus->dev.dma_mask = &bus->dev.coherent_dma_mask;
	ret = dma_coerce_mask_and_coherent(&bus->dev, DMA_BIT_MASK(64));
	if (ret)
		goto err_put;
	ret = dev_set_name(&bus->dev, "virtio-msg-bus%d", bus->id);
	if (ret)
		goto err_put;
	ret = device_add(&bus->dev);
	if (ret)
		goto err_put;

	if (bus->pool) {
		ret = virtio_msg_pool_attach(bus->pool, &bus->dev);
		if (ret)
			goto err_del;
	}
	vmsg_debugfs_bus_add(bus);
	return 0;

err_del:
	device_del(&bus->dev);
err_put:
	put_device(&bus->dev);
	wait_for_completion(&bus->released);
	ida_free(&virtio_msg_bus_ida, bus->id);
	return ret;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_register, "VIRTIO_MSG");

/**
 * virtio_msg_bus_unregister - remove every device, then the bus
 * @bus: a registered bus
 *
 * The bus must still carry messages: drivers shut their devices down.  A
 * user-space message node (virtio_msg_user_attach()) is detached by the bus
 * driver afterwards.
 */
void virtio_msg_bus_unregister(struct virtio_msg_bus *bus)
{
	struct virtio_msg_device *vmdev;
	unsigned long index;

	scoped_guard(mutex, &bus->devices_lock) {
		xa_for_each(&bus->devices, index, vmdev)
			vmsg_device_remove(vmdev);
	}
	/* A peer lost from now on queues nothing; one report may be queued. */
	spin_lock_bh(&bus->lookup_lock);
	bus->unregistered = true;
	spin_unlock_bh(&bus->lookup_lock);
	cancel_work_sync(&bus->lost_work);
	vmsg_debugfs_bus_remove(bus);
	if (bus->pool)
		virtio_msg_pool_detach(bus->pool);
	device_del(&bus->dev);
	put_device(&bus->dev);
	/* Virtio devices pin their parent: wait until the last one is gone. */
	wait_for_completion(&bus->released);
	xa_destroy(&bus->devices);
	ida_free(&virtio_msg_bus_ida, bus->id);
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_unregister, "VIRTIO_MSG");

static int __init virtio_msg_init(void)
{
	vmsg_debugfs_init();
	return 0;
}
module_init(virtio_msg_init);

static void __exit virtio_msg_exit(void)
{
	if (vmsg_virtio_bus)
		bus_unregister_notifier(vmsg_virtio_bus, &vmsg_unbind_nb);
	vmsg_debugfs_exit();
}
module_exit(virtio_msg_exit);

MODULE_DESCRIPTION("virtio-msg transport");
MODULE_LICENSE("GPL");
MODULE_VERSION(VIRTIO_MSG_DKMS_VERSION);
