// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-msg transport core.
 *
 * Implements struct virtio_config_ops on top of request/response messages
 * that a bus driver carries to a device (a secure partition, a hypervisor,
 * a user-space backend...).  Bus drivers register a struct virtio_msg_bus,
 * add devices by number and feed everything they receive to
 * virtio_msg_bus_receive().
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
#include <linux/delay.h>
#include <linux/device.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/workqueue.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "virtio_msg_internal.h"

static unsigned int timeout_ms = 3000;
module_param(timeout_ms, uint, 0644);
MODULE_PARM_DESC(timeout_ms,
		 "Milliseconds to wait for a response before the device is marked broken (default 3000)");

/* A config read whose chunks disagree on the generation is retried. */
#define VMSG_CONFIG_RETRIES	8
/* Split virtqueues are limited to 32768 entries. */
#define VMSG_VQ_MAX_SIZE	32768
/* Sanity limits on what a device may announce. */
#define VMSG_MAX_CONFIG_SIZE	SZ_64K
#define VMSG_MAX_VQS		1024

/*
 * Departures from the letter of the spec that real peers make and that
 * cost nothing to accept (README: "Peer profile").  Each is logged once
 * per device; none of them lets a length or an index go unchecked.
 */
enum vmsg_tolerance {
	VMSG_TOL_FEATURE_BITS,		/* num_feature_bits 0 or not a multiple of 32 */
	VMSG_TOL_NO_MAX_VQS,		/* max_virtqueues 0: not reported */
	VMSG_TOL_MANY_VQS,		/* max_virtqueues above our limit */
	VMSG_TOL_FEATURE_BLOCKS,	/* num_blocks/block_index not what it carries */
	VMSG_TOL_CONFIG_ECHO,		/* GET_CONFIG answer without offset/length */
	VMSG_TOL_SET_CONFIG_EMPTY,	/* SET_CONFIG answered without payload */
	VMSG_TOL_STATUS_EMPTY,		/* SET_DEVICE_STATUS answered without payload */
	VMSG_TOL_VQUEUE_INDEX,		/* GET_VQUEUE answer for another index */
	VMSG_TOL_CONFIG_EVENT_SHORT,	/* EVENT_CONFIG without generation/status */
	VMSG_TOL_NO_TOKEN,		/* not tolerated: answers without the token */
};

static DEFINE_IDA(virtio_msg_bus_ida);

/*
 * What the device holds of one split virtqueue, seen from the rings: for
 * each descriptor head, how often it was made available minus how often it
 * came back used.  When the device dies this is what the transport returns
 * to the driver itself, so that requests fail instead of waiting forever.
 */
struct virtio_msg_vq_track {
	spinlock_t lock;	/* kicks, used events and the fail work race */
	u16 *heads;		/* NULL: not tracked (packed ring) */
	u16 avail_seen;
	u16 used_seen;
	bool lost;		/* rings moved more than a lap between scans */
};

struct virtio_msg_pending {
	struct completion done;
	struct virtio_msg_header *resp;
	size_t resp_size;
	ssize_t resp_len;
	int err;
	u16 token;
	u8 msg_id;
};

struct virtio_msg_device {
	struct virtio_device vdev;
	struct virtio_msg_bus *bus;
	u16 dev_num;

	/* From GET_DEVICE_INFO */
	u32 device_id;
	u32 vendor_id;
	u32 num_feature_bits;
	u32 config_size;
	u32 max_vqs;

	/* Serialises requests; protects the buffers below. */
	struct mutex xfer_lock;
	struct virtio_msg_header *req;
	struct virtio_msg_header *resp;
	void *wire;
	size_t canon_size;
	u8 status;

	/* Protected by bus->lookup_lock */
	struct virtio_msg_pending *pending;
	struct virtqueue **vqs;
	bool registered;

	struct virtio_msg_vq_track *track;	/* per queue index */
	/* Broken device whose buffers the transport fails itself */
	bool failing;
	struct work_struct fail_work;

	bool broken;
	u32 config_generation;
	unsigned long tolerated;	/* enum vmsg_tolerance bits, logged once */
};

static struct virtio_msg_device *to_vmsg_device(struct virtio_device *vdev)
{
	return container_of(vdev, struct virtio_msg_device, vdev);
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

static struct device *vmsg_dev(struct virtio_msg_device *vmdev)
{
	/* The bus device has no driver: its parent names the bus in messages. */
	return vmdev->bus->parent;
}

/* Notes a peer's departure from the spec, once per device and kind. */
static __printf(3, 4)
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

/*
 * A broken device answers nothing any more.  Where the transport can reach
 * the buffers (they are in our pool), it completes every outstanding one
 * itself, device-writable bytes poisoned and length 0, so that drivers
 * fail their requests (virtio-blk reads a status byte of 0xff as an I/O
 * error) instead of waiting forever; later kicks get the same treatment.
 * Otherwise the virtqueues are marked broken.
 */
static void vmsg_mark_broken(struct virtio_msg_device *vmdev, const char *why)
{
	if (xchg(&vmdev->broken, true))
		return;
	dev_err(vmsg_dev(vmdev), "device %u: %s; marking it broken\n",
		vmdev->dev_num, why);
	if (vmdev->bus->pool && virtio_msg_pool_is_bounce(vmdev->bus->pool)) {
		WRITE_ONCE(vmdev->failing, true);
		schedule_work(&vmdev->fail_work);
	} else {
		/* vqs and vqs_list_lock are set up before the first request. */
		virtio_break_device(&vmdev->vdev);
	}
}

/* Zeroed payload area of the request buffer; the caller holds xfer_lock. */
static void *vmsg_req_payload(struct virtio_msg_device *vmdev, size_t len)
{
	void *payload = virtio_msg_payload(vmdev->req);

	memset(payload, 0, len);
	return payload;
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
static ssize_t vmsg_xfer(struct virtio_msg_device *vmdev, u8 msg_id,
			 size_t len, size_t resp_min)
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

	/* Token 0 marks events; requests never use it. */
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
		dev_err(vmsg_dev(vmdev), "device %u: no response to %s within %u ms\n",
			vmdev->dev_num, virtio_msg_name(msg_id),
			READ_ONCE(timeout_ms));
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

static int vmsg_send_event(struct virtio_msg_device *vmdev, u8 msg_id,
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

static int vmsg_get_device_info(struct virtio_msg_device *vmdev)
{
	struct virtio_msg_get_device_info_resp *info;
	ssize_t ret;

	guard(mutex)(&vmdev->xfer_lock);
	ret = vmsg_xfer(vmdev, VIRTIO_MSG_GET_DEVICE_INFO, 0, sizeof(*info));
	if (ret < 0)
		return ret;

	info = virtio_msg_payload(vmdev->resp);
	vmdev->device_id = le32_to_cpu(info->device_id);
	vmdev->vendor_id = le32_to_cpu(info->vendor_id);
	vmdev->num_feature_bits = le32_to_cpu(info->num_feature_bits);
	vmdev->config_size = le32_to_cpu(info->config_size);
	vmdev->max_vqs = le32_to_cpu(info->max_virtqueues);

	if (!vmdev->device_id)
		return -ENODEV;
	if (vmdev->config_size > VMSG_MAX_CONFIG_SIZE) {
		dev_err(vmsg_dev(vmdev),
			"device %u: config space of %u bytes is above the %u we accept\n",
			vmdev->dev_num, vmdev->config_size, VMSG_MAX_CONFIG_SIZE);
		return -EPROTO;
	}
	/* Linaro's kernel reads neither field: peers fill them loosely. */
	if (!vmdev->num_feature_bits || vmdev->num_feature_bits % 32) {
		u32 bits = vmdev->num_feature_bits ?
			   round_up(vmdev->num_feature_bits, 32) : 64;

		vmsg_tolerate(vmdev, VMSG_TOL_FEATURE_BITS,
			      "num_feature_bits %u; asking for %u",
			      vmdev->num_feature_bits, bits);
		vmdev->num_feature_bits = bits;
	}
	if (!vmdev->max_vqs || vmdev->max_vqs > VMSG_MAX_VQS) {
		vmsg_tolerate(vmdev, vmdev->max_vqs ? VMSG_TOL_MANY_VQS :
			      VMSG_TOL_NO_MAX_VQS,
			      "max_virtqueues %u; asking GET_VQUEUE for up to %u queues",
			      vmdev->max_vqs, VMSG_MAX_VQS);
		vmdev->max_vqs = VMSG_MAX_VQS;
	}
	return 0;
}

static unsigned int vmsg_feature_blocks(struct virtio_msg_device *vmdev)
{
	return min_t(unsigned int, vmdev->num_feature_bits / 32,
		     VMSG_FEATURE_WORDS * 2);
}

/* Reads the device feature bits into @features (VMSG_FEATURE_WORDS u64s). */
static int vmsg_read_features(struct virtio_msg_device *vmdev, u64 *features)
{
	unsigned int blocks = vmsg_feature_blocks(vmdev);
	struct virtio_msg_features *req, *resp;
	unsigned int i, num, carried;
	ssize_t ret;

	memset(features, 0, VMSG_FEATURE_WORDS * sizeof(u64));

	guard(mutex)(&vmdev->xfer_lock);
	req = vmsg_req_payload(vmdev, sizeof(*req));
	req->block_index = cpu_to_le32(0);
	req->num_blocks = cpu_to_le32(blocks);
	ret = vmsg_xfer(vmdev, VIRTIO_MSG_GET_DEVICE_FEATURES, sizeof(*req),
			sizeof(*resp));
	if (ret < 0)
		return ret;

	resp = virtio_msg_payload(vmdev->resp);
	/*
	 * What msg_size carries counts, not what num_blocks says: peers
	 * answer "1 block" with 64 bits of data, as Linaro's kernel reads
	 * them.  Blocks neither carried nor asked for stay zero.
	 */
	carried = min_t(size_t, (ret - sizeof(*resp)) / sizeof(__le32), blocks);
	num = le32_to_cpu(resp->num_blocks);
	if (le32_to_cpu(resp->block_index) != 0 || num != carried)
		vmsg_tolerate(vmdev, VMSG_TOL_FEATURE_BLOCKS,
			      "GET_DEVICE_FEATURES answer names block %u, %u blocks, but carries %u: using what it carries",
			      le32_to_cpu(resp->block_index), num, carried);
	for (i = 0; i < carried; i++)
		features[i / 2] |= (u64)le32_to_cpu(resp->features[i]) <<
				   (32 * (i % 2));
	return 0;
}

static u64 vmsg_get_features(struct virtio_device *vdev)
{
	u64 features[VMSG_FEATURE_WORDS];

	if (vmsg_read_features(to_vmsg_device(vdev), features))
		return 0;
	return features[0];
}

/* Unused before 6.17: no get_extended_features op to put it in. */
static void __maybe_unused vmsg_get_extended_features(struct virtio_device *vdev,
						      u64 *features)
{
	vmsg_read_features(to_vmsg_device(vdev), features);
}

static int vmsg_finalize_features(struct virtio_device *vdev)
{
	struct virtio_msg_device *vmdev = to_vmsg_device(vdev);
	unsigned int blocks = vmsg_feature_blocks(vmdev);
	const u64 *features = vmsg_vdev_features(vdev);
	struct virtio_msg_features *req;
	unsigned int i;
	ssize_t ret;

	vring_transport_features(vdev);

	/* Config space and messages are little-endian: legacy is not an option. */
	if (!__virtio_test_bit(vdev, VIRTIO_F_VERSION_1)) {
		dev_err(&vdev->dev, "device %u does not offer VIRTIO_F_VERSION_1\n",
			vmdev->dev_num);
		return -EINVAL;
	}
	if (vmdev->bus->pool &&
	    !__virtio_test_bit(vdev, VIRTIO_F_ACCESS_PLATFORM)) {
		dev_err(&vdev->dev,
			"device %u does not offer VIRTIO_F_ACCESS_PLATFORM: its DMA would bypass the bus's memory pool\n",
			vmdev->dev_num);
		return -ENODEV;
	}

	guard(mutex)(&vmdev->xfer_lock);
	req = vmsg_req_payload(vmdev, sizeof(*req) + blocks * sizeof(__le32));
	req->block_index = cpu_to_le32(0);
	req->num_blocks = cpu_to_le32(blocks);
	for (i = 0; i < blocks; i++)
		req->features[i] = cpu_to_le32(features[i / 2] >> (32 * (i % 2)));
	ret = vmsg_xfer(vmdev, VIRTIO_MSG_SET_DRIVER_FEATURES,
			sizeof(*req) + blocks * sizeof(__le32), 0);
	return ret < 0 ? ret : 0;
}

static bool vmsg_config_range_ok(struct virtio_msg_device *vmdev,
				 unsigned int offset, unsigned int len)
{
	if (offset > vmdev->config_size || len > vmdev->config_size - offset) {
		dev_warn_ratelimited(&vmdev->vdev.dev,
				     "config access %u+%u beyond size %u\n",
				     offset, len, vmdev->config_size);
		return false;
	}
	return true;
}

/* Largest config chunk one message can carry on this bus. */
static unsigned int vmsg_config_chunk(struct virtio_msg_device *vmdev)
{
	struct virtio_msg_bus *bus = vmdev->bus;

	return bus->max_msg_size - virtio_msg_wire_hdr_size(bus->format) -
	       sizeof(struct virtio_msg_config);
}

/* One GET_CONFIG; returns the generation of the chunk or a negative errno. */
static s64 vmsg_get_config_chunk(struct virtio_msg_device *vmdev,
				 unsigned int offset, void *buf,
				 unsigned int len)
{
	struct virtio_msg_get_config *req;
	struct virtio_msg_config *resp;
	ssize_t ret;

	req = vmsg_req_payload(vmdev, sizeof(*req));
	req->offset = cpu_to_le32(offset);
	req->length = cpu_to_le32(len);
	ret = vmsg_xfer(vmdev, VIRTIO_MSG_GET_CONFIG, sizeof(*req),
			sizeof(*resp) + len);
	if (ret < 0)
		return ret;

	resp = virtio_msg_payload(vmdev->resp);
	/* It answers this request (token); the echo is redundant. */
	if (le32_to_cpu(resp->offset) != offset ||
	    le32_to_cpu(resp->length) != len)
		vmsg_tolerate(vmdev, VMSG_TOL_CONFIG_ECHO,
			      "GET_CONFIG answer for %u+%u names %u+%u: using its data",
			      offset, len, le32_to_cpu(resp->offset),
			      le32_to_cpu(resp->length));
	memcpy(buf, resp->data, len);
	return le32_to_cpu(resp->generation);
}

static void vmsg_get(struct virtio_device *vdev, unsigned int offset,
		     void *buf, unsigned int len)
{
	struct virtio_msg_device *vmdev = to_vmsg_device(vdev);
	unsigned int chunk = vmsg_config_chunk(vmdev);
	unsigned int done, n, try;
	s64 gen, first_gen = 0;

	memset(buf, 0, len);
	if (!vmsg_config_range_ok(vmdev, offset, len))
		return;

	guard(mutex)(&vmdev->xfer_lock);
	/* A read split over several messages must see one generation. */
	for (try = 0; try < VMSG_CONFIG_RETRIES; try++) {
		bool consistent = true;

		for (done = 0; done < len; done += n) {
			n = min(chunk, len - done);
			gen = vmsg_get_config_chunk(vmdev, offset + done,
						    buf + done, n);
			if (gen < 0) {
				memset(buf, 0, len);
				return;
			}
			if (!done)
				first_gen = gen;
			else if (gen != first_gen)
				consistent = false;
		}
		WRITE_ONCE(vmdev->config_generation, (u32)first_gen);
		if (consistent)
			return;
	}
	dev_warn_ratelimited(&vdev->dev, "config space keeps changing during reads\n");
	/* Make the caller's generation check fail and read again. */
	WRITE_ONCE(vmdev->config_generation, (u32)first_gen + 1);
}

static void vmsg_set(struct virtio_device *vdev, unsigned int offset,
		     const void *buf, unsigned int len)
{
	struct virtio_msg_device *vmdev = to_vmsg_device(vdev);
	unsigned int chunk = vmsg_config_chunk(vmdev);
	struct virtio_msg_config *req, *resp;
	unsigned int done, n;
	ssize_t ret;

	if (!vmsg_config_range_ok(vmdev, offset, len))
		return;

	guard(mutex)(&vmdev->xfer_lock);
	for (done = 0; done < len; done += n) {
		n = min(chunk, len - done);
		req = vmsg_req_payload(vmdev, sizeof(*req) + n);
		req->generation = cpu_to_le32(READ_ONCE(vmdev->config_generation));
		req->offset = cpu_to_le32(offset + done);
		req->length = cpu_to_le32(n);
		memcpy(req->data, buf + done, n);
		ret = vmsg_xfer(vmdev, VIRTIO_MSG_SET_CONFIG, sizeof(*req) + n, 0);
		if (ret < 0)
			return;
		if (ret < sizeof(*resp)) {
			vmsg_tolerate(vmdev, VMSG_TOL_SET_CONFIG_EMPTY,
				      "SET_CONFIG answered without payload: taken as done");
			continue;
		}
		resp = virtio_msg_payload(vmdev->resp);
		WRITE_ONCE(vmdev->config_generation, le32_to_cpu(resp->generation));
		if (!resp->length) {
			dev_warn_ratelimited(&vdev->dev,
					     "device rejected config write at %u\n",
					     offset + done);
			return;
		}
	}
}

static u32 vmsg_generation(struct virtio_device *vdev)
{
	return READ_ONCE(to_vmsg_device(vdev)->config_generation);
}

static u8 vmsg_get_status(struct virtio_device *vdev)
{
	struct virtio_msg_device *vmdev = to_vmsg_device(vdev);
	struct virtio_msg_status *resp;
	ssize_t ret;
	u32 status;

	guard(mutex)(&vmdev->xfer_lock);
	ret = vmsg_xfer(vmdev, VIRTIO_MSG_GET_DEVICE_STATUS, 0, sizeof(*resp));
	if (ret < 0)
		return vmdev->status;
	resp = virtio_msg_payload(vmdev->resp);
	status = le32_to_cpu(resp->status);
	/*
	 * Only the driver sets status bits; the device may clear FEATURES_OK
	 * or add NEEDS_RESET.  Whatever else it claims is not believed: a
	 * reset device reads 0 whatever the device says.
	 */
	if (!vmdev->status)
		return 0;
	return (vmdev->status & status) | (status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* Caller holds xfer_lock.  Returns the status the device reports. */
static int vmsg_write_status(struct virtio_msg_device *vmdev, u8 status)
{
	struct virtio_msg_status *req, *resp;
	ssize_t ret;

	/* What the driver asked for, even if the device does not answer. */
	vmdev->status = status;
	req = vmsg_req_payload(vmdev, sizeof(*req));
	req->status = cpu_to_le32(status);
	ret = vmsg_xfer(vmdev, VIRTIO_MSG_SET_DEVICE_STATUS, sizeof(*req), 0);
	if (ret < 0)
		return ret;
	if (ret < sizeof(*resp)) {
		vmsg_tolerate(vmdev, VMSG_TOL_STATUS_EMPTY,
			      "SET_DEVICE_STATUS answered without payload: taken as accepted");
		return status;
	}
	resp = virtio_msg_payload(vmdev->resp);
	return le32_to_cpu(resp->status) & 0xff;
}

static void vmsg_set_status(struct virtio_device *vdev, u8 status)
{
	struct virtio_msg_device *vmdev = to_vmsg_device(vdev);

	guard(mutex)(&vmdev->xfer_lock);
	vmsg_write_status(vmdev, status);
}

static void vmsg_reset(struct virtio_device *vdev)
{
	struct virtio_msg_device *vmdev = to_vmsg_device(vdev);
	unsigned long deadline;
	struct virtio_msg_status *resp;
	ssize_t ret;

	guard(mutex)(&vmdev->xfer_lock);
	ret = vmsg_write_status(vmdev, 0);
	if (ret <= 0)
		return;

	/* The device may finish resetting later: wait for it to read 0. */
	deadline = jiffies + msecs_to_jiffies(READ_ONCE(timeout_ms));
	do {
		usleep_range(1000, 2000);
		ret = vmsg_xfer(vmdev, VIRTIO_MSG_GET_DEVICE_STATUS, 0,
				sizeof(*resp));
		if (ret < 0)
			return;
		resp = virtio_msg_payload(vmdev->resp);
		if (!le32_to_cpu(resp->status))
			return;
	} while (time_before(jiffies, deadline));
	vmsg_mark_broken(vmdev, "device does not complete its reset");
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

static void vmsg_track_update(struct virtio_msg_device *vmdev,
			      struct virtqueue *vq)
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
 * anything was completed.
 */
static bool vmsg_fail_vq(struct virtio_msg_device *vmdev, struct virtqueue *vq)
{
	struct virtio_msg_vq_track *t = &vmdev->track[vq->index];
	const struct vring *vr = virtqueue_get_vring(vq);
	struct virtio_device *vdev = &vmdev->vdev;
	unsigned int head, round;
	bool done = false;
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
			done = true;
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
	if (t->lost)
		dev_warn_ratelimited(&vdev->dev,
				     "queue %u: ring state lost, some requests may not complete\n",
				     vq->index);
out:
	spin_unlock_irqrestore(&t->lock, flags);
	return done;
}

static void vmsg_fail_work(struct work_struct *work)
{
	struct virtio_msg_device *vmdev =
		container_of(work, struct virtio_msg_device, fail_work);
	struct virtio_msg_bus *bus = vmdev->bus;
	unsigned int i;

	for (i = 0; vmdev->vqs && i < vmdev->max_vqs; i++) {
		spin_lock_bh(&bus->lookup_lock);
		if (vmdev->vqs[i] && vmsg_fail_vq(vmdev, vmdev->vqs[i]))
			vring_interrupt(0, vmdev->vqs[i]);
		spin_unlock_bh(&bus->lookup_lock);
	}
}

static bool vmsg_notify(struct virtqueue *vq)
{
	struct virtio_msg_device *vmdev = to_vmsg_device(vq->vdev);
	struct virtio_msg_event_avail ev = {
		.vq_index = cpu_to_le32(vq->index),
	};

	if (READ_ONCE(vmdev->failing)) {
		schedule_work(&vmdev->fail_work);
		return true;
	}
	if (READ_ONCE(vmdev->broken))
		return false;

	vmsg_track_update(vmdev, vq);

	if (__virtio_test_bit(vq->vdev, VIRTIO_F_NOTIFICATION_DATA)) {
		/* vring_notification_data(): next offset/wrap in bits 31:16 */
		u32 next = vring_notification_data(vq) >> 16;
		u32 val;

		if (__virtio_test_bit(vq->vdev, VIRTIO_F_RING_PACKED))
			val = (next & 0x7fff) |
			      ((next & 0x8000) ? VIRTIO_MSG_EVENT_AVAIL_WRAP : 0);
		else
			val = next;
		ev.next_offset = cpu_to_le32(val);
	}

	return !vmsg_send_event(vmdev, VIRTIO_MSG_EVENT_AVAIL, &ev, sizeof(ev));
}

static void vmsg_publish_vq(struct virtio_msg_device *vmdev,
			    unsigned int index, struct virtqueue *vq)
{
	spin_lock_bh(&vmdev->bus->lookup_lock);
	vmdev->vqs[index] = vq;
	spin_unlock_bh(&vmdev->bus->lookup_lock);
}

static void vmsg_track_free(struct virtio_msg_device *vmdev, unsigned int index)
{
	struct virtio_msg_vq_track *t = &vmdev->track[index];
	u16 *heads;

	spin_lock_irq(&t->lock);
	heads = t->heads;
	t->heads = NULL;
	spin_unlock_irq(&t->lock);
	kfree(heads);
}

/* Caller holds xfer_lock. */
static int vmsg_send_vqueue(struct virtio_msg_device *vmdev,
			    struct virtqueue *vq)
{
	struct virtio_msg_vqueue *req;
	ssize_t ret;

	req = vmsg_req_payload(vmdev, sizeof(*req));
	req->index = cpu_to_le32(vq->index);
	req->size = cpu_to_le32(virtqueue_get_vring_size(vq));
	req->desc_addr = cpu_to_le64(virtqueue_get_desc_addr(vq));
	req->driver_addr = cpu_to_le64(virtqueue_get_avail_addr(vq));
	req->device_addr = cpu_to_le64(virtqueue_get_used_addr(vq));
	ret = vmsg_xfer(vmdev, VIRTIO_MSG_SET_VQUEUE, sizeof(*req), 0);
	return ret < 0 ? ret : 0;
}

static struct virtqueue *vmsg_setup_vq(struct virtio_msg_device *vmdev,
				       unsigned int index,
				       vq_callback_t *callback,
				       const char *name, bool ctx)
{
	struct virtio_msg_vqueue_index *req;
	struct virtio_msg_vqueue *resp;
	struct virtqueue *vq;
	u32 max_size;
	ssize_t ret;

	if (index >= vmdev->max_vqs)
		return ERR_PTR(-ENOENT);

	guard(mutex)(&vmdev->xfer_lock);
	req = vmsg_req_payload(vmdev, sizeof(*req));
	req->index = cpu_to_le32(index);
	ret = vmsg_xfer(vmdev, VIRTIO_MSG_GET_VQUEUE, sizeof(*req),
			sizeof(*resp));
	if (ret < 0)
		return ERR_PTR(ret);

	resp = virtio_msg_payload(vmdev->resp);
	if (le32_to_cpu(resp->index) != index)
		vmsg_tolerate(vmdev, VMSG_TOL_VQUEUE_INDEX,
			      "GET_VQUEUE answer for queue %u names queue %u: using it",
			      index, le32_to_cpu(resp->index));
	max_size = le32_to_cpu(resp->max_size);
	if (!max_size)
		return ERR_PTR(-ENOENT);
	/* Split rings need a power of two; never trust the device's size. */
	max_size = rounddown_pow_of_two(min_t(u32, max_size, VMSG_VQ_MAX_SIZE));

	vq = vring_create_virtqueue(index, max_size, SMP_CACHE_BYTES,
				    &vmdev->vdev, true, true, ctx, vmsg_notify,
				    callback, name);
	if (!vq) {
		dev_err(&vmdev->vdev.dev, "cannot allocate virtqueue %u (%u entries)\n",
			index, max_size);
		return ERR_PTR(-ENOMEM);
	}

	if (!__virtio_test_bit(&vmdev->vdev, VIRTIO_F_RING_PACKED)) {
		struct virtio_msg_vq_track *t = &vmdev->track[index];
		u16 *heads = kcalloc(virtqueue_get_vring_size(vq), sizeof(*heads),
				     GFP_KERNEL);

		if (!heads) {
			vring_del_virtqueue(vq);
			return ERR_PTR(-ENOMEM);
		}
		spin_lock_irq(&t->lock);
		t->heads = heads;
		t->avail_seen = 0;
		t->used_seen = 0;
		t->lost = false;
		spin_unlock_irq(&t->lock);
	}

	ret = vmsg_send_vqueue(vmdev, vq);
	if (ret) {
		vmsg_track_free(vmdev, index);
		vring_del_virtqueue(vq);
		return ERR_PTR(ret);
	}
	vmsg_publish_vq(vmdev, index, vq);
	return vq;
}

static void vmsg_del_vqs(struct virtio_device *vdev)
{
	struct virtio_msg_device *vmdev = to_vmsg_device(vdev);
	struct virtio_msg_vqueue_index *req;
	struct virtqueue *vq, *n;

	list_for_each_entry_safe(vq, n, &vdev->vqs, list) {
		/* No EVENT_USED reaches the queue after this. */
		vmsg_publish_vq(vmdev, vq->index, NULL);

		scoped_guard(mutex, &vmdev->xfer_lock) {
			/* A reset device has no queues left to tear down. */
			if (vmdev->status) {
				req = vmsg_req_payload(vmdev, sizeof(*req));
				req->index = cpu_to_le32(vq->index);
				vmsg_xfer(vmdev, VIRTIO_MSG_RESET_VQUEUE,
					  sizeof(*req), 0);
			}
		}
		vmsg_track_free(vmdev, vq->index);
		/*
		 * Drivers may leave buffers queued (virtio-rng always keeps
		 * one): their mappings hold pool memory until unmapped, and
		 * vring_del_virtqueue() does not unmap.  The device is reset
		 * or dead by now, so they are ours to take back.
		 */
		while (virtqueue_detach_unused_buf(vq))
			;
		vring_del_virtqueue(vq);
	}
}

static int vmsg_find_vqs(struct virtio_device *vdev, unsigned int nvqs,
			 struct virtqueue *vqs[],
			 struct virtqueue_info vqs_info[],
			 struct irq_affinity *desc)
{
	struct virtio_msg_device *vmdev = to_vmsg_device(vdev);
	unsigned int i, queue_idx = 0;

	for (i = 0; i < nvqs; i++) {
		struct virtqueue_info *info = &vqs_info[i];

		if (!info->name) {
			vqs[i] = NULL;
			continue;
		}
		vqs[i] = vmsg_setup_vq(vmdev, queue_idx++, info->callback,
				       info->name, info->ctx);
		if (IS_ERR(vqs[i])) {
			int err = PTR_ERR(vqs[i]);

			vmsg_del_vqs(vdev);
			return err;
		}
	}
	return 0;
}

static void vmsg_synchronize_cbs(struct virtio_device *vdev)
{
	struct virtio_msg_bus *bus = to_vmsg_device(vdev)->bus;

	/* Callbacks run under lookup_lock. */
	spin_lock_bh(&bus->lookup_lock);
	spin_unlock_bh(&bus->lookup_lock);
}

static const char *vmsg_bus_name(struct virtio_device *vdev)
{
	return to_vmsg_device(vdev)->bus->name;
}

static bool vmsg_get_shm_region(struct virtio_device *vdev,
				struct virtio_shm_region *region, u8 id)
{
	struct virtio_msg_device *vmdev = to_vmsg_device(vdev);
	struct virtio_msg_vqueue_index *req;
	struct virtio_msg_get_shm_resp *resp;
	ssize_t ret;

	guard(mutex)(&vmdev->xfer_lock);
	req = vmsg_req_payload(vmdev, sizeof(*req));
	req->index = cpu_to_le32(id);
	ret = vmsg_xfer(vmdev, VIRTIO_MSG_GET_SHM, sizeof(*req), sizeof(*resp));
	if (ret < 0)
		return false;
	resp = virtio_msg_payload(vmdev->resp);
	if (le32_to_cpu(resp->index) != id || !resp->length)
		return false;
	region->addr = le32_to_cpu(resp->address);
	region->len = le32_to_cpu(resp->length);
	return true;
}

static int vmsg_disable_vq_and_reset(struct virtqueue *vq)
{
	struct virtio_msg_device *vmdev = to_vmsg_device(vq->vdev);
	struct virtio_msg_vqueue_index *req;
	ssize_t ret;

	scoped_guard(mutex, &vmdev->xfer_lock) {
		req = vmsg_req_payload(vmdev, sizeof(*req));
		req->index = cpu_to_le32(vq->index);
		ret = vmsg_xfer(vmdev, VIRTIO_MSG_RESET_VQUEUE, sizeof(*req), 0);
	}
	if (ret < 0)
		return ret;
	vmsg_synchronize_cbs(vq->vdev);
	return 0;
}

static int vmsg_enable_vq_after_reset(struct virtqueue *vq)
{
	struct virtio_msg_device *vmdev = to_vmsg_device(vq->vdev);

	guard(mutex)(&vmdev->xfer_lock);
	return vmsg_send_vqueue(vmdev, vq);
}

static const struct virtio_config_ops virtio_msg_config_ops = {
	.get			= vmsg_get,
	.set			= vmsg_set,
	.generation		= vmsg_generation,
	.get_status		= vmsg_get_status,
	.set_status		= vmsg_set_status,
	.reset			= vmsg_reset,
	.find_vqs		= vmsg_find_vqs,
	.del_vqs		= vmsg_del_vqs,
	.synchronize_cbs	= vmsg_synchronize_cbs,
	.get_features		= vmsg_get_features,
#ifdef HAVE_VIRTIO_EXTENDED_FEATURES
	.get_extended_features	= vmsg_get_extended_features,
#endif
	.finalize_features	= vmsg_finalize_features,
	.bus_name		= vmsg_bus_name,
	.get_shm_region		= vmsg_get_shm_region,
	.disable_vq_and_reset	= vmsg_disable_vq_and_reset,
	.enable_vq_after_reset	= vmsg_enable_vq_after_reset,
};

/* Response to the request outstanding on @vmdev; under lookup_lock. */
static int vmsg_complete(struct virtio_msg_device *vmdev,
			 const struct virtio_msg_wire_hdr *hdr,
			 const void *msg, size_t len)
{
	struct virtio_msg_bus *bus = vmdev->bus;
	struct virtio_msg_pending *pending = vmdev->pending;
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
		if (index >= vmdev->max_vqs || !vmdev->vqs)
			return -EINVAL;
		/* A used event for a queue not (or no longer) set up is moot. */
		if (vmdev->vqs[index]) {
			vmsg_track_update(vmdev, vmdev->vqs[index]);
			vring_interrupt(0, vmdev->vqs[index]);
		}
		return 0;
	case VIRTIO_MSG_EVENT_CONFIG:
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
	spin_unlock_bh(&bus->lookup_lock);
	return ret;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_receive, "VIRTIO_MSG");

/* Fails the request @vmdev waits for, if any; under lookup_lock. */
static void vmsg_fail_pending(struct virtio_msg_device *vmdev, int err)
{
	struct virtio_msg_pending *pending = vmdev->pending;

	if (!pending)
		return;
	pending->err = err;
	vmdev->pending = NULL;
	complete(&pending->done);
}

/**
 * virtio_msg_bus_device_gone - the device side removed a device
 * @bus: the bus
 * @dev_num: the device
 *
 * For hot-unplug announced by the device side: the device will answer
 * nothing more, so it is marked broken at once (its outstanding requests
 * and buffers fail) and the bus driver removes it later, from process
 * context, with virtio_msg_bus_remove_device().  Any context but hard
 * interrupt.
 *
 * Return: 0 or -ENODEV.
 */
int virtio_msg_bus_device_gone(struct virtio_msg_bus *bus, u16 dev_num)
{
	struct virtio_msg_device *vmdev;

	spin_lock_bh(&bus->lookup_lock);
	vmdev = xa_load(&bus->devices, dev_num);
	if (vmdev) {
		vmsg_fail_pending(vmdev, -ENODEV);
		vmsg_mark_broken(vmdev, "the device was unplugged");
	}
	spin_unlock_bh(&bus->lookup_lock);
	return vmdev ? 0 : -ENODEV;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_device_gone, "VIRTIO_MSG");

/**
 * virtio_msg_bus_lost - the device side of a bus went away
 * @bus: the bus
 *
 * Nothing will answer any more: outstanding requests fail at once instead
 * of running into the timeout, and every device is marked broken, its
 * outstanding buffers returned to the drivers as failed.  A broken device
 * never recovers, and a reader of it (/dev/hwrng) would wait forever, so
 * the devices are then removed, from a work item: a peer that comes back
 * adds them afresh.  Any context but hard interrupt.
 */
void virtio_msg_bus_lost(struct virtio_msg_bus *bus)
{
	struct virtio_msg_device *vmdev;
	unsigned long index;

	spin_lock_bh(&bus->lookup_lock);
	xa_for_each(&bus->devices, index, vmdev) {
		vmsg_fail_pending(vmdev, -ECONNRESET);
		vmsg_mark_broken(vmdev, "the device side went away");
	}
	spin_unlock_bh(&bus->lookup_lock);
	queue_work(system_long_wq, &bus->lost_work);
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_lost, "VIRTIO_MSG");

static void vmsg_device_release(struct device *dev)
{
	struct virtio_msg_device *vmdev =
		to_vmsg_device(dev_to_virtio(dev));

	kfree(vmdev->vqs);
	kfree(vmdev->track);
	kfree(vmdev->req);
	kfree(vmdev->resp);
	kfree(vmdev->wire);
	kfree(vmdev);
}

static struct virtio_msg_device *vmsg_device_alloc(struct virtio_msg_bus *bus,
						   u16 dev_num)
{
	struct virtio_msg_device *vmdev;

	vmdev = kzalloc(sizeof(*vmdev), GFP_KERNEL);
	if (!vmdev)
		return NULL;

	vmdev->bus = bus;
	vmdev->dev_num = dev_num;
	mutex_init(&vmdev->xfer_lock);
	INIT_WORK(&vmdev->fail_work, vmsg_fail_work);
	vmdev->canon_size = bus->max_msg_size + VIRTIO_MSG_CANON_EXTRA;
	vmdev->req = kzalloc(vmdev->canon_size, GFP_KERNEL);
	vmdev->resp = kzalloc(vmdev->canon_size, GFP_KERNEL);
	vmdev->wire = kzalloc(bus->max_msg_size, GFP_KERNEL);
	if (!vmdev->req || !vmdev->resp || !vmdev->wire) {
		kfree(vmdev->req);
		kfree(vmdev->resp);
		kfree(vmdev->wire);
		kfree(vmdev);
		return NULL;
	}

	vmdev->vdev.dev.parent = &bus->dev;
	vmdev->vdev.dev.release = vmsg_device_release;
	vmdev->vdev.config = &virtio_msg_config_ops;
	/*
	 * register_virtio_device() sets these up again; a request that times
	 * out before it runs still needs them for virtio_break_device().
	 */
	INIT_LIST_HEAD(&vmdev->vdev.vqs);
	spin_lock_init(&vmdev->vdev.vqs_list_lock);
	if (bus->pool)
		virtio_msg_pool_setup_vdev(bus->pool, &vmdev->vdev);
	return vmdev;
}

static void vmsg_device_unpublish(struct virtio_msg_device *vmdev)
{
	struct virtio_msg_bus *bus = vmdev->bus;

	xa_erase(&bus->devices, vmdev->dev_num);
	/* Wait for receivers that found the device before the erase. */
	spin_lock_bh(&bus->lookup_lock);
	vmdev->registered = false;
	spin_unlock_bh(&bus->lookup_lock);
}

/**
 * virtio_msg_bus_add_device - create and register the virtio device @dev_num
 * @bus: the bus
 * @dev_num: device number on the bus
 *
 * Asks the device for its identity, checks it can be used safely on this
 * bus and registers it with the virtio core, which probes a driver.  Sleeps
 * while the device answers.
 *
 * Return: 0, -EEXIST, -ENODEV (no usable device), -ETIMEDOUT, ...
 */
int virtio_msg_bus_add_device(struct virtio_msg_bus *bus, u16 dev_num)
{
	struct virtio_msg_device *vmdev;
	u64 features[VMSG_FEATURE_WORDS];
	unsigned int i;
	int ret;

	/* A peer that came back re-adds what its predecessor left broken. */
	flush_work(&bus->lost_work);
	guard(mutex)(&bus->devices_lock);
	if (xa_load(&bus->devices, dev_num))
		return -EEXIST;

	vmdev = vmsg_device_alloc(bus, dev_num);
	if (!vmdev)
		return -ENOMEM;
	ret = xa_insert(&bus->devices, dev_num, vmdev, GFP_KERNEL);
	if (ret)
		goto err_free;

	ret = vmsg_get_device_info(vmdev);
	if (ret)
		goto err_unpublish;

	if (bus->pool) {
		ret = vmsg_read_features(vmdev, features);
		if (ret)
			goto err_unpublish;
		if (!(features[0] & BIT_ULL(VIRTIO_F_ACCESS_PLATFORM))) {
			dev_err(bus->parent,
				"device %u does not offer VIRTIO_F_ACCESS_PLATFORM: refusing it, its DMA would bypass the memory pool\n",
				dev_num);
			ret = -ENODEV;
			goto err_unpublish;
		}
	}

	vmdev->vqs = kcalloc(vmdev->max_vqs, sizeof(*vmdev->vqs), GFP_KERNEL);
	vmdev->track = kcalloc(vmdev->max_vqs, sizeof(*vmdev->track), GFP_KERNEL);
	if (vmdev->max_vqs && (!vmdev->vqs || !vmdev->track)) {
		ret = -ENOMEM;
		goto err_unpublish;
	}
	for (i = 0; i < vmdev->max_vqs; i++)
		spin_lock_init(&vmdev->track[i].lock);

	vmdev->vdev.id.device = vmdev->device_id;
	vmdev->vdev.id.vendor = vmdev->vendor_id;
	ret = register_virtio_device(&vmdev->vdev);
	if (ret) {
		dev_err(bus->parent, "cannot register device %u: %d\n", dev_num, ret);
		cancel_work_sync(&vmdev->fail_work);
		vmsg_device_unpublish(vmdev);
		put_device(&vmdev->vdev.dev);
		return ret;
	}

	spin_lock_bh(&bus->lookup_lock);
	vmdev->registered = true;
	spin_unlock_bh(&bus->lookup_lock);
	dev_info(bus->parent, "device %u: virtio id %u as %s\n", dev_num,
		 vmdev->device_id, dev_name(&vmdev->vdev.dev));
	return 0;

err_unpublish:
	cancel_work_sync(&vmdev->fail_work);
	vmsg_device_unpublish(vmdev);
err_free:
	vmsg_device_release(&vmdev->vdev.dev);
	return ret;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_add_device, "VIRTIO_MSG");

static void vmsg_device_remove(struct virtio_msg_device *vmdev)
{
	/* The device must stay reachable while its driver shuts it down. */
	get_device(&vmdev->vdev.dev);
	unregister_virtio_device(&vmdev->vdev);
	/* The queues are gone: nothing schedules the work any more. */
	cancel_work_sync(&vmdev->fail_work);
	vmsg_device_unpublish(vmdev);
	put_device(&vmdev->vdev.dev);
}

/**
 * virtio_msg_bus_remove_device - unregister the virtio device @dev_num
 * @bus: the bus
 * @dev_num: device number
 *
 * The driver is unbound first and may still talk to the device.
 *
 * Return: 0 or -ENODEV.
 */
int virtio_msg_bus_remove_device(struct virtio_msg_bus *bus, u16 dev_num)
{
	struct virtio_msg_device *vmdev;

	guard(mutex)(&bus->devices_lock);
	vmdev = xa_load(&bus->devices, dev_num);
	if (!vmdev)
		return -ENODEV;
	vmsg_device_remove(vmdev);
	return 0;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_remove_device, "VIRTIO_MSG");

unsigned int virtio_msg_bus_num_devices(struct virtio_msg_bus *bus)
{
	struct virtio_msg_device *vmdev;
	unsigned long index;
	unsigned int n = 0;

	xa_for_each(&bus->devices, index, vmdev)
		n++;
	return n;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_num_devices, "VIRTIO_MSG");

#ifdef CONFIG_PM_SLEEP
/**
 * virtio_msg_bus_freeze - freeze every device of the bus for suspend
 * @bus: the bus
 *
 * Return: 0, or the error of the device that failed, after the devices
 * frozen so far have been restored.
 */
int virtio_msg_bus_freeze(struct virtio_msg_bus *bus)
{
	struct virtio_msg_device *vmdev;
	unsigned long index, failed;
	int ret = 0;

	guard(mutex)(&bus->devices_lock);
	xa_for_each(&bus->devices, index, vmdev) {
		ret = virtio_device_freeze(&vmdev->vdev);
		if (ret) {
			failed = index;
			break;
		}
	}
	if (!ret)
		return 0;

	xa_for_each(&bus->devices, index, vmdev) {
		if (index == failed)
			break;
		virtio_device_restore(&vmdev->vdev);
	}
	return ret;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_freeze, "VIRTIO_MSG");

int virtio_msg_bus_restore(struct virtio_msg_bus *bus)
{
	struct virtio_msg_device *vmdev;
	unsigned long index;
	int ret, first = 0;

	guard(mutex)(&bus->devices_lock);
	xa_for_each(&bus->devices, index, vmdev) {
		ret = virtio_device_restore(&vmdev->vdev);
		if (ret && !first)
			first = ret;
	}
	return first;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_restore, "VIRTIO_MSG");
#endif /* CONFIG_PM_SLEEP */

/* Removes the devices virtio_msg_bus_lost() broke; later ones stay. */
static void vmsg_bus_lost_work(struct work_struct *work)
{
	struct virtio_msg_bus *bus = container_of(work, struct virtio_msg_bus,
						  lost_work);
	struct virtio_msg_device *vmdev;
	unsigned long index;

	guard(mutex)(&bus->devices_lock);
	xa_for_each(&bus->devices, index, vmdev) {
		if (READ_ONCE(vmdev->broken)) {
			dev_info(bus->parent, "device %u: removing it, its peer is gone\n",
				 vmdev->dev_num);
			vmsg_device_remove(vmdev);
		}
	}
}

static void vmsg_bus_dev_release(struct device *dev)
{
	struct virtio_msg_bus *bus = container_of(dev, struct virtio_msg_bus, dev);

	complete(&bus->released);
}

/**
 * virtio_msg_bus_register - register a bus
 * @bus: filled in by the bus driver (parent, ops, name, format,
 *	max_msg_size, pool); parent is required
 *
 * Return: 0 or a negative errno.
 */
int virtio_msg_bus_register(struct virtio_msg_bus *bus)
{
	int ret;

	if (!bus->parent || !bus->ops || !bus->ops->send || !bus->name ||
	    bus->max_msg_size < virtio_msg_wire_min_max_size(bus->format) ||
	    bus->max_msg_size > VIRTIO_MSG_MAX_SIZE)
		return -EINVAL;

	ret = ida_alloc(&virtio_msg_bus_ida, GFP_KERNEL);
	if (ret < 0)
		return ret;
	bus->id = ret;

	mutex_init(&bus->devices_lock);
	xa_init(&bus->devices);
	spin_lock_init(&bus->lookup_lock);
	atomic_set(&bus->token_seq, 0);
	INIT_WORK(&bus->lost_work, vmsg_bus_lost_work);
	init_completion(&bus->released);

	device_initialize(&bus->dev);
	bus->dev.parent = bus->parent;
	bus->dev.release = vmsg_bus_dev_release;
	bus->dev.dma_mask = &bus->dev.coherent_dma_mask;
	ret = dma_coerce_mask_and_coherent(&bus->dev, DMA_BIT_MASK(64));
	if (ret)
		goto err_put;
	ret = dev_set_name(&bus->dev, "virtio-msg-bus%d", bus->id);
	if (ret)
		goto err_put;
	ret = device_add(&bus->dev);
	if (ret)
		goto err_put;

	if (bus->pool) {
		ret = virtio_msg_pool_attach(bus->pool, &bus->dev);
		if (ret)
			goto err_del;
	}
	return 0;

err_del:
	device_del(&bus->dev);
err_put:
	put_device(&bus->dev);
	wait_for_completion(&bus->released);
	ida_free(&virtio_msg_bus_ida, bus->id);
	return ret;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_register, "VIRTIO_MSG");

/**
 * virtio_msg_bus_unregister - remove every device, then the bus
 * @bus: a registered bus
 *
 * The bus must still carry messages: drivers shut their devices down.
 */
void virtio_msg_bus_unregister(struct virtio_msg_bus *bus)
{
	struct virtio_msg_device *vmdev;
	unsigned long index;

	scoped_guard(mutex, &bus->devices_lock) {
		xa_for_each(&bus->devices, index, vmdev)
			vmsg_device_remove(vmdev);
	}
	virtio_msg_user_detach(bus);
	/* Nothing reports the peer lost any more; one report may be queued. */
	cancel_work_sync(&bus->lost_work);
	if (bus->pool)
		virtio_msg_pool_detach(bus->pool);
	device_del(&bus->dev);
	put_device(&bus->dev);
	/* Virtio devices pin their parent: wait until the last one is gone. */
	wait_for_completion(&bus->released);
	xa_destroy(&bus->devices);
	ida_free(&virtio_msg_bus_ida, bus->id);
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_bus_unregister, "VIRTIO_MSG");

MODULE_DESCRIPTION("virtio-msg transport");
MODULE_LICENSE("GPL");
MODULE_VERSION(VIRTIO_MSG_DKMS_VERSION);
