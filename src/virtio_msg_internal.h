/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * virtio-msg: private declarations of the transport module, shared by its
 * files: the core (buses, devices), the request engine (virtio_msg_xfer.c),
 * the config ops (virtio_msg_config.c), broken-device handling
 * (virtio_msg_inflight.c), the codec and the DMA pool.
 */
#ifndef _VIRTIO_MSG_INTERNAL_H
#define _VIRTIO_MSG_INTERNAL_H

#include <linux/completion.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/virtio.h>
#include <linux/workqueue.h>
#include <linux/virtio_msg_bus.h>

/*
 * The core works on "canonical" messages: the spec layout of
 * uapi/linux/virtio_msg.h, in buffers aligned for its structs.  The codec
 * converts them to and from what a bus carries.
 *
 * A canonical message is never more than VIRTIO_MSG_CANON_EXTRA bytes
 * longer than its wire form.
 */
#define VIRTIO_MSG_CANON_EXTRA	8

ssize_t virtio_msg_wire_encode(enum virtio_msg_wire_format format,
			       const struct virtio_msg_header *msg,
			       void *wire, size_t wire_size);
ssize_t virtio_msg_wire_decode(enum virtio_msg_wire_format format,
			       const void *wire, size_t len,
			       struct virtio_msg_header *msg, size_t msg_size);
ssize_t virtio_msg_wire_decode_head(enum virtio_msg_wire_format format,
				    const void *wire, size_t len,
				    struct virtio_msg_header *msg,
				    size_t msg_size);
bool virtio_msg_wire_has_token(enum virtio_msg_wire_format format);
/* Smallest max_msg_size with which every fixed-size message fits. */
size_t virtio_msg_wire_min_max_size(enum virtio_msg_wire_format format);

static inline bool virtio_msg_id_is_event(u8 msg_id)
{
	return msg_id & VIRTIO_MSG_ID_EVENT_BIT;
}

static inline void *virtio_msg_payload(struct virtio_msg_header *msg)
{
	return msg + 1;
}

static inline size_t virtio_msg_payload_len(const struct virtio_msg_header *msg)
{
	return le16_to_cpu(msg->msg_size) - sizeof(*msg);
}

/* Queues a device may have; more is refused or capped (virtio_msg_config.c). */
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

	/*
	 * Serialises the queue's used-buffer path, vmsg_vq_interrupt():
	 * EVENT_USED, a call eventfd's irq_work and the fail work arrive on
	 * any CPU, and vring_interrupt() must not run twice at once for one
	 * queue.  Not @lock: a driver callback run under it may kick, and a
	 * kick takes @lock.
	 */
	spinlock_t irq_lock;
	/* Fail path (virtio_msg_inflight.c), under the device's fail_lock */
	bool revoked;		/* rings taken from user space */
};

struct virtio_msg_pending {
	struct completion done;
	u64 sent_ns;
	struct virtio_msg_header *resp;
	size_t resp_size;
	ssize_t resp_len;
	int err;
	u16 token;
	u8 msg_id;
};

/*
 * Counters of one device, for debugfs; only the removal watchdog looks at
 * one (requests, as a sign of progress), never to judge a message.
 */
struct virtio_msg_dev_stats {
	atomic64_t requests;
	atomic64_t latency_ns;		/* sum over the answered requests */
	atomic64_t timeouts;
	atomic64_t kicks;		/* EVENT_AVAIL sent */
	atomic64_t used;		/* EVENT_USED received */
	atomic64_t config;		/* EVENT_CONFIG received */
	atomic64_t dropped;		/* messages refused */
};

/* Bounds the time a driver's remove may wait for the device (core). */
struct vmsg_unbind_watchdog {
	struct delayed_work work;
	unsigned int periods;
	u32 progress;		/* requests and used indexes a period ago */
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
	/*
	 * Fail path (virtio_msg_inflight.c): held by the fail work while it
	 * walks a queue without the bus's lookup_lock; vmsg_track_free()
	 * takes it, so the queue is not freed under the walk.
	 */
	struct mutex fail_lock;

	bool broken;
	struct vmsg_unbind_watchdog unbind_wd;
	u32 config_generation;
	unsigned long tolerated;	/* enum vmsg_tolerance bits, logged once */
	struct virtio_msg_dev_stats stats;

	/* Notification eventfds per queue index (virtio_msg_vring_fd.c) */
	struct vmsg_vring_fd **vfds;
};

static inline struct virtio_msg_device *to_vmsg_device(struct virtio_device *vdev)
{
	return container_of(vdev, struct virtio_msg_device, vdev);
}

static inline struct device *vmsg_dev(struct virtio_msg_device *vmdev)
{
	/* The bus device has no driver: its parent names the bus in messages. */
	return vmdev->bus->parent;
}

/* Zeroed payload area of the request buffer; the caller holds xfer_lock. */
static inline void *vmsg_req_payload(struct virtio_msg_device *vmdev, size_t len)
{
	void *payload = virtio_msg_payload(vmdev->req);

	memset(payload, 0, len);
	return payload;
}

/* virtio_msg_xfer.c: requests, answers and events */
unsigned int vmsg_timeout_ms(void);
ssize_t vmsg_xfer(struct virtio_msg_device *vmdev, u8 msg_id, size_t len,
		  size_t resp_min);
int vmsg_send_event(struct virtio_msg_device *vmdev, u8 msg_id,
		    const void *payload, size_t len);
void vmsg_fail_pending(struct virtio_msg_device *vmdev, int err);
void vmsg_vq_interrupt(struct virtio_msg_device *vmdev, unsigned int index);
void vmsg_vq_sync(struct virtio_msg_device *vmdev, unsigned int index);
void vmsg_vq_sync_all(struct virtio_msg_device *vmdev);
__printf(3, 4)
void vmsg_tolerate(struct virtio_msg_device *vmdev, enum vmsg_tolerance what,
		   const char *fmt, ...);

/* virtio_msg_config.c: struct virtio_config_ops */
extern const struct virtio_config_ops virtio_msg_config_ops;
int vmsg_get_device_info(struct virtio_msg_device *vmdev);
int vmsg_read_features(struct virtio_msg_device *vmdev, u64 *features);

/* virtio_msg_inflight.c: what a broken device holds */
void vmsg_mark_broken(struct virtio_msg_device *vmdev, const char *why);
int vmsg_track_alloc(struct virtio_msg_device *vmdev, unsigned int index,
		     unsigned int num);
void vmsg_track_update(struct virtio_msg_device *vmdev, struct virtqueue *vq);
void vmsg_track_free(struct virtio_msg_device *vmdev, unsigned int index);
void vmsg_fail_init(struct virtio_msg_device *vmdev);

/* virtio_msg_vring_fd.c: kick and call eventfds */
bool vmsg_vring_fd_kick(struct virtio_msg_device *vmdev, unsigned int index);
void vmsg_vring_fds_release(struct virtio_msg_device *vmdev);

/* virtio_msg_debugfs.c */
void vmsg_debugfs_init(void);
void vmsg_debugfs_exit(void);
void vmsg_debugfs_bus_add(struct virtio_msg_bus *bus);
void vmsg_debugfs_bus_remove(struct virtio_msg_bus *bus);

/* DMA pool plumbing between the core and virtio_msg_pool.c */
struct virtio_msg_pool_stats {
	size_t size;
	size_t in_use;
	size_t in_use_max;	/* high-water mark */
	u64 bounced;		/* bytes copied to or from bounce buffers */
	bool bounce;		/* our allocator, not the kernel's pool ops */
};

void virtio_msg_pool_get_stats(struct virtio_msg_pool *pool,
			       struct virtio_msg_pool_stats *stats);
int virtio_msg_pool_attach(struct virtio_msg_pool *pool, struct device *dma_dev);
void virtio_msg_pool_detach(struct virtio_msg_pool *pool);
void virtio_msg_pool_setup_vdev(struct virtio_msg_pool *pool,
				struct virtio_device *vdev);
void *virtio_msg_pool_mapping(struct virtio_msg_pool *pool, dma_addr_t addr,
			      size_t len, bool device_writes,
			      unsigned long *slot);
unsigned long virtio_msg_pool_nr_slots(struct virtio_msg_pool *pool);
bool virtio_msg_pool_revoke_range(struct virtio_msg_pool *pool,
				  dma_addr_t addr, size_t len);

#endif /* _VIRTIO_MSG_INTERNAL_H */
