// SPDX-License-Identifier: GPL-2.0-only
/*
 * The virtio-msg transport, device side: one function takes a message as
 * read from /dev/virtio-msg-N and produces the response to write back.
 *
 * Everything received comes from the kernel's virtio driver, which we do not
 * trust to be bug-free: every length is checked before a payload field is
 * read, and a malformed message is logged and dropped instead of answered.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "backend.h"

#define FEATURE(bit)	(1ULL << (bit))

static const char *msg_name(uint8_t type, uint8_t msg_id)
{
	if (type & VIRTIO_MSG_TYPE_BUS) {
		switch (msg_id) {
		case VIRTIO_MSG_BUS_GET_DEVICES:	return "BUS_GET_DEVICES";
		case VIRTIO_MSG_BUS_PING:		return "BUS_PING";
		case VIRTIO_MSG_BUS_EVENT_DEVICE:	return "BUS_EVENT_DEVICE";
		}
		return "BUS_?";
	}
	switch (msg_id) {
	case VIRTIO_MSG_GET_DEVICE_INFO:	return "GET_DEVICE_INFO";
	case VIRTIO_MSG_GET_DEVICE_FEATURES:	return "GET_DEVICE_FEATURES";
	case VIRTIO_MSG_SET_DRIVER_FEATURES:	return "SET_DRIVER_FEATURES";
	case VIRTIO_MSG_GET_CONFIG:		return "GET_CONFIG";
	case VIRTIO_MSG_SET_CONFIG:		return "SET_CONFIG";
	case VIRTIO_MSG_GET_DEVICE_STATUS:	return "GET_DEVICE_STATUS";
	case VIRTIO_MSG_SET_DEVICE_STATUS:	return "SET_DEVICE_STATUS";
	case VIRTIO_MSG_GET_VQUEUE:		return "GET_VQUEUE";
	case VIRTIO_MSG_SET_VQUEUE:		return "SET_VQUEUE";
	case VIRTIO_MSG_RESET_VQUEUE:		return "RESET_VQUEUE";
	case VIRTIO_MSG_GET_SHM:		return "GET_SHM";
	case VIRTIO_MSG_EVENT_CONFIG:		return "EVENT_CONFIG";
	case VIRTIO_MSG_EVENT_AVAIL:		return "EVENT_AVAIL";
	case VIRTIO_MSG_EVENT_USED:		return "EVENT_USED";
	}
	return "?";
}

/* ---- backend and device objects ---- */

int backend_init(struct backend *be, uint32_t wire_format, size_t max_msg_size,
		 const struct vmsg_pool *pool)
{
	memset(be, 0, sizeof(*be));
	if (wire_format != VIRTIO_MSG_WIRE_SPEC && wire_format != VIRTIO_MSG_WIRE_RFC1)
		return -EPROTONOSUPPORT;
	if (max_msg_size > VIRTIO_MSG_MAX_SIZE)
		max_msg_size = VIRTIO_MSG_MAX_SIZE;	/* msg_size is 16 bits */
	if (max_msg_size < vmsg_wire_min_msg_size(wire_format))
		return -EMSGSIZE;
	be->wire_format = wire_format;
	be->max_msg_size = max_msg_size;
	if (pool)
		be->pool = *pool;
	pthread_mutex_init(&be->ev_lock, NULL);
	be->rx = calloc(1, sizeof(*be->rx));
	be->tx = calloc(1, sizeof(*be->tx));
	be->ev = calloc(1, sizeof(*be->ev));
	if (!be->rx || !be->tx || !be->ev) {
		backend_destroy(be);
		return -ENOMEM;
	}
	return 0;
}

void backend_destroy(struct backend *be)
{
	unsigned int i;

	for (i = 0; i < be->num_devs; i++)
		vmsg_device_free(be->devs[i]);
	be->num_devs = 0;
	free(be->rx);
	free(be->tx);
	free(be->ev);
	be->rx = NULL;
	be->tx = NULL;
	be->ev = NULL;
	pthread_mutex_destroy(&be->ev_lock);
}

struct vmsg_device *backend_find_device(struct backend *be, uint16_t dev_num)
{
	unsigned int i;

	for (i = 0; i < be->num_devs; i++)
		if (be->devs[i]->dev_num == dev_num)
			return be->devs[i];
	return NULL;
}

int backend_add_device(struct backend *be, struct vmsg_device *dev)
{
	if (backend_find_device(be, dev->dev_num))
		return -EEXIST;
	if (be->num_devs >= VMSG_MAX_DEVICES)
		return -ENOSPC;
	dev->be = be;
	be->devs[be->num_devs++] = dev;
	return 0;
}

struct vmsg_device *vmsg_device_alloc(const struct vmsg_device_ops *ops, uint16_t dev_num,
				      unsigned int num_vqs, uint64_t type_features,
				      const struct vmsg_dev_opts *opts)
{
	struct vmsg_device *dev;
	unsigned int i;

	if (num_vqs > VMSG_MAX_VQS)
		return NULL;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return NULL;
	dev->ops = ops;
	dev->dev_num = dev_num;
	dev->num_vqs = num_vqs;
	dev->max_queue_size = opts->queue_size;
	/*
	 * ACCESS_PLATFORM: every address is a bus address inside the pool, the
	 * kernel refuses loopback devices without it.  INDIRECT_DESC costs us
	 * nothing and saves ring slots.
	 */
	dev->features = type_features | FEATURE(VIRTIO_F_VERSION_1) |
			FEATURE(VIRTIO_F_ACCESS_PLATFORM) | FEATURE(VIRTIO_RING_F_INDIRECT_DESC);
	if (opts->event_idx)
		dev->features |= FEATURE(VIRTIO_RING_F_EVENT_IDX);
	if (opts->notification_data)
		dev->features |= FEATURE(VIRTIO_F_NOTIFICATION_DATA);
	for (i = 0; i < VMSG_MAX_VQS; i++)
		dev->vqs[i].index = i;
	return dev;
}

void vmsg_device_free(struct vmsg_device *dev)
{
	unsigned int i;

	if (!dev)
		return;
	for (i = 0; i < VMSG_MAX_VQS; i++) {
		vq_reset(dev, &dev->vqs[i]);
		if (dev->vqs[i].worker)
			dev->be->workers->free(&dev->vqs[i]);
	}
	if (dev->ops && dev->ops->destroy)
		dev->ops->destroy(dev);
	free(dev);
}

void vmsg_device_reset(struct vmsg_device *dev)
{
	unsigned int i;

	for (i = 0; i < VMSG_MAX_VQS; i++)
		vq_reset(dev, &dev->vqs[i]);
	dev->driver_features = 0;
	dev->driver_features_extra = false;
	/* The workers are stopped: nobody else writes status now. */
	__atomic_store_n(&dev->status, 0, __ATOMIC_SEQ_CST);
	dev->deferred_kick = false;
	dev->deferred_config_event = false;
	if (dev->ops->reset)
		dev->ops->reset(dev);
}

/* ---- worker threads, if any ---- */

static bool worker_running(const struct vmsg_device *dev, const struct vmsg_vq *vq)
{
	return vq->worker && dev->be->workers->running(vq);
}

static bool in_worker(const struct vmsg_device *dev)
{
	return dev->be->workers && dev->be->workers->self();
}

/* ---- events ---- */

static void send_event(struct backend *be, uint16_t dev_num, uint8_t msg_id,
		       const void *payload, size_t len)
{
	struct vmsg_msg *ev = be->ev;
	uint8_t buf[64];
	ssize_t n;
	int err;

	/* be->ev is shared; the bytes in buf are ours. */
	pthread_mutex_lock(&be->ev_lock);
	ev->type = 0;
	ev->msg_id = msg_id;
	ev->dev_num = dev_num;
	ev->token = VIRTIO_MSG_TOKEN_EVENT;
	ev->payload_len = (uint16_t)len;
	memcpy(ev->payload, payload, len);
	n = vmsg_encode(be->wire_format, ev, buf, sizeof(buf) < be->max_msg_size ?
			sizeof(buf) : be->max_msg_size);
	pthread_mutex_unlock(&be->ev_lock);
	if (n < 0) {
		vmsg_log("device %u: %s does not fit a message", dev_num, msg_name(0, msg_id));
		return;
	}
	vmsg_trace("device %u: -> %s", dev_num, msg_name(0, msg_id));
	if (!be->send_event)
		return;
	err = be->send_event(be, buf, (size_t)n);
	if (err)
		vmsg_log("device %u: sending %s failed: %s", dev_num, msg_name(0, msg_id),
			 strerror(-err));
}

void vmsg_send_config_event(struct vmsg_device *dev)
{
	struct virtio_msg_event_config ev = {
		.device_status = htole32(vmsg_dev_status(dev)),
		.generation = htole32(dev->config_generation),
	};

	send_event(dev->be, dev->dev_num, VIRTIO_MSG_EVENT_CONFIG, &ev, sizeof(ev));
}

void vmsg_send_used_event(struct vmsg_device *dev, struct vmsg_vq *vq)
{
	struct virtio_msg_event_used ev = { .vq_index = htole32(vq->index) };

	send_event(dev->be, dev->dev_num, VIRTIO_MSG_EVENT_USED, &ev, sizeof(ev));
}

void vmsg_notify_used(struct vmsg_device *dev, struct vmsg_vq *vq)
{
	if (!vq->worker || !dev->be->workers->call(vq))
		vmsg_send_used_event(dev, vq);
}

void vmsg_vq_mark_broken(struct vmsg_device *dev, struct vmsg_vq *vq, const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	if (vq->broken)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	vmsg_log("device %u (%s) vq %u: %s; queue marked broken until reset", dev->dev_num,
		 dev->ops->name, vq->index, reason);
	vq->broken = true;
	vq->enabled = false;
	/*
	 * Tell the driver: NEEDS_RESET plus a configuration change
	 * notification is how a virtio device reports an unrecoverable error.
	 * A worker has no request to wait for and must not touch the serving
	 * thread's deferred work: it sends the event itself.
	 */
	__atomic_fetch_or(&dev->status, VIRTIO_CONFIG_S_NEEDS_RESET, __ATOMIC_SEQ_CST);
	if (!in_worker(dev))
		dev->deferred_config_event = true;
	else if (vmsg_dev_status(dev) & VIRTIO_CONFIG_S_DRIVER_OK)
		vmsg_send_config_event(dev);
}

void backend_run_deferred(struct backend *be)
{
	struct vmsg_device *dev;
	unsigned int i, q;

	for (i = 0; i < be->num_devs; i++) {
		dev = be->devs[i];
		if (dev->deferred_kick) {
			dev->deferred_kick = false;
			for (q = 0; q < dev->num_vqs; q++) {
				struct vmsg_vq *vq = &dev->vqs[q];

				if (worker_running(dev, vq))
					be->workers->kick(vq);
				else if (!vq->enabled)
					continue;
				else if (!be->workers)
					vq_process(dev, vq);
				else if (be->workers->start(dev, vq))
					vmsg_vq_mark_broken(dev, vq, "no worker thread");
			}
		}
		if (dev->deferred_config_event) {
			dev->deferred_config_event = false;
			/* Only a driver that is up listens for config changes. */
			if (vmsg_dev_status(dev) & VIRTIO_CONFIG_S_DRIVER_OK)
				vmsg_send_config_event(dev);
		}
	}
}

/* ---- transport requests ---- */

/* Payload of a request, or NULL if it is shorter than the fixed part. */
static const void *req_payload(const struct vmsg_msg *m, size_t fixed)
{
	return m->payload_len >= fixed ? m->payload : NULL;
}

#define REQ_PAYLOAD(m, type)	((const type *)req_payload(m, sizeof(type)))

/* Payload bytes available for a response. */
static size_t resp_room(const struct backend *be)
{
	size_t room = be->max_msg_size - vmsg_wire_header_size(be->wire_format);

	return room < sizeof(be->tx->payload) ? room : sizeof(be->tx->payload);
}

static int get_device_info(struct vmsg_device *dev, struct vmsg_msg *tx)
{
	struct virtio_msg_get_device_info_resp *r = (void *)tx->payload;

	memset(r, 0, sizeof(*r));
	r->device_id = htole32(dev->ops->device_id);
	r->vendor_id = htole32(VMSG_VENDOR_ID);
	r->num_feature_bits = htole32(VMSG_NUM_FEATURE_BITS);
	r->config_size = htole32(dev->config_size);
	r->max_virtqueues = htole32(dev->num_vqs);
	tx->payload_len = sizeof(*r);
	return 0;
}

static uint32_t feature_block(uint64_t features, uint64_t block)
{
	if (block >= VMSG_NUM_FEATURE_BITS / 32)
		return 0;
	return (uint32_t)(features >> (32 * block));
}

static int get_device_features(struct vmsg_device *dev, const struct vmsg_msg *rx,
			       struct vmsg_msg *tx)
{
	const struct virtio_msg_features *req = REQ_PAYLOAD(rx, struct virtio_msg_features);
	struct virtio_msg_features *r = (void *)tx->payload;
	uint32_t index, num, max, i;

	if (!req)
		return -EINVAL;
	index = le32toh(req->block_index);
	num = le32toh(req->num_blocks);
	/* More blocks than fit a message: answer with as many as fit. */
	max = (uint32_t)((resp_room(dev->be) - sizeof(*r)) / sizeof(r->features[0]));
	if (num > max)
		num = max;
	r->block_index = htole32(index);
	r->num_blocks = htole32(num);
	for (i = 0; i < num; i++)
		r->features[i] = htole32(feature_block(dev->features, (uint64_t)index + i));
	tx->payload_len = (uint16_t)(sizeof(*r) + num * sizeof(r->features[0]));
	return 0;
}

static int set_driver_features(struct vmsg_device *dev, const struct vmsg_msg *rx,
			       struct vmsg_msg *tx)
{
	const struct virtio_msg_features *req = REQ_PAYLOAD(rx, struct virtio_msg_features);
	uint32_t index, num, i;
	uint64_t block;

	if (!req)
		return -EINVAL;
	index = le32toh(req->block_index);
	num = le32toh(req->num_blocks);
	if (num > (rx->payload_len - sizeof(*req)) / sizeof(req->features[0]))
		return -EINVAL;
	if (vmsg_dev_status(dev) & VIRTIO_CONFIG_S_FEATURES_OK) {
		/* Too late: the feature set was accepted already. */
		vmsg_log("device %u: SET_DRIVER_FEATURES after FEATURES_OK ignored",
			 dev->dev_num);
	} else {
		for (i = 0; i < num; i++) {
			uint32_t bits = le32toh(req->features[i]);

			block = (uint64_t)index + i;
			if (block < VMSG_NUM_FEATURE_BITS / 32) {
				dev->driver_features &= ~(0xffffffffULL << (32 * block));
				dev->driver_features |= (uint64_t)bits << (32 * block);
			} else if (bits) {
				dev->driver_features_extra = true;
			}
		}
		vmsg_info("device %u: driver features 0x%016llx", dev->dev_num,
			  (unsigned long long)dev->driver_features);
	}
	tx->payload_len = 0;
	return 0;
}

static bool config_range_ok(const struct vmsg_device *dev, uint32_t offset, uint32_t length)
{
	return offset <= dev->config_size && length <= dev->config_size - offset;
}

/* Can GET_CONFIG return [offset, offset + length) in room bytes?  Logs why not. */
static bool get_config_ok(const struct vmsg_device *dev, uint32_t offset, uint32_t length,
			  size_t room)
{
	if (config_range_ok(dev, offset, length) && length <= room)
		return true;
	vmsg_log("device %u: GET_CONFIG offset %u length %u outside the %u-byte config space",
		 dev->dev_num, offset, length, dev->config_size);
	return false;
}

static int get_config(struct vmsg_device *dev, const struct vmsg_msg *rx, struct vmsg_msg *tx)
{
	const struct virtio_msg_get_config *req = REQ_PAYLOAD(rx, struct virtio_msg_get_config);
	struct virtio_msg_config *r = (void *)tx->payload;
	uint32_t offset, length;

	if (!req)
		return -EINVAL;
	offset = le32toh(req->offset);
	length = le32toh(req->length);
	if (!get_config_ok(dev, offset, length, resp_room(dev->be) - sizeof(*r)))
		length = 0;
	r->generation = htole32(dev->config_generation);
	r->offset = htole32(offset);
	r->length = htole32(length);
	memcpy(r->data, dev->config + (length ? offset : 0), length);
	tx->payload_len = (uint16_t)(sizeof(*r) + length);
	return 0;
}

static int set_config(struct vmsg_device *dev, const struct vmsg_msg *rx, struct vmsg_msg *tx)
{
	const struct virtio_msg_config *req = REQ_PAYLOAD(rx, struct virtio_msg_config);
	struct virtio_msg_config *r = (void *)tx->payload;
	uint32_t offset, length;
	bool ok;

	if (!req)
		return -EINVAL;
	offset = le32toh(req->offset);
	length = le32toh(req->length);
	if (length > rx->payload_len - sizeof(*req))
		return -EINVAL;
	ok = length && le32toh(req->generation) == dev->config_generation &&
	     config_range_ok(dev, offset, length) && dev->ops->write_config &&
	     dev->ops->write_config(dev, offset, req->data, length);
	if (!ok)
		vmsg_info("device %u: SET_CONFIG offset %u length %u rejected", dev->dev_num,
			  offset, length);
	r->generation = htole32(dev->config_generation);
	r->offset = htole32(offset);
	r->length = htole32(ok ? length : 0);
	tx->payload_len = sizeof(*r);
	return 0;
}

/* Can the device operate with the features the driver accepted? */
static bool features_acceptable(struct vmsg_device *dev)
{
	uint64_t unknown = dev->driver_features & ~dev->features;

	if (unknown || dev->driver_features_extra)
		goto not_offered;
	if (!vmsg_has_feature(dev, VIRTIO_F_VERSION_1)) {
		vmsg_log("device %u: driver did not accept VIRTIO_F_VERSION_1", dev->dev_num);
		return false;
	}
	if (!vmsg_has_feature(dev, VIRTIO_F_ACCESS_PLATFORM)) {
		/* Without it the driver would hand us guest-physical addresses. */
		vmsg_log("device %u: driver did not accept VIRTIO_F_ACCESS_PLATFORM", dev->dev_num);
		return false;
	}
	return true;

not_offered:
	vmsg_log("device %u: driver accepted features the device did not offer (0x%016llx%s)",
		 dev->dev_num, (unsigned long long)unknown,
		 dev->driver_features_extra ? " and bits >= 64" : "");
	return false;
}

static void set_status(struct vmsg_device *dev, uint32_t status)
{
	uint32_t old = vmsg_dev_status(dev), prev;

	if (!status) {
		vmsg_info("device %u: reset", dev->dev_num);
		vmsg_device_reset(dev);
		return;
	}
	/* FEATURES_OK is refused by leaving it clear in the status we report. */
	if ((status & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    !features_acceptable(dev))
		status &= ~VIRTIO_CONFIG_S_FEATURES_OK;
	/*
	 * NEEDS_RESET is the device's to set, and only a reset clears it; a
	 * worker may set it at any time, so put back what we overwrote.
	 */
	prev = __atomic_exchange_n(&dev->status, status | (old & VIRTIO_CONFIG_S_NEEDS_RESET),
				   __ATOMIC_SEQ_CST);
	if (prev & VIRTIO_CONFIG_S_NEEDS_RESET)
		__atomic_fetch_or(&dev->status, VIRTIO_CONFIG_S_NEEDS_RESET, __ATOMIC_SEQ_CST);
	if ((status & VIRTIO_CONFIG_S_FAILED) && !(old & VIRTIO_CONFIG_S_FAILED))
		vmsg_log("device %u: driver set FAILED", dev->dev_num);
	if ((status & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
		vmsg_info("device %u (%s): DRIVER_OK", dev->dev_num, dev->ops->name);
		/*
		 * Buffers may have been made available (and kicked) before
		 * DRIVER_OK, when the device must not use them yet.
		 */
		dev->deferred_kick = true;
	}
}

static int set_device_status(struct vmsg_device *dev, const struct vmsg_msg *rx,
			     struct vmsg_msg *tx)
{
	const struct virtio_msg_status *req = REQ_PAYLOAD(rx, struct virtio_msg_status);
	struct virtio_msg_status *r = (void *)tx->payload;

	if (!req)
		return -EINVAL;
	set_status(dev, le32toh(req->status));
	r->status = htole32(vmsg_dev_status(dev));
	tx->payload_len = sizeof(*r);
	return 0;
}

static int get_device_status(struct vmsg_device *dev, struct vmsg_msg *tx)
{
	struct virtio_msg_status *r = (void *)tx->payload;

	r->status = htole32(vmsg_dev_status(dev));
	tx->payload_len = sizeof(*r);
	return 0;
}

static int get_vqueue(struct vmsg_device *dev, const struct vmsg_msg *rx, struct vmsg_msg *tx)
{
	const struct virtio_msg_vqueue_index *req =
		REQ_PAYLOAD(rx, struct virtio_msg_vqueue_index);
	struct virtio_msg_vqueue *r = (void *)tx->payload;
	uint32_t index;

	if (!req)
		return -EINVAL;
	index = le32toh(req->index);
	memset(r, 0, sizeof(*r));
	r->index = htole32(index);
	/* max_size 0 tells the driver the queue does not exist. */
	if (index < dev->num_vqs) {
		struct vmsg_vq *vq = &dev->vqs[index];

		r->max_size = htole32(dev->max_queue_size);
		if (vq->configured) {
			r->size = htole32(vq->size);
			r->desc_addr = htole64(vq->desc_addr);
			r->driver_addr = htole64(vq->driver_addr);
			r->device_addr = htole64(vq->device_addr);
		}
	}
	tx->payload_len = sizeof(*r);
	return 0;
}

static int set_vqueue(struct vmsg_device *dev, const struct vmsg_msg *rx, struct vmsg_msg *tx)
{
	const struct virtio_msg_vqueue *req = REQ_PAYLOAD(rx, struct virtio_msg_vqueue);
	uint32_t index;

	if (!req)
		return -EINVAL;
	index = le32toh(req->index);
	if (index >= dev->num_vqs) {
		vmsg_log("device %u: SET_VQUEUE for nonexistent queue %u ignored", dev->dev_num,
			 index);
	} else {
		vq_setup(dev, &dev->vqs[index], le32toh(req->size), le64toh(req->desc_addr),
			 le64toh(req->driver_addr), le64toh(req->device_addr));
		/*
		 * Bind the queue's eventfds before the driver can kick it, so
		 * that the bus knows them by DRIVER_OK; a failure only means
		 * messages (and starting the worker tries again).
		 */
		if (dev->be->workers && dev->vqs[index].enabled)
			dev->be->workers->prepare(dev, &dev->vqs[index]);
		/* Re-enabled after a queue reset: serve it (its worker starts). */
		if (dev->vqs[index].enabled &&
		    (vmsg_dev_status(dev) & VIRTIO_CONFIG_S_DRIVER_OK))
			dev->deferred_kick = true;
	}
	tx->payload_len = 0;
	return 0;
}

static int reset_vqueue(struct vmsg_device *dev, const struct vmsg_msg *rx, struct vmsg_msg *tx)
{
	const struct virtio_msg_vqueue_index *req =
		REQ_PAYLOAD(rx, struct virtio_msg_vqueue_index);
	uint32_t index;

	if (!req)
		return -EINVAL;
	index = le32toh(req->index);
	if (index < dev->num_vqs) {
		vmsg_info("device %u: vq %u reset", dev->dev_num, index);
		vq_reset(dev, &dev->vqs[index]);
	}
	tx->payload_len = 0;
	return 0;
}

static int get_shm(const struct vmsg_msg *rx, struct vmsg_msg *tx)
{
	const struct virtio_msg_vqueue_index *req =
		REQ_PAYLOAD(rx, struct virtio_msg_vqueue_index);
	struct virtio_msg_get_shm_resp *r = (void *)tx->payload;

	if (!req)
		return -EINVAL;
	/* No shared memory regions: length 0. */
	memset(r, 0, sizeof(*r));
	r->index = req->index;
	tx->payload_len = sizeof(*r);
	return 0;
}

static int transport_request(struct vmsg_device *dev, const struct vmsg_msg *rx,
			     struct vmsg_msg *tx)
{
	switch (rx->msg_id) {
	case VIRTIO_MSG_GET_DEVICE_INFO:	return get_device_info(dev, tx);
	case VIRTIO_MSG_GET_DEVICE_FEATURES:	return get_device_features(dev, rx, tx);
	case VIRTIO_MSG_SET_DRIVER_FEATURES:	return set_driver_features(dev, rx, tx);
	case VIRTIO_MSG_GET_CONFIG:		return get_config(dev, rx, tx);
	case VIRTIO_MSG_SET_CONFIG:		return set_config(dev, rx, tx);
	case VIRTIO_MSG_GET_DEVICE_STATUS:	return get_device_status(dev, tx);
	case VIRTIO_MSG_SET_DEVICE_STATUS:	return set_device_status(dev, rx, tx);
	case VIRTIO_MSG_GET_VQUEUE:		return get_vqueue(dev, rx, tx);
	case VIRTIO_MSG_SET_VQUEUE:		return set_vqueue(dev, rx, tx);
	case VIRTIO_MSG_RESET_VQUEUE:		return reset_vqueue(dev, rx, tx);
	case VIRTIO_MSG_GET_SHM:		return get_shm(rx, tx);
	}
	return -EOPNOTSUPP;
}

static void event_avail(struct vmsg_device *dev, const struct vmsg_msg *rx)
{
	/* next_offset is optional for us: vq_index is all that is needed. */
	const struct virtio_msg_vqueue_index *ev =
		REQ_PAYLOAD(rx, struct virtio_msg_vqueue_index);
	uint32_t index;
	struct vmsg_vq *vq;
	bool running;

	if (!ev) {
		vmsg_log("device %u: short EVENT_AVAIL dropped", dev->dev_num);
		return;
	}
	index = le32toh(ev->index);
	if (index >= dev->num_vqs) {
		vmsg_log("device %u: EVENT_AVAIL for nonexistent queue %u", dev->dev_num, index);
		return;
	}
	vq = &dev->vqs[index];
	/* Its worker owns enabled/broken now: do not look, wake it. */
	running = worker_running(dev, vq);
	/*
	 * With VIRTIO_F_NOTIFICATION_DATA next_offset is the driver's new avail
	 * index.  It is only a hint: avail->idx in memory is authoritative, and
	 * the whole ring is processed anyway.
	 */
	if (rx->payload_len >= sizeof(struct virtio_msg_event_avail)) {
		const struct virtio_msg_event_avail *ea = (const void *)rx->payload;

		vmsg_trace("device %u: kick vq %u next_offset 0x%x", dev->dev_num, index,
			   le32toh(ea->next_offset));
		if (vmsg_has_feature(dev, VIRTIO_F_NOTIFICATION_DATA) && (running || vq->enabled))
			vq_check_notification_data(dev, vq, le32toh(ea->next_offset));
	}
	if (running) {
		dev->be->workers->kick(vq);
		return;
	}
	if (!(vmsg_dev_status(dev) & VIRTIO_CONFIG_S_DRIVER_OK)) {
		/* Processed when DRIVER_OK is set. */
		vmsg_trace("device %u: kick before DRIVER_OK deferred", dev->dev_num);
		return;
	}
	if (!vq->enabled) {
		if (!vq->broken)
			vmsg_info("device %u: kick for disabled vq %u ignored", dev->dev_num,
				  index);
		return;
	}
	if (dev->be->workers)
		dev->deferred_kick = true;	/* starts its worker */
	else
		vq_process(dev, vq);
}

/* ---- bus messages ---- */

static bool dev_present(struct backend *be, uint32_t dev_num)
{
	return dev_num <= 0xffff && backend_find_device(be, (uint16_t)dev_num);
}

static int bus_get_devices(struct backend *be, const struct vmsg_msg *rx, struct vmsg_msg *tx)
{
	const struct virtio_msg_bus_get_devices *req =
		REQ_PAYLOAD(rx, struct virtio_msg_bus_get_devices);
	struct virtio_msg_bus_get_devices_resp *r = (void *)tx->payload;
	uint32_t offset, count, max, i, next = 0;

	if (!req)
		return -EINVAL;
	offset = le16toh(req->offset);
	count = le16toh(req->count) & ~7u;
	max = (uint32_t)(resp_room(be) - sizeof(*r)) * 8;
	if (count > max)
		count = max & ~7u;
	if (count > 0x10000 - offset)
		count = (0x10000 - offset) & ~7u;
	memset(r->bitmap, 0, count / 8);
	for (i = 0; i < count; i++)
		if (dev_present(be, offset + i))
			r->bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
	for (i = offset + count; i <= 0xffff && !next; i++)
		if (dev_present(be, i))
			next = offset + count;
	r->offset = htole16((uint16_t)offset);
	r->count = htole16((uint16_t)count);
	r->next_offset = htole16((uint16_t)next);
	tx->payload_len = (uint16_t)(sizeof(*r) + count / 8);
	return 0;
}

static int bus_request(struct backend *be, const struct vmsg_msg *rx, struct vmsg_msg *tx)
{
	switch (rx->msg_id) {
	case VIRTIO_MSG_BUS_PING: {
		const struct virtio_msg_bus_ping *req = REQ_PAYLOAD(rx, struct virtio_msg_bus_ping);

		if (!req)
			return -EINVAL;
		memcpy(tx->payload, req, sizeof(*req));
		tx->payload_len = sizeof(*req);
		return 0;
	}
	case VIRTIO_MSG_BUS_GET_DEVICES:
		return bus_get_devices(be, rx, tx);
	}
	return -EOPNOTSUPP;
}

/* ---- entry point ---- */

int backend_handle_message(struct backend *be, const void *msg, size_t len, void *out,
			   size_t out_cap, size_t *out_len)
{
	struct vmsg_msg *rx = be->rx, *tx = be->tx;
	struct vmsg_device *dev = NULL;
	bool bus, event;
	ssize_t n;
	int err;

	*out_len = 0;
	err = vmsg_decode(be->wire_format, msg, len, rx);
	if (err) {
		vmsg_log("malformed message (%zu bytes) dropped", len);
		return err;
	}
	bus = rx->type & VIRTIO_MSG_TYPE_BUS;
	event = rx->msg_id & VIRTIO_MSG_ID_EVENT_BIT;
	vmsg_trace("device %u: <- %s%s (0x%02x) token %u, %u payload bytes", rx->dev_num,
		   msg_name(rx->type, rx->msg_id),
		   rx->type & VIRTIO_MSG_TYPE_RESPONSE ? " response" : "", rx->msg_id,
		   rx->token, rx->payload_len);

	if (rx->type & VIRTIO_MSG_TYPE_RESPONSE) {
		/* We never send requests, so there is nothing to match. */
		vmsg_log("unexpected response %s from the driver dropped",
			 msg_name(rx->type, rx->msg_id));
		return -EPROTO;
	}
	if (event) {
		if (bus)
			return 0;	/* bus events from the driver: nothing to do */
		dev = backend_find_device(be, rx->dev_num);
		if (!dev) {
			vmsg_log("%s for unknown device %u dropped",
				 msg_name(rx->type, rx->msg_id), rx->dev_num);
			return -ENODEV;
		}
		if (rx->msg_id == VIRTIO_MSG_EVENT_AVAIL)
			event_avail(dev, rx);
		return 0;
	}

	memset(tx, 0, offsetof(struct vmsg_msg, payload));
	if (bus) {
		err = bus_request(be, rx, tx);
	} else {
		dev = backend_find_device(be, rx->dev_num);
		if (!dev) {
			vmsg_log("%s for unknown device %u dropped",
				 msg_name(rx->type, rx->msg_id), rx->dev_num);
			return -ENODEV;
		}
		err = transport_request(dev, rx, tx);
	}
	if (err) {
		/*
		 * The spec has no error response: malformed and unsupported
		 * requests are discarded.
		 */
		vmsg_log("device %u: %s request 0x%02x (%u payload bytes) %s, dropped",
			 rx->dev_num, bus ? "bus" : "transport", rx->msg_id, rx->payload_len,
			 err == -EOPNOTSUPP ? "not supported" : "malformed");
		return err;
	}
	tx->type = (uint8_t)((rx->type & VIRTIO_MSG_TYPE_BUS) | VIRTIO_MSG_TYPE_RESPONSE);
	tx->msg_id = rx->msg_id;
	tx->dev_num = rx->dev_num;
	tx->token = rx->token;
	n = vmsg_encode(be->wire_format, tx, out, out_cap < be->max_msg_size ?
			out_cap : be->max_msg_size);
	if (n < 0) {
		vmsg_log("device %u: response to %s does not fit %zu bytes", rx->dev_num,
			 msg_name(rx->type, rx->msg_id), be->max_msg_size);
		return (int)n;
	}
	vmsg_trace("device %u: -> %s response, %u payload bytes", tx->dev_num,
		   msg_name(tx->type, tx->msg_id), tx->payload_len);
	*out_len = (size_t)n;
	return 0;
}
