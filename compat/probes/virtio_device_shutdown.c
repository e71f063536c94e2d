// SPDX-License-Identifier: GPL-2.0-only
/*
 * HAVE_VIRTIO_DEVICE_SHUTDOWN
 *
 * v7.2 ("virtio: add virtio_device_shutdown() helper"): the virtio core
 * exports
 *	void virtio_device_shutdown(struct virtio_device *dev);
 * (absent in Debian 6.16.12 .. 7.1.13, present from 7.2.12).  A transport
 * does not need it; informational only.
 */
#include <linux/module.h>
#include <linux/virtio.h>

static void (*const probe_fn)(struct virtio_device *) __used =
	virtio_device_shutdown;

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("virtio-msg compat probe: virtio_device_shutdown()");
