// SPDX-License-Identifier: GPL-2.0-only
/*
 * Split virtqueues, device side.
 *
 * The rings live in the DMA pool, which the kernel's virtio driver writes
 * concurrently from other CPUs.  Two rules follow:
 *
 *  - Everything read from the rings is untrusted: indices are range-checked,
 *    chains are length-limited (which also catches loops), and every buffer
 *    address is translated through vmsg_pool_ptr(), which refuses anything
 *    not entirely inside the pool.  A violation marks the queue broken; the
 *    backend never touches memory outside the pool mapping.
 *  - Shared fields are read exactly once into local variables (descriptors
 *    are copied byte by byte with relaxed atomic loads) so that a value
 *    cannot change between being checked and being used, and the index
 *    fields use acquire/release atomics to order them against the ring
 *    contents.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "backend.h"

#define DESC_SIZE		16
/* Byte offsets inside the split ring areas. */
#define AVAIL_FLAGS		0
#define AVAIL_IDX		2
#define AVAIL_RING(i)		(4 + 2 * (size_t)(i))
#define USED_FLAGS		0
#define USED_IDX		2
#define USED_RING(i)		(4 + 8 * (size_t)(i))

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static inline uint8_t load8(const uint8_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Ring fields are naturally aligned: vq_setup() checked the ring alignment. */
static inline uint16_t load16(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_RELAXED));
}

static inline uint16_t load16_acquire(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_ACQUIRE));
}

static inline void store16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, htole16(v), __ATOMIC_RELAXED);
}

static inline void store16_release(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, htole16(v), __ATOMIC_RELEASE);
}

static inline void store32(uint8_t *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)(void *)p, htole32(v), __ATOMIC_RELAXED);
}

/*
 * Snapshot one descriptor, byte by byte with relaxed atomic loads (what
 * READ_ONCE() is in the kernel): works for indirect tables at any alignment,
 * and the compiler cannot re-read the shared copy after we validated the
 * local one.
 */
static void read_desc(const uint8_t *p, struct desc *d)
{
	uint8_t raw[DESC_SIZE];
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
	unsigned int i;

	for (i = 0; i < DESC_SIZE; i++)
		raw[i] = load8(p + i);
	memcpy(&addr, raw, 8);
	memcpy(&len, raw + 8, 4);
	memcpy(&flags, raw + 12, 2);
	memcpy(&next, raw + 14, 2);
	d->addr = le64toh(addr);
	d->len = le32toh(len);
	d->flags = le16toh(flags);
	d->next = le16toh(next);
}

void vq_reset(struct vmsg_device *dev, struct vmsg_vq *vq)
{
	struct vq_worker *worker = vq->worker;
	unsigned int index = vq->index;

	/* Nobody may be walking the rings while they go away. */
	if (worker)
		dev->be->workers->stop(vq);
	free(vq->segs);
	memset(vq, 0, sizeof(*vq));
	vq->index = index;
	vq->worker = worker;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	/* All ranges were checked to lie inside the pool: no overflow. */
	return a < b + blen && b < a + alen;
}

void vq_setup(struct vmsg_device *dev, struct vmsg_vq *vq, uint32_t size, uint64_t desc_addr,
	      uint64_t driver_addr, uint64_t device_addr)
{
	const struct vmsg_pool *pool = &dev->be->pool;
	uint64_t desc_len, avail_len, used_len;

	if (vq->configured)
		vmsg_info("device %u: vq %u reconfigured without reset", dev->dev_num, vq->index);
	vq_reset(dev, vq);
	vq->configured = true;
	vq->size = size;
	vq->desc_addr = desc_addr;
	vq->driver_addr = driver_addr;
	vq->device_addr = device_addr;
	vq->event_idx = vmsg_has_feature(dev, VIRTIO_RING_F_EVENT_IDX);
	vq->indirect = vmsg_has_feature(dev, VIRTIO_RING_F_INDIRECT_DESC);

	if (!size || size > dev->max_queue_size || (size & (size - 1))) {
		vmsg_vq_mark_broken(dev, vq, "SET_VQUEUE size %u invalid (power of 2, max %u)",
				    size, dev->max_queue_size);
		return;
	}
	/* used_event / avail_event trail the rings when EVENT_IDX is in use. */
	desc_len = (uint64_t)DESC_SIZE * size;
	avail_len = AVAIL_RING(size) + (vq->event_idx ? 2 : 0);
	used_len = USED_RING(size) + (vq->event_idx ? 2 : 0);
	vq->desc = vmsg_pool_ptr(pool, desc_addr, desc_len);
	vq->avail = vmsg_pool_ptr(pool, driver_addr, avail_len);
	vq->used = vmsg_pool_ptr(pool, device_addr, used_len);
	if (!vq->desc || !vq->avail || !vq->used) {
		vmsg_vq_mark_broken(dev, vq,
				    "SET_VQUEUE rings desc 0x%" PRIx64 " driver 0x%" PRIx64
				    " device 0x%" PRIx64 " (size %u) not inside the DMA pool",
				    desc_addr, driver_addr, device_addr, size);
		return;
	}
	/* The alignment the split ring layout requires, and our atomics need. */
	if (((uintptr_t)vq->desc & 15) || ((uintptr_t)vq->avail & 1) ||
	    ((uintptr_t)vq->used & 3)) {
		vmsg_vq_mark_broken(dev, vq, "SET_VQUEUE rings misaligned");
		return;
	}
	/* We write the used ring: it must not overwrite the driver's areas. */
	if (ranges_overlap(device_addr, used_len, desc_addr, desc_len) ||
	    ranges_overlap(device_addr, used_len, driver_addr, avail_len)) {
		vmsg_vq_mark_broken(dev, vq, "SET_VQUEUE used ring overlaps the other rings");
		return;
	}
	/* Indirect tables may hold up to max_queue_size entries, see walk_chain(). */
	vq->segs = calloc(dev->max_queue_size, sizeof(*vq->segs));
	if (!vq->segs) {
		vmsg_vq_mark_broken(dev, vq, "out of memory");
		return;
	}
	vq->enabled = true;
	vmsg_info("device %u: vq %u enabled, size %u%s%s", dev->dev_num, vq->index, size,
		  vq->event_idx ? ", event idx" : "", vq->indirect ? ", indirect" : "");
}

/*
 * Collect the chain starting at head into vq->segs.  Returns false (queue
 * marked broken) if the driver broke any rule.
 */
static bool walk_chain(struct vmsg_device *dev, struct vmsg_vq *vq, uint16_t head,
		       struct vq_chain *c)
{
	const struct vmsg_pool *pool = &dev->be->pool;
	const uint8_t *table = vq->desc;
	uint32_t table_size = vq->size;
	uint32_t max = vq->size;	/* chain length limit; catches loops */
	uint32_t count = 0, i = head;
	bool in_indirect = false;
	struct desc d;
	uint8_t *ptr;

	memset(c, 0, sizeof(*c));
	c->head = head;
	c->segs = vq->segs;
	for (;;) {
		if (i >= table_size) {
			vmsg_vq_mark_broken(dev, vq, "descriptor index %u out of range (%s of %u)",
					    i, in_indirect ? "indirect table" : "queue",
					    table_size);
			return false;
		}
		read_desc(table + (size_t)i * DESC_SIZE, &d);

		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!vq->indirect) {
				vmsg_vq_mark_broken(dev, vq,
						    "indirect descriptor, feature not negotiated");
				return false;
			}
			/* One table per chain, referenced by a lone head descriptor. */
			if (in_indirect || count || (d.flags & VRING_DESC_F_NEXT)) {
				vmsg_vq_mark_broken(dev, vq,
						    "indirect descriptor %u not a lone chain head",
						    i);
				return false;
			}
			/*
			 * The spec limits a chain to the queue size, but Linux
			 * sizes indirect tables by seg_max (derived from the
			 * queue size we offered), not by the possibly smaller
			 * size it chose: allow up to the offered maximum.
			 */
			if (!d.len || d.len % DESC_SIZE ||
			    d.len / DESC_SIZE > dev->max_queue_size) {
				vmsg_vq_mark_broken(dev, vq, "indirect table length %u invalid",
						    d.len);
				return false;
			}
			table = vmsg_pool_ptr(pool, d.addr, d.len);
			if (!table) {
				vmsg_vq_mark_broken(dev, vq, "indirect table 0x%" PRIx64
						    "+%u outside the DMA pool", d.addr, d.len);
				return false;
			}
			table_size = d.len / DESC_SIZE;
			max = table_size;
			in_indirect = true;
			i = 0;
			continue;
		}

		if (++count > max) {
			vmsg_vq_mark_broken(dev, vq,
					    "descriptor chain at head %u longer than %u (loop?)",
					    head, max);
			return false;
		}
		ptr = vmsg_pool_ptr(pool, d.addr, d.len);
		if (!ptr) {
			vmsg_vq_mark_broken(dev, vq, "buffer 0x%" PRIx64 "+%u outside the DMA pool",
					    d.addr, d.len);
			return false;
		}
		if (d.flags & VRING_DESC_F_WRITE) {
			c->n_in++;
			c->in_len += d.len;
		} else {
			if (c->n_in) {
				vmsg_vq_mark_broken(dev, vq,
						    "device-readable descriptor after a writable one (head %u)",
						    head);
				return false;
			}
			c->n_out++;
			c->out_len += d.len;
		}
		/* count <= max <= max_queue_size, the size of segs. */
		c->segs[count - 1].ptr = ptr;
		c->segs[count - 1].len = d.len;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return true;
		i = d.next;
	}
}

static void push_used(struct vmsg_vq *vq, uint16_t head, uint32_t len)
{
	uint8_t *elem = vq->used + USED_RING(vq->used_idx & (vq->size - 1));

	store32(elem, head);
	store32(elem + 4, len);
	vq->used_idx++;
	/* The element must be visible before the index that publishes it. */
	store16_release(vq->used + USED_IDX, vq->used_idx);
}

static bool should_notify(struct vmsg_vq *vq)
{
	uint16_t old, event;

	/*
	 * Order our used->idx store before reading the driver's suppression
	 * state; the driver does the mirror image (writes flags/used_event,
	 * then reads used->idx), so one of us sees the other's update.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->event_idx) {
		old = vq->signalled_used;
		vq->signalled_used = vq->used_idx;
		event = load16(vq->avail + AVAIL_RING(vq->size));	/* used_event */
		return vring_need_event(event, vq->used_idx, old);
	}
	return !(load16(vq->avail + AVAIL_FLAGS) & VRING_AVAIL_F_NO_INTERRUPT);
}

/*
 * Without EVENT_IDX: VRING_USED_F_NO_NOTIFY while we are processing anyway,
 * so that the driver does not kick for every buffer it adds meanwhile.
 */
static void set_no_notify(struct vmsg_vq *vq, bool on)
{
	store16(vq->used + USED_FLAGS, on ? VRING_USED_F_NO_NOTIFY : 0);
}

/* Only a worker thread is ever asked to stop. */
static bool stopping(const struct vmsg_device *dev, const struct vmsg_vq *vq)
{
	return vq->worker && dev->be->workers->stopping(vq);
}

void vq_process(struct vmsg_device *dev, struct vmsg_vq *vq)
{
	bool completed = false, suppressed = false;
	struct vq_chain chain;
	uint16_t avail_idx, head;
	int64_t len;

	while (vq->enabled && !stopping(dev, vq)) {
		avail_idx = load16_acquire(vq->avail + AVAIL_IDX);
		if ((uint16_t)(avail_idx - vq->last_avail_idx) > vq->size) {
			vmsg_vq_mark_broken(dev, vq, "avail idx jumped from %u to %u (size %u)",
					    vq->last_avail_idx, avail_idx, vq->size);
			break;
		}
		if (avail_idx == vq->last_avail_idx) {
			/*
			 * Ask for a kick at the next new buffer (avail_event, or
			 * clear NO_NOTIFY), then look again: the driver may have
			 * added one before it saw that.
			 */
			if (vq->event_idx)
				store16(vq->used + USED_RING(vq->size), vq->last_avail_idx);
			else if (suppressed)
				set_no_notify(vq, false);
			else
				break;
			suppressed = false;
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (load16_acquire(vq->avail + AVAIL_IDX) == vq->last_avail_idx)
				break;
			continue;
		}
		if (!vq->event_idx && !suppressed) {
			set_no_notify(vq, true);
			suppressed = true;
		}
		while (vq->enabled && vq->last_avail_idx != avail_idx && !stopping(dev, vq)) {
			head = load16(vq->avail + AVAIL_RING(vq->last_avail_idx & (vq->size - 1)));
			if (head >= vq->size) {
				vmsg_vq_mark_broken(dev, vq,
						    "avail ring entry %u: head %u out of range",
						    vq->last_avail_idx, head);
				break;
			}
			if (!walk_chain(dev, vq, head, &chain))
				break;
			len = dev->ops->handle_chain(dev, vq, &chain);
			if (len < 0) {
				vmsg_vq_mark_broken(dev, vq, "malformed %s request (head %u)",
						    dev->ops->name, head);
				break;
			}
			if ((uint64_t)len > chain.in_len)
				len = (int64_t)chain.in_len;
			push_used(vq, head, (uint32_t)len);
			vq->last_avail_idx++;
			completed = true;
		}
	}
	/* Completions before a violation are still valid: let the driver reap them. */
	if (completed && vq->used && should_notify(vq))
		vmsg_notify_used(dev, vq);
}

static uint64_t chain_copy(const struct vq_seg *segs, unsigned int n, uint64_t offset,
			   uint8_t *buf, uint64_t len, bool to_chain)
{
	uint64_t done = 0, chunk;
	unsigned int i;

	for (i = 0; i < n && done < len; i++) {
		if (offset >= segs[i].len) {
			offset -= segs[i].len;
			continue;
		}
		chunk = segs[i].len - offset;
		if (chunk > len - done)
			chunk = len - done;
		if (to_chain)
			memcpy(segs[i].ptr + offset, buf + done, chunk);
		else
			memcpy(buf + done, segs[i].ptr + offset, chunk);
		done += chunk;
		offset = 0;
	}
	return done;
}

uint64_t vq_chain_read(const struct vq_chain *chain, uint64_t offset, void *buf, uint64_t len)
{
	return chain_copy(chain->segs, chain->n_out, offset, buf, len, false);
}

uint64_t vq_chain_write(const struct vq_chain *chain, uint64_t offset, const void *buf,
			uint64_t len)
{
	return chain_copy(chain->segs + chain->n_out, chain->n_in, offset, (uint8_t *)buf, len,
			  true);
}

/*
 * With VIRTIO_F_NOTIFICATION_DATA a split-ring kick carries the avail index
 * the driver had just published: never ahead of avail->idx and never more
 * than a ring behind it, and without the wrap bit (packed rings only).
 * A driver that gets this wrong is only reported, not punished: the ring
 * itself is authoritative.
 */
void vq_check_notification_data(struct vmsg_device *dev, struct vmsg_vq *vq,
				uint32_t next_offset)
{
	uint16_t avail_idx = load16_acquire(vq->avail + AVAIL_IDX);

	if (!(next_offset & ~0xffffu) &&
	    (uint16_t)(avail_idx - (uint16_t)next_offset) <= vq->size)
		return;
	vmsg_log("device %u: notification data mismatch on vq %u: next_offset 0x%x, avail idx %u",
		 dev->dev_num, vq->index, next_offset, avail_idx);
}
