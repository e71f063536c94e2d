// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-msg bus over Arm FF-A (Arm DEN0153).
 *
 * Binds to FF-A partitions that implement virtio-msg devices (partition
 * UUID c66028b5-2498-4aa1-9de7-77da6122abf0); each partition gets its own
 * virtio-msg bus and devices.  Per partition:
 *
 *  - VERSION picks the bus version (0x00010000 with the spec's 8-byte
 *    header, or 0x1 of the RFC v1 series with its 6-byte header when
 *    wire_format=rfc1) and learns what the partition supports;
 *  - the DMA pool ("virtio-msg,ffa" region, "vmsgffa" node, or pages
 *    allocated at probe) is shared with FFA_MEM_SHARE and announced with
 *    AREA_SHARE; bus addresses are area_id << 48 | offset;
 *  - messages go by direct request (DIRECT_REQ2, 64-bit partitions only)
 *    when they fit, by indirect message otherwise;
 *  - the partition's messages arrive in direct responses, through the FF-A
 *    framework notification of indirect messages or, when that is not
 *    available, by polling with EVENT_POLL; EVENT_CONFIGURE says which;
 *  - GET_DEVICES and EVENT_DEVICE add and remove devices.
 *
 * The partition is untrusted: every length, id and device number it sends
 * is checked before use.  Transport responses go through
 * virtio_msg_bus_receive(), which copies them only into a request still
 * waiting, so a late response cannot reach freed memory.
 *
 * Every transfer may sleep (indirect_send() takes a mutex, BUSY is retried
 * with sleeps), so kicks, which the core sends in atomic context, are
 * queued and sent by a work item.
 */
#define pr_fmt(fmt) "virtio-msg-ffa: " fmt

#include <linux/arm_ffa.h>
#include <linux/bitmap.h>
#include <linux/delay.h>
#include <linux/module.h>
#include <linux/pm.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/srcu.h>
#include <linux/unaligned.h>
#include <linux/virtio_msg_bus.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include <uapi/linux/virtio_msg_ffa.h>

static char *wire_format = "spec";
module_param(wire_format, charp, 0444);
MODULE_PARM_DESC(wire_format,
		 "Bus protocol: \"spec\" (bus version 0x00010000, 8-byte header, default) or \"rfc1\" (bus version 0x1, 6-byte header)");

static unsigned int max_msg_size = 264;
module_param(max_msg_size, uint, 0444);
MODULE_PARM_DESC(max_msg_size,
		 "Largest message when the partition takes and sends indirect messages (default 264); direct-only partitions: 104");

static unsigned long pool_size = SZ_16M;
module_param(pool_size, ulong, 0444);
MODULE_PARM_DESC(pool_size,
		 "Bytes of DMA pool per partition when the device tree has none (default 16 MiB)");

static unsigned int bus_timeout_ms = 3000;
module_param(bus_timeout_ms, uint, 0644);
MODULE_PARM_DESC(bus_timeout_ms, "Milliseconds to wait for the answer to a bus message (default 3000)");

static unsigned int busy_timeout_ms = 1000;
module_param(busy_timeout_ms, uint, 0644);
MODULE_PARM_DESC(busy_timeout_ms,
		 "Milliseconds to keep retrying a transfer the partition refuses as busy (default 1000)");

static unsigned int poll_ms = 4;
module_param(poll_ms, uint, 0644);
MODULE_PARM_DESC(poll_ms, "Event poll period without notifications, in ms (default 4)");

static unsigned int max_devices = 64;
module_param(max_devices, uint, 0444);
MODULE_PARM_DESC(max_devices, "Most devices per partition (default 64)");

static int fwk_notify_id;
module_param(fwk_notify_id, int, 0444);
MODULE_PARM_DESC(fwk_notify_id, "FF-A framework notification id of indirect messages (default 0)");

#define VMSG_FFA_UUID \
	UUID_INIT(0xc66028b5, 0x2498, 0x4aa1, \
		  0x9d, 0xe7, 0x77, 0xda, 0x61, 0x22, 0xab, 0xf0)

#define VMSG_FFA_RFC1_MSG_SIZE	44
#define VMSG_FFA_MAX_DEVICES	(U16_MAX + 1)
/* Area id of the pool: non-zero, so that no buffer has bus address 0. */
#define VMSG_FFA_AREA_ID	1
/* Kicks waiting for the kick work; one per queue is enough (deduplicated). */
#define VMSG_FFA_KICKS		64
#define VMSG_FFA_KICK_MAX	32
/* Messages fetched per poll round before others get the CPU again. */
#define VMSG_FFA_POLL_BATCH	32
#define VMSG_FFA_BUS_REQ_MAX	64
/* Requests the core gave up on, remembered to drop their late answers. */
#define VMSG_FFA_CANCELLED	16
#define VMSG_FFA_CANCEL_KEEP	(60 * HZ)

struct vmsg_ffa_cancelled {
	unsigned long when;
	u16 dev_num;
	u16 token;
	bool used;
};

struct vmsg_ffa_kick {
	u16 len;
	u8 msg[VMSG_FFA_KICK_MAX];
};

struct vmsg_ffa {
	struct ffa_device *fdev;
	const struct ffa_msg_ops *msg_ops;
	struct virtio_msg_bus bus;
	char name[32];
	enum virtio_msg_wire_format format;
	size_t hdr_size;
	/* largest message we accept from the partition */
	size_t rx_max;

	bool direct;		/* DIRECT_REQ2 to the partition */
	bool indirect;		/* indirect messages to the partition */
	bool notif;		/* its indirect messages reach our callback */
	u32 notif_cookie;	/* our callback's data; 0: not registered */
	bool poll;		/* poll for events with EVENT_POLL */
	bool bus_registered;
	bool bus_ready;		/* transport messages go to the core */
	bool stopping;

	/* One bus request at a time; its answer lands in bus_rx. */
	struct mutex bus_lock;
	spinlock_t rx_lock;	/* the fields below */
	bool bus_wait;
	u8 bus_wait_id;
	u16 bus_token;
	struct completion bus_done;
	u8 *bus_rx;
	size_t bus_rx_len;
	u8 bus_rx_id;
	u16 poll_token;
	/*
	 * Under rx_lock: transport requests that timed out.  Their answers,
	 * should they still come, are dropped here: the core would drop them
	 * too.  Entries of a device are forgotten when it is added again:
	 * the core numbers the requests of a new instance from token 1.
	 */
	struct vmsg_ffa_cancelled cancelled[VMSG_FFA_CANCELLED];
	unsigned int cancel_next;
	int adding;		/* device number being added, or -1 */
	bool add_timed_out;	/* a request of it timed out meanwhile */

	/* Shared memory */
	struct virtio_msg_pool *pool;
	u64 mem_handle;
	bool mem_shared;
	bool area_shared;

	/* Kicks */
	spinlock_t kick_lock;
	struct vmsg_ffa_kick kicks[VMSG_FFA_KICKS];
	unsigned int kick_head, kick_count;
	struct work_struct kick_work;

	struct delayed_work poll_work;
	struct mutex poll_lock;	/* one EVENT_POLL round at a time */

	/* Device hot-plug: wanted state and changed bits, per device number */
	spinlock_t hp_lock;
	unsigned long *hp_want;
	unsigned long *hp_dirty;
	unsigned long *hp_gone;	/* REMOVED seen: drop the old instance */
	struct work_struct hp_work;
};

static struct device *vmsg_ffa_dev(struct vmsg_ffa *vf)
{
	return &vf->fdev->dev;
}

static void vmsg_ffa_put_hdr(struct vmsg_ffa *vf, u8 *p, u8 type, u8 msg_id,
			     u16 token, size_t len)
{
	struct virtio_msg_wire_hdr hdr = {
		.type = type,
		.msg_id = msg_id,
		.token = token,
		.msg_size = len,
	};

	virtio_msg_wire_put_hdr(vf->format, p, &hdr);
}

static void vmsg_ffa_rx(struct vmsg_ffa *vf, const void *buf, size_t avail,
			bool *got);

/* One direct request; the direct response may carry a message for us. */
static int vmsg_ffa_direct(struct vmsg_ffa *vf, const void *msg, size_t len,
			   bool *got)
{
	/* All zero: no stack contents leak to the other world. */
	struct ffa_send_direct_data2 data = {};
	int ret;

	/* The registers hold the bytes in memory order (little-endian arm64). */
	memcpy(&data, msg, len);
	ret = vf->msg_ops->sync_send_receive2(vf->fdev, &data);
	if (ret)
		return ret;
	vmsg_ffa_rx(vf, &data, min_t(size_t, sizeof(data),
				     VIRTIO_MSG_FFA_DIRECT_MAX_SIZE), got);
	return 0;
}

static int vmsg_ffa_xfer_once(struct vmsg_ffa *vf, const void *msg, size_t len,
			      bool *got)
{
	if (vf->direct && len <= VIRTIO_MSG_FFA_DIRECT_MAX_SIZE)
		return vmsg_ffa_direct(vf, msg, len, got);
	if (vf->indirect)
		/* indirect_send() copies to the TX buffer; it never writes @msg. */
		return vf->msg_ops->indirect_send(vf->fdev, (void *)msg, len);
	return -EMSGSIZE;
}

/*
 * Sends one message, retrying while the partition is busy (its RX buffer
 * full, or it is handling another message).  Process context only: the
 * back-off sleeps, and gives up after busy_timeout_ms.
 */
static int vmsg_ffa_xfer(struct vmsg_ffa *vf, const void *msg, size_t len,
			 bool *got)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(READ_ONCE(busy_timeout_ms));
	unsigned int delay_us = 50;
	int ret;

	might_sleep();
	if (got)
		*got = false;
	for (;;) {
		ret = vmsg_ffa_xfer_once(vf, msg, len, got);
		if (ret != -EBUSY && ret != -EAGAIN)
			return ret;
		if (time_after(jiffies, deadline)) {
			dev_err_ratelimited(vmsg_ffa_dev(vf),
					    "partition still busy after %u ms, message dropped\n",
					    READ_ONCE(busy_timeout_ms));
			return -EBUSY;
		}
		usleep_range(delay_us, 2 * delay_us);
		delay_us = min(2 * delay_us, 20000U);
	}
}

/*
 * Sends the bus request @msg_id and waits for its answer.  Returns the
 * answer's payload length (>= @resp_min; the first @resp_size bytes of the
 * payload copied to @resp, the rest of @resp zeroed) or a negative errno;
 * -EOPNOTSUPP when the partition answered with ERROR.
 */
static ssize_t vmsg_ffa_bus_req(struct vmsg_ffa *vf, u8 msg_id,
				const void *req, size_t req_len, void *resp,
				size_t resp_min, size_t resp_size)
{
	u8 msg[VMSG_FFA_BUS_REQ_MAX];
	size_t len = vf->hdr_size + req_len;
	size_t plen = 0;
	u8 rx_id = 0;
	int ret;

	if (len > sizeof(msg))
		return -EINVAL;

	guard(mutex)(&vf->bus_lock);
	if (!++vf->bus_token)
		vf->bus_token = 1;
	vmsg_ffa_put_hdr(vf, msg, VIRTIO_MSG_TYPE_BUS, msg_id, vf->bus_token, len);
	memcpy(msg + vf->hdr_size, req, req_len);

	spin_lock_bh(&vf->rx_lock);
	vf->bus_wait = true;
	vf->bus_wait_id = msg_id;
	reinit_completion(&vf->bus_done);
	spin_unlock_bh(&vf->rx_lock);

	ret = vmsg_ffa_xfer(vf, msg, len, NULL);
	if (!ret && !wait_for_completion_timeout(&vf->bus_done,
						 msecs_to_jiffies(READ_ONCE(bus_timeout_ms))))
		ret = -ETIMEDOUT;

	/* From here on an answer finds nobody waiting and is dropped. */
	spin_lock_bh(&vf->rx_lock);
	if (vf->bus_wait)
		ret = ret ?: -ETIMEDOUT;
	vf->bus_wait = false;
	if (!ret) {
		rx_id = vf->bus_rx_id;
		plen = vf->bus_rx_len - vf->hdr_size;
		memset(resp, 0, resp_size);
		memcpy(resp, vf->bus_rx + vf->hdr_size, min(plen, resp_size));
	}
	spin_unlock_bh(&vf->rx_lock);

	if (ret) {
		dev_err(vmsg_ffa_dev(vf), "bus message %#x: %s (%d)\n", msg_id,
			ret == -ETIMEDOUT ? "no answer" : "cannot send", ret);
		return ret;
	}
	if (rx_id == VIRTIO_MSG_FFA_BUS_ERROR)
		return -EOPNOTSUPP;
	if (plen < resp_min) {
		dev_err(vmsg_ffa_dev(vf), "bus message %#x: answer too short (%zu < %zu)\n",
			msg_id, plen, resp_min);
		return -EPROTO;
	}
	return plen;
}

/* A bus request whose answer ends in a result code; BUSY is retried. */
static int vmsg_ffa_bus_req_result(struct vmsg_ffa *vf, u8 msg_id,
				   const void *req, size_t req_len,
				   size_t result_off)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(READ_ONCE(busy_timeout_ms));
	unsigned int delay_ms = 1;
	u8 resp[8];
	ssize_t n;
	u16 result;

	for (;;) {
		n = vmsg_ffa_bus_req(vf, msg_id, req, req_len, resp,
				     result_off + 2, sizeof(resp));
		if (n < 0)
			return n;
		result = get_unaligned_le16(resp + result_off);
		if (result == VIRTIO_MSG_FFA_RESULT_OK)
			return 0;
		if (result != VIRTIO_MSG_FFA_RESULT_BUSY ||
		    time_after(jiffies, deadline)) {
			dev_err(vmsg_ffa_dev(vf), "bus message %#x failed: result %u\n",
				msg_id, result);
			return result == VIRTIO_MSG_FFA_RESULT_BUSY ? -EBUSY : -EIO;
		}
		msleep(delay_ms);
		delay_ms = min(2 * delay_ms, 100U);
	}
}

/* ---- receiving ---- */

/* Queued under hp_lock: once stopping is set, nothing queues hp_work. */
static void vmsg_ffa_hotplug(struct vmsg_ffa *vf, u16 dev_num, bool ready)
{
	/*
	 * A removed device answers nothing more: fail what it holds now, or
	 * its driver's remove would wait for I/O that never completes.
	 */
	if (!ready && READ_ONCE(vf->bus_ready))
		virtio_msg_bus_device_gone(&vf->bus, dev_num);

	spin_lock_bh(&vf->hp_lock);
	if (ready) {
		__set_bit(dev_num, vf->hp_want);
	} else {
		__clear_bit(dev_num, vf->hp_want);
		/* REMOVED then READY: a new device, not the old one kept. */
		__set_bit(dev_num, vf->hp_gone);
	}
	__set_bit(dev_num, vf->hp_dirty);
	if (vf->bus_ready && !vf->stopping)
		queue_work(system_wq, &vf->hp_work);
	spin_unlock_bh(&vf->hp_lock);
}

static void vmsg_ffa_rx_bus_event(struct vmsg_ffa *vf,
				  const struct virtio_msg_wire_hdr *hdr,
				  const u8 *payload, size_t plen)
{
	struct virtio_msg_bus_event_device ev;
	struct virtio_msg_ffa_area area;
	u16 dev_num, state;

	switch (hdr->msg_id) {
	case VIRTIO_MSG_BUS_EVENT_DEVICE:
		if (plen < sizeof(ev))
			break;
		memcpy(&ev, payload, sizeof(ev));
		dev_num = le16_to_cpu(ev.dev_num);
		state = le16_to_cpu(ev.dev_state);
		if (state == VIRTIO_MSG_BUS_DEV_READY ||
		    state == VIRTIO_MSG_BUS_DEV_REMOVED) {
			vmsg_ffa_hotplug(vf, dev_num,
					 state == VIRTIO_MSG_BUS_DEV_READY);
			return;
		}
		break;
	case VIRTIO_MSG_FFA_BUS_EVENT_AREA_RELEASE:
		if (plen < sizeof(area))
			break;
		memcpy(&area, payload, sizeof(area));
		/* The memory stays ours until FFA_MEM_RECLAIM: nothing to do. */
		dev_info_ratelimited(vmsg_ffa_dev(vf), "partition released area %u\n",
				     le16_to_cpu(area.area_id));
		return;
	}
	dev_warn_ratelimited(vmsg_ffa_dev(vf), "ignoring bus event %#x of %zu bytes\n",
			     hdr->msg_id, plen);
}

static void vmsg_ffa_rx_bus(struct vmsg_ffa *vf,
			    const struct virtio_msg_wire_hdr *hdr, const u8 *msg)
{
	bool match;

	if (!(hdr->type & VIRTIO_MSG_TYPE_RESPONSE)) {
		vmsg_ffa_rx_bus_event(vf, hdr, msg + vf->hdr_size,
				      hdr->msg_size - vf->hdr_size);
		return;
	}

	spin_lock_bh(&vf->rx_lock);
	/* RFC v1 has no token: the message id is all there is to match. */
	match = vf->bus_wait &&
		(hdr->msg_id == vf->bus_wait_id ||
		 hdr->msg_id == VIRTIO_MSG_FFA_BUS_ERROR) &&
		(vf->format == VIRTIO_MSG_WIRE_FORMAT_RFC1 ||
		 hdr->token == vf->bus_token);
	if (match) {
		/* msg_size <= rx_max, the size of bus_rx */
		memcpy(vf->bus_rx, msg, hdr->msg_size);
		vf->bus_rx_len = hdr->msg_size;
		vf->bus_rx_id = hdr->msg_id;
		vf->bus_wait = false;
		complete(&vf->bus_done);
	}
	spin_unlock_bh(&vf->rx_lock);
	/* "Nothing pending" answers to EVENT_POLL are expected. */
	if (!match && hdr->msg_id != VIRTIO_MSG_FFA_BUS_EVENT_POLL)
		dev_warn_ratelimited(vmsg_ffa_dev(vf),
				     "dropping unexpected bus response %#x\n",
				     hdr->msg_id);
}

/*
 * The core gave up on request (@dev_num, @token).  Remembered for a while
 * so that its answer, if it still comes, is dropped; a timeout while the
 * device is being added makes the add fail (see vmsg_ffa_hp_work()).
 */
static void vmsg_ffa_cancel(struct virtio_msg_bus *bus, u16 dev_num, u16 token)
{
	struct vmsg_ffa *vf = bus->priv;
	struct vmsg_ffa_cancelled *c;

	spin_lock_bh(&vf->rx_lock);
	c = &vf->cancelled[vf->cancel_next++ % VMSG_FFA_CANCELLED];
	c->dev_num = dev_num;
	c->token = token;
	c->when = jiffies;
	c->used = true;
	if (vf->adding == dev_num)
		vf->add_timed_out = true;
	spin_unlock_bh(&vf->rx_lock);
}

/* Is this the answer to a request that timed out?  Consumes the entry. */
static bool vmsg_ffa_late(struct vmsg_ffa *vf, u16 dev_num, u16 token)
{
	struct vmsg_ffa_cancelled *c;
	bool late = false;
	unsigned int i;

	spin_lock_bh(&vf->rx_lock);
	for (i = 0; i < VMSG_FFA_CANCELLED; i++) {
		c = &vf->cancelled[i];
		if (!c->used)
			continue;
		if (time_after(jiffies, c->when + VMSG_FFA_CANCEL_KEEP)) {
			c->used = false;
			continue;
		}
		/* RFC v1 has no token: any answer of the device is suspect. */
		if (c->dev_num == dev_num &&
		    (vf->format == VIRTIO_MSG_WIRE_FORMAT_RFC1 ||
		     c->token == token)) {
			c->used = false;
			late = true;
			break;
		}
	}
	spin_unlock_bh(&vf->rx_lock);
	return late;
}

/*
 * Handles one message from the partition; @buf holds @avail readable
 * bytes.  *@got tells whether it was a message (not "nothing").
 */
static void vmsg_ffa_rx(struct vmsg_ffa *vf, const void *buf, size_t avail,
			bool *got)
{
	struct virtio_msg_wire_hdr hdr;
	int ret;

	if (got)
		*got = false;
	avail = min(avail, vf->rx_max);
	ret = virtio_msg_wire_peek(vf->format, buf, avail, &hdr);
	if (ret) {
		/* A direct response with msg_size 0 means "nothing for you". */
		if (avail >= vf->hdr_size &&
		    !virtio_msg_wire_msg_size(vf->format, buf))
			return;
		dev_warn_ratelimited(vmsg_ffa_dev(vf),
				     "dropping malformed message (%zu bytes readable)\n",
				     avail);
		return;
	}
	if (hdr.type & VIRTIO_MSG_TYPE_BUS) {
		if (got)
			*got = hdr.msg_id != VIRTIO_MSG_FFA_BUS_EVENT_POLL ||
			       !(hdr.type & VIRTIO_MSG_TYPE_RESPONSE);
		vmsg_ffa_rx_bus(vf, &hdr, buf);
		return;
	}
	if (got)
		*got = true;
	if (!READ_ONCE(vf->bus_ready))
		return;
	if ((hdr.type & VIRTIO_MSG_TYPE_RESPONSE) &&
	    vmsg_ffa_late(vf, hdr.dev_num, hdr.token)) {
		dev_warn_ratelimited(vmsg_ffa_dev(vf),
				     "dropping late response %#x of device %u (token %u): its request timed out\n",
				     hdr.msg_id, hdr.dev_num, hdr.token);
		return;
	}
	ret = virtio_msg_bus_receive(&vf->bus, buf, hdr.msg_size);
	if (ret)
		dev_dbg_ratelimited(vmsg_ffa_dev(vf),
				    "message %#x for device %u dropped: %d\n",
				    hdr.msg_id, hdr.dev_num, ret);
}

/*
 * FF-A framework notifications: the partition's indirect messages.
 *
 * The FF-A core looks the callback and its data up under its lock but
 * calls it after dropping the lock, so a callback may still start after
 * fwk_notify_relinquish() has returned.  Its data is therefore not our
 * partition but a cookie, looked up here under SRCU: teardown erases the
 * cookie and waits for the readers that found it before freeing anything.
 * A callback that starts later finds nothing.  Cookies are allocated
 * cyclically, so a late callback does not reach the next partition either.
 */
static DEFINE_XARRAY_ALLOC1(vmsg_ffa_notifiers);
static u32 vmsg_ffa_notifier_next;
DEFINE_STATIC_SRCU(vmsg_ffa_srcu);

/*
 * The core passes a kmemdup() of the FF-A message but not its length, and
 * kmemdup() of an empty message is ZERO_SIZE_PTR.  ksize() bounds what it
 * can have copied: nothing is read outside that allocation, and a message
 * whose msg_size claims more is refused (vmsg_ffa_rx() checks msg_size
 * against what is readable before using it).  Within the allocation's
 * rounding the partition's msg_size is all there is to go by.
 */
static void vmsg_ffa_fwk_rx(struct vmsg_ffa *vf, const void *buf)
{
	size_t avail = ksize(buf);

	if (avail < vf->hdr_size) {
		dev_warn_ratelimited(vmsg_ffa_dev(vf),
				     "dropping indirect message of %zu bytes\n",
				     avail);
		return;
	}
	vmsg_ffa_rx(vf, buf, avail, NULL);
}

static void vmsg_ffa_fwk_cb(int notify_id, void *cb_data, void *buf)
{
	struct vmsg_ffa *vf;
	int idx;

	idx = srcu_read_lock(&vmsg_ffa_srcu);
	vf = xa_load(&vmsg_ffa_notifiers, (unsigned long)cb_data);
	if (vf)
		vmsg_ffa_fwk_rx(vf, buf);
	srcu_read_unlock(&vmsg_ffa_srcu, idx);
}

static int vmsg_ffa_notif_request(struct vmsg_ffa *vf)
{
	const struct ffa_notifier_ops *nops = vf->fdev->ops->notifier_ops;
	int ret;

	ret = xa_alloc_cyclic(&vmsg_ffa_notifiers, &vf->notif_cookie, vf,
			      xa_limit_31b, &vmsg_ffa_notifier_next, GFP_KERNEL);
	if (ret < 0)
		return ret;
	ret = nops->fwk_notify_request(vf->fdev, vmsg_ffa_fwk_cb,
				       (void *)(unsigned long)vf->notif_cookie,
				       fwk_notify_id);
	if (ret) {
		xa_erase(&vmsg_ffa_notifiers, vf->notif_cookie);
		vf->notif_cookie = 0;
	}
	return ret;
}

/* After this no callback uses @vf. */
static void vmsg_ffa_notif_relinquish(struct vmsg_ffa *vf)
{
	const struct ffa_notifier_ops *nops = vf->fdev->ops->notifier_ops;

	if (!vf->notif_cookie)
		return;
	nops->fwk_notify_relinquish(vf->fdev, fwk_notify_id);
	xa_erase(&vmsg_ffa_notifiers, vf->notif_cookie);
	synchronize_srcu(&vmsg_ffa_srcu);
	vf->notif_cookie = 0;
}

/* Fetches pending messages with EVENT_POLL, a batch at a time. */
static void vmsg_ffa_poll_round(struct vmsg_ffa *vf)
{
	u8 msg[VIRTIO_MSG_HEADER_SIZE];
	unsigned int i;
	bool got;

	guard(mutex)(&vf->poll_lock);
	for (i = 0; i < VMSG_FFA_POLL_BATCH; i++) {
		if (!++vf->poll_token)
			vf->poll_token = 1;
		vmsg_ffa_put_hdr(vf, msg, VIRTIO_MSG_TYPE_BUS,
				 VIRTIO_MSG_FFA_BUS_EVENT_POLL, vf->poll_token,
				 vf->hdr_size);
		if (vmsg_ffa_xfer(vf, msg, vf->hdr_size, &got) || !got)
			break;
	}
}

static void vmsg_ffa_poll_work(struct work_struct *work)
{
	struct vmsg_ffa *vf = container_of(to_delayed_work(work),
					   struct vmsg_ffa, poll_work);

	vmsg_ffa_poll_round(vf);
	if (!READ_ONCE(vf->stopping))
		queue_delayed_work(system_wq, &vf->poll_work,
				   msecs_to_jiffies(max(READ_ONCE(poll_ms), 1U)));
}

/* ---- sending ---- */

/* Same kind of kick for the same queue of the same device? */
static bool vmsg_ffa_kick_same(struct vmsg_ffa *vf, const struct vmsg_ffa_kick *k,
			       const u8 *msg, size_t len)
{
	struct virtio_msg_wire_hdr a, b;
	/* The payload starts with the vq index: struct virtio_msg_event_avail */
	size_t key = vf->hdr_size + sizeof(__le32);

	if (k->len != len || len < key ||
	    virtio_msg_wire_peek(vf->format, k->msg, k->len, &a) ||
	    virtio_msg_wire_peek(vf->format, msg, len, &b))
		return false;
	return a.msg_id == b.msg_id && a.dev_num == b.dev_num &&
	       !memcmp(k->msg + vf->hdr_size, msg + vf->hdr_size, sizeof(__le32));
}

/*
 * Queues a kick (an event of the core, possibly sent in atomic context).
 * A newer kick of a queue replaces one still waiting: the device reads
 * the ring indexes anyway, so no notification is lost.
 */
static int vmsg_ffa_queue_kick(struct vmsg_ffa *vf, const void *msg, size_t len)
{
	struct vmsg_ffa_kick *k;
	unsigned long flags;
	unsigned int i;
	int ret = 0;

	if (len > VMSG_FFA_KICK_MAX)
		return -EMSGSIZE;

	spin_lock_irqsave(&vf->kick_lock, flags);
	for (i = 0; i < vf->kick_count; i++) {
		k = &vf->kicks[(vf->kick_head + i) % VMSG_FFA_KICKS];
		if (vmsg_ffa_kick_same(vf, k, msg, len))
			goto store;
	}
	if (vf->kick_count == VMSG_FFA_KICKS) {
		ret = -ENOSPC;
		goto out;
	}
	k = &vf->kicks[(vf->kick_head + vf->kick_count++) % VMSG_FFA_KICKS];
store:
	memcpy(k->msg, msg, len);
	k->len = len;
out:
	spin_unlock_irqrestore(&vf->kick_lock, flags);
	if (ret)
		dev_err_ratelimited(vmsg_ffa_dev(vf), "kick queue full\n");
	else
		queue_work(system_wq, &vf->kick_work);
	return ret;
}

static void vmsg_ffa_kick_work(struct work_struct *work)
{
	struct vmsg_ffa *vf = container_of(work, struct vmsg_ffa, kick_work);
	struct vmsg_ffa_kick k;
	int ret;

	for (;;) {
		spin_lock_irq(&vf->kick_lock);
		if (!vf->kick_count) {
			spin_unlock_irq(&vf->kick_lock);
			break;
		}
		k = vf->kicks[vf->kick_head];
		vf->kick_head = (vf->kick_head + 1) % VMSG_FFA_KICKS;
		vf->kick_count--;
		spin_unlock_irq(&vf->kick_lock);

		ret = vmsg_ffa_xfer(vf, k.msg, k.len, NULL);
		if (ret)
			dev_err_ratelimited(vmsg_ffa_dev(vf), "kick not delivered: %d\n",
					    ret);
	}
	/* The kick probably produced used buffers: fetch them now. */
	if (vf->poll && READ_ONCE(vf->bus_ready))
		vmsg_ffa_poll_round(vf);
}

static int vmsg_ffa_send(struct virtio_msg_bus *bus, const void *msg,
			 size_t len, bool atomic)
{
	struct vmsg_ffa *vf = bus->priv;

	if (atomic)
		return vmsg_ffa_queue_kick(vf, msg, len);
	return vmsg_ffa_xfer(vf, msg, len, NULL);
}

static const struct virtio_msg_bus_ops vmsg_ffa_bus_ops = {
	.send	= vmsg_ffa_send,
	.cancel	= vmsg_ffa_cancel,
};

/* ---- devices ---- */

static void vmsg_ffa_hp_work(struct work_struct *work)
{
	struct vmsg_ffa *vf = container_of(work, struct vmsg_ffa, hp_work);
	unsigned long n;
	bool want, gone, timed_out;
	unsigned int i;
	int ret;

	while (!READ_ONCE(vf->stopping)) {
		spin_lock_bh(&vf->hp_lock);
		n = find_first_bit(vf->hp_dirty, VMSG_FFA_MAX_DEVICES);
		if (n >= VMSG_FFA_MAX_DEVICES) {
			spin_unlock_bh(&vf->hp_lock);
			break;
		}
		__clear_bit(n, vf->hp_dirty);
		want = test_bit(n, vf->hp_want);
		gone = __test_and_clear_bit(n, vf->hp_gone);
		spin_unlock_bh(&vf->hp_lock);

		if (!want || gone) {
			ret = virtio_msg_bus_remove_device(&vf->bus, n);
			if (!ret)
				dev_info(vmsg_ffa_dev(vf), "device %lu removed\n", n);
			if (!want)
				continue;
		}
		if (virtio_msg_bus_num_devices(&vf->bus) >= max_devices) {
			dev_warn_ratelimited(vmsg_ffa_dev(vf),
					     "device %lu ignored: already %u devices\n",
					     n, max_devices);
			continue;
		}
		spin_lock_bh(&vf->rx_lock);
		vf->adding = n;
		vf->add_timed_out = false;
		/*
		 * The new instance numbers its requests from token 1 again
		 * (core): entries of the old one would drop its answers.
		 */
		for (i = 0; i < VMSG_FFA_CANCELLED; i++)
			if (vf->cancelled[i].dev_num == n)
				vf->cancelled[i].used = false;
		spin_unlock_bh(&vf->rx_lock);
		ret = virtio_msg_bus_add_device(&vf->bus, n);
		spin_lock_bh(&vf->rx_lock);
		vf->adding = -1;
		timed_out = vf->add_timed_out;
		spin_unlock_bh(&vf->rx_lock);
		/*
		 * A request that timed out while the device was registered
		 * (the reset and feature negotiation of its driver's probe)
		 * left it broken: refuse it rather than keep a device that
		 * half works.  The partition can announce it again.
		 */
		if (!ret && timed_out) {
			virtio_msg_bus_remove_device(&vf->bus, n);
			ret = -ETIMEDOUT;
		}
		if (ret && ret != -EEXIST)
			dev_warn(vmsg_ffa_dev(vf), "device %lu not added: %d%s\n", n,
				 ret, timed_out ? " (a request timed out while adding it)" : "");
	}
}

/* Reads the device bitmap, page by page. */
static int vmsg_ffa_get_devices(struct vmsg_ffa *vf)
{
	size_t room = vf->bus.max_msg_size - vf->hdr_size -
		      sizeof(struct virtio_msg_bus_get_devices_resp);
	unsigned int max_bits = min_t(size_t, room * 8, 0xfff8);
	struct virtio_msg_bus_get_devices req;
	unsigned int page, off = 0, count, bytes, i;
	u16 r_off, r_count, next;
	ssize_t n;
	u8 *resp;
	const struct virtio_msg_bus_get_devices_resp *rhdr;
	int ret = 0;

	resp = kzalloc(room + sizeof(struct virtio_msg_bus_get_devices_resp),
		       GFP_KERNEL);
	if (!resp)
		return -ENOMEM;

	/* Each page must advance: this bounds the loop. */
	for (page = 0; page <= VMSG_FFA_MAX_DEVICES / 8; page++) {
		count = round_down(min(max_bits, VMSG_FFA_MAX_DEVICES - off), 8);
		if (!count)
			break;
		req.offset = cpu_to_le16(off);
		req.count = cpu_to_le16(count);
		n = vmsg_ffa_bus_req(vf, VIRTIO_MSG_BUS_GET_DEVICES, &req,
				     sizeof(req), resp,
				     sizeof(struct virtio_msg_bus_get_devices_resp),
				     room + sizeof(struct virtio_msg_bus_get_devices_resp));
		if (n < 0) {
			ret = n;
			break;
		}
		rhdr = (const struct virtio_msg_bus_get_devices_resp *)resp;
		r_off = get_unaligned_le16(&rhdr->offset);
		r_count = get_unaligned_le16(&rhdr->count);
		next = get_unaligned_le16(&rhdr->next_offset);
		if (r_off != off || r_count > count || r_count % 8) {
			dev_err(vmsg_ffa_dev(vf),
				"malformed GET_DEVICES answer (offset %u count %u for %u/%u)\n",
				r_off, r_count, off, count);
			ret = -EPROTO;
			break;
		}
		/* Only bits both announced and present in the message count. */
		bytes = min_t(size_t, r_count / 8,
			      n - sizeof(struct virtio_msg_bus_get_devices_resp));
		if (bytes < r_count / 8)
			dev_warn(vmsg_ffa_dev(vf),
				 "GET_DEVICES answer truncated: %u of %u bitmap bytes\n",
				 bytes, r_count / 8);
		for (i = 0; i < bytes * 8; i++)
			if (rhdr->bitmap[i / 8] & BIT(i % 8))
				vmsg_ffa_hotplug(vf, off + i, true);
		if (!next)
			break;
		if (next <= off) {
			dev_err(vmsg_ffa_dev(vf), "GET_DEVICES next_offset %u does not advance past %u\n",
				next, off);
			ret = -EPROTO;
			break;
		}
		off = next;
	}
	kfree(resp);
	return ret;
}

/* ---- setup ---- */

static int vmsg_ffa_incompatible(struct vmsg_ffa *vf, u32 version)
{
	dev_err(vmsg_ffa_dev(vf),
		"partition speaks bus version %#x, this driver %#x (wire_format=%s): refusing it\n",
		version, vf->format == VIRTIO_MSG_WIRE_FORMAT_RFC1 ?
		VIRTIO_MSG_FFA_VERSION_RFC1 : VIRTIO_MSG_FFA_VERSION_1_0,
		wire_format);
	return -EPROTONOSUPPORT;
}

static int vmsg_ffa_version_rfc1(struct vmsg_ffa *vf, u16 *areas)
{
	struct virtio_msg_ffa_rfc1_version req = {
		.driver_version = cpu_to_le32(VIRTIO_MSG_FFA_VERSION_RFC1),
	};
	struct virtio_msg_ffa_rfc1_version_resp resp;
	u32 version, features;
	ssize_t n;

	n = vmsg_ffa_bus_req(vf, VIRTIO_MSG_FFA_BUS_VERSION, &req, sizeof(req),
			     &resp, sizeof(resp), sizeof(resp));
	if (n < 0)
		return n;
	version = le32_to_cpu(resp.device_version);
	features = le32_to_cpu(resp.features);
	if (version != VIRTIO_MSG_FFA_VERSION_RFC1)
		return vmsg_ffa_incompatible(vf, version);
	vf->direct &= !!(features & VIRTIO_MSG_FFA_RFC1_F_DIRECT);
	vf->indirect &= !!(features & VIRTIO_MSG_FFA_RFC1_F_INDIRECT);
	vf->notif &= !!(features & VIRTIO_MSG_FFA_RFC1_F_INDIRECT);
	*areas = 1;
	return 0;
}

static int vmsg_ffa_version(struct vmsg_ffa *vf, u16 *areas)
{
	struct virtio_msg_ffa_version req = {
		.bus_version = cpu_to_le32(VIRTIO_MSG_FFA_VERSION_1_0),
		.transport_revision = cpu_to_le32(VIRTIO_MSG_REVISION_1),
	};
	struct virtio_msg_ffa_version_resp resp;
	u32 version, features;
	ssize_t n;

	if (vf->format == VIRTIO_MSG_WIRE_FORMAT_RFC1)
		return vmsg_ffa_version_rfc1(vf, areas);
	n = vmsg_ffa_bus_req(vf, VIRTIO_MSG_FFA_BUS_VERSION, &req, sizeof(req),
			     &resp, sizeof(resp), sizeof(resp));
	if (n < 0)
		return n;
	version = le32_to_cpu(resp.bus_version);
	features = le32_to_cpu(resp.bus_features);
	/* Same major version: compatible by definition. */
	if (version >> 16 != VIRTIO_MSG_FFA_VERSION_1_0 >> 16)
		return vmsg_ffa_incompatible(vf, version);
	vf->direct &= !!(features & VIRTIO_MSG_FFA_F_DIRECT_RX);
	vf->indirect &= !!(features & VIRTIO_MSG_FFA_F_INDIRECT_RX);
	vf->notif &= !!(features & VIRTIO_MSG_FFA_F_INDIRECT_TX);
	*areas = le16_to_cpu(resp.area_num);
	return 0;
}

static int vmsg_ffa_share(struct vmsg_ffa *vf)
{
	const struct ffa_mem_ops *mem_ops = vf->fdev->ops->mem_ops;
	struct ffa_mem_region_attributes attr = {
		.receiver = vf->fdev->vm_id,
		.attrs = FFA_MEM_RW,
	};
	struct ffa_mem_ops_args args = {
		.use_txbuf = true,
		.nattrs = 1,
		.attrs = &attr,
	};
	struct virtio_msg_ffa_area_share share;
	struct sg_table sgt;
	size_t size = virtio_msg_pool_size(vf->pool);
	int ret;

	if (!mem_ops || !mem_ops->memory_share || !mem_ops->memory_reclaim)
		return -EOPNOTSUPP;
	ret = virtio_msg_pool_sg_table(vf->pool, &sgt);
	if (ret)
		return ret;
	args.sg = sgt.sgl;
	ret = mem_ops->memory_share(&args);
	sg_free_table(&sgt);
	if (ret) {
		dev_err(vmsg_ffa_dev(vf), "FFA_MEM_SHARE of the pool failed: %d\n", ret);
		return ret;
	}
	vf->mem_handle = args.g_handle;
	vf->mem_shared = true;

	share.area_id = cpu_to_le16(VMSG_FFA_AREA_ID);
	share.mem_handle = cpu_to_le64(vf->mem_handle);
	share.tag = cpu_to_le64(0);
	share.count = cpu_to_le32(size >> PAGE_SHIFT);
	share.attrs = cpu_to_le32(VIRTIO_MSG_FFA_AREA_ATTR_SHARE);
	if (vf->format == VIRTIO_MSG_WIRE_FORMAT_RFC1) {
		struct virtio_msg_ffa_area resp;
		ssize_t n;

		n = vmsg_ffa_bus_req(vf, VIRTIO_MSG_FFA_BUS_AREA_SHARE, &share,
				     sizeof(share), &resp, sizeof(resp),
				     sizeof(resp));
		ret = n < 0 ? n : 0;
	} else {
		ret = vmsg_ffa_bus_req_result(vf, VIRTIO_MSG_FFA_BUS_AREA_SHARE,
					      &share, sizeof(share),
					      offsetof(struct virtio_msg_ffa_area_resp,
						       result));
	}
	if (ret)
		return ret;
	vf->area_shared = true;
	return 0;
}

/* Takes the memory back; false if the partition keeps it. */
static bool vmsg_ffa_unshare(struct vmsg_ffa *vf)
{
	struct virtio_msg_ffa_area area = {
		.area_id = cpu_to_le16(VMSG_FFA_AREA_ID),
	};
	int ret;

	if (vf->area_shared) {
		if (vf->format == VIRTIO_MSG_WIRE_FORMAT_RFC1) {
			struct virtio_msg_ffa_area resp;

			vmsg_ffa_bus_req(vf, VIRTIO_MSG_FFA_BUS_AREA_UNSHARE,
					 &area, sizeof(area), &resp, 0,
					 sizeof(resp));
		} else {
			vmsg_ffa_bus_req_result(vf, VIRTIO_MSG_FFA_BUS_AREA_UNSHARE,
						&area, sizeof(area),
						offsetof(struct virtio_msg_ffa_area_resp,
							 result));
		}
		vf->area_shared = false;
	}
	if (!vf->mem_shared)
		return true;
	/* Whatever the partition said: only a successful reclaim frees it. */
	ret = vf->fdev->ops->mem_ops->memory_reclaim(vf->mem_handle, 0);
	if (ret) {
		dev_err(vmsg_ffa_dev(vf),
			"partition keeps the shared pool (reclaim: %d): leaking %zu KiB\n",
			ret, virtio_msg_pool_size(vf->pool) / SZ_1K);
		return false;
	}
	vf->mem_shared = false;
	return true;
}

static void vmsg_ffa_event_configure(struct vmsg_ffa *vf)
{
	struct virtio_msg_ffa_event_configure cfg = {
		.type = vf->notif ? VIRTIO_MSG_FFA_EVENT_INDIRECT :
				    VIRTIO_MSG_FFA_EVENT_POLL,
		.notify_id = cpu_to_le16(fwk_notify_id),
	};
	int ret;

	/* RFC v1 partitions know no EVENT_CONFIGURE. */
	if (vf->format == VIRTIO_MSG_WIRE_FORMAT_RFC1)
		return;
	ret = vmsg_ffa_bus_req_result(vf, VIRTIO_MSG_FFA_BUS_EVENT_CONFIGURE,
				      &cfg, sizeof(cfg), 0);
	if (ret)
		dev_info(vmsg_ffa_dev(vf), "EVENT_CONFIGURE not accepted (%d), going on\n",
			 ret);
}

static void vmsg_ffa_reset(struct vmsg_ffa *vf)
{
	if (vf->format == VIRTIO_MSG_WIRE_FORMAT_RFC1)
		return;
	vmsg_ffa_bus_req_result(vf, VIRTIO_MSG_FFA_BUS_RESET, NULL, 0, 0);
}

static void vmsg_ffa_stop_rx(struct vmsg_ffa *vf)
{
	WRITE_ONCE(vf->bus_ready, false);
	cancel_delayed_work_sync(&vf->poll_work);
	cancel_work_sync(&vf->kick_work);
}

static void vmsg_ffa_teardown(struct vmsg_ffa *vf)
{
	bool freed;

	spin_lock_bh(&vf->hp_lock);
	vf->stopping = true;
	spin_unlock_bh(&vf->hp_lock);
	cancel_work_sync(&vf->hp_work);
	/* Devices are shut down while the partition can still answer. */
	if (vf->bus_registered)
		virtio_msg_bus_unregister(&vf->bus);
	vmsg_ffa_stop_rx(vf);
	if (vf->area_shared)
		vmsg_ffa_reset(vf);
	freed = vmsg_ffa_unshare(vf);
	vmsg_ffa_notif_relinquish(vf);
	if (vf->pool && freed)
		virtio_msg_pool_destroy(vf->pool);
	else if (vf->pool)
		virtio_msg_pool_abandon(vf->pool);
	bitmap_free(vf->hp_want);
	bitmap_free(vf->hp_dirty);
	bitmap_free(vf->hp_gone);
	kfree(vf->bus_rx);
	kfree(vf);
}

static int vmsg_ffa_parse_format(struct vmsg_ffa *vf)
{
	if (virtio_msg_wire_format_parse(wire_format, &vf->format)) {
		pr_err("unknown wire_format \"%s\" (spec or rfc1)\n", wire_format);
		return -EINVAL;
	}
	vf->hdr_size = virtio_msg_wire_hdr_size(vf->format);
	vf->rx_max = clamp_t(size_t, max_msg_size, VIRTIO_MSG_FFA_DIRECT_MAX_SIZE,
			     VIRTIO_MSG_MAX_SIZE);
	return 0;
}

static int vmsg_ffa_probe(struct ffa_device *fdev)
{
	const struct ffa_notifier_ops *nops = fdev->ops->notifier_ops;
	struct device *dev = &fdev->dev;
	unsigned int shift;
	struct vmsg_ffa *vf;
	u16 areas = 0;
	int ret;

	vf = kzalloc(sizeof(*vf), GFP_KERNEL);
	if (!vf)
		return -ENOMEM;
	vf->fdev = fdev;
	vf->msg_ops = fdev->ops->msg_ops;
	mutex_init(&vf->bus_lock);
	mutex_init(&vf->poll_lock);
	spin_lock_init(&vf->rx_lock);
	spin_lock_init(&vf->kick_lock);
	spin_lock_init(&vf->hp_lock);
	init_completion(&vf->bus_done);
	INIT_WORK(&vf->kick_work, vmsg_ffa_kick_work);
	INIT_WORK(&vf->hp_work, vmsg_ffa_hp_work);
	INIT_DELAYED_WORK(&vf->poll_work, vmsg_ffa_poll_work);
	ret = vmsg_ffa_parse_format(vf);
	if (ret) {
		kfree(vf);
		return ret;
	}
	vf->hp_want = bitmap_zalloc(VMSG_FFA_MAX_DEVICES, GFP_KERNEL);
	vf->hp_dirty = bitmap_zalloc(VMSG_FFA_MAX_DEVICES, GFP_KERNEL);
	vf->hp_gone = bitmap_zalloc(VMSG_FFA_MAX_DEVICES, GFP_KERNEL);
	vf->adding = -1;
	vf->bus_rx = kzalloc(vf->rx_max, GFP_KERNEL);
	ffa_dev_set_drvdata(fdev, vf);
	if (!vf->hp_want || !vf->hp_dirty || !vf->hp_gone || !vf->bus_rx) {
		ret = -ENOMEM;
		goto err;
	}

	/* DIRECT_REQ2 is what sync_send_receive2 uses; 64-bit partitions only. */
	vf->direct = vf->msg_ops && vf->msg_ops->sync_send_receive2 &&
		     ffa_partition_supports_direct_req2_recv(fdev);
	vf->indirect = vf->msg_ops && vf->msg_ops->indirect_send &&
		       ffa_partition_supports_indirect_msg(fdev);
	if (vf->indirect && nops && nops->fwk_notify_request &&
	    nops->fwk_notify_relinquish)
		vf->notif = !vmsg_ffa_notif_request(vf);
	if (!vf->direct && !vf->notif) {
		dev_err(dev, "partition %#x: neither direct requests (DIRECT_REQ2, 64-bit) nor indirect messages with notifications: cannot talk to it\n",
			fdev->vm_id);
		ret = -ENODEV;
		goto err;
	}

	ret = vmsg_ffa_version(vf, &areas);
	if (ret)
		goto err;
	if (vf->notif && !(vf->direct || vf->indirect)) {
		dev_err(dev, "partition %#x takes no messages\n", fdev->vm_id);
		ret = -ENODEV;
		goto err;
	}
	if (!vf->notif && !vf->direct) {
		dev_err(dev, "partition %#x sends no indirect messages and takes no direct requests\n",
			fdev->vm_id);
		ret = -ENODEV;
		goto err;
	}
	if (!areas) {
		dev_err(dev, "partition %#x accepts no memory area\n", fdev->vm_id);
		ret = -ENODEV;
		goto err;
	}
	/* Without indirect messages in both directions, all goes direct. */
	vf->poll = !vf->notif;

	shift = vf->format == VIRTIO_MSG_WIRE_FORMAT_RFC1 ?
		VIRTIO_MSG_FFA_RFC1_AREA_ID_SHIFT : VIRTIO_MSG_FFA_AREA_ID_SHIFT;
	vf->pool = virtio_msg_pool_create_at(dev, "virtio-msg,ffa", "vmsgffa",
					     pool_size,
					     (dma_addr_t)VMSG_FFA_AREA_ID << shift);
	if (IS_ERR(vf->pool)) {
		ret = PTR_ERR(vf->pool);
		vf->pool = NULL;
		dev_err(dev, "no DMA pool: %d\n", ret);
		goto err;
	}
	ret = vmsg_ffa_share(vf);
	if (ret)
		goto err;
	vmsg_ffa_event_configure(vf);

	snprintf(vf->name, sizeof(vf->name), "virtio-msg-ffa-%x", fdev->vm_id);
	vf->bus.parent = dev;
	vf->bus.ops = &vmsg_ffa_bus_ops;
	vf->bus.name = vf->name;
	vf->bus.format = vf->format;
	vf->bus.pool = vf->pool;
	vf->bus.priv = vf;
	if (vf->format == VIRTIO_MSG_WIRE_FORMAT_RFC1)
		vf->bus.max_msg_size = VMSG_FFA_RFC1_MSG_SIZE;
	else if (vf->indirect && vf->notif)
		vf->bus.max_msg_size = vf->rx_max;
	else
		vf->bus.max_msg_size = VIRTIO_MSG_FFA_DIRECT_MAX_SIZE;
	ret = virtio_msg_bus_register(&vf->bus);
	if (ret)
		goto err;
	vf->bus_registered = true;
	spin_lock_bh(&vf->hp_lock);
	vf->bus_ready = true;
	spin_unlock_bh(&vf->hp_lock);
	if (vf->poll)
		queue_delayed_work(system_wq, &vf->poll_work, 0);

	ret = vmsg_ffa_get_devices(vf);
	if (ret)
		dev_warn(dev, "device list incomplete: %d\n", ret);
	queue_work(system_wq, &vf->hp_work);

	dev_info(dev, "partition %#x: %s, %s%s%s, messages up to %u bytes\n",
		 fdev->vm_id, vf->format == VIRTIO_MSG_WIRE_FORMAT_RFC1 ?
		 "bus version 0x1 (RFC v1)" : "bus version 0x00010000",
		 vf->direct ? "direct" : "", vf->direct && vf->indirect ? "+" : "",
		 vf->indirect ? "indirect" : "",
		 vf->bus.max_msg_size);
	dev_info(dev, "partition %#x: events by %s\n", fdev->vm_id,
		 vf->notif ? "notification" : "polling");
	return 0;

err:
	vmsg_ffa_teardown(vf);
	ffa_dev_set_drvdata(fdev, NULL);
	return ret;
}

static void vmsg_ffa_remove(struct ffa_device *fdev)
{
	struct vmsg_ffa *vf = ffa_dev_get_drvdata(fdev);

	if (vf)
		vmsg_ffa_teardown(vf);
	ffa_dev_set_drvdata(fdev, NULL);
}

static int vmsg_ffa_suspend(struct device *dev)
{
	struct vmsg_ffa *vf = dev_get_drvdata(dev);
	int ret;

	if (!vf)
		return 0;
	/* The core restores what it froze if one device fails. */
	ret = virtio_msg_bus_freeze(&vf->bus);
	dev_dbg(dev, "suspended: %d\n", ret);
	return ret;
}

static int vmsg_ffa_resume(struct device *dev)
{
	struct vmsg_ffa *vf = dev_get_drvdata(dev);
	int ret;

	if (!vf)
		return 0;
	ret = virtio_msg_bus_restore(&vf->bus);
	dev_dbg(dev, "resumed: %d\n", ret);
	return ret;
}

static DEFINE_SIMPLE_DEV_PM_OPS(vmsg_ffa_pm_ops, vmsg_ffa_suspend,
				vmsg_ffa_resume);

static const struct ffa_device_id vmsg_ffa_ids[] = {
	{ .uuid = VMSG_FFA_UUID },
	{}
};

static struct ffa_driver vmsg_ffa_driver = {
	.name		= "virtio-msg-ffa",
	.probe		= vmsg_ffa_probe,
	.remove		= vmsg_ffa_remove,
	.id_table	= vmsg_ffa_ids,
	.driver		= {
		.pm	= pm_sleep_ptr(&vmsg_ffa_pm_ops),
	},
};
module_ffa_driver(vmsg_ffa_driver);

/* modpost has no FF-A device-table handler: spell the alias out. */
MODULE_ALIAS("arm_ffa:*:c66028b5-2498-4aa1-9de7-77da6122abf0");
MODULE_IMPORT_NS("VIRTIO_MSG");
MODULE_DESCRIPTION("virtio-msg bus over Arm FF-A");
MODULE_LICENSE("GPL");
MODULE_VERSION(VIRTIO_MSG_DKMS_VERSION);
