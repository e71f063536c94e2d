// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-msg transport: struct virtio_config_ops.
 *
 * Every operation the virtio core asks of the transport (identity,
 * features, config space, status, virtqueues) as requests to the device.
 * What the device answers is untrusted and bounded before use; where real
 * peers fill a field loosely, the departure is tolerated and logged once
 * (vmsg_tolerate(), README "Peer profile").
 */
#define pr_fmt(fmt) "virtio-msg: " fmt

#include <linux/delay.h>
#include <linux/device.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include "virtio_msg_internal.h"
#include "virtio_msg_trace.h"

/* A config read whose chunks disagree on the generation is retried. */
#define VMSG_CONFIG_RETRIES	8
/* Split virtqueues are limited to 32768 entries. */
#define VMSG_VQ_MAX_SIZE	32768
/* Sanity limit on what a device may announce. */
#define VMSG_MAX_CONFIG_SIZE	SZ_64K

int vmsg_get_device_info(struct virtio_msg_device *vmdev)
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
int vmsg_read_features(struct virtio_msg_device *vmdev, u64 *features)
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
	bool ring_reset = __virtio_test_bit(vdev, VIRTIO_F_RING_RESET);
	struct virtio_msg_features *req;
	unsigned int i;
	ssize_t ret;

	vring_transport_features(vdev);
	/*
	 * The ring code drops what it does not implement, queue reset among
	 * it; the transport does (RESET_VQUEUE), for a device that offers it,
	 * as virtio-pci does.
	 */
	if (ring_reset)
		__virtio_set_bit(vdev, VIRTIO_F_RING_RESET);

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

/*
 * GET_VQUEUE: the size of the ring vmsg_setup_vq() creates for queue @index
 * at most, 0 if the device has no such queue.  Caller holds xfer_lock.
 */
static int vmsg_vq_max_size(struct virtio_msg_device *vmdev,
			    unsigned int index, u32 *size)
{
	struct virtio_msg_vqueue_index *req;
	struct virtio_msg_vqueue *resp;
	ssize_t ret;

	req = vmsg_req_payload(vmdev, sizeof(*req));
	req->index = cpu_to_le32(index);
	ret = vmsg_xfer(vmdev, VIRTIO_MSG_GET_VQUEUE, sizeof(*req),
			sizeof(*resp));
	if (ret < 0)
		return ret;

	resp = virtio_msg_payload(vmdev->resp);
	if (le32_to_cpu(resp->index) != index)
		vmsg_tolerate(vmdev, VMSG_TOL_VQUEUE_INDEX,
			      "GET_VQUEUE answer for queue %u names queue %u: using it",
			      index, le32_to_cpu(resp->index));
	*size = le32_to_cpu(resp->max_size);
	/* Split rings need a power of two; never trust the device's size. */
	if (*size)
		*size = rounddown_pow_of_two(min_t(u32, *size, VMSG_VQ_MAX_SIZE));
	return 0;
}

/*
 * Without VIRTIO_RING_F_INDIRECT_DESC every descriptor of a request sits in
 * the ring itself, and virtio-blk sizes its requests by seg_max alone (data
 * segments, plus header and status).  A request longer than the ring makes
 * virtqueue_add_split() WARN and fail with -ENOSPC for ever: virtio-blk
 * stops the hardware queue until a completion that never comes, and the
 * device's removal then waits in del_gendisk() for good.  The transport
 * knows both numbers, so it caps the seg_max the driver reads by queue 0's
 * ring (vmsg_blk_cap_seg_max()), and vmsg_setup_vq() refuses any ring still
 * too short for the requests (a queue of its own size, a ring the pool could
 * only give smaller).  With indirect descriptors a request takes one entry.
 */
#define VMSG_BLK_DESC_EXTRA	2	/* header and status */

static bool vmsg_blk_direct_chains(struct virtio_msg_device *vmdev)
{
	return vmdev->device_id == VIRTIO_ID_BLOCK &&
	       !__virtio_test_bit(&vmdev->vdev, VIRTIO_RING_F_INDIRECT_DESC);
}

/* Largest seg_max whose requests fit queue 0; caller holds xfer_lock. */
static int vmsg_blk_seg_cap(struct virtio_msg_device *vmdev, u32 *cap)
{
	u32 ring;
	int ret;

	ret = vmsg_vq_max_size(vmdev, 0, &ring);
	if (ret)
		return ret;
	*cap = ring > VMSG_BLK_DESC_EXTRA + 1 ? ring - VMSG_BLK_DESC_EXTRA : 1;
	return 0;
}

/* Caller holds xfer_lock; @buf holds config bytes @offset..@offset+@len. */
static void vmsg_blk_cap_seg_max(struct virtio_msg_device *vmdev,
				 unsigned int offset, void *buf,
				 unsigned int len)
{
	const unsigned int at = offsetof(struct virtio_blk_config, seg_max);
	u32 seg_max, cap;
	__le32 v;

	/* A read of part of the field gets the device's bytes. */
	if (!vmsg_blk_direct_chains(vmdev) || offset > at ||
	    offset + len < at + sizeof(v))
		return;
	memcpy(&v, buf + at - offset, sizeof(v));
	seg_max = le32_to_cpu(v);
	if (vmsg_blk_seg_cap(vmdev, &cap) || seg_max <= cap)
		return;
	dev_info(vmsg_dev(vmdev),
		 "device %u: seg_max %u does not fit its ring without indirect descriptors: capping it to %u\n",
		 vmdev->dev_num, seg_max, cap);
	v = cpu_to_le32(cap);
	memcpy(buf + at - offset, &v, sizeof(v));
}

/* Descriptors one virtio-blk request may take; caller holds xfer_lock. */
static int vmsg_blk_chain_len(struct virtio_msg_device *vmdev, u32 *descs)
{
	const unsigned int at = offsetof(struct virtio_blk_config, seg_max);
	u32 seg_max = 1, cap;
	__le32 v;
	s64 gen;
	int ret;

	/* virtio-blk's own rule: without the feature or with 0, one segment. */
	if (__virtio_test_bit(&vmdev->vdev, VIRTIO_BLK_F_SEG_MAX) &&
	    vmdev->config_size >= at + sizeof(v)) {
		gen = vmsg_get_config_chunk(vmdev, at, &v, sizeof(v));
		if (gen < 0)
			return gen;
		seg_max = le32_to_cpu(v) ?: 1;
	}
	ret = vmsg_blk_seg_cap(vmdev, &cap);
	if (ret)
		return ret;
	*descs = min(seg_max, cap) + VMSG_BLK_DESC_EXTRA;
	return 0;
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
			break;
	}
	vmsg_blk_cap_seg_max(vmdev, offset, buf, len);
	if (try < VMSG_CONFIG_RETRIES)
		return;
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
	deadline = jiffies + msecs_to_jiffies(vmsg_timeout_ms());
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

	if (vmsg_vring_fd_kick(vmdev, vq->index)) {
		atomic64_inc(&vmdev->stats.kicks);
		trace_virtio_msg_event(vmdev->bus->id, vmdev->dev_num,
				       VIRTIO_MSG_EVENT_AVAIL, vq->index, true);
		return true;
	}

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

	atomic64_inc(&vmdev->stats.kicks);
	trace_virtio_msg_event(vmdev->bus->id, vmdev->dev_num,
			       VIRTIO_MSG_EVENT_AVAIL, vq->index, false);
	return !vmsg_send_event(vmdev, VIRTIO_MSG_EVENT_AVAIL, &ev, sizeof(ev));
}

static void vmsg_publish_vq(struct virtio_msg_device *vmdev,
			    unsigned int index, struct virtqueue *vq)
{
	spin_lock_bh(&vmdev->bus->lookup_lock);
	/* Read without the lock by calls through eventfds. */
	WRITE_ONCE(vmdev->vqs[index], vq);
	spin_unlock_bh(&vmdev->bus->lookup_lock);
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
	struct virtqueue *vq;
	u32 max_size, descs;
	int ret;

	if (index >= vmdev->max_vqs)
		return ERR_PTR(-ENOENT);

	guard(mutex)(&vmdev->xfer_lock);
	ret = vmsg_vq_max_size(vmdev, index, &max_size);
	if (ret)
		return ERR_PTR(ret);
	if (!max_size)
		return ERR_PTR(-ENOENT);

	vq = vring_create_virtqueue(index, max_size, SMP_CACHE_BYTES,
				    &vmdev->vdev, true, true, ctx, vmsg_notify,
				    callback, name);
	if (!vq) {
		dev_err(&vmdev->vdev.dev, "cannot allocate virtqueue %u (%u entries)\n",
			index, max_size);
		return ERR_PTR(-ENOMEM);
	}
	/* What virtqueue_resize() may grow the ring to (ethtool -G). */
	vq->num_max = max_size;

	if (vmsg_blk_direct_chains(vmdev)) {
		ret = vmsg_blk_chain_len(vmdev, &descs);
		if (!ret && virtqueue_get_vring_size(vq) < descs) {
			dev_err(&vmdev->vdev.dev,
				"queue %u: %u entries cannot hold a request of %u descriptors without VIRTIO_RING_F_INDIRECT_DESC\n",
				index, virtqueue_get_vring_size(vq), descs);
			ret = -EINVAL;
		}
		if (ret)
			goto err_del;
	}

	if (!__virtio_test_bit(&vmdev->vdev, VIRTIO_F_RING_PACKED)) {
		ret = vmsg_track_alloc(vmdev, index,
				       virtqueue_get_vring_size(vq));
		if (ret)
			goto err_del;
	}

	ret = vmsg_send_vqueue(vmdev, vq);
	if (ret) {
		vmsg_track_free(vmdev, index);
		goto err_del;
	}
	vmsg_publish_vq(vmdev, index, vq);
	return vq;

err_del:
	vring_del_virtqueue(vq);
	return ERR_PTR(ret);
}

static void vmsg_del_vqs(struct virtio_device *vdev)
{
	struct virtio_msg_device *vmdev = to_vmsg_device(vdev);
	struct virtio_msg_vqueue_index *req;
	struct virtqueue *vq, *n;

	list_for_each_entry_safe(vq, n, &vdev->vqs, list) {
		/* No used-buffer run reaches the queue after this. */
		vmsg_publish_vq(vmdev, vq->index, NULL);
		vmsg_vq_sync(vmdev, vq->index);

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
	struct virtio_msg_device *vmdev = to_vmsg_device(vdev);
	struct virtio_msg_bus *bus = vmdev->bus;

	/* EVENT_CONFIG runs under lookup_lock, queue callbacks under irq_lock. */
	spin_lock_bh(&bus->lookup_lock);
	spin_unlock_bh(&bus->lookup_lock);
	vmsg_vq_sync_all(vmdev);
}

static const char *vmsg_bus_name(struct virtio_device *vdev)
{
	return to_vmsg_device(vdev)->bus->name;
}

/*
 * A shared memory region is memory of the device that the driver maps
 * (virtio-fs's DAX window, virtio-gpu's host-visible blobs): the driver
 * takes the address as a physical address and maps it, user space may map
 * it in turn.  On virtio-msg the device names bus addresses, and the only
 * memory a bus exposes is its DMA pool, which the kernel hands out to every
 * device of the bus for rings and bounce buffers: a region there would map
 * other requests' data to the driver and to whoever it lets map the region,
 * and a run-time pool has no physical address at all.  Outside the pool,
 * the address names nothing the kernel may map.  Until a bus exposes memory
 * of its own for such regions, every region is refused: drivers then do
 * without it (virtio-fs without DAX) or fail to probe.
 */
static bool vmsg_get_shm_region(struct virtio_device *vdev,
				struct virtio_shm_region *region, u8 id)
{
	struct virtio_msg_device *vmdev = to_vmsg_device(vdev);
	struct virtio_msg_vqueue_index *req;
	struct virtio_msg_get_shm_resp *resp;
	u32 addr, len;
	ssize_t ret;

	guard(mutex)(&vmdev->xfer_lock);
	req = vmsg_req_payload(vmdev, sizeof(*req));
	req->index = cpu_to_le32(id);
	ret = vmsg_xfer(vmdev, VIRTIO_MSG_GET_SHM, sizeof(*req), sizeof(*resp));
	if (ret < 0)
		return false;
	resp = virtio_msg_payload(vmdev->resp);
	addr = le32_to_cpu(resp->address);
	len = le32_to_cpu(resp->length);
	if (le32_to_cpu(resp->index) != id || !len)
		return false;
	dev_notice_once(&vdev->dev,
			"shared memory region %u (%u bytes at bus address %#x): refused, the bus exposes no memory for it\n",
			id, len, addr);
	return false;
}

static int vmsg_disable_vq_and_reset(struct virtqueue *vq)
{
	struct virtio_msg_device *vmdev = to_vmsg_device(vq->vdev);
	struct virtio_msg_vqueue_index *req;
	ssize_t ret;

	/* What virtio-pci answers without the feature. */
	if (!virtio_has_feature(vq->vdev, VIRTIO_F_RING_RESET))
		return -ENOENT;

	scoped_guard(mutex, &vmdev->xfer_lock) {
		req = vmsg_req_payload(vmdev, sizeof(*req));
		req->index = cpu_to_le32(vq->index);
		ret = vmsg_xfer(vmdev, VIRTIO_MSG_RESET_VQUEUE, sizeof(*req), 0);
	}
	if (ret < 0)
		return ret;

	/*
	 * The ring is about to be freed or resized (virtqueue_resize()):
	 * no used event, call or fail work may reach it, and what the
	 * transport followed of it no longer describes it.
	 */
	vmsg_publish_vq(vmdev, vq->index, NULL);
	vmsg_vq_sync(vmdev, vq->index);
	vmsg_track_free(vmdev, vq->index);
	vq->reset = true;
	return 0;
}

static int vmsg_enable_vq_after_reset(struct virtqueue *vq)
{
	struct virtio_msg_device *vmdev = to_vmsg_device(vq->vdev);
	int ret;

	if (!vq->reset)
		return -EBUSY;

	guard(mutex)(&vmdev->xfer_lock);
	/* The ring starts afresh, maybe with another size: so does tracking. */
	if (!__virtio_test_bit(vq->vdev, VIRTIO_F_RING_PACKED)) {
		ret = vmsg_track_alloc(vmdev, vq->index,
				       virtqueue_get_vring_size(vq));
		if (ret)
			return ret;
	}
	ret = vmsg_send_vqueue(vmdev, vq);
	if (ret) {
		vmsg_track_free(vmdev, vq->index);
		return ret;
	}
	vmsg_publish_vq(vmdev, vq->index, vq);
	vq->reset = false;
	return 0;
}

const struct virtio_config_ops virtio_msg_config_ops = {
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
