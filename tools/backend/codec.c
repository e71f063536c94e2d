// SPDX-License-Identifier: GPL-2.0-only
/*
 * Wire codec: the only place that knows the byte layout of the two wire
 * formats a loopback bus may use.
 *
 *  VIRTIO_MSG_WIRE_SPEC  8-byte header {type, msg_id, le16 dev_num,
 *                        le16 token, le16 msg_size}; payloads as in
 *                        <linux/virtio_msg.h>.
 *  VIRTIO_MSG_WIRE_RFC1  6-byte header {type, msg_id, le16 dev_num,
 *                        le16 msg_size}, no token; the GET_VQUEUE response
 *                        and SET_VQUEUE payloads have no `reserved` word, so
 *                        their 64-bit addresses start at payload offset 12
 *                        instead of 16.  All other payloads are identical.
 *
 * The rest of the backend only sees struct vmsg_msg, whose payload always
 * has the spec layout.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "backend.h"

#define RFC1_HEADER_SIZE	6
/* Payload offset of the `reserved` word the RFC1 layout lacks. */
#define VQUEUE_RESERVED_OFF	offsetof(struct virtio_msg_vqueue, reserved)
#define VQUEUE_RESERVED_LEN	sizeof(((struct virtio_msg_vqueue *)0)->reserved)

_Static_assert(sizeof(struct virtio_msg_header) == VIRTIO_MSG_HEADER_SIZE, "header size");
_Static_assert(sizeof(struct virtio_msg_vqueue) == 40, "vqueue size");
_Static_assert(offsetof(struct virtio_msg_vqueue, desc_addr) == 16, "vqueue layout");
_Static_assert(sizeof(struct virtio_msg_get_device_info_resp) == 24, "device info size");

size_t vmsg_wire_header_size(uint32_t wire_format)
{
	return wire_format == VIRTIO_MSG_WIRE_RFC1 ? RFC1_HEADER_SIZE : VIRTIO_MSG_HEADER_SIZE;
}

size_t vmsg_wire_min_msg_size(uint32_t wire_format)
{
	size_t vq = sizeof(struct virtio_msg_vqueue);

	if (wire_format == VIRTIO_MSG_WIRE_RFC1)
		vq -= VQUEUE_RESERVED_LEN;
	return vmsg_wire_header_size(wire_format) + vq;
}

/* Do this message's payloads carry the struct virtio_msg_vqueue layout? */
static bool has_vqueue_payload(uint8_t type, uint8_t msg_id)
{
	if (type & VIRTIO_MSG_TYPE_BUS)
		return false;
	if (type & VIRTIO_MSG_TYPE_RESPONSE)
		return msg_id == VIRTIO_MSG_GET_VQUEUE;
	return msg_id == VIRTIO_MSG_SET_VQUEUE;
}

static uint16_t get_le16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static void put_le16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

int vmsg_decode(uint32_t wire_format, const void *buf, size_t len, struct vmsg_msg *msg)
{
	const uint8_t *p = buf;
	size_t hdr = vmsg_wire_header_size(wire_format);
	size_t msg_size, plen;
	bool rfc1 = wire_format == VIRTIO_MSG_WIRE_RFC1;

	if (len < hdr)
		return -EINVAL;
	msg->type = p[0];
	msg->msg_id = p[1];
	msg->dev_num = get_le16(p + 2);
	if (rfc1) {
		msg->token = 0;
		msg_size = get_le16(p + 4);
	} else {
		msg->token = get_le16(p + 4);
		msg_size = get_le16(p + 6);
	}
	/* Bytes after msg_size are padding; a msg_size beyond the data is not. */
	if (msg_size < hdr || msg_size > len)
		return -EINVAL;
	plen = msg_size - hdr;

	if (rfc1 && has_vqueue_payload(msg->type, msg->msg_id) &&
	    plen >= VQUEUE_RESERVED_OFF) {
		memcpy(msg->payload, p + hdr, VQUEUE_RESERVED_OFF);
		memset(msg->payload + VQUEUE_RESERVED_OFF, 0, VQUEUE_RESERVED_LEN);
		memcpy(msg->payload + VQUEUE_RESERVED_OFF + VQUEUE_RESERVED_LEN,
		       p + hdr + VQUEUE_RESERVED_OFF, plen - VQUEUE_RESERVED_OFF);
		plen += VQUEUE_RESERVED_LEN;
	} else {
		memcpy(msg->payload, p + hdr, plen);
	}
	msg->payload_len = (uint16_t)plen;
	return 0;
}

ssize_t vmsg_encode(uint32_t wire_format, const struct vmsg_msg *msg, void *buf, size_t cap)
{
	uint8_t *p = buf;
	size_t hdr = vmsg_wire_header_size(wire_format);
	size_t plen = msg->payload_len;
	bool rfc1 = wire_format == VIRTIO_MSG_WIRE_RFC1;
	bool squeeze = rfc1 && has_vqueue_payload(msg->type, msg->msg_id) &&
		       plen >= VQUEUE_RESERVED_OFF + VQUEUE_RESERVED_LEN;

	if (squeeze)
		plen -= VQUEUE_RESERVED_LEN;
	if (hdr + plen > cap || hdr + plen > VIRTIO_MSG_MAX_SIZE)
		return -EMSGSIZE;

	p[0] = msg->type;
	p[1] = msg->msg_id;
	put_le16(p + 2, msg->dev_num);
	if (rfc1) {
		put_le16(p + 4, (uint16_t)(hdr + plen));
	} else {
		put_le16(p + 4, msg->token);
		put_le16(p + 6, (uint16_t)(hdr + plen));
	}
	if (squeeze) {
		memcpy(p + hdr, msg->payload, VQUEUE_RESERVED_OFF);
		memcpy(p + hdr + VQUEUE_RESERVED_OFF,
		       msg->payload + VQUEUE_RESERVED_OFF + VQUEUE_RESERVED_LEN,
		       plen - VQUEUE_RESERVED_OFF);
	} else {
		memcpy(p + hdr, msg->payload, plen);
	}
	return (ssize_t)(hdr + plen);
}
