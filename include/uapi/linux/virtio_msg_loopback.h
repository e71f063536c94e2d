/* SPDX-License-Identifier: ((GPL-2.0-only WITH Linux-syscall-note) OR BSD-3-Clause) */
/*
 * virtio-msg loopback bus: /dev/virtio-msg-lb control interface.
 *
 * A user-space process (the "backend") implements virtio devices for the
 * kernel running it:
 *
 *  1. VIRTIO_MSG_LB_IOC_INFO tells it the wire format, the name of the
 *     message node (/dev/virtio-msg-N) and the DMA pool geometry.
 *  2. mmap() of /dev/virtio-msg-lb at offset 0 maps the DMA pool (the node
 *     seeks like a file of the pool's size, for mappers that check).  Every
 *     address the kernel puts into a virtqueue or a SET_VQUEUE message is a
 *     bus address: pool offset = bus address - bus_addr_base.  When the
 *     last reader of /dev/virtio-msg-N closes it (the backend is gone),
 *     every mapping of the pool, in any process, is revoked first: an
 *     access through it raises SIGBUS.  Mappings made afterwards work.
 *  3. VIRTIO_MSG_LB_IOC_ADD creates a device with a device number; the
 *     kernel then probes it with transport messages read from
 *     /dev/virtio-msg-N, and the backend write()s one response per request,
 *     and events (EVENT_USED, EVENT_CONFIG) whenever it likes.
 *  4. VIRTIO_MSG_LB_IOC_REMOVE removes it again.
 *
 * read() returns exactly one message; write() takes exactly one message
 * (bytes after msg_size, up to max_msg_size, are ignored).
 *
 * Data-path notifications can bypass the message node, per virtqueue, the
 * way vhost's kick and call fds do (VIRTIO_MSG_LB_F_VRING_FDS):
 * VIRTIO_MSG_LB_IOC_SET_VRING_KICK binds an eventfd that the kernel signals
 * where it would send EVENT_AVAIL for that queue (no notification data: the
 * backend reads the avail index); VIRTIO_MSG_LB_IOC_SET_VRING_CALL binds an
 * eventfd the backend signals instead of writing EVENT_USED (which stays
 * accepted).  fd -1 unbinds.  A binding can be made as soon as the device
 * exists (from the thread serving the message node too, e.g. on
 * SET_VQUEUE), lasts across resets until it is replaced or unbound, and
 * goes with the device.  Control messages always use the message node.
 * Errors: ENODEV (no such device), EBADF (no such fd), EINVAL (not an
 * eventfd, index of 1024 or more, flags set).
 */
#ifndef _UAPI_LINUX_VIRTIO_MSG_LOOPBACK_H
#define _UAPI_LINUX_VIRTIO_MSG_LOOPBACK_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Wire formats (virtio_msg_lb_info.wire_format) */
#define VIRTIO_MSG_WIRE_SPEC	0	/* 8-byte header with token (default) */
#define VIRTIO_MSG_WIRE_RFC1	1	/* 6-byte header of the RFC v1 series */

struct virtio_msg_lb_dev {
	__u32	dev_num;	/* 0 ... 65535 */
	__u32	flags;		/* must be 0 */
	__u32	reserved[2];	/* must be 0 */
};

struct virtio_msg_lb_info {
	__u64	pool_size;		/* bytes mappable at offset 0 */
	__u64	bus_addr_base;		/* bus address of pool offset 0 */
	__u32	wire_format;		/* VIRTIO_MSG_WIRE_* */
	__u32	max_msg_size;		/* largest message either side may send */
	__u32	num_devices;		/* devices currently on the bus */
	__u32	max_devices;
	char	msg_dev_name[32];	/* e.g. "virtio-msg-0", NUL-terminated */
	__u64	pool_in_use;		/* bytes of the pool allocated now */
	__u32	features;		/* VIRTIO_MSG_LB_F_* */
	__u32	reserved[5];
};

/* virtio_msg_lb_info.features */
#define VIRTIO_MSG_LB_F_VRING_FDS	(1U << 0)	/* SET_VRING_KICK/_CALL */

struct virtio_msg_lb_vring_fd {
	__u32	dev_num;
	__u32	index;		/* virtqueue index */
	__s32	fd;		/* an eventfd, or -1 to unbind */
	__u32	flags;		/* must be 0 */
};

#define VIRTIO_MSG_LB_IOC_MAGIC		'P'
#define VIRTIO_MSG_LB_IOC_ADD		_IOW(VIRTIO_MSG_LB_IOC_MAGIC, 0, struct virtio_msg_lb_dev)
#define VIRTIO_MSG_LB_IOC_REMOVE	_IOW(VIRTIO_MSG_LB_IOC_MAGIC, 1, struct virtio_msg_lb_dev)
#define VIRTIO_MSG_LB_IOC_INFO		_IOR(VIRTIO_MSG_LB_IOC_MAGIC, 2, struct virtio_msg_lb_info)
#define VIRTIO_MSG_LB_IOC_SET_VRING_KICK \
	_IOW(VIRTIO_MSG_LB_IOC_MAGIC, 3, struct virtio_msg_lb_vring_fd)
#define VIRTIO_MSG_LB_IOC_SET_VRING_CALL \
	_IOW(VIRTIO_MSG_LB_IOC_MAGIC, 4, struct virtio_msg_lb_vring_fd)

/*
 * The numbers of the RFC v1 series, kept for existing tools: direction
 * "none" although a struct { unsigned int dev_id; } is read.
 */
#define VIRTIO_MSG_LB_IOC_ADD_RFC1	_IOC(_IOC_NONE, VIRTIO_MSG_LB_IOC_MAGIC, 0, 4)
#define VIRTIO_MSG_LB_IOC_REMOVE_RFC1	_IOC(_IOC_NONE, VIRTIO_MSG_LB_IOC_MAGIC, 1, 4)

#endif /* _UAPI_LINUX_VIRTIO_MSG_LOOPBACK_H */
