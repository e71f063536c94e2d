// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-msg wire codec.
 *
 * The core builds every message in the layout of the current specification
 * (uapi/linux/virtio_msg.h).  A bus may speak that layout or the one of the
 * RFC v1 kernel series, which differs in two places only:
 *
 *  - a 6-byte header without the token: {type, msg_id, dev_num, msg_size};
 *  - GET_VQUEUE responses and SET_VQUEUE requests without the reserved word
 *    that puts the 64-bit addresses on 8-byte boundaries.
 *
 * This file is the only place that knows those offsets.
 */
#include <linux/bug.h>
#include <linux/errno.h>
#include <linux/export.h>
#include <linux/stddef.h>
#include <linux/string.h>
#include <linux/unaligned.h>

#include "virtio_msg_internal.h"

#define RFC1_HDR_SIZE		6
/* struct virtio_msg_vqueue without its reserved word */
#define RFC1_VQUEUE_ADDRS	12
#define VQUEUE_RESERVED_SIZE	4

static void __maybe_unused virtio_msg_check_layout(void)
{
	/* The spec layout is ABI: keep it pinned. */
	BUILD_BUG_ON(sizeof(struct virtio_msg_header) != VIRTIO_MSG_HEADER_SIZE);
	BUILD_BUG_ON(offsetof(struct virtio_msg_header, token) != 4);
	BUILD_BUG_ON(offsetof(struct virtio_msg_header, msg_size) != 6);
	BUILD_BUG_ON(sizeof(struct virtio_msg_get_device_info_resp) != 24);
	BUILD_BUG_ON(sizeof(struct virtio_msg_vqueue) != 40);
	BUILD_BUG_ON(offsetof(struct virtio_msg_vqueue, desc_addr) != 16);
	BUILD_BUG_ON(offsetof(struct virtio_msg_vqueue, reserved) !=
		     RFC1_VQUEUE_ADDRS);
	BUILD_BUG_ON(sizeof(struct virtio_msg_config) != 12);
	BUILD_BUG_ON(sizeof(struct virtio_msg_event_config) != 16);
	BUILD_BUG_ON(sizeof(struct virtio_msg_bus_get_devices_resp) != 6);
	BUILD_BUG_ON(VIRTIO_MSG_HEADER_SIZE + sizeof(struct virtio_msg_vqueue) !=
		     VIRTIO_MSG_FIXED_MAX_SIZE);
	BUILD_BUG_ON(VIRTIO_MSG_HEADER_SIZE - RFC1_HDR_SIZE +
		     VQUEUE_RESERVED_SIZE > VIRTIO_MSG_CANON_EXTRA);
}

size_t virtio_msg_wire_hdr_size(enum virtio_msg_wire_format format)
{
	return format == VIRTIO_MSG_WIRE_FORMAT_RFC1 ? RFC1_HDR_SIZE :
						       VIRTIO_MSG_HEADER_SIZE;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_wire_hdr_size, "VIRTIO_MSG");

/**
 * virtio_msg_wire_format_parse - a bus driver's wire_format parameter
 * @name: "spec" (the current specification) or "rfc1" (the RFC v1 series)
 * @format: set on success
 *
 * Return: 0, or -EINVAL for any other name.
 */
int virtio_msg_wire_format_parse(const char *name,
				 enum virtio_msg_wire_format *format)
{
	if (sysfs_streq(name, "spec"))
		*format = VIRTIO_MSG_WIRE_FORMAT_SPEC;
	else if (sysfs_streq(name, "rfc1"))
		*format = VIRTIO_MSG_WIRE_FORMAT_RFC1;
	else
		return -EINVAL;
	return 0;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_wire_format_parse, "VIRTIO_MSG");

const char *virtio_msg_wire_format_name(enum virtio_msg_wire_format format)
{
	return format == VIRTIO_MSG_WIRE_FORMAT_RFC1 ? "rfc1" : "spec";
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_wire_format_name, "VIRTIO_MSG");

bool virtio_msg_wire_has_token(enum virtio_msg_wire_format format)
{
	return format != VIRTIO_MSG_WIRE_FORMAT_RFC1;
}

size_t virtio_msg_wire_min_max_size(enum virtio_msg_wire_format format)
{
	if (format == VIRTIO_MSG_WIRE_FORMAT_RFC1)
		return RFC1_HDR_SIZE + sizeof(struct virtio_msg_vqueue) -
		       VQUEUE_RESERVED_SIZE;
	return VIRTIO_MSG_FIXED_MAX_SIZE;
}

/* Does this message carry a struct virtio_msg_vqueue payload? */
static bool virtio_msg_has_vqueue(u8 type, u8 msg_id)
{
	if (type & VIRTIO_MSG_TYPE_BUS)
		return false;
	if (type & VIRTIO_MSG_TYPE_RESPONSE)
		return msg_id == VIRTIO_MSG_GET_VQUEUE;
	return msg_id == VIRTIO_MSG_SET_VQUEUE;
}

/**
 * virtio_msg_wire_peek - decode the header of a wire message
 * @format: wire format of the bus
 * @msg: the message
 * @len: bytes available at @msg
 * @hdr: decoded header
 *
 * Checks that the header is complete and that msg_size covers the header
 * and no more than @len bytes; bytes after msg_size are padding.
 *
 * Return: 0, or -EINVAL for a truncated or inconsistent header.
 */
int virtio_msg_wire_peek(enum virtio_msg_wire_format format, const void *msg,
			 size_t len, struct virtio_msg_wire_hdr *hdr)
{
	size_t hdr_size = virtio_msg_wire_hdr_size(format);
	const u8 *p = msg;

	if (len < hdr_size)
		return -EINVAL;

	/* Reserved type bits must be ignored by the receiver. */
	hdr->type = p[0] & (VIRTIO_MSG_TYPE_RESPONSE | VIRTIO_MSG_TYPE_BUS);
	hdr->msg_id = p[1];
	hdr->dev_num = get_unaligned_le16(p + 2);
	if (format == VIRTIO_MSG_WIRE_FORMAT_RFC1) {
		hdr->token = VIRTIO_MSG_TOKEN_EVENT;
		hdr->msg_size = get_unaligned_le16(p + 4);
	} else {
		hdr->token = get_unaligned_le16(p + 4);
		hdr->msg_size = get_unaligned_le16(p + 6);
	}

	if (hdr->msg_size < hdr_size || hdr->msg_size > len)
		return -EINVAL;
	return 0;
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_wire_peek, "VIRTIO_MSG");

/**
 * virtio_msg_wire_put_hdr - write a header in the wire format
 * @format: wire format of the bus
 * @msg: at least virtio_msg_wire_hdr_size() bytes
 * @hdr: the fields; the token is dropped by formats that have none
 *
 * For bus drivers that build their own bus messages.
 */
void virtio_msg_wire_put_hdr(enum virtio_msg_wire_format format, void *msg,
			     const struct virtio_msg_wire_hdr *hdr)
{
	u8 *p = msg;

	p[0] = hdr->type;
	p[1] = hdr->msg_id;
	put_unaligned_le16(hdr->dev_num, p + 2);
	if (format == VIRTIO_MSG_WIRE_FORMAT_RFC1) {
		put_unaligned_le16(hdr->msg_size, p + 4);
	} else {
		put_unaligned_le16(hdr->token, p + 4);
		put_unaligned_le16(hdr->msg_size, p + 6);
	}
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_wire_put_hdr, "VIRTIO_MSG");

/**
 * virtio_msg_wire_msg_size - the msg_size a header claims, unchecked
 * @format: wire format of the bus
 * @msg: at least virtio_msg_wire_hdr_size() bytes
 *
 * For transports that learn a message's length only from the message
 * itself (FF-A notifications carry no length): the caller must bound it.
 */
u16 virtio_msg_wire_msg_size(enum virtio_msg_wire_format format,
			     const void *msg)
{
	return get_unaligned_le16((const u8 *)msg +
				  virtio_msg_wire_hdr_size(format) - 2);
}
EXPORT_SYMBOL_NS_GPL(virtio_msg_wire_msg_size, "VIRTIO_MSG");

/**
 * virtio_msg_wire_encode - convert a canonical message to the wire format
 * @format: wire format of the bus
 * @msg: canonical message; msg_size must be right
 * @wire: output buffer
 * @wire_size: size of @wire, normally the bus's max_msg_size
 *
 * Return: bytes written, or -EMSGSIZE when the message does not fit.
 */
ssize_t virtio_msg_wire_encode(enum virtio_msg_wire_format format,
			       const struct virtio_msg_header *msg,
			       void *wire, size_t wire_size)
{
	size_t size = le16_to_cpu(msg->msg_size);
	const u8 *payload = (const u8 *)(msg + 1);
	size_t plen = size - sizeof(*msg);
	struct virtio_msg_wire_hdr hdr;
	u8 *out = wire;
	size_t out_size;

	if (format != VIRTIO_MSG_WIRE_FORMAT_RFC1) {
		if (size > wire_size)
			return -EMSGSIZE;
		memcpy(wire, msg, size);
		return size;
	}

	out_size = RFC1_HDR_SIZE + plen;
	if (virtio_msg_has_vqueue(msg->type, msg->msg_id) &&
	    plen >= RFC1_VQUEUE_ADDRS + VQUEUE_RESERVED_SIZE)
		out_size -= VQUEUE_RESERVED_SIZE;
	if (out_size > wire_size)
		return -EMSGSIZE;

	hdr.type = msg->type;
	hdr.msg_id = msg->msg_id;
	hdr.dev_num = le16_to_cpu(msg->dev_num);
	hdr.token = le16_to_cpu(msg->token);
	hdr.msg_size = out_size;
	virtio_msg_wire_put_hdr(format, out, &hdr);
	out += RFC1_HDR_SIZE;

	if (out_size != RFC1_HDR_SIZE + plen) {
		memcpy(out, payload, RFC1_VQUEUE_ADDRS);
		memcpy(out + RFC1_VQUEUE_ADDRS,
		       payload + RFC1_VQUEUE_ADDRS + VQUEUE_RESERVED_SIZE,
		       plen - RFC1_VQUEUE_ADDRS - VQUEUE_RESERVED_SIZE);
	} else {
		memcpy(out, payload, plen);
	}
	return out_size;
}

static ssize_t __virtio_msg_wire_decode(enum virtio_msg_wire_format format,
					const void *wire, size_t len,
					struct virtio_msg_header *msg,
					size_t msg_size, bool truncate)
{
	size_t hdr_size = virtio_msg_wire_hdr_size(format);
	struct virtio_msg_wire_hdr hdr;
	const u8 *payload = (const u8 *)wire + hdr_size;
	u8 *out = (u8 *)(msg + 1);
	size_t plen, size;
	bool widen;
	int ret;

	ret = virtio_msg_wire_peek(format, wire, len, &hdr);
	if (ret)
		return ret;

	plen = hdr.msg_size - hdr_size;
	widen = format == VIRTIO_MSG_WIRE_FORMAT_RFC1 &&
		virtio_msg_has_vqueue(hdr.type, hdr.msg_id) &&
		plen >= RFC1_VQUEUE_ADDRS;
	size = sizeof(*msg) + plen + (widen ? VQUEUE_RESERVED_SIZE : 0);
	if (size > msg_size && truncate && !widen && msg_size >= sizeof(*msg)) {
		plen = msg_size - sizeof(*msg);
		size = msg_size;
	}
	if (size > msg_size || size > VIRTIO_MSG_MAX_SIZE)
		return -EMSGSIZE;

	msg->type = hdr.type;
	msg->msg_id = hdr.msg_id;
	msg->dev_num = cpu_to_le16(hdr.dev_num);
	msg->token = cpu_to_le16(hdr.token);
	msg->msg_size = cpu_to_le16(size);

	if (widen) {
		memcpy(out, payload, RFC1_VQUEUE_ADDRS);
		memset(out + RFC1_VQUEUE_ADDRS, 0, VQUEUE_RESERVED_SIZE);
		memcpy(out + RFC1_VQUEUE_ADDRS + VQUEUE_RESERVED_SIZE,
		       payload + RFC1_VQUEUE_ADDRS, plen - RFC1_VQUEUE_ADDRS);
	} else {
		memcpy(out, payload, plen);
	}
	return size;
}

/**
 * virtio_msg_wire_decode - convert a wire message to the canonical layout
 * @format: wire format of the bus
 * @wire: the message as received; untrusted
 * @len: bytes received
 * @msg: output buffer
 * @msg_size: size of @msg
 *
 * Padding after msg_size is dropped.
 *
 * Return: canonical size, -EINVAL for a malformed header, or -EMSGSIZE.
 */
ssize_t virtio_msg_wire_decode(enum virtio_msg_wire_format format,
			       const void *wire, size_t len,
			       struct virtio_msg_header *msg, size_t msg_size)
{
	return __virtio_msg_wire_decode(format, wire, len, msg, msg_size, false);
}

/**
 * virtio_msg_wire_decode_head - decode a message's header and leading payload
 * @format: wire format of the bus
 * @wire: the message as received; untrusted
 * @len: bytes received
 * @msg: output buffer
 * @msg_size: size of @msg
 *
 * For messages whose trailing data the reader does not need: a payload
 * longer than @msg has room for is cut, and msg_size says what was kept.
 *
 * Return: canonical size kept, or a negative errno.
 */
ssize_t virtio_msg_wire_decode_head(enum virtio_msg_wire_format format,
				    const void *wire, size_t len,
				    struct virtio_msg_header *msg,
				    size_t msg_size)
{
	return __virtio_msg_wire_decode(format, wire, len, msg, msg_size, true);
}
