// SPDX-License-Identifier: GPL-2.0-only
/*
 * DMA confinement for virtio-msg buses.
 *
 * A virtio-msg device (a user-space backend, a secure partition) can reach
 * only the memory it has been given: a reserved-memory region from the
 * device tree, or a pool allocated at run time.  Every virtqueue and every
 * buffer must therefore live there.
 *
 * Upstream that is a "restricted-dma-pool" region with swiotlb behind it,
 * but Debian kernels do not set CONFIG_DMA_RESTRICTED_POOL and export no
 * swiotlb symbols.  So: where the kernel attached ops to the region, use
 * them; otherwise bounce through our own allocator over the region, plugged
 * in as dma_map_ops of the bus device, or (6.18+) as virtio_map_ops of each
 * virtio device.  Bus addresses are bus_base + pool offset; bus_base is the
 * physical address of a device-tree region (what swiotlb would produce) or
 * an arbitrary constant for a run-time pool.
 */
#define pr_fmt(fmt) "virtio-msg: " fmt

#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/genalloc.h>
#include <linux/highmem.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/of.h>
#include <linux/of_reserved_mem.h>
#include <linux/pseudo_fs.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>

#include "virtio_msg_internal.h"

/* Bounce granule: small enough for 16-byte headers, cheap to track. */
#define VMSG_POOL_SLOT_SHIFT	9
#define VMSG_POOL_SLOT_SIZE	BIT(VMSG_POOL_SLOT_SHIFT)
/* Bus address of a run-time pool; any page-aligned non-zero value works. */
#define VMSG_POOL_RUNTIME_BASE	SZ_4G

struct virtio_msg_pool {
	struct device *dev;		/* owner, for messages */
	struct device *dma_dev;		/* the bus device DMA is done for */
	struct reserved_mem *rmem;	/* device-tree region, or NULL */
	bool kernel_ops;		/* the kernel's restricted-dma-pool ops */

	void *vaddr;			/* kernel mapping of the whole pool */
	struct page **pages;		/* run-time pool */
	unsigned int nr_pages;
	size_t size;
	dma_addr_t bus_base;

	struct gen_pool *gen;
	atomic_long_t in_use_max;	/* high-water mark, for debugfs */
	atomic64_t bounced;		/* bytes copied, for debugfs */
	struct vmsg_pool_slot *slots;
	/* Bus addresses chosen by the bus driver (virtio_msg_pool_create_at) */
	bool fixed_base;
	/* Owns every user-space mapping of the pool (virtio_msg_pool_open) */
	struct inode *inode;

	/*
	 * User mappings are filled in by faults, under map_lock, so that
	 * taking memory back cannot miss a mapping being created, and so
	 * that pages can be taken back one range at a time.
	 */
	struct mutex map_lock;
	unsigned long map_gen;		/* bumped by virtio_msg_pool_revoke() */
	unsigned long *revoked;		/* pages faulting to the scratch page */
	struct page *scratch;
};

/*
 * Per bounce slot.  The fail path (virtio_msg_inflight.c) reads map_size
 * and map_dir without a lock while mappings come and go: they only ever
 * bound a write into the pool, never outside it.
 */
struct vmsg_pool_slot {
	phys_addr_t orig;	/* the CPU buffer this slot bounces for */
	u32 map_size;		/* first slot of a live mapping: its size */
	u8 map_dir;		/* and its enum dma_data_direction */
};

static struct virtio_msg_pool *file_inode_pool(struct file *file)
{
	/* virtio_msg_pool_open() pointed f_mapping at the pool's inode. */
	return file->f_mapping->host->i_private;
}

static struct virtio_msg_pool *dev_to_pool(struct device *dev)
{
	return dev_get_drvdata(dev);
}

static bool vmsg_pool_contains(struct virtio_msg_pool *pool, dma_addr_t addr,
			       size_t size)
{
	return addr >= pool->bus_base && size <= pool->size &&
	       addr - pool->bus_base <= pool->size - size;
}

static void *vmsg_pool_vaddr(struct virtio_msg_pool *pool, dma_addr_t addr)
{
	return pool->vaddr + (addr - pool->bus_base);
}

static phys_addr_t vmsg_pool_orig(struct virtio_msg_pool *pool, dma_addr_t addr)
{
	dma_addr_t off = addr - pool->bus_base;

	return pool->slots[off >> VMSG_POOL_SLOT_SHIFT].orig +
	       (off & (VMSG_POOL_SLOT_SIZE - 1));
}

static struct vmsg_pool_slot *vmsg_pool_slot(struct virtio_msg_pool *pool,
					     dma_addr_t addr)
{
	return &pool->slots[(addr - pool->bus_base) >> VMSG_POOL_SLOT_SHIFT];
}

/*
 * Gives pool pages [@off, @off + @size) back to user space, if a broken
 * device's rings had them taken: its next ring may be allocated there.
 * The scratch page mapped meanwhile goes, faults map the pool again.
 */
static void vmsg_pool_unrevoke(struct virtio_msg_pool *pool, size_t off,
			       size_t size)
{
	unsigned long first = off >> PAGE_SHIFT;
	unsigned long n = PAGE_ALIGN(size) >> PAGE_SHIFT;

	/* Bits are only set while the ring is alive, never under our feet. */
	if (find_next_bit(pool->revoked, first + n, first) >= first + n)
		return;
	mutex_lock(&pool->map_lock);
	bitmap_clear(pool->revoked, first, n);
	mutex_unlock(&pool->map_lock);
	unmap_mapping_range(pool->inode->i_mapping, (loff_t)first << PAGE_SHIFT,
			    (loff_t)n << PAGE_SHIFT, 1);
}

/* Copies between a bounce buffer and the (possibly highmem) CPU buffer. */
static void vmsg_pool_copy(struct virtio_msg_pool *pool, phys_addr_t phys,
			   void *bounce, size_t size, bool to_device)
{
	atomic64_add(size, &pool->bounced);
	while (size) {
		size_t off = offset_in_page(phys);
		size_t n = min_t(size_t, size, PAGE_SIZE - off);
		void *p = kmap_local_page(pfn_to_page(PHYS_PFN(phys)));

		if (to_device)
			memcpy(bounce, p + off, n);
		else
			memcpy(p + off, bounce, n);
		kunmap_local(p);
		phys += n;
		bounce += n;
		size -= n;
	}
}

/* Keeps the high-water mark; gen_pool_avail() is cheap with one chunk. */
static void vmsg_pool_note_use(struct virtio_msg_pool *pool)
{
	long in_use = virtio_msg_pool_in_use(pool);
	long max = atomic_long_read(&pool->in_use_max);

	while (in_use > max &&
	       !atomic_long_try_cmpxchg(&pool->in_use_max, &max, in_use))
		;
}

static void vmsg_pool_exhausted(struct virtio_msg_pool *pool, size_t size)
{
	dev_err_ratelimited(pool->dev,
			    "DMA pool exhausted: %zu bytes requested, %zu of %zu free; enlarge the pool\n",
			    size, gen_pool_avail(pool->gen), pool->size);
}

static dma_addr_t vmsg_pool_map(struct virtio_msg_pool *pool, phys_addr_t phys,
				size_t size, enum dma_data_direction dir,
				unsigned long attrs)
{
	struct vmsg_pool_slot *slot;
	unsigned long vaddr;
	dma_addr_t addr;
	size_t i;

	if (!size || size > U32_MAX || !pfn_valid(PHYS_PFN(phys)) ||
	    !pfn_valid(PHYS_PFN(phys + size - 1)))
		return DMA_MAPPING_ERROR;

	vaddr = gen_pool_alloc(pool->gen, size);
	if (!vaddr) {
		vmsg_pool_exhausted(pool, size);
		return DMA_MAPPING_ERROR;
	}
	vmsg_pool_note_use(pool);
	addr = gen_pool_virt_to_phys(pool->gen, vaddr);
	slot = vmsg_pool_slot(pool, addr);
	for (i = 0; i < DIV_ROUND_UP(size, VMSG_POOL_SLOT_SIZE); i++)
		slot[i].orig = phys + i * VMSG_POOL_SLOT_SIZE;

	/*
	 * In every direction and whatever the attributes, as swiotlb does
	 * since CVE-2022-0854: the slot still holds what an earlier mapping,
	 * of any device of the pool, left in it, and a device that writes
	 * less than it reports must hand back the buffer's own bytes.
	 */
	vmsg_pool_copy(pool, phys, (void *)vaddr, size, true);

	WRITE_ONCE(slot->map_dir, dir);
	WRITE_ONCE(slot->map_size, size);
	return addr;
}

static void vmsg_pool_sync(struct virtio_msg_pool *pool, dma_addr_t addr,
			   size_t size, enum dma_data_direction dir,
			   bool for_device)
{
	if (!vmsg_pool_contains(pool, addr, size)) {
		dev_err_ratelimited(pool->dev, "sync of %pad+%zu outside the pool\n",
				    &addr, size);
		return;
	}
	if (for_device && (dir == DMA_TO_DEVICE || dir == DMA_BIDIRECTIONAL))
		vmsg_pool_copy(pool, vmsg_pool_orig(pool, addr),
			       vmsg_pool_vaddr(pool, addr), size, true);
	if (!for_device && (dir == DMA_FROM_DEVICE || dir == DMA_BIDIRECTIONAL))
		vmsg_pool_copy(pool, vmsg_pool_orig(pool, addr),
			       vmsg_pool_vaddr(pool, addr), size, false);
}

static void vmsg_pool_unmap(struct virtio_msg_pool *pool, dma_addr_t addr,
			    size_t size, enum dma_data_direction dir,
			    unsigned long attrs)
{
	size_t mapped;

	if (!vmsg_pool_contains(pool, addr, size) ||
	    (addr - pool->bus_base) & (VMSG_POOL_SLOT_SIZE - 1)) {
		dev_err_ratelimited(pool->dev, "unmap of %pad+%zu outside the pool\n",
				    &addr, size);
		return;
	}
	/* Never free what is not mapped: gen_pool_free() BUG()s on it. */
	mapped = xchg(&vmsg_pool_slot(pool, addr)->map_size, 0);
	if (mapped != size) {
		dev_err_ratelimited(pool->dev, "unmap of %pad+%zu, mapped: %zu\n",
				    &addr, size, mapped);
		if (!mapped)
			return;
	}
	if (!(attrs & DMA_ATTR_SKIP_CPU_SYNC))
		vmsg_pool_sync(pool, addr, min(size, mapped), dir, false);
	gen_pool_free(pool->gen, (unsigned long)vmsg_pool_vaddr(pool, addr),
		      mapped);
}

static void *vmsg_pool_alloc(struct virtio_msg_pool *pool, size_t size,
			     dma_addr_t *addr)
{
	/* Callers of dma_alloc_coherent() rely on page alignment. */
	struct genpool_data_align align = { .align = PAGE_SIZE };
	unsigned long vaddr;

	/*
	 * Whole pages: rings are coherent allocations, and the fail path
	 * takes a broken device's ring pages back from user space
	 * (virtio_msg_pool_revoke_range()) without taking anything else.
	 */
	size = PAGE_ALIGN(size);
	vaddr = gen_pool_alloc_algo(pool->gen, size, gen_pool_first_fit_align,
				    &align);
	if (!vaddr) {
		vmsg_pool_exhausted(pool, size);
		return NULL;
	}
	vmsg_pool_note_use(pool);
	memset((void *)vaddr, 0, size);
	*addr = gen_pool_virt_to_phys(pool->gen, vaddr);
	return (void *)vaddr;
}

static void vmsg_pool_free(struct virtio_msg_pool *pool, size_t size,
			   void *vaddr, dma_addr_t addr)
{
	if (!vmsg_pool_contains(pool, addr, size) ||
	    vaddr != vmsg_pool_vaddr(pool, addr)) {
		dev_err_ratelimited(pool->dev, "free of %pad+%zu outside the pool\n",
				    &addr, size);
		return;
	}
	size = PAGE_ALIGN(size);
	vmsg_pool_unrevoke(pool, addr - pool->bus_base, size);
	gen_pool_free(pool->gen, (unsigned long)vaddr, size);
}

static size_t vmsg_pool_max_mapping(struct virtio_msg_pool *pool)
{
	/* Leave room for other requests: one mapping may take 1/8 of the pool. */
	return max_t(size_t, pool->size / 8, PAGE_SIZE);
}

#ifndef HAVE_VIRTIO_MAP_OPS
/* dma_map_ops on the bus device (kernels without virtio_map_ops) */

static void *vmsg_dma_alloc(struct device *dev, size_t size,
			    dma_addr_t *dma_handle, gfp_t gfp,
			    unsigned long attrs)
{
	return vmsg_pool_alloc(dev_to_pool(dev), size, dma_handle);
}

static void vmsg_dma_free(struct device *dev, size_t size, void *vaddr,
			  dma_addr_t dma_handle, unsigned long attrs)
{
	vmsg_pool_free(dev_to_pool(dev), size, vaddr, dma_handle);
}

/* Only kernels before 6.18 come here: they have map_page, not map_phys. */
static dma_addr_t vmsg_dma_map_page(struct device *dev, struct page *page,
				    unsigned long offset, size_t size,
				    enum dma_data_direction dir,
				    unsigned long attrs)
{
	return vmsg_pool_map(dev_to_pool(dev), page_to_phys(page) + offset,
			     size, dir, attrs);
}

static void vmsg_dma_unmap_page(struct device *dev, dma_addr_t addr,
				size_t size, enum dma_data_direction dir,
				unsigned long attrs)
{
	vmsg_pool_unmap(dev_to_pool(dev), addr, size, dir, attrs);
}

static void vmsg_dma_unmap_sg(struct device *dev, struct scatterlist *sgl,
			      int nents, enum dma_data_direction dir,
			      unsigned long attrs)
{
	struct virtio_msg_pool *pool = dev_to_pool(dev);
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i)
		vmsg_pool_unmap(pool, sg_dma_address(sg), sg_dma_len(sg), dir,
				attrs);
}

static int vmsg_dma_map_sg(struct device *dev, struct scatterlist *sgl,
			   int nents, enum dma_data_direction dir,
			   unsigned long attrs)
{
	struct virtio_msg_pool *pool = dev_to_pool(dev);
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i) {
		sg->dma_address = vmsg_pool_map(pool, sg_phys(sg), sg->length,
						dir, attrs);
		if (sg->dma_address == DMA_MAPPING_ERROR) {
			vmsg_dma_unmap_sg(dev, sgl, i, dir,
					  attrs | DMA_ATTR_SKIP_CPU_SYNC);
			return -ENOMEM;
		}
		sg_dma_len(sg) = sg->length;
	}
	return nents;
}

static void vmsg_dma_sync_single_for_cpu(struct device *dev, dma_addr_t addr,
					 size_t size,
					 enum dma_data_direction dir)
{
	vmsg_pool_sync(dev_to_pool(dev), addr, size, dir, false);
}

static void vmsg_dma_sync_single_for_device(struct device *dev,
					    dma_addr_t addr, size_t size,
					    enum dma_data_direction dir)
{
	vmsg_pool_sync(dev_to_pool(dev), addr, size, dir, true);
}

static void vmsg_dma_sync_sg(struct device *dev, struct scatterlist *sgl,
			     int nents, enum dma_data_direction dir,
			     bool for_device)
{
	struct virtio_msg_pool *pool = dev_to_pool(dev);
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i)
		vmsg_pool_sync(pool, sg_dma_address(sg), sg_dma_len(sg), dir,
			       for_device);
}

static void vmsg_dma_sync_sg_for_cpu(struct device *dev,
				     struct scatterlist *sgl, int nents,
				     enum dma_data_direction dir)
{
	vmsg_dma_sync_sg(dev, sgl, nents, dir, false);
}

static void vmsg_dma_sync_sg_for_device(struct device *dev,
					struct scatterlist *sgl, int nents,
					enum dma_data_direction dir)
{
	vmsg_dma_sync_sg(dev, sgl, nents, dir, true);
}

static size_t vmsg_dma_max_mapping_size(struct device *dev)
{
	return vmsg_pool_max_mapping(dev_to_pool(dev));
}

static const struct dma_map_ops vmsg_pool_dma_ops = {
	.alloc			= vmsg_dma_alloc,
	.free			= vmsg_dma_free,
	.map_page		= vmsg_dma_map_page,
	.unmap_page		= vmsg_dma_unmap_page,
	.map_sg			= vmsg_dma_map_sg,
	.unmap_sg		= vmsg_dma_unmap_sg,
	.sync_single_for_cpu	= vmsg_dma_sync_single_for_cpu,
	.sync_single_for_device	= vmsg_dma_sync_single_for_device,
	.sync_sg_for_cpu	= vmsg_dma_sync_sg_for_cpu,
	.sync_sg_for_device	= vmsg_dma_sync_sg_for_device,
	.max_mapping_size	= vmsg_dma_max_mapping_size,
};
#else
/* virtio_map_ops on each virtio device (6.18+): no dma_map_ops needed */

static struct virtio_msg_pool *map_to_pool(union virtio_map map)
{
	return dev_to_pool(map.dma_dev);
}

static dma_addr_t vmsg_map_page(union virtio_map map, struct page *page,
				unsigned long offset, size_t size,
				enum dma_data_direction dir,
				unsigned long attrs)
{
	return vmsg_pool_map(map_to_pool(map), page_to_phys(page) + offset,
			     size, dir, attrs);
}

static void vmsg_unmap_page(union virtio_map map, dma_addr_t addr,
			    size_t size, enum dma_data_direction dir,
			    unsigned long attrs)
{
	vmsg_pool_unmap(map_to_pool(map), addr, size, dir, attrs);
}

static void vmsg_map_sync_for_cpu(union virtio_map map, dma_addr_t addr,
				  size_t size, enum dma_data_direction dir)
{
	vmsg_pool_sync(map_to_pool(map), addr, size, dir, false);
}

static void vmsg_map_sync_for_device(union virtio_map map, dma_addr_t addr,
				     size_t size, enum dma_data_direction dir)
{
	vmsg_pool_sync(map_to_pool(map), addr, size, dir, true);
}

static void *vmsg_map_alloc(union virtio_map map, size_t size,
			    dma_addr_t *addr, gfp_t gfp)
{
	return vmsg_pool_alloc(map_to_pool(map), size, addr);
}

static void vmsg_map_free(union virtio_map map, size_t size, void *vaddr,
			  dma_addr_t addr, unsigned long attrs)
{
	vmsg_pool_free(map_to_pool(map), size, vaddr, addr);
}

static bool vmsg_map_need_sync(union virtio_map map, dma_addr_t addr)
{
	return true;
}

static int vmsg_map_mapping_error(union virtio_map map, dma_addr_t addr)
{
	return addr == DMA_MAPPING_ERROR;
}

static size_t vmsg_map_max_mapping_size(union virtio_map map)
{
	return vmsg_pool_max_mapping(map_to_pool(map));
}

static const struct virtio_map_ops vmsg_pool_map_ops = {
	.map_page		= vmsg_map_page,
	.unmap_page		= vmsg_unmap_page,
	.sync_single_for_cpu	= vmsg_map_sync_for_cpu,
	.sync_single_for_device	= vmsg_map_sync_for_device,
	.alloc			= vmsg_map_alloc,
	.free			= vmsg_map_free,
	.need_sync		= vmsg_map_need_sync,
	.mapping_error		= vmsg_map_mapping_error,
	.max_mapping_size	= vmsg_map_max_mapping_size,
};
#endif /* HAVE_VIRTIO_MAP_OPS */

/**
 * virtio_msg_pool_setup_vdev - confine a virtio device's DMA to the pool
 * @pool: the bus's pool
 * @vdev: a virtio device not registered yet
 */
void virtio_msg_pool_setup_vdev(struct virtio_msg_pool *pool,
				struct virtio_device *vdev)
{
#ifdef HAVE_VIRTIO_MAP_OPS
	if (pool->kernel_ops)
		return;
	vdev->map = &vmsg_pool_map_ops;
	vdev->vmap.dma_dev = pool->dma_dev;
#endif
}

/**
 * virtio_msg_pool_attach - make the pool back the DMA of @dma_dev
 * @pool: the pool
 * @dma_dev: the bus device, parent of all virtio devices of the bus
 *
 * Return: 0 or a negative errno.
 */
int virtio_msg_pool_attach(struct virtio_msg_pool *pool, struct device *dma_dev)
{
	int ret;

	pool->dma_dev = dma_dev;
	dev_set_drvdata(dma_dev, pool);

	/* Kernel pool ops would hand out physical, not our bus, addresses. */
	if (pool->rmem && pool->rmem->ops && !pool->fixed_base) {
		ret = vmsg_reserved_mem_device_init(dma_dev, pool->rmem);
		if (!ret) {
			pool->kernel_ops = true;
			dev_info(pool->dev, "DMA confined to %pa+%pa by the kernel's pool ops\n",
				 &pool->rmem->base, &pool->rmem->size);
			return 0;
		}
		dev_warn(pool->dev, "kernel pool ops failed (%d), bouncing ourselves\n",
			 ret);
	}

#ifndef HAVE_VIRTIO_MAP_OPS
	set_dma_ops(dma_dev, &vmsg_pool_dma_ops);
#endif
	dev_info(pool->dev, "DMA confined to a %zu KiB pool at bus address %pad\n",
		 pool->size / SZ_1K, &pool->bus_base);
	return 0;
}

/**
 * virtio_msg_pool_detach - undo virtio_msg_pool_attach()
 * @pool: the pool; no virtio device uses it any more
 */
void virtio_msg_pool_detach(struct virtio_msg_pool *pool)
{
	if (!pool->dma_dev)
		return;
	if (pool->kernel_ops)
		vmsg_reserved_mem_device_release(pool->dma_dev, pool->rmem);
#ifndef HAVE_VIRTIO_MAP_OPS
	else
		set_dma_ops(pool->dma_dev, NULL);
#endif
	dev_set_drvdata(pool->dma_dev, NULL);
	pool->dma_dev = NULL;
	pool->kernel_ops = false;
}

static int vmsg_pool_map_region(struct virtio_msg_pool *pool,
				struct reserved_mem *rmem)
{
	if (!PAGE_ALIGNED(rmem->base) || !PAGE_ALIGNED(rmem->size) ||
	    !rmem->size) {
		dev_err(pool->dev, "reserved memory %pa+%pa is not page aligned\n",
			&rmem->base, &rmem->size);
		return -EINVAL;
	}
	pool->vaddr = memremap(rmem->base, rmem->size, MEMREMAP_WB);
	if (!pool->vaddr)
		return -ENOMEM;
	pool->rmem = rmem;
	pool->size = rmem->size;
	pool->bus_base = rmem->base;
	return 0;
}

static int vmsg_pool_alloc_pages(struct virtio_msg_pool *pool, size_t size)
{
	unsigned int i;

	pool->nr_pages = PAGE_ALIGN(size) >> PAGE_SHIFT;
	if (!pool->nr_pages)
		return -EINVAL;
	pool->pages = kvcalloc(pool->nr_pages, sizeof(*pool->pages), GFP_KERNEL);
	if (!pool->pages)
		return -ENOMEM;
	/* Page by page: no contiguous allocation of this size is guaranteed. */
	for (i = 0; i < pool->nr_pages; i++) {
		pool->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!pool->pages[i])
			return -ENOMEM;
	}
	pool->vaddr = vmap(pool->pages, pool->nr_pages, VM_MAP, PAGE_KERNEL);
	if (!pool->vaddr)
		return -ENOMEM;
	pool->size = (size_t)pool->nr_pages << PAGE_SHIFT;
	pool->bus_base = VMSG_POOL_RUNTIME_BASE;
	return 0;
}

/*
 * The pool's memory (region or pages), then one allocator over it whose
 * addresses are the bus addresses: physical ones for a region, or
 * @bus_base onwards when @fixed_base (the bus numbers shared memory its
 * own way), or VMSG_POOL_RUNTIME_BASE for pages.
 */
/*
 * Every user-space mapping of a pool hangs off one address_space of its
 * own, not off the inode of whichever device node was opened (there may be
 * several, and an open file travels to other processes), so that they can
 * all be taken back at once (virtio_msg_pool_revoke()), as /dev/mem does.
 */
#define VMSG_POOL_FS_MAGIC	0x766d7367	/* "vmsg" */
static struct vfsmount *vmsg_pool_mnt;
static int vmsg_pool_mnt_count;

static int vmsg_pool_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, VMSG_POOL_FS_MAGIC) ? 0 : -ENOMEM;
}

static struct file_system_type vmsg_pool_fs_type = {
	.name			= "virtio_msg_pool",
	.owner			= THIS_MODULE,
	.init_fs_context	= vmsg_pool_init_fs_context,
	.kill_sb		= kill_anon_super,
};

static int vmsg_pool_inode_new(struct virtio_msg_pool *pool)
{
	struct inode *inode;
	int ret;

	ret = simple_pin_fs(&vmsg_pool_fs_type, &vmsg_pool_mnt,
			    &vmsg_pool_mnt_count);
	if (ret)
		return ret;
	inode = alloc_anon_inode(vmsg_pool_mnt->mnt_sb);
	if (IS_ERR(inode)) {
		simple_release_fs(&vmsg_pool_mnt, &vmsg_pool_mnt_count);
		return PTR_ERR(inode);
	}
	inode->i_private = pool;
	pool->inode = inode;
	return 0;
}

static void vmsg_pool_inode_put(struct virtio_msg_pool *pool)
{
	if (!pool->inode)
		return;
	iput(pool->inode);
	pool->inode = NULL;
	simple_release_fs(&vmsg_pool_mnt, &vmsg_pool_mnt_count);
}

static struct virtio_msg_pool *__vmsg_pool_create(struct device *dev,
						  const char *compatible,
						  const char *node_name,
						  size_t runtime_size,
						  bool fixed_base,
						  dma_addr_t bus_base)
{
	struct virtio_msg_pool *pool;
	struct reserved_mem *rmem = NULL;
	struct device_node *np;
	int ret;

	pool = kzalloc(sizeof(*pool), GFP_KERNEL);
	if (!pool)
		return ERR_PTR(-ENOMEM);
	pool->dev = dev;
	mutex_init(&pool->map_lock);

	np = vmsg_of_reserved_mem_find(compatible);
	if (np) {
		rmem = of_reserved_mem_lookup(np);
		if (!rmem) {
			dev_err(dev, "%pOF is not a reserved-memory region\n", np);
			of_node_put(np);
			ret = -EINVAL;
			goto err;
		}
		of_node_put(np);
	} else if (node_name) {
		/* Device trees written for the RFC name the node instead. */
		rmem = vmsg_of_reserved_mem_lookup_by_name(node_name);
		if (IS_ERR(rmem))
			rmem = NULL;
	}

	if (rmem) {
		dev_info(dev, "using reserved memory %s at %pa\n", rmem->name,
			 &rmem->base);
		ret = vmsg_pool_map_region(pool, rmem);
	} else {
		ret = vmsg_pool_alloc_pages(pool, runtime_size);
	}
	if (ret)
		goto err;

	ret = vmsg_pool_inode_new(pool);
	if (ret)
		goto err;

	if (fixed_base) {
		if (bus_base + pool->size - 1 < bus_base) {
			ret = -ERANGE;
			goto err;
		}
		pool->bus_base = bus_base;
		pool->fixed_base = true;
	}

	pool->gen = gen_pool_create(VMSG_POOL_SLOT_SHIFT, NUMA_NO_NODE);
	if (!pool->gen) {
		ret = -ENOMEM;
		goto err;
	}
	ret = gen_pool_add_virt(pool->gen, (unsigned long)pool->vaddr,
				pool->bus_base, pool->size, NUMA_NO_NODE);
	if (ret)
		goto err;
	pool->slots = kvcalloc(pool->size >> VMSG_POOL_SLOT_SHIFT,
			       sizeof(*pool->slots), GFP_KERNEL);
	pool->revoked = bitmap_zalloc(pool->size >> PAGE_SHIFT, GFP_KERNEL);
	pool->scratch = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!pool->slots || !pool->revoked || !pool->scratch) {
		ret = -ENOMEM;
		goto err;
	}
	return pool;

err:
	virtio_msg_pool_destroy(pool);
	return ERR_PTR(ret);
}

/**
 * virtio_msg_pool_create - find or allocate the DMA pool of a bus
 * @dev: the bus driver's device, for messages
 * @compatible: compatible of the reserved-memory node to use
 * @node_name: node name used by existing device trees ("vmsglb"), or NULL
 * @runtime_size: size of the pool to allocate when there is no node
 *
 * Return: the pool or an ERR_PTR().
 */
struct virtio_msg_pool *virtio_msg_pool_create(struct device *dev,
					       const char *compatible,
					       const char *node_name,
					       size_t runtime_size)
{
	return __vmsg_pool_create(dev, compatible, node_name, runtime_size,
				  false, 0);
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_pool_create, "VIRTIO_MSG");

/**
 * virtio_msg_pool_in_use - bytes of the pool allocated or mapped right now
 * @pool: the pool
 *
 * Zero once every device of the bus is gone: the transport returns what
 * drivers leave in their virtqueues (see vmsg_del_vqs()).
 */
size_t virtio_msg_pool_in_use(const struct virtio_msg_pool *pool)
{
	if (!pool->gen)
		return 0;
	return gen_pool_size(pool->gen) - gen_pool_avail(pool->gen);
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_pool_in_use, "VIRTIO_MSG");

static void __vmsg_pool_destroy(struct virtio_msg_pool *pool, bool keep_memory)
{
	size_t in_use = virtio_msg_pool_in_use(pool);
	unsigned int i;

	/* Files hold the bus driver's module: nobody maps the pool any more. */
	vmsg_pool_inode_put(pool);
	if (in_use) {
		dev_err(pool->dev,
			"%zu bytes of the DMA pool are still in use at teardown: leaking the %zu KiB pool\n",
			in_use, pool->size / SZ_1K);
		return;
	}
	kvfree(pool->slots);
	bitmap_free(pool->revoked);
	/*
	 * A run-time pool's mappings hold a reference (vm_insert_page());
	 * a region's went with the files, which hold the bus driver.
	 */
	if (pool->scratch)
		__free_page(pool->scratch);
	if (pool->gen)
		gen_pool_destroy(pool->gen);
	if (pool->rmem) {
		memunmap(pool->vaddr);
	} else if (pool->pages) {
		if (pool->vaddr)
			vunmap(pool->vaddr);
		/* Pages still mapped by a process stay until it unmaps them. */
		for (i = 0; !keep_memory && i < pool->nr_pages && pool->pages[i]; i++)
			__free_page(pool->pages[i]);
		kvfree(pool->pages);
	}
	kfree(pool);
}

/**
 * virtio_msg_pool_destroy - free a pool no bus uses any more
 * @pool: the pool
 *
 * A pool that still has allocations is not freed: gen_pool_destroy() would
 * BUG(), and whoever holds them may still touch the memory.  It is leaked,
 * loudly, instead.
 */
void virtio_msg_pool_destroy(struct virtio_msg_pool *pool)
{
	__vmsg_pool_destroy(pool, false);
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_pool_destroy, "VIRTIO_MSG");

/**
 * virtio_msg_pool_abandon - free a pool whose memory the device side keeps
 * @pool: the pool
 *
 * For a peer that would not give the memory back (an FF-A partition that
 * refused MEM_RECLAIM): it may go on writing those pages, so they are never
 * freed, but the pool's bookkeeping is, and the kernel's own mapping.
 */
void virtio_msg_pool_abandon(struct virtio_msg_pool *pool)
{
	__vmsg_pool_destroy(pool, true);
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_pool_abandon, "VIRTIO_MSG");

void virtio_msg_pool_get_stats(struct virtio_msg_pool *pool,
			       struct virtio_msg_pool_stats *stats)
{
	stats->size = pool->size;
	stats->in_use = virtio_msg_pool_in_use(pool);
	stats->in_use_max = atomic_long_read(&pool->in_use_max);
	stats->bounced = atomic64_read(&pool->bounced);
	stats->bounce = !pool->kernel_ops;
}

/**
 * virtio_msg_pool_mapping - a streaming mapping the kernel made, looked up
 * @pool: the pool
 * @addr: bus address, untrusted (read from a ring the device can write)
 * @len: length, untrusted
 * @device_writes: the mapping must let the device write, else read
 * @slot: set to a number unique to the mapping, below
 *	virtio_msg_pool_nr_slots()
 *
 * With our own bounce buffers, a mapping that starts at @addr, is live,
 * at least @len long and goes the right way; the caller may write or read
 * @len bytes at the result.  The kernel's pool ops keep no record we can
 * read: there, any range inside the pool.  For the fail path, which must
 * trust nothing the device wrote.  May race with the mapping's unmap: the
 * memory stays the pool's either way.
 *
 * Return: the kernel address, or NULL.
 */
void *virtio_msg_pool_mapping(struct virtio_msg_pool *pool, dma_addr_t addr,
			      size_t len, bool device_writes,
			      unsigned long *slot)
{
	enum dma_data_direction dir;
	struct vmsg_pool_slot *s;

	if (!len || !vmsg_pool_contains(pool, addr, len))
		return NULL;
	*slot = (addr - pool->bus_base) >> VMSG_POOL_SLOT_SHIFT;
	if (pool->kernel_ops)
		return vmsg_pool_vaddr(pool, addr);

	if ((addr - pool->bus_base) & (VMSG_POOL_SLOT_SIZE - 1))
		return NULL;
	s = vmsg_pool_slot(pool, addr);
	if (READ_ONCE(s->map_size) < len)
		return NULL;
	dir = READ_ONCE(s->map_dir);
	if (dir != DMA_BIDIRECTIONAL &&
	    dir != (device_writes ? DMA_FROM_DEVICE : DMA_TO_DEVICE))
		return NULL;
	return vmsg_pool_vaddr(pool, addr);
}

unsigned long virtio_msg_pool_nr_slots(struct virtio_msg_pool *pool)
{
	return pool->size >> VMSG_POOL_SLOT_SHIFT;
}

/**
 * virtio_msg_pool_revoke_range - take a broken device's ring from user space
 * @pool: the pool
 * @addr: bus address of a coherent allocation (a ring)
 * @len: its length
 *
 * Every process mapping the pool loses the pages of [@addr, @addr + @len):
 * from now on they fault to a scratch page, until the allocation is freed.
 * Coherent allocations are whole pages, so nothing else is taken.  A
 * scratch page rather than SIGBUS: the backend may be merely slow, and
 * still serve the bus's other devices; what it writes for the broken one
 * goes nowhere.  Sleeps.
 *
 * Return: false where the pages cannot be told apart (the kernel's pool
 * ops mix rings and bounce slots in a page): nothing was taken then.
 */
bool virtio_msg_pool_revoke_range(struct virtio_msg_pool *pool,
				  dma_addr_t addr, size_t len)
{
	unsigned long first, n;

	if (pool->kernel_ops || !len || !vmsg_pool_contains(pool, addr, len))
		return false;
	first = (addr - pool->bus_base) >> PAGE_SHIFT;
	n = ((addr - pool->bus_base + len - 1) >> PAGE_SHIFT) - first + 1;
	mutex_lock(&pool->map_lock);
	bitmap_set(pool->revoked, first, n);
	mutex_unlock(&pool->map_lock);
	unmap_mapping_range(pool->inode->i_mapping, (loff_t)first << PAGE_SHIFT,
			    (loff_t)n << PAGE_SHIFT, 1);
	return true;
}

size_t virtio_msg_pool_size(const struct virtio_msg_pool *pool)
{
	return pool->size;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_pool_size, "VIRTIO_MSG");

dma_addr_t virtio_msg_pool_bus_base(const struct virtio_msg_pool *pool)
{
	return pool->bus_base;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_pool_bus_base, "VIRTIO_MSG");

/*
 * Faults fill user mappings in, page by page, under map_lock, as vfio-pci
 * does for its BARs: PTEs set up in ->mmap() would exist before the vma
 * is linked where unmap_mapping_range() finds it, and a revocation running
 * meanwhile would miss them.  Here a mapping older than the last
 * revocation of the whole pool faults for good (SIGBUS), and a page taken
 * from a broken device faults to the scratch page.
 */
static vm_fault_t vmsg_pool_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct virtio_msg_pool *pool = file_inode_pool(vma->vm_file);
	unsigned long pgoff = vmf->pgoff;
	vm_fault_t ret = VM_FAULT_SIGBUS;
	struct page *page;

	if (pgoff >= pool->size >> PAGE_SHIFT)
		return VM_FAULT_SIGBUS;

	mutex_lock(&pool->map_lock);
	if ((unsigned long)vma->vm_private_data != pool->map_gen)
		goto out;
	if (test_bit(pgoff, pool->revoked)) {
		page = pool->scratch;
	} else if (pool->pages) {
		page = pool->pages[pgoff];
	} else {
		ret = vmf_insert_pfn(vma, vmf->address,
				     PHYS_PFN(pool->rmem->base) + pgoff);
		goto out;
	}
	if (vma->vm_flags & VM_MIXEDMAP) {
		/* Refcounted pages: get_user_pages() works on them. */
		ret = vmf_insert_page(vma, vmf->address, page);
	} else {
		ret = vmf_insert_pfn(vma, vmf->address, page_to_pfn(page));
	}
out:
	mutex_unlock(&pool->map_lock);
	return ret;
}

static const struct vm_operations_struct vmsg_pool_vm_ops = {
	.fault = vmsg_pool_fault,
};

/**
 * virtio_msg_pool_mmap - map (part of) the pool into a process
 * @pool: the pool
 * @vma: the mapping; vm_pgoff is the page offset into the pool
 *
 * For a file virtio_msg_pool_open() was called on.  Private writable
 * mappings are refused: the device side must see what it writes, and its
 * memory can be taken back.
 *
 * Return: 0, or -EINVAL for a range not entirely inside the pool.
 */
int virtio_msg_pool_mmap(struct virtio_msg_pool *pool,
			 struct vm_area_struct *vma)
{
	unsigned long pages = pool->size >> PAGE_SHIFT;
	unsigned long len = vma_pages(vma);

	if (vma->vm_pgoff >= pages || len > pages - vma->vm_pgoff ||
	    vma->vm_file->f_mapping != pool->inode->i_mapping ||
	    (vma->vm_flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE)
		return -EINVAL;

	/* A device-tree region may have no struct pages: PFN mappings. */
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP |
		     (pool->pages ? VM_MIXEDMAP : VM_PFNMAP | VM_IO));
	vma->vm_ops = &vmsg_pool_vm_ops;
	mutex_lock(&pool->map_lock);
	vma->vm_private_data = (void *)pool->map_gen;
	mutex_unlock(&pool->map_lock);
	return 0;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_pool_mmap, "VIRTIO_MSG");

/**
 * virtio_msg_pool_open - make @file's mappings of the pool revocable
 * @pool: the pool
 * @file: a file being opened whose mmap() is virtio_msg_pool_mmap()
 *
 * For the open() of a device node that maps the pool.
 */
void virtio_msg_pool_open(struct virtio_msg_pool *pool, struct file *file)
{
	file->f_mapping = pool->inode->i_mapping;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_pool_open, "VIRTIO_MSG");

/**
 * virtio_msg_pool_revoke - take the pool back from every process mapping it
 * @pool: the pool
 *
 * Every mapping made through a virtio_msg_pool_open()ed file is emptied:
 * an access through it from now on faults (SIGBUS).  Mappings made
 * afterwards work.  For a bus whose device side went away: a process it
 * handed the pool to must not go on writing rings the transport now
 * completes by itself, nor reach the memory of the next peer's devices.
 * Memory pinned for I/O already in flight (O_DIRECT, io_uring) is beyond
 * this.  Sleeps.
 */
void virtio_msg_pool_revoke(struct virtio_msg_pool *pool)
{
	/* Mappings still being set up carry the old generation too. */
	mutex_lock(&pool->map_lock);
	pool->map_gen++;
	mutex_unlock(&pool->map_lock);
	unmap_mapping_range(pool->inode->i_mapping, 0, 0, 1);
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_pool_revoke, "VIRTIO_MSG");

/**
 * virtio_msg_pool_create_at - virtio_msg_pool_create() with chosen bus addresses
 * @dev: the bus driver's device, for messages
 * @compatible: compatible of the reserved-memory node to use
 * @node_name: node name used by existing device trees, or NULL
 * @runtime_size: size of the pool to allocate when there is no node
 * @bus_base: bus address of pool offset 0, page aligned
 *
 * For buses whose device addresses shared memory by its own numbering (FF-A:
 * area id << 48 | offset), not by physical address.  The kernel's own
 * reserved-memory ops are never used for such a pool, since they would
 * hand out physical addresses.
 *
 * Return: the pool or an ERR_PTR().
 */
struct virtio_msg_pool *virtio_msg_pool_create_at(struct device *dev,
						  const char *compatible,
						  const char *node_name,
						  size_t runtime_size,
						  dma_addr_t bus_base)
{
	if (!PAGE_ALIGNED(bus_base))
		return ERR_PTR(-EINVAL);
	return __vmsg_pool_create(dev, compatible, node_name, runtime_size,
				  true, bus_base);
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_pool_create_at, "VIRTIO_MSG");

/**
 * virtio_msg_pool_sg_table - describe the pool's memory for sharing it
 * @pool: the pool
 * @sgt: filled with the pool's pages in offset order; sg_free_table() it
 *
 * Return: 0 or a negative errno.
 */
int virtio_msg_pool_sg_table(const struct virtio_msg_pool *pool,
			     struct sg_table *sgt)
{
	int ret;

	if (pool->pages)
		return sg_alloc_table_from_pages(sgt, pool->pages,
						 pool->nr_pages, 0, pool->size,
						 GFP_KERNEL);
	/* A device-tree region: one physically contiguous range. */
	if (!pool->rmem || pool->size > UINT_MAX)
		return -EINVAL;
	ret = sg_alloc_table(sgt, 1, GFP_KERNEL);
	if (ret)
		return ret;
	sg_set_page(sgt->sgl, pfn_to_page(PHYS_PFN(pool->rmem->base)),
		    pool->size, 0);
	return 0;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_pool_sg_table, "VIRTIO_MSG");
