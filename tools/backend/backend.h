/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * virtio-msg-backend: user-space virtio devices on the virtio-msg loopback
 * bus.  Internal interfaces shared by the transport, the virtqueue code, the
 * device models, the command line front end and the unit tests.
 *
 * Everything in here works on plain memory: the DMA pool is a (base, size,
 * bus address) triple and messages go in and out as byte buffers, so the
 * unit tests can drive the whole backend without a kernel.
 */
#ifndef VMSG_BACKEND_H
#define VMSG_BACKEND_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/virtio_msg.h>
#include <linux/virtio_msg_loopback.h>

#ifndef VIRTIO_F_NOTIFICATION_DATA
#define VIRTIO_F_NOTIFICATION_DATA	38
#endif

/* Vendor id reported in GET_DEVICE_INFO: "VMSG" in little-endian order. */
#define VMSG_VENDOR_ID			0x47534d56u

/* Split virtqueues must be a power of two no larger than this. */
#define VMSG_QUEUE_SIZE_MAX		32768
#define VMSG_QUEUE_SIZE_DEFAULT		128
/* The device models here use at most this many virtqueues (blk: --queues). */
#define VMSG_MAX_VQS			16
/* Largest config space of the device models here. */
#define VMSG_CONFIG_MAX			64
/* Number of feature bits reported; must be a multiple of 32. */
#define VMSG_NUM_FEATURE_BITS		64

/* ---- logging (log.c) ---- */

extern int vmsg_verbose;	/* 0 quiet, 1 lifecycle, 2 every message */

void vmsg_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vmsg_vlog(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
#define vmsg_info(...)	do { if (vmsg_verbose >= 1) vmsg_log(__VA_ARGS__); } while (0)
#define vmsg_trace(...)	do { if (vmsg_verbose >= 2) vmsg_log(__VA_ARGS__); } while (0)

/* ---- DMA pool ---- */

struct vmsg_pool {
	uint8_t *base;		/* local mapping of pool offset 0 */
	uint64_t size;
	uint64_t bus_base;	/* bus address of pool offset 0 */
};

/*
 * Translate the bus range [addr, addr + len) to a local pointer, or NULL if
 * any byte of it lies outside the pool.  Overflow-safe for any inputs.
 */
static inline void *vmsg_pool_ptr(const struct vmsg_pool *pool, uint64_t addr, uint64_t len)
{
	uint64_t off;

	if (!pool->base || addr < pool->bus_base)
		return NULL;
	off = addr - pool->bus_base;
	if (off > pool->size || len > pool->size - off)
		return NULL;
	return pool->base + off;
}

/* ---- wire codec (codec.c) ---- */

/*
 * A message in canonical form: header fields decoded and the payload in the
 * layout of <linux/virtio_msg.h> (spec revision 1), whatever the wire format.
 * codec.c is the only place that knows how the wire formats differ.
 */
struct vmsg_msg {
	uint8_t type;
	uint8_t msg_id;
	uint16_t dev_num;
	uint16_t token;		/* always 0 on the RFC1 wire format */
	uint16_t payload_len;
	/* Aligned for the <linux/virtio_msg.h> structs it is accessed as. */
	_Alignas(8) uint8_t payload[VIRTIO_MSG_MAX_SIZE];
};

size_t vmsg_wire_header_size(uint32_t wire_format);
/* Smallest max_msg_size that can carry every fixed-size message. */
size_t vmsg_wire_min_msg_size(uint32_t wire_format);
/* Wire bytes -> canonical.  0 or -EINVAL (malformed) / -EMSGSIZE. */
int vmsg_decode(uint32_t wire_format, const void *buf, size_t len, struct vmsg_msg *msg);
/* Canonical -> wire bytes.  Returns the wire length or -EMSGSIZE. */
ssize_t vmsg_encode(uint32_t wire_format, const struct vmsg_msg *msg, void *buf, size_t cap);

/* ---- virtqueues (virtqueue.c) ---- */

/* One guest buffer of a descriptor chain, already translated and checked. */
struct vq_seg {
	uint8_t *ptr;
	uint32_t len;
};

/*
 * A descriptor chain: the device-readable segments first (segs[0 .. n_out)),
 * then the device-writable ones (segs[n_out .. n_out + n_in)).
 */
struct vq_chain {
	uint16_t head;
	unsigned int n_out;
	unsigned int n_in;
	uint64_t out_len;	/* total readable bytes */
	uint64_t in_len;	/* total writable bytes */
	struct vq_seg *segs;
};

struct vmsg_vq {
	unsigned int index;
	bool configured;	/* SET_VQUEUE seen since the last reset */
	bool enabled;		/* rings validated, buffers are processed */
	bool broken;		/* driver violated the ring protocol */
	uint32_t size;
	uint64_t desc_addr;
	uint64_t driver_addr;
	uint64_t device_addr;
	/* Local pointers into the pool, valid while enabled. */
	uint8_t *desc;
	uint8_t *avail;
	uint8_t *used;
	uint16_t last_avail_idx;	/* next avail ring slot to consume */
	uint16_t used_idx;		/* shadow of used->idx */
	uint16_t signalled_used;	/* used idx at the last EVENT_USED decision */
	bool event_idx;			/* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;			/* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	struct vq_seg *segs;		/* scratch space for one chain, size entries */
	/*
	 * The thread serving this queue and its eventfds (vq_worker.c), or
	 * NULL when the backend is not threaded.  Survives vq_reset(): the
	 * eventfds stay bound to the bus until the device goes.  While the
	 * worker runs, it alone touches the ring state above (enabled,
	 * broken, indices); the serving thread stops it before changing any.
	 */
	struct vq_worker *worker;
};

/* ---- devices ---- */

struct vmsg_device;
struct backend;

struct vmsg_device_ops {
	const char *name;
	uint32_t device_id;
	/*
	 * Handle one descriptor chain.  Returns the number of bytes written into
	 * the device-writable part (the used.len value), or -EPROTO if the chain
	 * does not have the shape the device type requires; the queue is then
	 * marked broken.
	 */
	int64_t (*handle_chain)(struct vmsg_device *dev, struct vmsg_vq *vq,
				const struct vq_chain *chain);
	/* Optional: a SET_CONFIG write; return false to reject it. */
	bool (*write_config)(struct vmsg_device *dev, uint32_t offset, const uint8_t *data,
			     uint32_t len);
	/* Optional: device reset (status 0). */
	void (*reset)(struct vmsg_device *dev);
	/* Optional: free priv. */
	void (*destroy)(struct vmsg_device *dev);
};

/*
 * Threads (with backend.workers): the serving thread owns everything
 * here; a queue's worker thread only runs the ring of its queue and, when
 * the driver breaks the ring protocol, sets NEEDS_RESET in status (all
 * accesses to status are atomic for that reason, see vmsg_dev_status()).
 */
struct vmsg_device {
	struct backend *be;
	const struct vmsg_device_ops *ops;
	uint16_t dev_num;
	void *priv;

	uint64_t features;		/* offered */
	uint64_t driver_features;	/* accepted by the driver */
	bool driver_features_extra;	/* driver set bits >= VMSG_NUM_FEATURE_BITS */
	uint32_t status;		/* atomic: vmsg_dev_status() */
	uint32_t config_generation;
	uint32_t config_size;
	uint8_t config[VMSG_CONFIG_MAX];

	unsigned int num_vqs;
	uint32_t max_queue_size;
	struct vmsg_vq vqs[VMSG_MAX_VQS];

	/*
	 * Work that must wait until the response to the current request has
	 * been sent, so that the driver never sees an event before the
	 * response of the request that caused it.  See backend_run_deferred().
	 */
	bool deferred_kick;		/* process all queues (DRIVER_OK was set) */
	bool deferred_config_event;	/* send EVENT_CONFIG (NEEDS_RESET was set) */

	/* Set by the front end around the ADD ioctl. */
	bool added;
};

/* Options shared by all device models. */
struct vmsg_dev_opts {
	uint32_t queue_size;
	bool notification_data;
	bool event_idx;
	unsigned int num_queues;	/* blk request queues; 0 means 1 */
};

/* ---- backend (transport.c) ---- */

#define VMSG_MAX_DEVICES	64

struct backend {
	struct vmsg_pool pool;
	uint32_t wire_format;
	size_t max_msg_size;

	struct vmsg_device *devs[VMSG_MAX_DEVICES];
	unsigned int num_devs;

	/*
	 * Sends a device->driver event (EVENT_USED, EVENT_CONFIG), already in
	 * wire format.  The front end writes it to /dev/virtio-msg-N; the tests
	 * record it.
	 */
	int (*send_event)(struct backend *be, const void *buf, size_t len);
	void *send_ctx;

	/*
	 * &vq_worker_ops: serve every enabled virtqueue from its own worker
	 * thread instead of inline from backend_handle_message().  Set before
	 * the first message; send_event must then be thread-safe.
	 */
	const struct vq_worker_ops *workers;
	/*
	 * Optional, threaded only: bind an eventfd as the kick (call false) or
	 * call (call true) notification of a virtqueue, the
	 * VIRTIO_MSG_LB_IOC_SET_VRING_KICK/_CALL ioctls.  0 or -errno; on
	 * failure the queue keeps using messages.  NULL: messages only.
	 */
	int (*set_vring_fd)(struct backend *be, uint16_t dev_num, unsigned int index, bool call,
			    int fd);
	bool vring_fd_failed;	/* atomic: a binding failed, logged once */

	/* Scratch messages, so nothing of message size lives on the stack. */
	struct vmsg_msg *rx;
	struct vmsg_msg *tx;
	struct vmsg_msg *ev;	/* events may be sent while tx is being built */
	pthread_mutex_t ev_lock;	/* ev is shared by the serving and worker threads */
};

int backend_init(struct backend *be, uint32_t wire_format, size_t max_msg_size,
		 const struct vmsg_pool *pool);
void backend_destroy(struct backend *be);
/* Takes ownership of dev; -EEXIST for a duplicate device number. */
int backend_add_device(struct backend *be, struct vmsg_device *dev);
struct vmsg_device *backend_find_device(struct backend *be, uint16_t dev_num);

/*
 * Handle one message read from the bus.  If it needs a response, the wire
 * bytes are put into out (out_cap must be at least max_msg_size) and
 * *out_len is set to their length; otherwise *out_len is 0.  Malformed or
 * unexpected messages are logged and dropped.  Returns 0, or a negative
 * errno if the message was dropped (for the tests; not fatal).
 */
int backend_handle_message(struct backend *be, const void *msg, size_t len, void *out,
			   size_t out_cap, size_t *out_len);
/*
 * Call after every backend_handle_message(), once its response (if any)
 * has been sent: runs the deferred work, which may send events.
 */
void backend_run_deferred(struct backend *be);

/* Common device construction, used by the device models. */
struct vmsg_device *vmsg_device_alloc(const struct vmsg_device_ops *ops, uint16_t dev_num,
				      unsigned int num_vqs, uint64_t type_features,
				      const struct vmsg_dev_opts *opts);
void vmsg_device_free(struct vmsg_device *dev);
void vmsg_device_reset(struct vmsg_device *dev);
void vq_check_notification_data(struct vmsg_device *dev, struct vmsg_vq *vq,
				uint32_t next_offset);
static inline uint32_t vmsg_dev_status(const struct vmsg_device *dev)
{
	return __atomic_load_n(&dev->status, __ATOMIC_SEQ_CST);
}

static inline bool vmsg_has_feature(const struct vmsg_device *dev, unsigned int bit)
{
	return bit < 64 && (dev->driver_features & (1ULL << bit));
}

/*
 * Marks the queue broken (logged once) and asks the driver for a reset
 * (NEEDS_RESET, and EVENT_CONFIG from backend_run_deferred()).
 */
void vmsg_vq_mark_broken(struct vmsg_device *dev, struct vmsg_vq *vq, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Sends EVENT_CONFIG with the current device status. */
void vmsg_send_config_event(struct vmsg_device *dev);
/* Sends EVENT_USED for vq. */
void vmsg_send_used_event(struct vmsg_device *dev, struct vmsg_vq *vq);
/* Tells the driver about new used buffers: call eventfd or EVENT_USED. */
void vmsg_notify_used(struct vmsg_device *dev, struct vmsg_vq *vq);

/* ---- virtqueue.c ---- */

/* SET_VQUEUE: validate and enable; on bad input the queue is marked broken. */
void vq_setup(struct vmsg_device *dev, struct vmsg_vq *vq, uint32_t size, uint64_t desc_addr,
	      uint64_t driver_addr, uint64_t device_addr);
/* Stops the queue's worker (if any) and forgets the rings. */
void vq_reset(struct vmsg_device *dev, struct vmsg_vq *vq);
/*
 * Consume every available buffer, complete it and notify the driver; with
 * notifications re-enabled, look once more (a buffer added meanwhile would
 * otherwise wait for a kick that the driver suppressed).
 */
void vq_process(struct vmsg_device *dev, struct vmsg_vq *vq);

/* Copy helpers over the segments of a chain (readable or writable part). */
uint64_t vq_chain_read(const struct vq_chain *chain, uint64_t offset, void *buf, uint64_t len);
uint64_t vq_chain_write(const struct vq_chain *chain, uint64_t offset, const void *buf,
			uint64_t len);

/* ---- per-virtqueue worker threads (vq_worker.c) ---- */

/*
 * The transport and the rings reach the workers through this table
 * (backend.workers), so that they link without vq_worker.c: the unthreaded
 * users (tests/guest/vmsg-peer) do not need it.
 */
struct vq_worker_ops {
	int (*prepare)(struct vmsg_device *dev, struct vmsg_vq *vq);
	int (*start)(struct vmsg_device *dev, struct vmsg_vq *vq);
	void (*stop)(struct vmsg_vq *vq);
	void (*free)(struct vmsg_vq *vq);
	bool (*running)(const struct vmsg_vq *vq);
	void (*kick)(struct vmsg_vq *vq);
	bool (*stopping)(const struct vmsg_vq *vq);
	bool (*call)(struct vmsg_vq *vq);
	bool (*self)(void);
};

extern const struct vq_worker_ops vq_worker_ops;

/*
 * Serving thread only.  vq_worker_start() starts (or, if running, kicks)
 * the worker of an enabled queue; the first start (or vq_worker_prepare(),
 * on SET_VQUEUE) creates its kick and call eventfds and binds them through
 * be->set_vring_fd.  vq_worker_stop() makes
 * it finish the buffer at hand and joins it; vq_worker_free() also closes
 * the eventfds (device removal).
 */
int vq_worker_start(struct vmsg_device *dev, struct vmsg_vq *vq);
/* Only the first part of vq_worker_start(): eventfds and bindings. */
int vq_worker_prepare(struct vmsg_device *dev, struct vmsg_vq *vq);
void vq_worker_stop(struct vmsg_vq *vq);
void vq_worker_free(struct vmsg_vq *vq);
bool vq_worker_running(const struct vmsg_vq *vq);
/* EVENT_AVAIL arrived for a queue whose worker runs. */
void vq_worker_kick(struct vmsg_vq *vq);
/* For the worker: stop was asked, leave vq_process() early. */
bool vq_worker_stopping(const struct vmsg_vq *vq);
/* For the worker: signal the call eventfd if bound; false: send EVENT_USED. */
bool vq_worker_call(struct vmsg_vq *vq);
/* True in a worker thread. */
bool vq_worker_self(void);

/* ---- device models ---- */

struct vmsg_device *vmsg_rng_create(uint16_t dev_num, const struct vmsg_dev_opts *opts);
/* Returns NULL with errno set; the message explains the problem. */
struct vmsg_device *vmsg_blk_create(uint16_t dev_num, const char *path, bool read_only,
				    const struct vmsg_dev_opts *opts, char *err, size_t errlen);

#endif /* VMSG_BACKEND_H */
