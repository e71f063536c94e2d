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

#include <linux/bitmap.h>
#include <linux/device.h>
#include <linux/overflow.h>
#include <linux/sched.h>
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

/*
 * One fail round's walk over what a broken device holds.  The descriptor
 * tables it reads are in the pool, where the device may have rewritten
 * them at will: it believes only what the pool says the kernel mapped,
 * and no ring decides how much work it does.  Whatever the rings say, a
 * round poisons each mapping once and no more than the pool holds, and
 * reads no more descriptors than the pool has room for mappings.
 */
struct vmsg_poison {
	struct virtio_msg_pool *pool;
	unsigned long *seen;	/* per pool slot: mapping done this round */
	unsigned long descs;	/* descriptors left to read */
	size_t bytes;		/* bytes left to poison */
};

static void vmsg_poison_round(struct vmsg_poison *p, unsigned int num)
{
	unsigned long slots = virtio_msg_pool_nr_slots(p->pool);

	bitmap_zero(p->seen, slots);
	/* Each honest descriptor names a mapping of its own, >= one slot. */
	p->descs = slots + num;
	p->bytes = virtio_msg_pool_size(p->pool);
}

/*
 * Fills the device-writable buffers of the chain at @head of @table with
 * 0xff.  Interrupts on, may sleep.
 */
static void vmsg_poison_chain(struct virtio_msg_device *vmdev,
			      struct vmsg_poison *p,
			      const struct vring_desc *table, unsigned int num,
			      unsigned int head, bool indirect_ok)
{
	struct virtio_device *vdev = &vmdev->vdev;
	unsigned int i = head, n;

	for (n = 0; n < num && i < num && p->descs; n++, p->descs--) {
		u16 flags = virtio16_to_cpu(vdev, READ_ONCE(table[i].flags));
		u64 addr = virtio64_to_cpu(vdev, READ_ONCE(table[i].addr));
		u32 len = virtio32_to_cpu(vdev, READ_ONCE(table[i].len));
		unsigned long slot;
		void *buf;

		if ((flags & VRING_DESC_F_INDIRECT) && indirect_ok) {
			/* Only a table the kernel mapped for the device to read. */
			buf = virtio_msg_pool_mapping(p->pool, addr, len, false,
						      &slot);
			if (buf && !(len % sizeof(*table)) &&
			    !test_and_set_bit(slot, p->seen))
				vmsg_poison_chain(vmdev, p, buf,
						  len / sizeof(*table), 0, false);
		} else if (flags & VRING_DESC_F_WRITE) {
			buf = virtio_msg_pool_mapping(p->pool, addr, len, true,
						      &slot);
			if (buf && len <= p->bytes &&
			    !test_and_set_bit(slot, p->seen)) {
				memset(buf, 0xff, len);
				p->bytes -= len;
			}
		}
		if (!(n % 64))
			cond_resched();
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		i = virtio16_to_cpu(vdev, READ_ONCE(table[i].next));
	}
}

/* Whether the driver made @head available in [@from, t->avail_seen). */
static bool vmsg_avail_since(struct virtqueue *vq, struct virtio_msg_vq_track *t,
			     u16 from, unsigned int head)
{
	const struct vring *vr = virtqueue_get_vring(vq);
	u16 n = t->avail_seen - from, i;

	if (n > vr->num)
		return true;
	for (i = 0; i < n; i++) {
		u16 slot = (u16)(from + i) % vr->num;

		if (virtio16_to_cpu(vq->vdev, READ_ONCE(vr->avail->ring[slot])) == head)
			return true;
	}
	return false;
}

/*
 * The device may still be alive and writing (it was only slow to answer):
 * take its rings away before the transport writes them itself, so that
 * the two never write one used ring.
 */
static void vmsg_revoke_rings(struct virtio_msg_device *vmdev,
			      struct virtqueue *vq)
{
	struct virtio_msg_pool *pool = vmdev->bus->pool;
	unsigned int num = virtqueue_get_vring_size(vq);

	if (!virtio_msg_pool_revoke_range(pool, virtqueue_get_desc_addr(vq),
					  sizeof(struct vring_desc) * num))
		return;
	virtio_msg_pool_revoke_range(pool, virtqueue_get_avail_addr(vq),
				     struct_size_t(struct vring_avail, ring, num) +
				     sizeof(__virtio16));
	virtio_msg_pool_revoke_range(pool, virtqueue_get_used_addr(vq),
				     struct_size_t(struct vring_used, ring, num) +
				     sizeof(__virtio16));
}

/*
 * Returns every buffer the dead device holds to the driver, and makes the
 * driver kick for each new one so that it gets here too.  Returns whether
 * the driver was still adding buffers after the last round: some of those
 * may have been added without a kick, so the caller must come back.
 * Holds vmdev->fail_lock: the queue stays (vmsg_track_free()).
 */
static bool vmsg_fail_vq(struct virtio_msg_device *vmdev, struct virtqueue *vq,
			 struct vmsg_poison *p)
{
	struct virtio_msg_vq_track *t = &vmdev->track[vq->index];
	const struct vring *vr = virtqueue_get_vring(vq);
	struct virtio_device *vdev = &vmdev->vdev;
	unsigned int head, round, nfail, k;
	bool again = true, done;
	u16 *fail, avail, used;

	if (!t->heads)
		return false;
	fail = kmalloc_array(vr->num, sizeof(*fail), GFP_KERNEL);
	if (!fail)
		return true;
	if (!t->revoked) {
		vmsg_revoke_rings(vmdev, vq);
		t->revoked = true;
	}

	for (round = 0; round < 4; round++) {
		spin_lock_irq(&t->lock);
		vmsg_track_scan(vq, t);
		nfail = 0;
		for (head = 0; head < vr->num; head++)
			if (t->heads[head])
				fail[nfail++] = head;
		avail = t->avail_seen;
		spin_unlock_irq(&t->lock);

		vmsg_poison_round(p, vr->num);
		for (k = 0; k < nfail; k++)
			vmsg_poison_chain(vmdev, p, vr->desc, vr->num, fail[k],
					  true);

		spin_lock_irq(&t->lock);
		vmsg_track_scan(vq, t);
		used = t->used_seen;
		done = true;
		for (k = 0; k < nfail; k++) {
			struct vring_used_elem *elem;

			head = fail[k];
			if (!t->heads[head])
				continue;	/* the device returned it meanwhile */
			if (vmsg_avail_since(vq, t, avail, head)) {
				/* Queued again, not poisoned yet: next round. */
				done = false;
				continue;
			}
			t->heads[head] = 0;
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
		if (virtio16_to_cpu(vdev, READ_ONCE(vr->avail->idx)) != t->avail_seen)
			done = false;
		spin_unlock_irq(&t->lock);
		if (done) {
			again = false;
			break;
		}
	}
	if (t->lost)
		dev_warn_ratelimited(&vdev->dev,
				     "queue %u: ring state lost, some requests may not complete\n",
				     vq->index);
	kfree(fail);
	return again;
}

/*
 * Runs with interrupts on and may sleep: it walks what the device wrote.
 * fail_lock, not the bus's lookup_lock, keeps each queue alive meanwhile.
 */
static void vmsg_fail_work(struct work_struct *work)
{
	struct virtio_msg_device *vmdev =
		container_of(work, struct virtio_msg_device, fail_work);
	struct virtio_msg_bus *bus = vmdev->bus;
	struct vmsg_poison p = { .pool = bus->pool };
	bool again = false;
	unsigned int i;

	p.seen = bitmap_zalloc(virtio_msg_pool_nr_slots(p.pool), GFP_KERNEL);
	if (!p.seen) {
		schedule_work(&vmdev->fail_work);
		return;
	}
	mutex_lock(&vmdev->fail_lock);
	for (i = 0; vmdev->vqs && i < vmdev->max_vqs; i++) {
		struct virtqueue *vq;

		spin_lock_bh(&bus->lookup_lock);
		vq = vmdev->vqs[i];
		spin_unlock_bh(&bus->lookup_lock);
		if (!vq)
			continue;
		again |= vmsg_fail_vq(vmdev, vq, &p);

		/*
		 * Also when nothing was left to fail: the device may have
		 * completed buffers and died before it signalled them.
		 */
		vmsg_vq_interrupt(vmdev, i);
	}
	mutex_unlock(&vmdev->fail_lock);
	bitmap_free(p.seen);
	if (again)
		schedule_work(&vmdev->fail_work);
}

void vmsg_fail_init(struct virtio_msg_device *vmdev)
{
	mutex_init(&vmdev->fail_lock);
	INIT_WORK(&vmdev->fail_work, vmsg_fail_work);
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
	t->revoked = false;
	spin_unlock_irq(&t->lock);
	return 0;
}

/* Before the queue is freed: waits for a fail work that may be using it. */
void vmsg_track_free(struct virtio_msg_device *vmdev, unsigned int index)
{
	struct virtio_msg_vq_track *t = &vmdev->track[index];
	u16 *heads;

	mutex_lock(&vmdev->fail_lock);
	spin_lock_irq(&t->lock);
	heads = t->heads;
	t->heads = NULL;
	spin_unlock_irq(&t->lock);
	mutex_unlock(&vmdev->fail_lock);
	kfree(heads);
}
