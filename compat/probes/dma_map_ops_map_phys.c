// SPDX-License-Identifier: GPL-2.0-only
/*
 * HAVE_DMA_MAP_OPS_MAP_PHYS
 *
 * v6.19: struct dma_map_ops switched from pages to physical addresses
 * (series ending in "dma-mapping: remove unused map_page callback"):
 * .map_page/.unmap_page and .map_resource/.unmap_resource were replaced by
 *	dma_addr_t (*map_phys)(struct device *dev, phys_addr_t phys,
 *			size_t size, enum dma_data_direction dir,
 *			unsigned long attrs);
 *	void (*unmap_phys)(struct device *dev, dma_addr_t dma_handle,
 *			size_t size, enum dma_data_direction dir,
 *			unsigned long attrs);
 * Absent in Debian 6.16.12 .. 6.18.15, present from 6.19.14.
 */
#include <linux/module.h>
#include <linux/dma-map-ops.h>

static dma_addr_t probe_map_phys(struct device *dev, phys_addr_t phys,
				 size_t size, enum dma_data_direction dir,
				 unsigned long attrs)
{
	return (dma_addr_t)phys;
}

static void probe_unmap_phys(struct device *dev, dma_addr_t dma_handle,
			     size_t size, enum dma_data_direction dir,
			     unsigned long attrs)
{
}

static const struct dma_map_ops probe_dma_ops __used = {
	.map_phys = probe_map_phys,
	.unmap_phys = probe_unmap_phys,
};

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("virtio-msg compat probe: dma_map_ops.map_phys");
