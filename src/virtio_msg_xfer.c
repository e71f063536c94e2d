// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-msg transport: the request/response engine.
 *
 * Requests of the virtio config ops go out through the bus and wait for
 * their answer; everything the device side sends comes in through
 * virtio_msg_bus_receive() and either completes the request waiting for it
 * or is dispatched as an event.
 *
 * Rules the code below keeps:
 *  - at most one request per device is outstanding (xfer_lock); its
 *    response is matched by device number, message id and token, under the
 *    bus's lookup_lock, and is copied only into the buffer of the request
 *    still waiting for it;
 *  - a request that gets no answer within timeout_ms breaks the device:
 *    virtqueues stop and every later request fails at once;
 *  - kicks (EVENT_AVAIL) never sleep: virtqueue_notify() may be called in
 *    atomic context;
 *  - everything received is untrusted and is checked before use.
 */
#define pr_fmt(fmt) "virtio-msg: " fmt

#include <linux/bitops.h>
#include <linux/device.h>
#include <linux/module.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "virtio_msg_internal.h"

#define CREATE_TRACE_POINTS
#include "virtio_msg_trace.h"

static unsigned int timeout_ms = 3000;
module_param(timeout_ms, uint, 0644);
MODULE_PARM_DESC(timeout_ms,
		 "Milliseconds to wait for a response before the device is marked broken (default 3000)");

unsigned int vmsg_timeout_ms(void)
{
	return READ_ONCE(timeout_ms);
}

static const char *const virtio_msg_names[] = {
	[VIRTIO_MSG_GET_DEVICE_INFO]	= "GET_DEVICE_INFO",
	[VIRTIO_MSG_GET_DEVICE_FEATURES] = "GET_DEVICE_FEATURES",
	[VIRTIO_MSG_SET_DRIVER_FEATURES] = "SET_DRIVER_FEATURES",
	[VIRTIO_MSG_GET_CONFIG]		= "GET_CONFIG",
	[VIRTIO_MSG_SET_CONFIG]		= "SET_CONFIG",
	[VIRTIO_MSG_GET_DEVICE_STATUS]	= "GET_DEVICE_STATUS",
	[VIRTIO_MSG_SET_DEVICE_STATUS]	= "SET_DEVICE_STATUS",
	[VIRTIO_MSG_GET_VQUEUE]		= "GET_VQUEUE",
	[VIRTIO_MSG_SET_VQUEUE]		= "SET_VQUEUE",
	[VIRTIO_MSG_RESET_VQUEUE]	= "RESET_VQUEUE",
	[VIRTIO_MSG_GET_SHM]		= "GET_SHM",
};

static const char *virtio_msg_name(u8 msg_id)
{
	if (msg_id < ARRAY_SIZE(virtio_msg_names) && virtio_msg_names[msg_id])
		return virtio_msg_names[msg_id];
	return "message";
}

/* Notes a peer's departure from the spec, once per device and kind. */
__printf(3, 4)
void vmsg_tolerate(struct virtio_msg_device *vmdev, enum vmsg_tolerance what,
		   const char *fmt, ...)
{
	struct va_format vaf;
	va_list args;

	if (test_and_set_bit(what, &vmdev->tolerated))
		return;
	va_start(args, fmt);
	vaf.fmt = fmt;
	vaf.va = &args;
	dev_info(vmsg_dev(vmdev), "device %u: %pV\n", vmdev->dev_num, &vaf);
	va_end(args);
}

/**
 * vmsg_xfer - send the request in vmdev->req and wait for its response
 * @vmdev: the device; the caller holds xfer_lock
 * @msg_id: request id
 * @len: payload length of the request
 * @resp_min: smallest acceptable response payload
 *
 * Return: response payload length (>= @resp_min), the response being in
 * vmdev->resp, or a negative errno.
 */
ssize_t vmsg_xfer(struct virtio_msg_device *vmdev, u8 msg_id, size_t len,
		  size_t resp_min)
{
	struct virtio_msg_bus *bus = vmdev->bus;
	struct virtio_msg_header *req = vmdev->req;
	struct virtio_msg_pending pending = {
		.resp = vmdev->resp,
		.resp_size = vmdev->canon_size,
		.msg_id = msg_id,
	};
	bool timed_out = false;
	ssize_t wire_len;
	size_t plen;
	int ret;

	lockdep_assert_held(&vmdev->xfer_lock);

	if (READ_ONCE(vmdev->broken))
		return -EIO;

	/*
	 * Tokens come from one counter per bus, not per device: a device
	 * removed and added again must not reuse the tokens a late answer
	 * to its previous instance may still carry.  Token 0 marks events.
	 */
	do {
		pending.token = (u16)atomic_inc_return(&bus->token_seq);
	} while (!pending.token);

	req->type = 0;
	req->msg_id = msg_id;
	req->dev_num = cpu_to_le16(vmdev->dev_num);
	req->token = cpu_to_le16(pending.token);
	req->msg_size = cpu_to_le16(sizeof(*req) + len);
	wire_len = virtio_msg_wire_encode(bus->format, req, vmdev->wire,
					  bus->max_msg_size);
	if (wire_len < 0)
		return wire_len;

	init_completion(&pending.done);
	spin_lock_bh(&bus->lookup_lock);
	vmdev->pending = &pending;
	spin_unlock_bh(&bus->lookup_lock);

	atomic64_inc(&vmdev->stats.requests);
	trace_virtio_msg_request(bus->id, vmdev->dev_num, msg_id, pending.token,
				 wire_len);
	pending.sent_ns = ktime_get_ns();

	ret = bus->ops->send(bus, vmdev->wire, wire_len, false);
	if (!ret &&
	    !wait_for_completion_timeout(&pending.done,
					 msecs_to_jiffies(READ_ONCE(timeout_ms))))
		timed_out = true;

	/* After this, a late response finds nothing to complete. */
	spin_lock_bh(&bus->lookup_lock);
	if (vmdev->pending == &pending)
		vmdev->pending = NULL;
	else
		timed_out = false;
	spin_unlock_bh(&bus->lookup_lock);

	if (ret) {
		dev_err(vmsg_dev(vmdev), "device %u: cannot send %s: %d\n",
			vmdev->dev_num, virtio_msg_name(msg_id), ret);
		vmsg_mark_broken(vmdev, "transport error");
		return ret;
	}
	if (timed_out) {
		if (bus->ops->cancel)
			bus->ops->cancel(bus, vmdev->dev_num, pending.token);
		atomic64_inc(&vmdev->stats.timeouts);
		trace_virtio_msg_timeout(bus->id, vmdev->dev_num, msg_id,
					 pending.token, vmsg_timeout_ms());
		dev_err(vmsg_dev(vmdev), "device %u: no response to %s within %u ms\n",
			vmdev->dev_num, virtio_msg_name(msg_id),
			vmsg_timeout_ms());
		vmsg_mark_broken(vmdev, "request timed out");
		return -ETIMEDOUT;
	}
	if (pending.err) {
		vmsg_mark_broken(vmdev, pending.err == -EPROTO ?
				 "malformed response" : "backend went away");
		return pending.err;
	}

	plen = pending.resp_len - sizeof(*vmdev->resp);
	if (plen < resp_min) {
		dev_err(vmsg_dev(vmdev), "device %u: %s response too short (%zu < %zu)\n",
			vmdev->dev_num, virtio_msg_name(msg_id), plen, resp_min);
		vmsg_mark_broken(vmdev, "malformed response");
		return -EPROTO;
	}
	return plen;
}

int vmsg_send_event(struct virtio_msg_device *vmdev, u8 msg_id,
		    const void *payload, size_t len)
{
	struct virtio_msg_bus *bus = vmdev->bus;
	struct {
		struct virtio_msg_header hdr;
		struct virtio_msg_event_avail payload;
	} msg;
	u8 wire[sizeof(msg)];
	ssize_t wire_len;

	/* Events go on the stack: kicks run concurrently, in any context. */
	if (len > sizeof(msg.payload))
		return -EINVAL;
	msg.hdr.type = 0;
	msg.hdr.msg_id = msg_id;
	msg.hdr.dev_num = cpu_to_le16(vmdev->dev_num);
	msg.hdr.token = cpu_to_le16(VIRTIO_MSG_TOKEN_EVENT);
	msg.hdr.msg_size = cpu_to_le16(sizeof(msg.hdr) + len);
	memcpy(&msg.payload, payload, len);

	wire_len = virtio_msg_wire_encode(bus->format, &msg.hdr, wire,
					  min_t(size_t, sizeof(wire),
						bus->max_msg_size));
	if (wire_len < 0)
		return wire_len;
	return bus->ops->send(bus, wire, wire_len, true);
}

/* Response to the request outstanding on @vmdev; under lookup_lock. */
static int vmsg_complete(struct virtio_msg_device *vmdev,
			 const struct virtio_msg_wire_hdr *hdr,
			 const void *msg, size_t len)
{
	struct virtio_msg_bus *bus = vmdev->bus;
	struct virtio_msg_pending *pending = vmdev->pending;
	u64 latency;
	ssize_t n;

	if (!pending || pending->msg_id != hdr->msg_id ||
	    (virtio_msg_wire_has_token(bus->format) &&
	     pending->token != hdr->token)) {
		/* The token is what tells a late answer from the current one. */
		if (pending && pending->msg_id == hdr->msg_id && !hdr->token)
			vmsg_tolerate(vmdev, VMSG_TOL_NO_TOKEN,
				      "answers without the request's token: dropping such answers (an RFC v1 peer needs wire_format=rfc1)");
		dev_dbg(bus->parent, "device %u: unsolicited response %#x\n",
			vmdev->dev_num, hdr->msg_id);
		return -EINVAL;
	}

	n = virtio_msg_wire_decode(bus->format, msg, len, pending->resp,
				   pending->resp_size);
	if (n < 0)
		pending->err = -EPROTO;
	else
		pending->resp_len = n;

	latency = ktime_get_ns() - pending->sent_ns;
	atomic64_add(latency, &vmdev->stats.latency_ns);
	trace_virtio_msg_response(bus->id, vmdev->dev_num, hdr->msg_id,
				  hdr->token, latency);
	vmdev->pending = NULL;
	complete(&pending->done);
	return 0;
}

/* Device-to-driver event; under lookup_lock. */
static int vmsg_event(struct virtio_msg_device *vmdev,
		      const struct virtio_msg_wire_hdr *hdr,
		      const void *msg, size_t len)
{
	struct virtio_msg_bus *bus = vmdev->bus;
	struct {
		struct virtio_msg_header hdr;
		union {
			struct virtio_msg_event_used used;
			struct virtio_msg_event_config config;
		};
	} ev = {};
	size_t plen;
	ssize_t n;
	u32 index;

	/* Only the fixed part of an event matters; EVENT_CONFIG data is cut. */
	n = virtio_msg_wire_decode_head(bus->format, msg, len, &ev.hdr,
					sizeof(ev));
	if (n < 0)
		return n;
	plen = n - sizeof(ev.hdr);

	switch (hdr->msg_id) {
	case VIRTIO_MSG_EVENT_USED:
		if (plen < sizeof(ev.used))
			return -EINVAL;
		index = le32_to_cpu(ev.used.vq_index);
		if (index >= vmdev->max_vqs)
			return -EINVAL;
		atomic64_inc(&vmdev->stats.used);
		trace_virtio_msg_event(bus->id, vmdev->dev_num, hdr->msg_id,
				       index, false);
		vmsg_vq_interrupt(vmdev, index);
		return 0;
	case VIRTIO_MSG_EVENT_CONFIG:
		atomic64_inc(&vmdev->stats.config);
		trace_virtio_msg_event(bus->id, vmdev->dev_num, hdr->msg_id, 0,
				       false);
		/* Linaro's kernel reads no payload: the event itself counts. */
		if (plen < sizeof(ev.config)) {
			vmsg_tolerate(vmdev, VMSG_TOL_CONFIG_EVENT_SHORT,
				      "EVENT_CONFIG without generation and status: config re-read");
		} else {
			WRITE_ONCE(vmdev->config_generation,
				   le32_to_cpu(ev.config.generation));
			if (le32_to_cpu(ev.config.device_status) &
			    VIRTIO_CONFIG_S_NEEDS_RESET)
				dev_warn_ratelimited(&vmdev->vdev.dev,
						     "device needs a reset\n");
		}
		if (vmdev->registered)
			virtio_config_changed(&vmdev->vdev);
		return 0;
	default:
		return -EINVAL;
	}
}

/**
 * virtio_msg_bus_receive - deliver a message from the device side
 * @bus: the bus it arrived on
 * @msg: the message, in the bus's wire format; untrusted
 * @len: bytes at @msg; bytes after the header's msg_size are ignored
 *
 * Responses complete the request they answer; events are dispatched to the
 * device's virtqueues or config handler.  May be called in process or
 * softirq context, not in hard interrupt context.
 *
 * Return: 0; -EINVAL for a malformed message, an unknown event or a
 * response nobody waits for; -ENODEV for an unknown device; -EOPNOTSUPP for
 * bus messages, which the bus driver handles itself.
 */
int virtio_msg_bus_receive(struct virtio_msg_bus *bus, const void *msg,
			   size_t len)
{
	struct virtio_msg_device *vmdev;
	struct virtio_msg_wire_hdr hdr;
	int ret;

	ret = virtio_msg_wire_peek(bus->format, msg, len, &hdr);
	if (ret)
		return ret;
	if (hdr.type & VIRTIO_MSG_TYPE_BUS)
		return -EOPNOTSUPP;
	if (hdr.type & VIRTIO_MSG_TYPE_RESPONSE) {
		/* Nothing waits for an answer to an event: drop it. */
		if (virtio_msg_id_is_event(hdr.msg_id))
			return 0;
	} else if (!virtio_msg_id_is_event(hdr.msg_id)) {
		/* The device side does not send requests to the driver. */
		return -EINVAL;
	}

	spin_lock_bh(&bus->lookup_lock);
	vmdev = xa_load(&bus->devices, hdr.dev_num);
	if (!vmdev)
		ret = -ENODEV;
	else if (hdr.type & VIRTIO_MSG_TYPE_RESPONSE)
		ret = vmsg_complete(vmdev, &hdr, msg, len);
	else
		ret = vmsg_event(vmdev, &hdr, msg, len);
	if (ret && vmdev)
		atomic64_inc(&vmdev->stats.dropped);
	spin_unlock_bh(&bus->lookup_lock);
	if (ret)
		trace_virtio_msg_dropped(bus->id, hdr.dev_num, hdr.type,
					 hdr.msg_id, hdr.token, ret);
	return ret;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_receive, "VIRTIO_MSG");

/* Fails the request @vmdev waits for, if any; under lookup_lock. */
void vmsg_fail_pending(struct virtio_msg_device *vmdev, int err)
{
	struct virtio_msg_pending *pending = vmdev->pending;

	if (!pending)
		return;
	pending->err = err;
	vmdev->pending = NULL;
	complete(&pending->done);
}

/**
 * vmsg_vq_interrupt - the used-buffer path of queue @index
 * @vmdev: the device
 * @index: the queue; a queue not (or no longer) set up is left alone
 *
 * Every report of used buffers comes here: EVENT_USED, a call eventfd's
 * irq_work (which a backend can have run on several CPUs at once by
 * signalling from several) and the fail work of a broken device.
 * vring_interrupt() may not run twice at once for one queue, as an
 * interrupt handler would not: two callers would detach the same buffer
 * twice.  So the queue is looked up and run under its irq_lock, which
 * del_vqs() also takes, after unpublishing the queue, to wait for a run in
 * flight (as VDUSE does with its irq_lock).  Any context; the caller holds
 * no track lock.
 */
void vmsg_vq_interrupt(struct virtio_msg_device *vmdev, unsigned int index)
{
	struct virtio_msg_vq_track *track;
	struct virtqueue *vq;
	unsigned long flags;

	/* Pairs with the ADD's release: the queues come before the tracks. */
	track = smp_load_acquire(&vmdev->track);
	if (!track || index >= vmdev->max_vqs)
		return;
	spin_lock_irqsave(&track[index].irq_lock, flags);
	vq = READ_ONCE(vmdev->vqs[index]);
	if (vq) {
		vmsg_track_update(vmdev, vq);
		vring_interrupt(0, vq);
	}
	spin_unlock_irqrestore(&track[index].irq_lock, flags);
}

/*
 * Waits for a used-buffer run of queue @index in flight.  One that starts
 * later sees whatever the caller wrote before, an unpublished queue too.
 */
void vmsg_vq_sync(struct virtio_msg_device *vmdev, unsigned int index)
{
	struct virtio_msg_vq_track *track;

	/* As in vmsg_vq_interrupt(). */
	track = smp_load_acquire(&vmdev->track);
	if (!track || index >= vmdev->max_vqs)
		return;
	spin_lock_irq(&track[index].irq_lock);
	spin_unlock_irq(&track[index].irq_lock);
}

void vmsg_vq_sync_all(struct virtio_msg_device *vmdev)
{
	unsigned int i;

	for (i = 0; i < vmdev->max_vqs; i++)
		vmsg_vq_sync(vmdev, i);
}
