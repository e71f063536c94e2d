/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * virtio-msg trace events: what crosses the bus, with the kernel's clock.
 *
 *   trace-cmd record -e virtio_msg ...
 *   perf record -e 'virtio_msg:*' ...
 *
 * bus is the bus's number (virtio-msg-busN), dev the device number on it.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM virtio_msg

#if !defined(_VIRTIO_MSG_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _VIRTIO_MSG_TRACE_H

#include <linux/tracepoint.h>

#define vmsg_trace_msg_name(id)					\
	__print_symbolic(id,					\
	{ VIRTIO_MSG_GET_DEVICE_INFO,	"GET_DEVICE_INFO" },	\
	{ VIRTIO_MSG_GET_DEVICE_FEATURES, "GET_DEVICE_FEATURES" }, \
	{ VIRTIO_MSG_SET_DRIVER_FEATURES, "SET_DRIVER_FEATURES" }, \
	{ VIRTIO_MSG_GET_CONFIG,	"GET_CONFIG" },		\
	{ VIRTIO_MSG_SET_CONFIG,	"SET_CONFIG" },		\
	{ VIRTIO_MSG_GET_DEVICE_STATUS,	"GET_DEVICE_STATUS" },	\
	{ VIRTIO_MSG_SET_DEVICE_STATUS,	"SET_DEVICE_STATUS" },	\
	{ VIRTIO_MSG_GET_VQUEUE,	"GET_VQUEUE" },		\
	{ VIRTIO_MSG_SET_VQUEUE,	"SET_VQUEUE" },		\
	{ VIRTIO_MSG_RESET_VQUEUE,	"RESET_VQUEUE" },	\
	{ VIRTIO_MSG_GET_SHM,		"GET_SHM" },		\
	{ VIRTIO_MSG_EVENT_CONFIG,	"EVENT_CONFIG" },	\
	{ VIRTIO_MSG_EVENT_AVAIL,	"EVENT_AVAIL" },	\
	{ VIRTIO_MSG_EVENT_USED,	"EVENT_USED" })

/*
 * One request's life: sent (value: its length), answered (value: the
 * latency in ns, kernel clock) or not answered in time (value: the
 * timeout in ms, after which the device is broken).
 */
DECLARE_EVENT_CLASS(virtio_msg_request_class,
	TP_PROTO(int bus, u16 dev, u8 msg_id, u16 token, u64 value),
	TP_ARGS(bus, dev, msg_id, token, value),
	TP_STRUCT__entry(
		__field(int, bus)
		__field(u16, dev)
		__field(u16, token)
		__field(u8, msg_id)
		__field(u64, value)
	),
	TP_fast_assign(
		__entry->bus = bus;
		__entry->dev = dev;
		__entry->token = token;
		__entry->msg_id = msg_id;
		__entry->value = value;
	),
	TP_printk("bus=%d dev=%u %s token=%u len=%llu", __entry->bus,
		  __entry->dev, vmsg_trace_msg_name(__entry->msg_id),
		  __entry->token, __entry->value)
);

/* The class's own format (len=) is the request's. */
DEFINE_EVENT(virtio_msg_request_class, virtio_msg_request,
	TP_PROTO(int bus, u16 dev, u8 msg_id, u16 token, u64 value),
	TP_ARGS(bus, dev, msg_id, token, value)
);

DEFINE_EVENT_PRINT(virtio_msg_request_class, virtio_msg_response,
	TP_PROTO(int bus, u16 dev, u8 msg_id, u16 token, u64 value),
	TP_ARGS(bus, dev, msg_id, token, value),
	TP_printk("bus=%d dev=%u %s token=%u latency_ns=%llu", __entry->bus,
		  __entry->dev, vmsg_trace_msg_name(__entry->msg_id),
		  __entry->token, __entry->value)
);

DEFINE_EVENT_PRINT(virtio_msg_request_class, virtio_msg_timeout,
	TP_PROTO(int bus, u16 dev, u8 msg_id, u16 token, u64 value),
	TP_ARGS(bus, dev, msg_id, token, value),
	TP_printk("bus=%d dev=%u %s token=%u timeout_ms=%llu", __entry->bus,
		  __entry->dev, vmsg_trace_msg_name(__entry->msg_id),
		  __entry->token, __entry->value)
);

/*
 * Device events: EVENT_USED / EVENT_CONFIG received (index: the queue),
 * or EVENT_AVAIL sent (a kick; eventfd: by the queue's kick eventfd
 * instead of a message).
 */
TRACE_EVENT(virtio_msg_event,
	TP_PROTO(int bus, u16 dev, u8 msg_id, u32 index, bool eventfd),
	TP_ARGS(bus, dev, msg_id, index, eventfd),
	TP_STRUCT__entry(
		__field(int, bus)
		__field(u32, index)
		__field(u16, dev)
		__field(u8, msg_id)
		__field(bool, eventfd)
	),
	TP_fast_assign(
		__entry->bus = bus;
		__entry->index = index;
		__entry->dev = dev;
		__entry->msg_id = msg_id;
		__entry->eventfd = eventfd;
	),
	TP_printk("bus=%d dev=%u %s index=%u%s", __entry->bus, __entry->dev,
		  vmsg_trace_msg_name(__entry->msg_id),
		  __entry->index, __entry->eventfd ? " eventfd" : "")
);

/* A message from the device side was refused (late, unsolicited, bad). */
TRACE_EVENT(virtio_msg_dropped,
	TP_PROTO(int bus, u16 dev, u8 type, u8 msg_id, u16 token, int err),
	TP_ARGS(bus, dev, type, msg_id, token, err),
	TP_STRUCT__entry(
		__field(int, bus)
		__field(int, err)
		__field(u16, dev)
		__field(u16, token)
		__field(u8, type)
		__field(u8, msg_id)
	),
	TP_fast_assign(
		__entry->bus = bus;
		__entry->err = err;
		__entry->dev = dev;
		__entry->token = token;
		__entry->type = type;
		__entry->msg_id = msg_id;
	),
	TP_printk("bus=%d dev=%u type=%#x msg_id=%#x token=%u err=%d",
		  __entry->bus, __entry->dev, __entry->type, __entry->msg_id,
		  __entry->token, __entry->err)
);

#endif /* _VIRTIO_MSG_TRACE_H */

/* Out of tree: define_trace.h finds this file through -I$(src)/src. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE virtio_msg_trace
#include <trace/define_trace.h>
