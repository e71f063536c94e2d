// SPDX-License-Identifier: GPL-2.0-only
/*
 * Reserved-memory helpers the virtio-msg RFC proposed for the kernel but
 * no kernel has: binding a region to a device that has no DT node of its
 * own (the bus device), and finding a region by name for device trees
 * written for the RFC.  Prefixed, so that they never clash with a kernel
 * that gains them; where it has, they defer to it.
 */
#include <linux/device.h>
#include <linux/err.h>
#include <linux/of.h>
#include <linux/of_reserved_mem.h>

/**
 * vmsg_reserved_mem_device_init - attach the region's DMA ops to a device
 * @dev: the device
 * @rmem: the region
 *
 * Return: 0; -ENODEV when the kernel has no ops for this kind of region
 * (e.g. restricted-dma-pool without CONFIG_DMA_RESTRICTED_POOL), so the
 * caller can provide its own; or the ops' error.
 */
int vmsg_reserved_mem_device_init(struct device *dev, struct reserved_mem *rmem)
{
#ifdef HAVE_RESERVED_MEM_DEVICE_INIT
	return reserved_mem_device_init(dev, rmem);
#else
	if (!rmem || !rmem->ops || !rmem->ops->device_init)
		return -ENODEV;
	return rmem->ops->device_init(rmem, dev);
#endif
}

/**
 * vmsg_reserved_mem_device_release - undo vmsg_reserved_mem_device_init()
 * @dev: the device
 * @rmem: the region it was attached to
 *
 * The kernel's list of assigned devices is private, so the release goes
 * straight to the region's ops.
 */
void vmsg_reserved_mem_device_release(struct device *dev,
				      struct reserved_mem *rmem)
{
	if (rmem && rmem->ops && rmem->ops->device_release)
		rmem->ops->device_release(rmem, dev);
}

static struct device_node *vmsg_reserved_mem_child(const char *name)
{
	struct device_node *parent, *child;

	parent = of_find_node_by_path("/reserved-memory");
	if (!parent)
		return NULL;
	for_each_available_child_of_node(parent, child) {
		if (of_node_name_eq(child, name))
			break;
	}
	of_node_put(parent);
	return child;
}

/**
 * vmsg_of_reserved_mem_lookup_by_name - find a region by node name
 * @name: node name without unit address, e.g. "vmsglb"
 *
 * Node names are not ABI (compatibles are); this serves device trees made
 * for the RFC series only.
 *
 * Return: the region, or ERR_PTR(-ENODEV).
 */
struct reserved_mem *vmsg_of_reserved_mem_lookup_by_name(const char *name)
{
#ifdef HAVE_OF_RESERVED_MEM_LOOKUP_BY_NAME
	struct reserved_mem *rmem = of_reserved_mem_lookup_by_name(name);

	return IS_ERR_OR_NULL(rmem) ? ERR_PTR(-ENODEV) : rmem;
#else
	struct device_node *np = vmsg_reserved_mem_child(name);
	struct reserved_mem *rmem;

	if (!np)
		return ERR_PTR(-ENODEV);
	rmem = of_reserved_mem_lookup(np);
	of_node_put(np);
	return rmem ? rmem : ERR_PTR(-ENODEV);
#endif
}

/**
 * vmsg_of_reserved_mem_find - find an available node by compatible
 * @compatible: the binding's compatible
 *
 * Return: the node with a reference held, or NULL.
 */
struct device_node *vmsg_of_reserved_mem_find(const char *compatible)
{
	struct device_node *np;

	for_each_compatible_node(np, NULL, compatible) {
		if (of_device_is_available(np))
			return np;
	}
	return NULL;
}
