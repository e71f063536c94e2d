/* SPDX-License-Identifier: ((GPL-2.0-only WITH Linux-syscall-note) OR BSD-3-Clause) */
/*
 * virtio-msg bus over Arm FF-A (Arm DEN0153): bus messages.
 *
 * Bus messages use the virtio-msg header of the bus's wire format with
 * VIRTIO_MSG_TYPE_BUS set and device number 0.  Requests get exactly one
 * response, matched by message id (and token, in the spec format).
 *
 * Transport on FF-A, as this driver uses it:
 *  - direct requests (FFA_MSG_SEND_DIRECT_REQ2): one message in the 112
 *    payload bytes; the direct response carries one message (a response,
 *    an event, or the answer to EVENT_POLL), or msg_size 0 for "nothing";
 *  - indirect messages (FFA_MSG_SEND2) in both directions; the device's
 *    arrive through the FF-A framework notification callback;
 *  - EVENT_POLL: the direct response is one pending message, or the
 *    EVENT_POLL response without payload when nothing is pending.
 *
 * Bus addresses: area_id << 48 | offset into the area (RFC v1: << 56).
 */
#ifndef _UAPI_LINUX_VIRTIO_MSG_FFA_H
#define _UAPI_LINUX_VIRTIO_MSG_FFA_H

#include <linux/types.h>

/* Partition UUID of a virtio-msg device partition */
#define VIRTIO_MSG_FFA_UUID_STR	"c66028b5-2498-4aa1-9de7-77da6122abf0"

#define VIRTIO_MSG_FFA_BUS_VERSION		0x80
#define VIRTIO_MSG_FFA_BUS_AREA_SHARE		0x81
#define VIRTIO_MSG_FFA_BUS_AREA_UNSHARE		0x82
#define VIRTIO_MSG_FFA_BUS_RESET		0x83	/* RFC v1: AREA_RELEASE */
#define VIRTIO_MSG_FFA_BUS_EVENT_POLL		0x84
#define VIRTIO_MSG_FFA_BUS_EVENT_CONFIGURE	0x85
#define VIRTIO_MSG_FFA_BUS_FIFO_CONFIGURE	0x86
#define VIRTIO_MSG_FFA_BUS_ERROR		0x87
/* Events from the device */
#define VIRTIO_MSG_FFA_BUS_EVENT_AREA_RELEASE	0xc0

#define VIRTIO_MSG_FFA_VERSION_1_0		0x00010000
#define VIRTIO_MSG_FFA_VERSION_RFC1		0x1

/* Results */
#define VIRTIO_MSG_FFA_RESULT_OK		0
#define VIRTIO_MSG_FFA_RESULT_ERROR		1
#define VIRTIO_MSG_FFA_RESULT_BUSY		2

/* bus_features of the VERSION response, from the device's point of view */
#define VIRTIO_MSG_FFA_F_DIRECT_RX		(1U << 0)
#define VIRTIO_MSG_FFA_F_DIRECT_TX		(1U << 1)
#define VIRTIO_MSG_FFA_F_INDIRECT_RX		(1U << 2)
#define VIRTIO_MSG_FFA_F_INDIRECT_TX		(1U << 3)
#define VIRTIO_MSG_FFA_F_NOTIF_RX		(1U << 4)
#define VIRTIO_MSG_FFA_F_NOTIF_TX		(1U << 5)
#define VIRTIO_MSG_FFA_F_FIFO			(1U << 6)

/* RFC v1 features of the VERSION response */
#define VIRTIO_MSG_FFA_RFC1_F_INDIRECT		(1U << 0)
#define VIRTIO_MSG_FFA_RFC1_F_DIRECT		(1U << 1)

/* EVENT_CONFIGURE types */
#define VIRTIO_MSG_FFA_EVENT_POLL		0
#define VIRTIO_MSG_FFA_EVENT_NOTIF		1
#define VIRTIO_MSG_FFA_EVENT_INDIRECT		2
#define VIRTIO_MSG_FFA_EVENT_FIFO		3

#define VIRTIO_MSG_FFA_AREA_ID_SHIFT		48
#define VIRTIO_MSG_FFA_RFC1_AREA_ID_SHIFT	56

/* Largest message carried by a direct request or response */
#define VIRTIO_MSG_FFA_DIRECT_MAX_SIZE		104

/* AREA_SHARE attributes */
#define VIRTIO_MSG_FFA_AREA_ATTR_SHARE		0
#define VIRTIO_MSG_FFA_AREA_ATTR_LEND		(1U << 0)

struct virtio_msg_ffa_version {
	__le32	bus_version;
	__le32	transport_revision;
};

struct virtio_msg_ffa_version_resp {
	__le32	bus_version;
	__le32	transport_revision;
	__le32	transport_features;
	__le32	bus_features;
	__le16	area_num;
} __attribute__((packed));

/* RFC v1 */
struct virtio_msg_ffa_rfc1_version {
	__le32	driver_version;
};

struct virtio_msg_ffa_rfc1_version_resp {
	__le32	device_version;
	__le32	features;
	__le16	num;
} __attribute__((packed));

struct virtio_msg_ffa_area_share {
	__le16	area_id;
	__le64	mem_handle;
	__le64	tag;
	__le32	count;		/* pages */
	__le32	attrs;
} __attribute__((packed));

/* AREA_SHARE and AREA_UNSHARE responses (RFC v1: area_id only) */
struct virtio_msg_ffa_area_resp {
	__le16	area_id;
	__le16	result;
};

struct virtio_msg_ffa_area {
	__le16	area_id;
};

/* RESET and EVENT_CONFIGURE responses */
struct virtio_msg_ffa_result {
	__le16	result;
};

struct virtio_msg_ffa_event_configure {
	__u8	type;
	__u8	reserved;
	__le16	notify_id;
};

struct virtio_msg_ffa_error {
	__le16	original_msg_id;
};

#endif /* _UAPI_LINUX_VIRTIO_MSG_FFA_H */
