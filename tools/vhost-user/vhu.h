/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * virtio-msg-vhost-user: the vhost-user front-end side (the role QEMU plays
 * towards a vhost-user device backend), as QEMU's
 * docs/interop/vhost-user.rst specifies it.  Plain socket code, no
 * virtio-msg in here, so the unit tests can drive it against a fake backend
 * over a socketpair.
 */
#ifndef VHU_H
#define VHU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Front-end requests */
enum {
	VHU_GET_FEATURES = 1,
	VHU_SET_FEATURES = 2,
	VHU_SET_OWNER = 3,
	VHU_RESET_OWNER = 4,
	VHU_SET_MEM_TABLE = 5,
	VHU_SET_VRING_NUM = 8,
	VHU_SET_VRING_ADDR = 9,
	VHU_SET_VRING_BASE = 10,
	VHU_GET_VRING_BASE = 11,
	VHU_SET_VRING_KICK = 12,
	VHU_SET_VRING_CALL = 13,
	VHU_SET_VRING_ERR = 14,
	VHU_GET_PROTOCOL_FEATURES = 15,
	VHU_SET_PROTOCOL_FEATURES = 16,
	VHU_GET_QUEUE_NUM = 17,
	VHU_SET_VRING_ENABLE = 18,
	VHU_SET_BACKEND_REQ_FD = 21,
	VHU_GET_CONFIG = 24,
	VHU_SET_CONFIG = 25,
	VHU_RESET_DEVICE = 34,
	VHU_SET_STATUS = 39,
};

/* Backend requests (on the SET_BACKEND_REQ_FD channel) */
#define VHU_BACKEND_CONFIG_CHANGE_MSG	2

/* Protocol feature bits */
#define VHU_PF_MQ		0
#define VHU_PF_REPLY_ACK	3
#define VHU_PF_BACKEND_REQ	5
#define VHU_PF_CONFIG		9
#define VHU_PF_RESET_DEVICE	13
#define VHU_PF_STATUS		16

/* The virtio feature bit that announces protocol features. */
#define VHU_F_PROTOCOL_FEATURES	30
/* vhost's dirty-log feature: never offered to a driver. */
#define VHU_F_LOG_ALL		26

#define VHU_VERSION		0x1
#define VHU_FLAG_REPLY		(1u << 2)
#define VHU_FLAG_NEED_REPLY	(1u << 3)
#define VHU_HDR_SIZE		12
#define VHU_MAX_PAYLOAD		4096
#define VHU_CONFIG_HDR		12	/* offset, size, flags */
#define VHU_CONFIG_MAX		256

/* Protocol features this front end can use. */
#define VHU_PF_WANTED	((1ULL << VHU_PF_MQ) | (1ULL << VHU_PF_REPLY_ACK) | \
			 (1ULL << VHU_PF_BACKEND_REQ) | (1ULL << VHU_PF_CONFIG) | \
			 (1ULL << VHU_PF_RESET_DEVICE) | (1ULL << VHU_PF_STATUS))

struct vhu_conn {
	int fd;
	int timeout_ms;		/* for each reply */
	uint64_t features;	/* GET_FEATURES */
	uint64_t protocol_features;	/* negotiated */
	uint32_t queue_num;	/* GET_QUEUE_NUM, 0 without MQ */
	bool dead;		/* out of step or closed: every call fails */
	char err[160];		/* why the last call failed */
};

/* A received message, header decoded. */
struct vhu_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	uint8_t payload[VHU_MAX_PAYLOAD];
};

static inline bool vhu_has_pf(const struct vhu_conn *c, unsigned int bit)
{
	return c->protocol_features & (1ULL << bit);
}

const char *vhu_request_name(uint32_t req);

/* Send one message (with up to 8 fds attached); 0 or -errno. */
int vhu_send(struct vhu_conn *c, uint32_t req, uint32_t flags, const void *payload,
	     uint32_t size, const int *fds, unsigned int nfds);
/* Receive one message within timeout_ms; 0, or -errno (-EPROTO: malformed). */
int vhu_recv(struct vhu_conn *c, struct vhu_msg *m);

/*
 * GET_FEATURES, GET/SET_PROTOCOL_FEATURES (those of VHU_PF_WANTED offered),
 * GET_QUEUE_NUM with MQ, SET_OWNER.  0 or -errno with c->err set.
 */
int vhu_handshake(struct vhu_conn *c);

int vhu_set_u64(struct vhu_conn *c, uint32_t req, uint64_t val);
int vhu_set_u64_fd(struct vhu_conn *c, uint32_t req, uint64_t val, int fd);
int vhu_simple(struct vhu_conn *c, uint32_t req);	/* no payload */
int vhu_set_state(struct vhu_conn *c, uint32_t req, uint32_t index, uint32_t num);
int vhu_get_vring_base(struct vhu_conn *c, uint32_t index, uint32_t *num);
int vhu_set_vring_addr(struct vhu_conn *c, uint32_t index, uint64_t desc, uint64_t used,
		       uint64_t avail);
int vhu_set_mem_table(struct vhu_conn *c, uint64_t gpa, uint64_t size, uint64_t uaddr,
		      uint64_t mmap_offset, int fd);
/* Reads size bytes of config space at offset; -ENOTSUP if the backend cannot. */
int vhu_get_config(struct vhu_conn *c, uint32_t offset, uint32_t size, uint8_t *buf);
int vhu_set_config(struct vhu_conn *c, uint32_t offset, uint32_t size, const uint8_t *buf);

#endif /* VHU_H */
