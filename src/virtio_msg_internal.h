/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * virtio-msg: private declarations of the transport core module.
 */
#ifndef _VIRTIO_MSG_INTERNAL_H
#define _VIRTIO_MSG_INTERNAL_H

#include <linux/completion.h>
#include <linux/virtio.h>
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

void virtio_msg_user_detach(struct virtio_msg_bus *bus);

/* Queue-pool plumbing between the core and compat/dma_pool.c */
int virtio_msg_pool_attach(struct virtio_msg_pool *pool, struct device *dma_dev);
void virtio_msg_pool_detach(struct virtio_msg_pool *pool);
bool virtio_msg_pool_is_bounce(const struct virtio_msg_pool *pool);
void *virtio_msg_pool_vaddr(struct virtio_msg_pool *pool, dma_addr_t addr,
			    size_t len);
void virtio_msg_pool_setup_vdev(struct virtio_msg_pool *pool,
				struct virtio_device *vdev);

#endif /* _VIRTIO_MSG_INTERNAL_H */
