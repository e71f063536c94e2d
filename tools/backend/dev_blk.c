// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-blk (device id 2) backed by a regular file or a block device.
 *
 * One request queue, or num_queues with VIRTIO_BLK_F_MQ (each served by its
 * own worker thread: everything per request lives in per-queue scratch).
 * A request is a byte stream, however the driver splits it into descriptors
 * (VIRTIO_F_VERSION_1 implies any layout):
 *
 *   readable:  struct virtio_blk_outhdr (16 bytes) [+ data for OUT]
 *   writable:  [data for IN / GET_ID] + status byte (the last byte)
 *
 * Data moves with preadv/pwritev straight between the file and the pool.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <linux/fs.h>
#include <linux/virtio_blk.h>

#include "backend.h"

#define VIRTIO_ID_BLOCK		2
#define SECTOR_SHIFT		9
#define SECTOR_SIZE		(1u << SECTOR_SHIFT)
/*
 * Config space up to and including num_queues: everything the offered
 * features make the driver read.  Later fields belong to features we do not
 * offer.
 */
#define BLK_CONFIG_SIZE		offsetof(struct virtio_blk_config, max_discard_sectors)

_Static_assert(BLK_CONFIG_SIZE <= VMSG_CONFIG_MAX, "config space");
_Static_assert(sizeof(struct virtio_blk_outhdr) == 16, "outhdr");

struct blk_priv {
	int fd;
	bool read_only;
	uint64_t capacity;		/* in 512-byte sectors */
	char serial[VIRTIO_BLK_ID_BYTES];
	/* Per queue: one entry per possible segment. */
	struct iovec *iov[VMSG_MAX_VQS];
	unsigned int iov_cap;
};

/* Build iovecs for len bytes of segs, starting offset bytes in. */
static unsigned int build_iov(const struct vq_seg *segs, unsigned int n, uint64_t offset,
			      uint64_t len, struct iovec *iov, unsigned int cap)
{
	unsigned int i, cnt = 0;
	uint64_t chunk;

	for (i = 0; i < n && len && cnt < cap; i++) {
		if (offset >= segs[i].len) {
			offset -= segs[i].len;
			continue;
		}
		chunk = segs[i].len - offset;
		if (chunk > len)
			chunk = len;
		iov[cnt].iov_base = segs[i].ptr + offset;
		iov[cnt].iov_len = chunk;
		cnt++;
		len -= chunk;
		offset = 0;
	}
	return cnt;
}

/* preadv/pwritev the whole iovec array, across partial transfers and IOV_MAX. */
static int rw_full(int fd, bool write, struct iovec *iov, unsigned int cnt, off_t pos)
{
	ssize_t r;
	int n;

	while (cnt) {
		n = cnt > IOV_MAX ? IOV_MAX : (int)cnt;
		r = write ? pwritev(fd, iov, n, pos) : preadv(fd, iov, n, pos);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;	/* file shrank under us */
		pos += r;
		while (cnt && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

static uint8_t blk_rw(struct vmsg_device *dev, struct vmsg_vq *vq, const struct vq_chain *chain,
		      bool write, uint64_t sector, uint64_t len)
{
	struct blk_priv *priv = dev->priv;
	struct iovec *iov = priv->iov[vq->index];
	const struct vq_seg *segs;
	unsigned int n, cnt;
	uint64_t offset;
	int err;

	if (write && priv->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (len % SECTOR_SIZE || sector > priv->capacity ||
	    (len >> SECTOR_SHIFT) > priv->capacity - sector) {
		vmsg_info("device %u: %s of %llu bytes at sector %llu beyond capacity %llu",
			  dev->dev_num, write ? "write" : "read", (unsigned long long)len,
			  (unsigned long long)sector, (unsigned long long)priv->capacity);
		return VIRTIO_BLK_S_IOERR;
	}
	if (write) {
		segs = chain->segs;
		n = chain->n_out;
		offset = sizeof(struct virtio_blk_outhdr);
	} else {
		segs = chain->segs + chain->n_out;
		n = chain->n_in;
		offset = 0;
	}
	cnt = build_iov(segs, n, offset, len, iov, priv->iov_cap);
	err = rw_full(priv->fd, write, iov, cnt, (off_t)(sector << SECTOR_SHIFT));
	if (err) {
		vmsg_log("device %u: %s at sector %llu: %s", dev->dev_num, write ? "write" : "read",
			 (unsigned long long)sector, strerror(-err));
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static int64_t blk_handle_chain(struct vmsg_device *dev, struct vmsg_vq *vq,
				const struct vq_chain *chain)
{
	struct blk_priv *priv = dev->priv;
	struct virtio_blk_outhdr hdr;
	uint64_t sector, data_in;
	uint32_t type;
	uint8_t status;

	/* The header and the status byte are mandatory: otherwise a driver bug. */
	if (chain->out_len < sizeof(hdr) || chain->in_len < 1)
		return -EPROTO;
	vq_chain_read(chain, 0, &hdr, sizeof(hdr));
	type = le32toh(hdr.type);
	sector = le64toh(hdr.sector);
	data_in = chain->in_len - 1;

	switch (type) {
	case VIRTIO_BLK_T_IN:
		status = blk_rw(dev, vq, chain, false, sector, data_in);
		break;
	case VIRTIO_BLK_T_OUT:
		status = blk_rw(dev, vq, chain, true, sector, chain->out_len - sizeof(hdr));
		break;
	case VIRTIO_BLK_T_FLUSH:
		status = VIRTIO_BLK_S_OK;
		if (!priv->read_only && fdatasync(priv->fd)) {
			vmsg_log("device %u: flush: %s", dev->dev_num, strerror(errno));
			status = VIRTIO_BLK_S_IOERR;
		}
		break;
	case VIRTIO_BLK_T_GET_ID:
		vq_chain_write(chain, 0, priv->serial,
			       data_in < sizeof(priv->serial) ? data_in : sizeof(priv->serial));
		status = VIRTIO_BLK_S_OK;
		break;
	default:
		vmsg_trace("device %u: request type %u unsupported", dev->dev_num, type);
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	vq_chain_write(chain, chain->in_len - 1, &status, 1);
	/* Like QEMU: the whole writable part counts as written. */
	return (int64_t)chain->in_len;
}

static void blk_priv_free(struct blk_priv *priv)
{
	unsigned int i;

	if (priv->fd >= 0)
		close(priv->fd);
	for (i = 0; i < VMSG_MAX_VQS; i++)
		free(priv->iov[i]);
	free(priv);
}

static void blk_destroy(struct vmsg_device *dev)
{
	if (!dev->priv)
		return;
	blk_priv_free(dev->priv);
	dev->priv = NULL;
}

static const struct vmsg_device_ops blk_ops = {
	.name = "blk",
	.device_id = VIRTIO_ID_BLOCK,
	.handle_chain = blk_handle_chain,
	.destroy = blk_destroy,
};

static void put_config16(struct vmsg_device *dev, size_t off, uint16_t v)
{
	v = htole16(v);
	memcpy(dev->config + off, &v, sizeof(v));
}

static void put_config32(struct vmsg_device *dev, size_t off, uint32_t v)
{
	v = htole32(v);
	memcpy(dev->config + off, &v, sizeof(v));
}

/* Open and size the backing store. */
static int blk_open(struct blk_priv *priv, const char *path, char *err, size_t errlen)
{
	struct stat st;
	uint64_t bytes;
	int fd, e;

	fd = open(path, (priv->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "cannot open %s: %s%s", path, strerror(e),
			 !priv->read_only && (e == EROFS || e == EACCES) ?
			 " (append :ro for read-only)" : "");
		return -e;
	}
	priv->fd = fd;
	if (fstat(fd, &st)) {
		e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &bytes)) {
			e = errno;
			snprintf(err, errlen, "%s: BLKGETSIZE64: %s", path, strerror(e));
			return -e;
		}
	} else {
		snprintf(err, errlen, "%s is neither a regular file nor a block device", path);
		return -EINVAL;
	}
	/* Two backends writing one image would corrupt it. */
	if (flock(fd, (priv->read_only ? LOCK_SH : LOCK_EX) | LOCK_NB)) {
		e = errno;
		snprintf(err, errlen, "%s: %s", path, e == EWOULDBLOCK ?
			 "in use by another process (locked)" : strerror(e));
		return -e;
	}
	if (bytes % SECTOR_SIZE)
		vmsg_log("%s: size %llu is not a multiple of %u, the last %llu bytes are unused",
			 path, (unsigned long long)bytes, SECTOR_SIZE,
			 (unsigned long long)(bytes % SECTOR_SIZE));
	priv->capacity = bytes >> SECTOR_SHIFT;
	return 0;
}

struct vmsg_device *vmsg_blk_create(uint16_t dev_num, const char *path, bool read_only,
				    const struct vmsg_dev_opts *opts, char *err, size_t errlen)
{
	unsigned int i, num_queues = opts->num_queues ? opts->num_queues : 1;
	uint64_t type_features;
	struct vmsg_device *dev;
	struct blk_priv *priv;
	uint64_t cap_le;
	int ret;

	if (num_queues > VMSG_MAX_VQS) {
		snprintf(err, errlen, "%u queues, at most %u", num_queues, VMSG_MAX_VQS);
		errno = EINVAL;
		return NULL;
	}
	priv = calloc(1, sizeof(*priv));
	if (!priv) {
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	priv->fd = -1;
	priv->read_only = read_only;
	priv->iov_cap = opts->queue_size;
	for (i = 0; i < num_queues; i++) {
		priv->iov[i] = calloc(priv->iov_cap, sizeof(*priv->iov[i]));
		if (!priv->iov[i]) {
			snprintf(err, errlen, "out of memory");
			ret = -ENOMEM;
			goto fail;
		}
	}
	ret = blk_open(priv, path, err, errlen);
	if (ret)
		goto fail;
	/* Serial for /dev/disk/by-id; NUL padded as GET_ID requires. */
	snprintf(priv->serial, sizeof(priv->serial), "vmsg-blk-%u", dev_num);

	type_features = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
			(1ULL << VIRTIO_BLK_F_FLUSH);
	if (read_only)
		type_features |= 1ULL << VIRTIO_BLK_F_RO;
	if (num_queues > 1)
		type_features |= 1ULL << VIRTIO_BLK_F_MQ;
	dev = vmsg_device_alloc(&blk_ops, dev_num, num_queues, type_features, opts);
	if (!dev) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	dev->priv = priv;
	dev->config_size = BLK_CONFIG_SIZE;
	cap_le = htole64(priv->capacity);
	memcpy(dev->config + offsetof(struct virtio_blk_config, capacity), &cap_le, 8);
	/* The header and the status byte take two descriptors of a chain. */
	put_config32(dev, offsetof(struct virtio_blk_config, seg_max),
		     opts->queue_size > 2 ? opts->queue_size - 2 : 1);
	put_config32(dev, offsetof(struct virtio_blk_config, blk_size), SECTOR_SIZE);
	put_config16(dev, offsetof(struct virtio_blk_config, num_queues), (uint16_t)num_queues);
	vmsg_info("device %u: blk %s, %llu sectors%s, %u queue%s", dev_num, path,
		  (unsigned long long)priv->capacity, read_only ? ", read-only" : "", num_queues,
		  num_queues > 1 ? "s" : "");
	return dev;

fail:
	blk_priv_free(priv);
	errno = -ret;
	return NULL;
}
