// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-msg transport: counters in debugfs.
 *
 *   /sys/kernel/debug/virtio-msg/virtio-msg-busN/devices
 *	one line per device: requests, their mean latency, timeouts, kicks
 *	sent, used and config events received, messages refused, state
 *   /sys/kernel/debug/virtio-msg/virtio-msg-busN/pool
 *	the DMA pool: size, bytes in use now and at most, bytes bounced
 *
 * For people looking at a running system; tests and tools must not parse
 * more than the field names promise.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "virtio_msg_internal.h"

static struct dentry *vmsg_debugfs_root;

void vmsg_debugfs_init(void)
{
	vmsg_debugfs_root = debugfs_create_dir("virtio-msg", NULL);
}

void vmsg_debugfs_exit(void)
{
	debugfs_remove_recursive(vmsg_debugfs_root);
}

static int vmsg_devices_show(struct seq_file *s, void *unused)
{
	struct virtio_msg_bus *bus = s->private;
	struct virtio_msg_device *vmdev;
	unsigned long index;

	seq_puts(s, "dev requests latency_ns_mean timeouts kicks used config dropped state\n");
	/* Devices are freed only after they left the xarray and this lock. */
	spin_lock_bh(&bus->lookup_lock);
	xa_for_each(&bus->devices, index, vmdev) {
		struct virtio_msg_dev_stats *st = &vmdev->stats;
		u64 requests = atomic64_read(&st->requests);

		seq_printf(s, "%u %llu %llu %llu %llu %llu %llu %llu %s\n",
			   vmdev->dev_num, requests,
			   requests ? div64_u64(atomic64_read(&st->latency_ns),
						requests) : 0,
			   atomic64_read(&st->timeouts),
			   atomic64_read(&st->kicks), atomic64_read(&st->used),
			   atomic64_read(&st->config),
			   atomic64_read(&st->dropped),
			   READ_ONCE(vmdev->broken) ? "broken" :
			   vmdev->registered ? "registered" : "probing");
	}
	spin_unlock_bh(&bus->lookup_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vmsg_devices);

static int vmsg_pool_show(struct seq_file *s, void *unused)
{
	struct virtio_msg_bus *bus = s->private;
	struct virtio_msg_pool_stats st;

	virtio_msg_pool_get_stats(bus->pool, &st);
	seq_printf(s, "size %zu\nin_use %zu\nin_use_max %zu\nbounced %llu\nallocator %s\n",
		   st.size, st.in_use, st.in_use_max, st.bounced,
		   st.bounce ? "virtio-msg" : "kernel restricted-dma-pool");
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vmsg_pool);

void vmsg_debugfs_bus_add(struct virtio_msg_bus *bus)
{
	bus->debugfs = debugfs_create_dir(dev_name(&bus->dev), vmsg_debugfs_root);
	debugfs_create_file("devices", 0400, bus->debugfs, bus,
			    &vmsg_devices_fops);
	if (bus->pool)
		debugfs_create_file("pool", 0400, bus->debugfs, bus,
				    &vmsg_pool_fops);
}

void vmsg_debugfs_bus_remove(struct virtio_msg_bus *bus)
{
	debugfs_remove_recursive(bus->debugfs);
	bus->debugfs = NULL;
}
