// SPDX-License-Identifier: GPL-2.0-only
/*
 * Test only: fake FF-A partitions for virtio_msg_ffa.
 *
 * Registers FF-A devices with the virtio-msg partition UUID on the FF-A
 * bus (ffa-core loads without FF-A firmware: it is only the bus) with fake
 * ffa_ops, and plays the partition: it answers the bus messages itself and
 * forwards the transport messages to the user-space backend through the
 * same interface as the loopback bus, per partition N:
 *
 *   /dev/vmsg-ffa-lbN   INFO / ADD / REMOVE ioctls, mmap of the shared area
 *   /dev/vmsg-ffa-msgN  read requests and events, write responses and events
 *
 * so that "virtio-msg-backend --lb-dev /dev/vmsg-ffa-lb0 --msg-dev
 * /dev/vmsg-ffa-msg0" serves its devices over FF-A.  ADD/REMOVE turn into
 * EVENT_DEVICE messages and the device bitmap of GET_DEVICES.
 *
 * Partition modes (modes=, one per partition): both, direct, indirect,
 * poll (direct + indirect, no notifications), 32bit, none, badver.
 * Faults: /sys/kernel/debug/vmsg-ffa-fake/pN/<knob>, each a count of
 * messages to hit (0xffffffff: all), see vmsg_fake_knobs[].
 */
#define pr_fmt(fmt) "vmsg-ffa-fake: " fmt

#include <linux/arm_ffa.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/unaligned.h>
#include <linux/workqueue.h>

#include <uapi/linux/virtio_msg.h>
#include <uapi/linux/virtio_msg_ffa.h>
#include <uapi/linux/virtio_msg_loopback.h>

#define FAKE_MAX_PARTS		4
#define FAKE_DEVS		(U16_MAX + 1)
#define FAKE_MSG_MAX		512
#define FAKE_QUEUE_MAX		4096
#define FAKE_DIRECT_DATA	112
#define FAKE_INDIRECT_SIZE	264
#define FAKE_RFC1_SIZE		44

static char *modes[FAKE_MAX_PARTS] = { "both" };
static int nmodes = 1;
module_param_array(modes, charp, &nmodes, 0444);
MODULE_PARM_DESC(modes, "Per partition: both, direct, indirect, poll, 32bit, none, badver");

static char *wire_format = "spec";
module_param(wire_format, charp, 0444);
MODULE_PARM_DESC(wire_format, "spec or rfc1 (must match virtio_msg_ffa's)");

static unsigned int direct_wait_ms = 500;
module_param(direct_wait_ms, uint, 0644);
MODULE_PARM_DESC(direct_wait_ms, "How long a direct request waits for the backend before its answer goes asynchronous");

enum { M_DIRECT = 1, M_INDIRECT = 2, M_NOTIF = 4, M_32BIT = 8, M_BADVER = 16 };

enum fake_knob {
	K_BUSY,		/* direct/indirect sends fail with -EBUSY */
	K_BUS_BUSY,	/* bus requests answered with result BUSY */
	K_DELAY_MS,	/* (value) delay of the backend's messages */
	K_DUP,		/* deliver the backend's messages twice */
	K_UNSOLICITED,	/* inject a response nobody asked for */
	K_OVERSIZE,	/* msg_size larger than any message */
	K_TRUNCATE,	/* msg_size cut to the header + 1 */
	K_WRONG_DEV,	/* device number changed */
	K_BITMAP_EXTRA,	/* (value) extra devices in GET_DEVICES */
	K_BITMAP_BAD,	/* truncated bitmap, next_offset not advancing */
	K_PAGE_BITS,	/* (value) GET_DEVICES page size in bits */
	K_DENY_RECLAIM,	/* FFA_MEM_RECLAIM refused */
	K_DELAY_SKIP,	/* (count) backend messages let through before delay_ms applies */
	K_FWK_CUT,	/* notifications cut to fwk_len bytes */
	K_FWK_LEN,	/* (value) their FF-A message size, 0 included */
	K_CB_DELAY_MS,	/* (value) delay between the callback's lookup and call */
	K_NR,
};

static const char *const vmsg_fake_knobs[K_NR] = {
	"busy", "bus_busy", "delay_ms", "dup", "unsolicited", "oversize",
	"truncate", "wrong_dev", "bitmap_extra", "bitmap_bad", "page_bits",
	"deny_reclaim", "delay_skip", "fwk_cut", "fwk_len", "cb_delay_ms",
};

struct fake_msg {
	struct list_head node;
	struct fake_part *part;
	struct delayed_work work;
	size_t len;
	u8 data[FAKE_MSG_MAX];
};

struct fake_waiter {
	struct list_head node;
	u16 dev_num, token;
	u8 msg_id;
	bool done, failed;
	struct completion comp;
	size_t len;
	u8 resp[FAKE_DIRECT_DATA];
};

struct fake_seg {
	phys_addr_t phys;
	size_t len;
};

struct fake_part {
	int idx;
	unsigned int mode;
	struct ffa_device *fdev;

	spinlock_t lock;	/* everything below */
	ffa_fwk_notifier_cb cb;
	void *cb_data;
	u64 handle;
	struct fake_seg *segs;
	unsigned int nsegs;
	size_t size;
	bool area;
	u16 area_id;
	atomic_t mapped;
	unsigned long *present;
	bool open;
	struct list_head to_backend;
	unsigned int nto_backend;
	struct list_head to_driver;
	unsigned int nto_driver;
	struct list_head waiters;
	wait_queue_head_t rq;
	u32 knobs[K_NR];

	struct miscdevice ctl, msg;
	char ctl_name[24], msg_name[24];
	struct dentry *dbg;
};

static struct fake_part *parts[FAKE_MAX_PARTS];
static int nparts;
static bool rfc1;
static size_t hdr_size = VIRTIO_MSG_HEADER_SIZE;
static u64 next_handle = 0x1000;
static struct dentry *dbg_root;
/* Delayed backend messages still pending: the module waits for them. */
static atomic_t delayed_msgs = ATOMIC_INIT(0);

static const uuid_t fake_uuid =
	UUID_INIT(0xc66028b5, 0x2498, 0x4aa1,
		  0x9d, 0xe7, 0x77, 0xda, 0x61, 0x22, 0xab, 0xf0);

/* ---- helpers ---- */

struct hdr {
	u8 type, msg_id;
	u16 dev_num, token, size;
};

static void get_hdr(const u8 *p, struct hdr *h)
{
	h->type = p[0];
	h->msg_id = p[1];
	h->dev_num = get_unaligned_le16(p + 2);
	h->token = rfc1 ? 0 : get_unaligned_le16(p + 4);
	h->size = get_unaligned_le16(p + hdr_size - 2);
}

static void put_hdr(u8 *p, u8 type, u8 msg_id, u16 dev_num, u16 token,
		    size_t size)
{
	p[0] = type;
	p[1] = msg_id;
	put_unaligned_le16(dev_num, p + 2);
	if (!rfc1)
		put_unaligned_le16(token, p + 4);
	put_unaligned_le16(size, p + hdr_size - 2);
}

/* Consumes one hit of a fault counter (0xffffffff never runs out). */
static bool knob_hit(struct fake_part *p, enum fake_knob k)
{
	bool hit = false;

	spin_lock_bh(&p->lock);
	if (p->knobs[k]) {
		hit = true;
		if (p->knobs[k] != U32_MAX)
			p->knobs[k]--;
	}
	spin_unlock_bh(&p->lock);
	return hit;
}

static struct fake_part *part_of(struct ffa_device *fdev)
{
	int i;

	for (i = 0; i < nparts; i++)
		if (parts[i] && parts[i]->fdev == fdev)
			return parts[i];
	return NULL;
}

static size_t part_max_msg(struct fake_part *p)
{
	if (rfc1)
		return FAKE_RFC1_SIZE;
	if ((p->mode & (M_INDIRECT | M_NOTIF)) == (M_INDIRECT | M_NOTIF))
		return FAKE_INDIRECT_SIZE;
	return VIRTIO_MSG_FFA_DIRECT_MAX_SIZE;
}

static struct fake_msg *msg_new(struct fake_part *p, const void *data,
				size_t len)
{
	struct fake_msg *m = kzalloc(sizeof(*m), GFP_KERNEL);

	if (!m)
		return NULL;
	m->part = p;
	m->len = min_t(size_t, len, FAKE_MSG_MAX);
	memcpy(m->data, data, m->len);
	return m;
}

/* ---- towards the driver ---- */

/* Delivers a message from the partition to the driver, asynchronously. */
static void deliver(struct fake_part *p, const void *data, size_t len)
{
	ffa_fwk_notifier_cb cb;
	struct fake_msg *m;
	unsigned int delay;
	void *cb_data;
	void *buf;

	spin_lock_bh(&p->lock);
	cb = (p->mode & M_NOTIF) ? p->cb : NULL;
	cb_data = p->cb_data;
	spin_unlock_bh(&p->lock);

	if (cb) {
		/*
		 * Like the FF-A core (handle_fwk_notif_callbacks()): a
		 * kmemdup() of exactly the FF-A message size, which the
		 * callback is not told, and the call made after the lock is
		 * dropped, so that it can come after relinquish.  fwk_cut
		 * cuts the next messages longer than fwk_len to fwk_len bytes,
		 * shorter than their headers say (0: the ZERO_SIZE_PTR of an
		 * empty message); cb_delay_ms widens the window.
		 */
		if (len > READ_ONCE(p->knobs[K_FWK_LEN]) && knob_hit(p, K_FWK_CUT))
			len = READ_ONCE(p->knobs[K_FWK_LEN]);
		buf = kmemdup(data, min_t(size_t, len, FAKE_MSG_MAX), GFP_KERNEL);
		if (!buf)
			return;
		delay = READ_ONCE(p->knobs[K_CB_DELAY_MS]);
		if (delay)
			msleep(delay);
		cb(0, cb_data, buf);
		kfree(buf);
		return;
	}
	m = msg_new(p, data, len);
	if (!m)
		return;
	spin_lock_bh(&p->lock);
	if (p->nto_driver < FAKE_QUEUE_MAX) {
		list_add_tail(&m->node, &p->to_driver);
		p->nto_driver++;
		m = NULL;
	}
	spin_unlock_bh(&p->lock);
	if (m)
		pr_warn_ratelimited("p%d: poll queue full\n", p->idx);
	kfree(m);
}

static void send_bus_event(struct fake_part *p, u8 msg_id, const void *pl,
			   size_t plen)
{
	u8 buf[32];

	put_hdr(buf, VIRTIO_MSG_TYPE_BUS, msg_id, 0, 0, hdr_size + plen);
	memcpy(buf + hdr_size, pl, plen);
	deliver(p, buf, hdr_size + plen);
}

/* A message of the backend: complete a direct waiter or deliver. */
static void route(struct fake_part *p, u8 *data, size_t len)
{
	struct fake_waiter *w;
	struct hdr h;

	get_hdr(data, &h);
	if (knob_hit(p, K_OVERSIZE))
		put_unaligned_le16(0xfff0, data + hdr_size - 2);
	else if (knob_hit(p, K_TRUNCATE))
		put_unaligned_le16(hdr_size + 1, data + hdr_size - 2);
	if (knob_hit(p, K_WRONG_DEV))
		put_unaligned_le16(h.dev_num ^ 0x5a5, data + 2);

	if (h.type & VIRTIO_MSG_TYPE_RESPONSE) {
		spin_lock_bh(&p->lock);
		list_for_each_entry(w, &p->waiters, node) {
			if (w->done || w->dev_num != h.dev_num ||
			    w->token != h.token || w->msg_id != h.msg_id)
				continue;
			if (len > VIRTIO_MSG_FFA_DIRECT_MAX_SIZE)
				break;	/* too big for registers: goes async */
			memcpy(w->resp, data, len);
			w->len = len;
			w->done = true;
			complete(&w->comp);
			spin_unlock_bh(&p->lock);
			return;
		}
		spin_unlock_bh(&p->lock);
	}
	deliver(p, data, len);
}

static void backend_msg(struct fake_part *p, u8 *data, size_t len)
{
	struct hdr h;
	u8 copy[FAKE_MSG_MAX];

	get_hdr(data, &h);
	if ((h.type & VIRTIO_MSG_TYPE_RESPONSE) && knob_hit(p, K_UNSOLICITED)) {
		memcpy(copy, data, len);
		put_unaligned_le16(h.token ^ 0x4321, copy + 4);
		if (rfc1)	/* no token: an id nobody waits for */
			copy[1] = VIRTIO_MSG_GET_SHM;
		deliver(p, copy, len);
	}
	if (knob_hit(p, K_DUP)) {
		memcpy(copy, data, len);
		route(p, copy, len);
	}
	route(p, data, len);
}

static void delayed_msg_work(struct work_struct *work)
{
	struct fake_msg *m = container_of(to_delayed_work(work),
					  struct fake_msg, work);

	backend_msg(m->part, m->data, m->len);
	kfree(m);
	atomic_dec(&delayed_msgs);
}

/* ---- towards the backend ---- */

static int to_backend(struct fake_part *p, const void *data, size_t len)
{
	struct fake_msg *m = msg_new(p, data, len);
	int ret = 0;

	if (!m)
		return -ENOMEM;
	spin_lock_bh(&p->lock);
	if (!p->open)
		ret = -ENODEV;
	else if (p->nto_backend >= FAKE_QUEUE_MAX)
		ret = -EBUSY;
	if (!ret) {
		list_add_tail(&m->node, &p->to_backend);
		p->nto_backend++;
	}
	spin_unlock_bh(&p->lock);
	if (ret)
		kfree(m);
	else
		wake_up_interruptible(&p->rq);
	return ret;
}

/* ---- bus messages ---- */

static size_t bus_get_devices(struct fake_part *p, const u8 *pl, size_t plen,
			      u8 *out)
{
	u16 off = plen >= 4 ? get_unaligned_le16(pl) : 0;
	u32 count = plen >= 4 ? get_unaligned_le16(pl + 2) : 0;
	u32 page = p->knobs[K_PAGE_BITS], extra = p->knobs[K_BITMAP_EXTRA];
	/* Must fit a direct response (104 bytes), the smallest path. */
	u32 room = (VIRTIO_MSG_FFA_DIRECT_MAX_SIZE - hdr_size - 6) * 8, i, next = 0;
	bool bad = knob_hit(p, K_BITMAP_BAD);
	u8 *bm = out + 6;

	if (page)
		count = min(count, page);
	count = round_down(min(count, room), 8);
	memset(bm, 0, count / 8);
	spin_lock_bh(&p->lock);
	for (i = 0; i < count && off + i < FAKE_DEVS; i++)
		if (test_bit(off + i, p->present) ||
		    (extra && (off + i == 777 || off + i == 4000)))
			bm[i / 8] |= BIT(i % 8);
	if (off + count < FAKE_DEVS &&
	    (find_next_bit(p->present, FAKE_DEVS, off + count) < FAKE_DEVS ||
	     (extra && off + count <= 4000)))
		next = off + count;
	spin_unlock_bh(&p->lock);
	put_unaligned_le16(off, out);
	put_unaligned_le16(count, out + 2);
	if (bad) {
		/*
		 * Announces a full page but carries one byte; the next page
		 * offset stops advancing from the second page on.
		 */
		put_unaligned_le16(off ? off : 8, out + 4);
		return 6 + 1;
	}
	put_unaligned_le16(next, out + 4);
	return 6 + count / 8;
}

/* Answers bus request @in; returns the answer's length in @out. */
static size_t bus_msg(struct fake_part *p, const u8 *in, size_t len, u8 *out)
{
	const u8 *pl = in + hdr_size;
	size_t plen = len - hdr_size, n = 0;
	u8 *o = out + hdr_size;
	u16 result = knob_hit(p, K_BUS_BUSY) ? VIRTIO_MSG_FFA_RESULT_BUSY :
					       VIRTIO_MSG_FFA_RESULT_OK;
	struct hdr h;
	u32 feat;

	get_hdr(in, &h);
	switch (h.msg_id) {
	case VIRTIO_MSG_FFA_BUS_VERSION:
		feat = VIRTIO_MSG_FFA_F_DIRECT_TX;
		if (p->mode & M_DIRECT)
			feat |= VIRTIO_MSG_FFA_F_DIRECT_RX;
		if (p->mode & M_INDIRECT)
			feat |= VIRTIO_MSG_FFA_F_INDIRECT_RX;
		if (p->mode & M_NOTIF)
			feat |= VIRTIO_MSG_FFA_F_INDIRECT_TX;
		if (rfc1) {
			put_unaligned_le32(p->mode & M_BADVER ? 2 : 1, o);
			put_unaligned_le32(((p->mode & M_DIRECT) ? 2 : 0) |
					   ((p->mode & M_NOTIF) ? 1 : 0), o + 4);
			put_unaligned_le16(0, o + 8);
			n = 10;
		} else {
			put_unaligned_le32(p->mode & M_BADVER ? 0x00020000 :
					   VIRTIO_MSG_FFA_VERSION_1_0, o);
			put_unaligned_le32(1, o + 4);
			put_unaligned_le32(0, o + 8);
			put_unaligned_le32(feat, o + 12);
			put_unaligned_le16(1, o + 16);
			n = 18;
		}
		break;
	case VIRTIO_MSG_FFA_BUS_AREA_SHARE:
		if (plen < sizeof(struct virtio_msg_ffa_area_share)) {
			result = VIRTIO_MSG_FFA_RESULT_ERROR;
		} else if (result == VIRTIO_MSG_FFA_RESULT_OK) {
			spin_lock_bh(&p->lock);
			if (get_unaligned_le64(pl + 2) != p->handle ||
			    (u64)get_unaligned_le32(pl + 18) << PAGE_SHIFT != p->size) {
				result = VIRTIO_MSG_FFA_RESULT_ERROR;
			} else {
				p->area = true;
				p->area_id = get_unaligned_le16(pl);
			}
			spin_unlock_bh(&p->lock);
		}
		put_unaligned_le16(plen >= 2 ? get_unaligned_le16(pl) : 0, o);
		put_unaligned_le16(result, o + 2);
		n = rfc1 ? 2 : 4;
		break;
	case VIRTIO_MSG_FFA_BUS_AREA_UNSHARE:
		spin_lock_bh(&p->lock);
		p->area = false;
		spin_unlock_bh(&p->lock);
		put_unaligned_le16(plen >= 2 ? get_unaligned_le16(pl) : 0, o);
		put_unaligned_le16(VIRTIO_MSG_FFA_RESULT_OK, o + 2);
		n = rfc1 ? 2 : 4;
		break;
	case VIRTIO_MSG_FFA_BUS_RESET:
	case VIRTIO_MSG_FFA_BUS_EVENT_CONFIGURE:
		put_unaligned_le16(result, o);
		n = 2;
		break;
	case VIRTIO_MSG_BUS_GET_DEVICES:
		n = bus_get_devices(p, pl, plen, o);
		break;
	case VIRTIO_MSG_BUS_PING:
		memcpy(o, pl, min_t(size_t, plen, 4));
		n = 4;
		break;
	default:
		put_unaligned_le16(h.msg_id, o);
		put_hdr(out, VIRTIO_MSG_TYPE_BUS | VIRTIO_MSG_TYPE_RESPONSE,
			VIRTIO_MSG_FFA_BUS_ERROR, 0, h.token, hdr_size + 2);
		return hdr_size + 2;
	}
	put_hdr(out, VIRTIO_MSG_TYPE_BUS | VIRTIO_MSG_TYPE_RESPONSE, h.msg_id,
		0, h.token, hdr_size + n);
	return hdr_size + n;
}

/* ---- fake ffa_ops ---- */

/* Checks a message from the driver; returns its length or 0. */
static size_t check_in(const void *buf, size_t avail, struct hdr *h)
{
	if (avail < hdr_size)
		return 0;
	get_hdr(buf, h);
	if (h->size < hdr_size || h->size > avail)
		return 0;
	return h->size;
}

static int fake_direct2(struct ffa_device *fdev,
			struct ffa_send_direct_data2 *data)
{
	struct fake_part *p = part_of(fdev);
	u8 in[FAKE_DIRECT_DATA];
	struct fake_waiter *w;
	struct fake_msg *m;
	struct hdr h;
	size_t len;
	int ret;

	if (!p || !(p->mode & M_DIRECT))
		return -EOPNOTSUPP;
	if (knob_hit(p, K_BUSY))
		return -EBUSY;
	memcpy(in, data, sizeof(in));
	memset(data, 0, sizeof(*data));
	len = check_in(in, VIRTIO_MSG_FFA_DIRECT_MAX_SIZE, &h);
	if (!len)
		return -EINVAL;

	if (h.type & VIRTIO_MSG_TYPE_BUS) {
		if (h.msg_id != VIRTIO_MSG_FFA_BUS_EVENT_POLL) {
			bus_msg(p, in, len, (u8 *)data);
			return 0;
		}
		spin_lock_bh(&p->lock);
		m = list_first_entry_or_null(&p->to_driver, struct fake_msg, node);
		if (m) {
			list_del(&m->node);
			p->nto_driver--;
		}
		spin_unlock_bh(&p->lock);
		if (!m) {
			put_hdr((u8 *)data, VIRTIO_MSG_TYPE_BUS | VIRTIO_MSG_TYPE_RESPONSE,
				VIRTIO_MSG_FFA_BUS_EVENT_POLL, 0, h.token, hdr_size);
			return 0;
		}
		memcpy(data, m->data, min_t(size_t, m->len, FAKE_DIRECT_DATA));
		kfree(m);
		return 0;
	}

	/* Events need no answer. */
	if (h.msg_id & VIRTIO_MSG_ID_EVENT_BIT)
		return to_backend(p, in, len) == -ENOMEM ? -ENOMEM : 0;

	w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	init_completion(&w->comp);
	w->dev_num = h.dev_num;
	w->token = h.token;
	w->msg_id = h.msg_id;
	spin_lock_bh(&p->lock);
	list_add_tail(&w->node, &p->waiters);
	spin_unlock_bh(&p->lock);
	ret = to_backend(p, in, len);
	if (!ret)
		wait_for_completion_timeout(&w->comp,
					    msecs_to_jiffies(READ_ONCE(direct_wait_ms)));
	spin_lock_bh(&p->lock);
	list_del(&w->node);
	if (w->failed)
		ret = -EIO;
	else if (w->done)
		memcpy(data, w->resp, w->len);
	spin_unlock_bh(&p->lock);
	/* Not done: the answer comes later, asynchronously. */
	kfree(w);
	return ret;
}

static int fake_indirect_send(struct ffa_device *fdev, void *buf, size_t sz)
{
	struct fake_part *p = part_of(fdev);
	u8 out[FAKE_MSG_MAX];
	struct hdr h;
	size_t len;

	if (!p || !(p->mode & M_INDIRECT))
		return -EOPNOTSUPP;
	if (knob_hit(p, K_BUSY))
		return -EBUSY;
	len = check_in(buf, min_t(size_t, sz, FAKE_MSG_MAX), &h);
	if (!len)
		return -EINVAL;
	if (h.type & VIRTIO_MSG_TYPE_BUS) {
		deliver(p, out, bus_msg(p, buf, len, out));
		return 0;
	}
	if (h.msg_id & VIRTIO_MSG_ID_EVENT_BIT)
		return to_backend(p, buf, len) == -ENOMEM ? -ENOMEM : 0;
	return to_backend(p, buf, len);
}

static void fake_mode_32bit_set(struct ffa_device *fdev)
{
	fdev->mode_32bit = true;
}

static int fake_direct(struct ffa_device *fdev, struct ffa_send_direct_data *d)
{
	return -EOPNOTSUPP;
}

static int fake_memory_share(struct ffa_mem_ops_args *args)
{
	struct fake_part *p = NULL;
	struct scatterlist *sg;
	struct fake_seg *segs;
	unsigned int n = 0, i;
	size_t size = 0;

	if (!args->attrs || args->nattrs != 1)
		return -EINVAL;
	for (i = 0; i < nparts; i++)
		if (parts[i] && parts[i]->fdev->vm_id == args->attrs[0].receiver)
			p = parts[i];
	if (!p)
		return -EINVAL;
	for (sg = args->sg; sg; sg = sg_next(sg))
		n++;
	segs = kcalloc(n, sizeof(*segs), GFP_KERNEL);
	if (!segs)
		return -ENOMEM;
	for (i = 0, sg = args->sg; sg; sg = sg_next(sg), i++) {
		segs[i].phys = sg_phys(sg);
		segs[i].len = sg->length;
		size += sg->length;
		if (!PAGE_ALIGNED(segs[i].phys) || !PAGE_ALIGNED(segs[i].len)) {
			kfree(segs);
			return -EINVAL;
		}
	}
	spin_lock_bh(&p->lock);
	if (p->segs) {
		spin_unlock_bh(&p->lock);
		kfree(segs);
		return -EBUSY;	/* one share at a time in this fake */
	}
	p->segs = segs;
	p->nsegs = n;
	p->size = size;
	p->handle = next_handle++;
	args->g_handle = p->handle;
	spin_unlock_bh(&p->lock);
	return 0;
}

static int fake_memory_reclaim(u64 handle, u32 flags)
{
	struct fake_part *p;
	struct fake_seg *segs;
	int i;

	for (i = 0; i < nparts; i++) {
		p = parts[i];
		if (!p || !p->segs || p->handle != handle)
			continue;
		/* Like a borrower that has not relinquished the memory. */
		if (atomic_read(&p->mapped) || knob_hit(p, K_DENY_RECLAIM))
			return -EACCES;
		spin_lock_bh(&p->lock);
		segs = p->segs;
		p->segs = NULL;
		p->size = 0;
		p->area = false;
		spin_unlock_bh(&p->lock);
		kfree(segs);
		return 0;
	}
	return -EINVAL;
}

static int fake_memory_lend(struct ffa_mem_ops_args *args)
{
	return -EOPNOTSUPP;
}

static int fake_fwk_notify_request(struct ffa_device *fdev,
				   ffa_fwk_notifier_cb cb, void *cb_data,
				   int notify_id)
{
	struct fake_part *p = part_of(fdev);

	if (!p || !(p->mode & M_NOTIF))
		return -EOPNOTSUPP;
	spin_lock_bh(&p->lock);
	p->cb = cb;
	p->cb_data = cb_data;
	spin_unlock_bh(&p->lock);
	return 0;
}

static int fake_fwk_notify_relinquish(struct ffa_device *fdev, int notify_id)
{
	struct fake_part *p = part_of(fdev);

	if (!p)
		return -EINVAL;
	spin_lock_bh(&p->lock);
	p->cb = NULL;
	p->cb_data = NULL;
	spin_unlock_bh(&p->lock);
	return 0;
}

static u32 fake_api_version_get(void)
{
	return 0x10002;	/* FF-A v1.2: has DIRECT_REQ2 */
}

static int fake_partition_info_get(const char *uuid_str,
				   struct ffa_partition_info *buffer)
{
	return -EOPNOTSUPP;
}

static const struct ffa_info_ops fake_info_ops = {
	.api_version_get	= fake_api_version_get,
	.partition_info_get	= fake_partition_info_get,
};

static const struct ffa_msg_ops fake_msg_ops = {
	.mode_32bit_set		= fake_mode_32bit_set,
	.sync_send_receive	= fake_direct,
	.indirect_send		= fake_indirect_send,
	.sync_send_receive2	= fake_direct2,
};

static const struct ffa_mem_ops fake_mem_ops = {
	.memory_reclaim		= fake_memory_reclaim,
	.memory_share		= fake_memory_share,
	.memory_lend		= fake_memory_lend,
};

static const struct ffa_notifier_ops fake_notifier_ops = {
	.fwk_notify_request	= fake_fwk_notify_request,
	.fwk_notify_relinquish	= fake_fwk_notify_relinquish,
};

static const struct ffa_ops fake_ops = {
	.info_ops	= &fake_info_ops,
	.msg_ops	= &fake_msg_ops,
	.mem_ops	= &fake_mem_ops,
	.notifier_ops	= &fake_notifier_ops,
};

/* ---- backend interface ---- */

static struct fake_part *file_part(struct file *file)
{
	struct miscdevice *misc = file->private_data;
	int i;

	for (i = 0; i < nparts; i++)
		if (parts[i] && (misc == &parts[i]->ctl || misc == &parts[i]->msg))
			return parts[i];
	return NULL;
}

static int ctl_info(struct fake_part *p, void __user *argp)
{
	struct virtio_msg_lb_info info = {
		.wire_format = rfc1 ? VIRTIO_MSG_WIRE_RFC1 : VIRTIO_MSG_WIRE_SPEC,
		.max_msg_size = part_max_msg(p),
		.max_devices = FAKE_DEVS,
	};

	spin_lock_bh(&p->lock);
	if (!p->area) {
		spin_unlock_bh(&p->lock);
		return -EAGAIN;	/* the driver has not shared memory yet */
	}
	info.pool_size = p->size;
	info.bus_addr_base = (u64)p->area_id <<
			     (rfc1 ? VIRTIO_MSG_FFA_RFC1_AREA_ID_SHIFT :
				     VIRTIO_MSG_FFA_AREA_ID_SHIFT);
	info.num_devices = bitmap_weight(p->present, FAKE_DEVS);
	spin_unlock_bh(&p->lock);
	strscpy(info.msg_dev_name, p->msg_name, sizeof(info.msg_dev_name));
	return copy_to_user(argp, &info, sizeof(info)) ? -EFAULT : 0;
}

static long ctl_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct fake_part *p = file_part(file);
	void __user *argp = (void __user *)arg;
	struct virtio_msg_bus_event_device ev;
	struct virtio_msg_lb_dev dev;
	bool add, was;

	if (!p)
		return -ENODEV;
	switch (cmd) {
	case VIRTIO_MSG_LB_IOC_INFO:
		return ctl_info(p, argp);
	case VIRTIO_MSG_LB_IOC_ADD:
	case VIRTIO_MSG_LB_IOC_REMOVE:
		if (copy_from_user(&dev, argp, sizeof(dev)))
			return -EFAULT;
		if (dev.dev_num >= FAKE_DEVS)
			return -EINVAL;
		add = cmd == VIRTIO_MSG_LB_IOC_ADD;
		break;
	default:
		return -ENOTTY;
	}
	spin_lock_bh(&p->lock);
	was = test_bit(dev.dev_num, p->present);
	if (add)
		__set_bit(dev.dev_num, p->present);
	else
		__clear_bit(dev.dev_num, p->present);
	spin_unlock_bh(&p->lock);
	if (add == was)
		return add ? -EEXIST : -ENODEV;
	ev.dev_num = cpu_to_le16(dev.dev_num);
	ev.dev_state = cpu_to_le16(add ? VIRTIO_MSG_BUS_DEV_READY :
				   VIRTIO_MSG_BUS_DEV_REMOVED);
	send_bus_event(p, VIRTIO_MSG_BUS_EVENT_DEVICE, &ev, sizeof(ev));
	return 0;
}

static void fake_vm_open(struct vm_area_struct *vma)
{
	struct fake_part *p = vma->vm_private_data;

	atomic_inc(&p->mapped);
}

static void fake_vm_close(struct vm_area_struct *vma)
{
	struct fake_part *p = vma->vm_private_data;

	atomic_dec(&p->mapped);
}

static const struct vm_operations_struct fake_vm_ops = {
	.open	= fake_vm_open,
	.close	= fake_vm_close,
};

static int ctl_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct fake_part *p = file_part(file);
	unsigned long addr = vma->vm_start, len = vma->vm_end - vma->vm_start;
	unsigned int i;
	int ret = 0;

	if (!p)
		return -ENODEV;
	spin_lock_bh(&p->lock);
	if (!p->area || vma->vm_pgoff || len > p->size)
		ret = -EINVAL;
	else
		atomic_inc(&p->mapped);
	spin_unlock_bh(&p->lock);
	if (ret)
		return ret;
	vma->vm_private_data = p;
	vma->vm_ops = &fake_vm_ops;
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	/* Holding a mapping makes reclaim fail: segs stay while we map. */
	for (i = 0; i < p->nsegs && len && !ret; i++) {
		size_t n = min_t(size_t, len, p->segs[i].len);

		ret = remap_pfn_range(vma, addr, PHYS_PFN(p->segs[i].phys), n,
				      vma->vm_page_prot);
		addr += n;
		len -= n;
	}
	return ret;
}

static const struct file_operations ctl_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= ctl_ioctl,
	.mmap		= ctl_mmap,
};

static int msg_open(struct inode *inode, struct file *file)
{
	struct fake_part *p = file_part(file);
	int ret = 0;

	if (!p)
		return -ENODEV;
	spin_lock_bh(&p->lock);
	if (p->open)
		ret = -EBUSY;
	p->open = true;
	spin_unlock_bh(&p->lock);
	return ret ?: nonseekable_open(inode, file);
}

static int msg_release(struct inode *inode, struct file *file)
{
	struct fake_part *p = file_part(file);
	struct fake_waiter *w;
	struct fake_msg *m, *t;
	LIST_HEAD(drop);

	spin_lock_bh(&p->lock);
	p->open = false;
	list_splice_init(&p->to_backend, &drop);
	p->nto_backend = 0;
	/* Requests nobody will answer fail now instead of timing out. */
	list_for_each_entry(w, &p->waiters, node) {
		w->failed = true;
		complete(&w->comp);
	}
	spin_unlock_bh(&p->lock);
	list_for_each_entry_safe(m, t, &drop, node)
		kfree(m);
	return 0;
}

static ssize_t msg_read(struct file *file, char __user *buf, size_t count,
			loff_t *ppos)
{
	struct fake_part *p = file_part(file);
	struct fake_msg *m;
	ssize_t ret;

	for (;;) {
		spin_lock_bh(&p->lock);
		m = list_first_entry_or_null(&p->to_backend, struct fake_msg, node);
		if (m) {
			list_del(&m->node);
			p->nto_backend--;
		}
		spin_unlock_bh(&p->lock);
		if (m)
			break;
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(p->rq, !list_empty(&p->to_backend));
		if (ret)
			return ret;
	}
	ret = m->len;
	if (count < m->len)
		ret = -EINVAL;
	else if (copy_to_user(buf, m->data, m->len))
		ret = -EFAULT;
	kfree(m);
	return ret;
}

static ssize_t msg_write(struct file *file, const char __user *buf,
			 size_t count, loff_t *ppos)
{
	struct fake_part *p = file_part(file);
	u32 delay = READ_ONCE(p->knobs[K_DELAY_MS]);
	struct fake_msg *m;
	struct hdr h;
	size_t len;

	if (count < hdr_size || count > FAKE_MSG_MAX)
		return -EINVAL;
	m = kzalloc(sizeof(*m), GFP_KERNEL);
	if (!m)
		return -ENOMEM;
	if (copy_from_user(m->data, buf, count)) {
		kfree(m);
		return -EFAULT;
	}
	len = check_in(m->data, count, &h);
	if (!len) {
		kfree(m);
		return -EINVAL;
	}
	m->part = p;
	m->len = len;
	if (delay && knob_hit(p, K_DELAY_SKIP))
		delay = 0;
	if (delay) {
		atomic_inc(&delayed_msgs);
		INIT_DELAYED_WORK(&m->work, delayed_msg_work);
		schedule_delayed_work(&m->work, msecs_to_jiffies(delay));
		return count;
	}
	backend_msg(p, m->data, m->len);
	kfree(m);
	return count;
}

static __poll_t msg_poll(struct file *file, poll_table *wait)
{
	struct fake_part *p = file_part(file);

	poll_wait(file, &p->rq, wait);
	return EPOLLOUT | EPOLLWRNORM |
	       (list_empty(&p->to_backend) ? 0 : EPOLLIN | EPOLLRDNORM);
}

static const struct file_operations msg_fops = {
	.owner		= THIS_MODULE,
	.open		= msg_open,
	.release	= msg_release,
	.read		= msg_read,
	.write		= msg_write,
	.poll		= msg_poll,
};

/* ---- setup ---- */

static int parse_mode(const char *s, unsigned int *mode)
{
	static const struct { const char *name; unsigned int mode; } tab[] = {
		{ "both", M_DIRECT | M_INDIRECT | M_NOTIF },
		{ "direct", M_DIRECT },
		{ "indirect", M_INDIRECT | M_NOTIF },
		{ "poll", M_DIRECT | M_INDIRECT },
		{ "32bit", M_DIRECT | M_INDIRECT | M_NOTIF | M_32BIT },
		{ "none", 0 },
		{ "badver", M_DIRECT | M_INDIRECT | M_NOTIF | M_BADVER },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(tab); i++) {
		if (sysfs_streq(s, tab[i].name)) {
			*mode = tab[i].mode;
			return 0;
		}
	}
	return -EINVAL;
}

static void part_destroy(struct fake_part *p)
{
	struct fake_msg *m, *t;

	if (p->fdev)
		ffa_device_unregister(p->fdev);
	if (p->msg.minor != MISC_DYNAMIC_MINOR)
		misc_deregister(&p->msg);
	if (p->ctl.minor != MISC_DYNAMIC_MINOR)
		misc_deregister(&p->ctl);
	list_for_each_entry_safe(m, t, &p->to_driver, node)
		kfree(m);
	list_for_each_entry_safe(m, t, &p->to_backend, node)
		kfree(m);
	/* Memory the driver never reclaimed is its, not ours. */
	kfree(p->segs);
	bitmap_free(p->present);
	kfree(p);
}

static int part_create(int idx, unsigned int mode)
{
	struct ffa_partition_info info = {
		.id = 0x8001 + idx,
		.exec_ctxt = 1,
	};
	struct fake_part *p;
	char name[16];
	int i, ret;

	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	p->idx = idx;
	p->mode = mode;
	spin_lock_init(&p->lock);
	INIT_LIST_HEAD(&p->to_backend);
	INIT_LIST_HEAD(&p->to_driver);
	INIT_LIST_HEAD(&p->waiters);
	init_waitqueue_head(&p->rq);
	p->ctl.minor = MISC_DYNAMIC_MINOR;
	p->msg.minor = MISC_DYNAMIC_MINOR;
	p->present = bitmap_zalloc(FAKE_DEVS, GFP_KERNEL);
	if (!p->present) {
		kfree(p);
		return -ENOMEM;
	}
	parts[idx] = p;

	snprintf(p->ctl_name, sizeof(p->ctl_name), "vmsg-ffa-lb%d", idx);
	snprintf(p->msg_name, sizeof(p->msg_name), "vmsg-ffa-msg%d", idx);
	p->ctl.name = p->ctl_name;
	p->ctl.fops = &ctl_fops;
	p->ctl.mode = 0600;
	p->msg.name = p->msg_name;
	p->msg.fops = &msg_fops;
	p->msg.mode = 0600;
	ret = misc_register(&p->ctl);
	if (ret) {
		p->ctl.minor = MISC_DYNAMIC_MINOR;
		return ret;
	}
	ret = misc_register(&p->msg);
	if (ret) {
		p->msg.minor = MISC_DYNAMIC_MINOR;
		return ret;
	}

	snprintf(name, sizeof(name), "p%d", idx);
	p->dbg = debugfs_create_dir(name, dbg_root);
	for (i = 0; i < K_NR; i++)
		debugfs_create_u32(vmsg_fake_knobs[i], 0600, p->dbg, &p->knobs[i]);

	if (mode & M_DIRECT)
		info.properties |= FFA_PARTITION_DIRECT_REQ2_RECV |
				   FFA_PARTITION_DIRECT_RECV;
	if (mode & (M_INDIRECT | M_NOTIF))
		info.properties |= FFA_PARTITION_INDIRECT_MSG;
	if (!(mode & M_32BIT))
		info.properties |= FFA_PARTITION_AARCH64_EXEC;
	memcpy(&info.uuid, &fake_uuid, sizeof(fake_uuid));
#ifdef HAVE_FFA_DEVICE_REGISTER_PARENT
	p->fdev = ffa_device_register(&info, &fake_ops, NULL);
#else
	p->fdev = ffa_device_register(&info, &fake_ops);
#endif
	if (IS_ERR_OR_NULL(p->fdev)) {
		ret = p->fdev ? PTR_ERR(p->fdev) : -ENODEV;
		p->fdev = NULL;
		return ret;
	}
	/* As the FF-A core does for partitions without AArch64 state. */
	if (mode & M_32BIT)
		fake_mode_32bit_set(p->fdev);
	pr_info("partition p%d id %#x mode %s on /dev/%s, /dev/%s\n", idx,
		p->fdev->vm_id, modes[idx], p->ctl_name, p->msg_name);
	return 0;
}

static void fake_exit(void)
{
	int i;

	while (atomic_read(&delayed_msgs))
		msleep(20);
	for (i = nparts - 1; i >= 0; i--) {
		if (parts[i])
			part_destroy(parts[i]);
		parts[i] = NULL;
	}
	debugfs_remove_recursive(dbg_root);
}

static int __init fake_init(void)
{
	unsigned int mode;
	int i, ret;

	if (sysfs_streq(wire_format, "rfc1")) {
		rfc1 = true;
		hdr_size = 6;
	} else if (!sysfs_streq(wire_format, "spec")) {
		return -EINVAL;
	}
	dbg_root = debugfs_create_dir("vmsg-ffa-fake", NULL);
	nparts = nmodes;
	for (i = 0; i < nparts; i++) {
		ret = parse_mode(modes[i], &mode);
		if (!ret)
			ret = part_create(i, mode);
		if (ret) {
			pr_err("partition %d (%s): %d\n", i, modes[i], ret);
			fake_exit();
			return ret;
		}
	}
	return 0;
}
module_init(fake_init);

static void __exit fake_mod_exit(void)
{
	fake_exit();
}
module_exit(fake_mod_exit);

MODULE_DESCRIPTION("Test only: fake FF-A partitions serving virtio-msg devices from user space");
MODULE_LICENSE("GPL");
