/* SPDX-License-Identifier: ((GPL-2.0-only WITH Linux-syscall-note) OR BSD-3-Clause) */
/*
 * virtio-msg transport: wire format, revision 1.
 *
 * These are the messages of the virtio-msg transport as the current
 * specification draft defines them (8-byte header with a token, 64-bit
 * VQUEUE fields on 8-byte boundaries).  Everything is little-endian.
 *
 * A bus may instead be switched to the 6-byte header of the RFC v1 kernel
 * series; that layout is private to the kernel's codec and is described to
 * user space only through VIRTIO_MSG_WIRE_* in virtio_msg_loopback.h.
 */
#ifndef _UAPI_LINUX_VIRTIO_MSG_H
#define _UAPI_LINUX_VIRTIO_MSG_H

#include <linux/types.h>

#define VIRTIO_MSG_REVISION_1		1

/* virtio_msg_header.type */
#define VIRTIO_MSG_TYPE_RESPONSE	(1 << 0)
#define VIRTIO_MSG_TYPE_BUS		(1 << 1)

/* Transport messages (header.type bit 1 clear) */
#define VIRTIO_MSG_GET_DEVICE_INFO	0x02
#define VIRTIO_MSG_GET_DEVICE_FEATURES	0x03
#define VIRTIO_MSG_SET_DRIVER_FEATURES	0x04
#define VIRTIO_MSG_GET_CONFIG		0x05
#define VIRTIO_MSG_SET_CONFIG		0x06
#define VIRTIO_MSG_GET_DEVICE_STATUS	0x07
#define VIRTIO_MSG_SET_DEVICE_STATUS	0x08
#define VIRTIO_MSG_GET_VQUEUE		0x09
#define VIRTIO_MSG_SET_VQUEUE		0x0a
#define VIRTIO_MSG_RESET_VQUEUE		0x0b
#define VIRTIO_MSG_GET_SHM		0x0c
#define VIRTIO_MSG_EVENT_CONFIG		0x40
#define VIRTIO_MSG_EVENT_AVAIL		0x41
#define VIRTIO_MSG_EVENT_USED		0x42

/* Bus messages (header.type bit 1 set) */
#define VIRTIO_MSG_BUS_GET_DEVICES	0x02
#define VIRTIO_MSG_BUS_PING		0x03
#define VIRTIO_MSG_BUS_EVENT_DEVICE	0x40

/* Message ids 0x40-0x7f and 0xc0-0xff are events: they have no response. */
#define VIRTIO_MSG_ID_EVENT_BIT		(1 << 6)

#define VIRTIO_MSG_HEADER_SIZE		8
/* The largest fixed-size message (SET_VQUEUE, GET_VQUEUE response). */
#define VIRTIO_MSG_FIXED_MAX_SIZE	48
/* msg_size is 16 bits wide. */
#define VIRTIO_MSG_MAX_SIZE		65535

/* Events carry token 0; requests carry a non-zero token. */
#define VIRTIO_MSG_TOKEN_EVENT		0

struct virtio_msg_header {
	__u8	type;
	__u8	msg_id;
	__le16	dev_num;
	__le16	token;
	__le16	msg_size;	/* header + payload, in bytes */
};

struct virtio_msg_get_device_info_resp {
	__le32	device_id;
	__le32	vendor_id;
	__le32	num_feature_bits;	/* a multiple of 32 */
	__le32	config_size;
	__le32	max_virtqueues;
	__le16	admin_vq_start;
	__le16	admin_vq_count;
};

/* Feature bits travel in 32-bit blocks. */
struct virtio_msg_features {
	__le32	block_index;
	__le32	num_blocks;
	__le32	features[];
};

struct virtio_msg_get_config {
	__le32	offset;
	__le32	length;
};

/* GET_CONFIG response, SET_CONFIG request and response. */
struct virtio_msg_config {
	__le32	generation;
	__le32	offset;
	__le32	length;
	__u8	data[];
};

struct virtio_msg_status {
	__le32	status;
};

struct virtio_msg_vqueue_index {
	__le32	index;
};

/* GET_VQUEUE response and SET_VQUEUE request. */
struct virtio_msg_vqueue {
	__le32	index;
	__le32	max_size;	/* GET_VQUEUE response only */
	__le32	size;
	__le32	reserved;
	__le64	desc_addr;
	__le64	driver_addr;
	__le64	device_addr;
};

struct virtio_msg_get_shm_resp {
	__le32	index;
	__le32	length;
	__le32	address;
};

struct virtio_msg_event_config {
	__le32	device_status;
	__le32	generation;
	__le32	offset;
	__le32	length;
	__u8	data[];
};

#define VIRTIO_MSG_EVENT_AVAIL_WRAP		(1U << 31)
#define VIRTIO_MSG_EVENT_AVAIL_OFFSET_MASK	0x7fffffffU

struct virtio_msg_event_avail {
	__le32	vq_index;
	__le32	next_offset;	/* bits 30:0 offset, bit 31 wrap */
};

struct virtio_msg_event_used {
	__le32	vq_index;
};

struct virtio_msg_bus_get_devices {
	__le16	offset;
	__le16	count;		/* a multiple of 8 */
};

struct virtio_msg_bus_get_devices_resp {
	__le16	offset;
	__le16	count;
	__le16	next_offset;	/* 0: no more devices */
	__u8	bitmap[];	/* count / 8 bytes, LSB first */
};

#define VIRTIO_MSG_BUS_DEV_READY	1
#define VIRTIO_MSG_BUS_DEV_REMOVED	2

struct virtio_msg_bus_event_device {
	__le16	dev_num;
	__le16	dev_state;
};

struct virtio_msg_bus_ping {
	__le32	data;
};

#endif /* _UAPI_LINUX_VIRTIO_MSG_H */
