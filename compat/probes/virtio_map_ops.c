// SPDX-License-Identifier: GPL-2.0-only
/*
 * HAVE_VIRTIO_MAP_OPS
 *
 * v6.18: virtio's DMA abstraction was generalised (commit bee8c7c24b73
 * "virtio: introduce map ops in virtio core"): new struct virtio_map_ops (map_page,
 * unmap_page, alloc, free, ...), union virtio_map { struct device *dma_dev;
 * ... }, struct virtio_device gains
 *	const struct virtio_map_ops *map;  union virtio_map vmap;
 * and vring_create_virtqueue_dma() became vring_create_virtqueue_map().
 * (v7.0 renamed the VDUSE member of union virtio_map; dma_dev is stable.)
 * Absent in Debian 6.16.12/6.17.13, present from 6.18.15.
 */
#include <linux/module.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>

static const struct virtio_map_ops probe_map_ops;

static void __maybe_unused probe_set_map(struct virtio_device *vdev,
					 struct device *dma_dev)
{
	union virtio_map map = { .dma_dev = dma_dev };

	vdev->map = &probe_map_ops;
	vdev->vmap = map;
}

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("virtio-msg compat probe: struct virtio_map_ops");
