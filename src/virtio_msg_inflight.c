// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-msg transport: what a broken device still holds.
 *
 * A device that stops answering (timeout, transport error, its peer gone,
 * hot-unplug) never completes the buffers it was given.  The transport
 * follows each split virtqueue's rings as the driver kicks and the device
 * reports used buffers, so that once the device is broken it can return
 * every outstanding buffer to the driver itself, failed; drivers then see
 * I/O errors instead of waiting for ever.
 */
#define pr_fmt(fmt) "virtio-msg: " fmt

#include <linux/device.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/workqueue.h>

#include "virtio_msg_internal.h"

/*
 * A broken device answers nothing any more.  Where the transport can reach
 * the buffers (they are in the bus's pool, bounced by us or by the
 * kernel's restricted-dma-pool ops), it completes every outstanding one
 * itself, device-writable bytes poisoned and length 0, so that drivers
 * fail their requests (virtio-blk reads a status byte of 0xff as an I/O
 * error) instead of waiting forever; later kicks get the same treatment.
 * Without a pool the virtqueues are only marked broken.
 */
void vmsg_mark_broken(struct virtio_msg_device *vmdev, const char *why)
{
	if (xchg(&vmdev->broken, true))
		return;
	dev_err(vmsg_dev(vmdev), "device %u: %s; marking it broken\n",
		vmdev->dev_num, why);
	if (vmdev->bus->pool) {
		WRITE_ONCE(vmdev->failing, true);
		schedule_work(&vmdev->fail_work);
	} else {
		/* vqs and vqs_list_lock are set up before the first request. */
		virtio_break_device(&vmdev->vdev);
	}
}

/* Accounts for ring entries published since the last scan; under t->lock. */
static void vmsg_track_scan(struct virtqueue *vq, struct virtio_msg_vq_track *t)
{
	const struct vring *vr = virtqueue_get_vring(vq);
	struct virtio_device *vdev = vq->vdev;
	unsigned int num = vr->num;
	u16 idx, n, i, slot;

	idx = virtio16_to_cpu(vdev, READ_ONCE(vr->avail->idx));
	/* Entries are published before the index: read them after it. */
	virt_rmb();
	n = idx - t->avail_seen;
	if (n > num)
		t->lost = true;
	for (i = 0; i < n && i < num; i++) {
		u16 head;

		slot = (u16)(t->avail_seen + i) % num;
		head = virtio16_to_cpu(vdev, READ_ONCE(vr->avail->ring[slot]));
		if (head < num)
			t->heads[head]++;
	}
	t->avail_seen = idx;

	/* The device writes the used ring: an id is only a hint to check. */
	idx = virtio16_to_cpu(vdev, READ_ONCE(vr->used->idx));
	/* As above, for the device's used entries. */
	virt_rmb();
	n = idx - t->used_seen;
	if (n > num)
		t->lost = true;
	for (i = 0; i < n && i < num; i++) {
		u32 id;

		slot = (u16)(t->used_seen + i) % num;
		id = virtio32_to_cpu(vdev, READ_ONCE(vr->used->ring[slot].id));

		if (id < num && t->heads[id])
			t->heads[id]--;
	}
	t->used_seen = idx;
}

void vmsg_track_update(struct virtio_msg_device *vmdev, struct virtqueue *vq)
{
	struct virtio_msg_vq_track *t = &vmdev->track[vq->index];
	unsigned long flags;

	spin_lock_irqsave(&t->lock, flags);
	if (t->heads)
		vmsg_track_scan(vq, t);
	spin_unlock_irqrestore(&t->lock, flags);
}

/* Fills the device-writable buffers of a chain with 0xff, bounded walk. */
static void vmsg_poison_chain(struct virtio_msg_device *vmdev,
			      const struct vring_desc *table, unsigned int num,
			      unsigned int head, bool indirect_ok)
{
	struct virtio_msg_pool *pool = vmdev->bus->pool;
	struct virtio_device *vdev = &vmdev->vdev;
	unsigned int i = head, n;

	for (n = 0; n < num && i < num; n++) {
		u16 flags = virtio16_to_cpu(vdev, READ_ONCE(table[i].flags));
		u64 addr = virtio64_to_cpu(vdev, READ_ONCE(table[i].addr));
		u32 len = virtio32_to_cpu(vdev, READ_ONCE(table[i].len));
		void *p = virtio_msg_pool_vaddr(pool, addr, len);

		if ((flags & VRING_DESC_F_INDIRECT) && indirect_ok && p)
			vmsg_poison_chain(vmdev, p, len / sizeof(*table), 0, false);
		else if ((flags & VRING_DESC_F_WRITE) && p)
			memset(p, 0xff, len);
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		i = virtio16_to_cpu(vdev, READ_ONCE(table[i].next));
	}
}

/*
 * Returns every buffer the dead device holds to the driver, and makes the
 * driver kick for each new one so that it gets here too.  Returns whether
 * the driver was still adding buffers after the last round: some of those
 * may have been added without a kick, so the caller must come back.
 */
static bool vmsg_fail_vq(struct virtio_msg_device *vmdev, struct virtqueue *vq)
{
	struct virtio_msg_vq_track *t = &vmdev->track[vq->index];
	const struct vring *vr = virtqueue_get_vring(vq);
	struct virtio_device *vdev = &vmdev->vdev;
	unsigned int head, round;
	bool again = false;
	unsigned long flags;
	u16 used;

	spin_lock_irqsave(&t->lock, flags);
	if (!t->heads)
		goto out;
	for (round = 0; round < 4; round++) {
		vmsg_track_scan(vq, t);
		used = t->used_seen;
		for (head = 0; head < vr->num; head++) {
			struct vring_used_elem *elem;

			if (!t->heads[head])
				continue;
			t->heads[head] = 0;
			vmsg_poison_chain(vmdev, vr->desc, vr->num, head, true);
			elem = &vr->used->ring[used++ % vr->num];
			elem->id = cpu_to_virtio32(vdev, head);
			elem->len = cpu_to_virtio32(vdev, 0);
		}
		/* The driver reads the entries once it sees the index. */
		virt_wmb();
		WRITE_ONCE(vr->used->idx, cpu_to_virtio16(vdev, used));
		t->used_seen = used;

		/* Ask for a kick per buffer, whatever the device had asked. */
		WRITE_ONCE(vr->used->flags, 0);
		WRITE_ONCE(vring_avail_event(vr), cpu_to_virtio16(vdev, t->avail_seen));
		/* Order the flag writes before re-reading the driver's index. */
		virt_mb();
		/* Added while the flags still said "don't kick"? */
		if (virtio16_to_cpu(vdev, READ_ONCE(vr->avail->idx)) == t->avail_seen)
			break;
	}
	again = round == 4;
	if (t->lost)
		dev_warn_ratelimited(&vdev->dev,
				     "queue %u: ring state lost, some requests may not complete\n",
				     vq->index);
out:
	spin_unlock_irqrestore(&t->lock, flags);
	return again;
}

void vmsg_fail_work(struct work_struct *work)
{
	struct virtio_msg_device *vmdev =
		container_of(work, struct virtio_msg_device, fail_work);
	struct virtio_msg_bus *bus = vmdev->bus;
	bool again = false;
	unsigned int i;

	for (i = 0; vmdev->vqs && i < vmdev->max_vqs; i++) {
		spin_lock_bh(&bus->lookup_lock);
		/*
		 * Also when nothing was left to fail: the device may have
		 * completed buffers and died before it signalled them.
		 */
		if (vmdev->vqs[i]) {
			again |= vmsg_fail_vq(vmdev, vmdev->vqs[i]);
			vmsg_vq_interrupt(vmdev, i);
		}
		spin_unlock_bh(&bus->lookup_lock);
	}
	if (again)
		schedule_work(&vmdev->fail_work);
}

/* Starts following queue @index of @num entries (split rings only). */
int vmsg_track_alloc(struct virtio_msg_device *vmdev, unsigned int index,
		     unsigned int num)
{
	struct virtio_msg_vq_track *t = &vmdev->track[index];
	u16 *heads = kcalloc(num, sizeof(*heads), GFP_KERNEL);

	if (!heads)
		return -ENOMEM;
	spin_lock_irq(&t->lock);
	t->heads = heads;
	t->avail_seen = 0;
	t->used_seen = 0;
	t->lost = false;
	spin_unlock_irq(&t->lock);
	return 0;
}

void vmsg_track_free(struct virtio_msg_device *vmdev, unsigned int index)
{
	struct virtio_msg_vq_track *t = &vmdev->track[index];
	u16 *heads;

	spin_lock_irq(&t->lock);
	heads = t->heads;
	t->heads = NULL;
	spin_unlock_irq(&t->lock);
	kfree(heads);
}
