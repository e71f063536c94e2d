/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * virtio-msg: interface between the transport core and bus drivers.
 *
 * A bus driver (FF-A, loopback, ...) moves opaque wire-format messages
 * between the core and the device side.  The core builds, encodes, matches
 * and validates messages; a bus never looks inside one except through the
 * virtio_msg_wire_*() helpers.
 */
#ifndef _LINUX_VIRTIO_MSG_BUS_H
#define _LINUX_VIRTIO_MSG_BUS_H

#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/device.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include <uapi/linux/virtio_msg.h>

enum virtio_msg_wire_format {
	VIRTIO_MSG_WIRE_FORMAT_SPEC = 0,	/* 8-byte header with token */
	VIRTIO_MSG_WIRE_FORMAT_RFC1 = 1,	/* 6-byte header, RFC v1 */
};

/* Header fields of a wire message, format-independent. */
struct virtio_msg_wire_hdr {
	u8 type;
	u8 msg_id;
	u16 dev_num;
	u16 token;
	u16 msg_size;
};

struct virtio_msg_bus;
struct virtio_msg_pool;
struct virtio_msg_user;
struct file;
struct sg_table;
struct vm_area_struct;

/**
 * struct virtio_msg_bus_ops - what a bus driver provides
 * @send: hand one encoded message of @len bytes to the device side.  When
 *	@atomic is set the caller may be in atomic context and @send must not
 *	sleep.  For a request, the response is later passed to
 *	virtio_msg_bus_receive() (possibly before @send returns).  Returns 0
 *	or a negative errno; an error fails the request at once.
 * @cancel: optional; the core gave up waiting for the response to the
 *	request (@dev_num, @token) and will not accept it any more.
 */
struct virtio_msg_bus_ops {
	int (*send)(struct virtio_msg_bus *bus, const void *msg, size_t len,
		    bool atomic);
	void (*cancel)(struct virtio_msg_bus *bus, u16 dev_num, u16 token);
};

/**
 * struct virtio_msg_bus - one virtio-msg bus instance
 * @parent: the bus driver's device (platform, FF-A or misc device)
 * @ops: bus callbacks
 * @name: bus name, reported as the virtio bus_name()
 * @format: wire format spoken on this bus
 * @max_msg_size: largest message either side may send, >= 48
 * @pool: DMA pool all virtqueue memory is confined to, or NULL when the
 *	devices' DMA needs no confinement
 * @priv: bus driver data
 *
 * Fields below are owned by the core.
 */
struct virtio_msg_bus {
	struct device *parent;
	const struct virtio_msg_bus_ops *ops;
	const char *name;
	enum virtio_msg_wire_format format;
	u16 max_msg_size;
	struct virtio_msg_pool *pool;
	void *priv;

	/* private to the core */
	struct device dev;		/* parent of the virtio devices */
	struct completion released;
	int id;
	struct mutex devices_lock;	/* serialises add/remove */
	struct xarray devices;		/* dev_num -> struct virtio_msg_device */
	spinlock_t lookup_lock;		/* pins devices found from events */
	atomic_t token_seq;		/* request tokens of all devices */
	struct work_struct lost_work;	/* removes devices of a lost peer */
	bool unregistered;		/* under lookup_lock */
	struct dentry *debugfs;
	struct mutex vfd_lock;		/* eventfd bindings; device unpublish */
	struct virtio_msg_user *user;
};

int virtio_msg_bus_register(struct virtio_msg_bus *bus);
void virtio_msg_bus_unregister(struct virtio_msg_bus *bus);

int virtio_msg_bus_add_device(struct virtio_msg_bus *bus, u16 dev_num);
int virtio_msg_bus_remove_device(struct virtio_msg_bus *bus, u16 dev_num);
int virtio_msg_bus_device_gone(struct virtio_msg_bus *bus, u16 dev_num);
unsigned int virtio_msg_bus_num_devices(struct virtio_msg_bus *bus);

int virtio_msg_bus_receive(struct virtio_msg_bus *bus, const void *msg,
			   size_t len);
int virtio_msg_bus_set_vring_fd(struct virtio_msg_bus *bus, u16 dev_num,
				u32 index, bool call, int fd);
void virtio_msg_bus_lost(struct virtio_msg_bus *bus);
#ifdef CONFIG_PM_SLEEP
int virtio_msg_bus_freeze(struct virtio_msg_bus *bus);
int virtio_msg_bus_restore(struct virtio_msg_bus *bus);
#else
static inline int virtio_msg_bus_freeze(struct virtio_msg_bus *bus)
{
	return 0;
}

static inline int virtio_msg_bus_restore(struct virtio_msg_bus *bus)
{
	return 0;
}
#endif

/* Wire codec: the only code that knows message layouts. */
size_t virtio_msg_wire_hdr_size(enum virtio_msg_wire_format format);
int virtio_msg_wire_format_parse(const char *name,
				 enum virtio_msg_wire_format *format);
const char *virtio_msg_wire_format_name(enum virtio_msg_wire_format format);
int virtio_msg_wire_peek(enum virtio_msg_wire_format format, const void *msg,
			 size_t len, struct virtio_msg_wire_hdr *hdr);
void virtio_msg_wire_put_hdr(enum virtio_msg_wire_format format, void *msg,
			     const struct virtio_msg_wire_hdr *hdr);
u16 virtio_msg_wire_msg_size(enum virtio_msg_wire_format format,
			     const void *msg);

/* User-space message interface, /dev/virtio-msg-N */
int virtio_msg_user_attach(struct virtio_msg_bus *bus);
void virtio_msg_user_detach(struct virtio_msg_bus *bus);
void virtio_msg_user_cancel(struct virtio_msg_bus *bus, u16 dev_num,
			    u16 token);
int virtio_msg_user_send(struct virtio_msg_bus *bus, const void *msg,
			 size_t len, bool atomic);
const char *virtio_msg_user_name(struct virtio_msg_bus *bus);

/* DMA pool */
struct virtio_msg_pool *virtio_msg_pool_create(struct device *dev,
					       const char *compatible,
					       const char *node_name,
					       size_t runtime_size);
struct virtio_msg_pool *virtio_msg_pool_create_at(struct device *dev,
						  const char *compatible,
						  const char *node_name,
						  size_t runtime_size,
						  dma_addr_t bus_base);
int virtio_msg_pool_sg_table(const struct virtio_msg_pool *pool,
			     struct sg_table *sgt);
void virtio_msg_pool_destroy(struct virtio_msg_pool *pool);
void virtio_msg_pool_abandon(struct virtio_msg_pool *pool);
size_t virtio_msg_pool_size(const struct virtio_msg_pool *pool);
size_t virtio_msg_pool_in_use(const struct virtio_msg_pool *pool);
dma_addr_t virtio_msg_pool_bus_base(const struct virtio_msg_pool *pool);
int virtio_msg_pool_mmap(struct virtio_msg_pool *pool,
			 struct vm_area_struct *vma);
void virtio_msg_pool_open(struct virtio_msg_pool *pool, struct file *file);
void virtio_msg_pool_revoke(struct virtio_msg_pool *pool);

#endif /* _LINUX_VIRTIO_MSG_BUS_H */
