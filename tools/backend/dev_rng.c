// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtio-rng (device id 4): one request queue; every device-writable buffer
 * is filled with bytes from getrandom().
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "backend.h"

#define VIRTIO_ID_RNG		4
/*
 * Upper bound of entropy per request.  The driver asks for a few dozen
 * bytes; the bound keeps a driver that posts huge buffers from keeping the
 * queue's thread busy (the serving thread itself, when the backend runs
 * unthreaded).  Writing fewer bytes than offered is allowed.
 */
#define RNG_MAX_PER_REQUEST	(64 * 1024)

static int64_t rng_handle_chain(struct vmsg_device *dev, struct vmsg_vq *vq,
				const struct vq_chain *chain)
{
	uint64_t total = 0, want;
	unsigned int i;
	ssize_t n;

	(void)vq;
	/* Device-readable buffers carry nothing for an rng: ignore them. */
	for (i = chain->n_out; i < chain->n_out + chain->n_in; i++) {
		uint8_t *p = chain->segs[i].ptr;
		uint64_t left = chain->segs[i].len;

		while (left && total < RNG_MAX_PER_REQUEST) {
			want = left;
			if (want > RNG_MAX_PER_REQUEST - total)
				want = RNG_MAX_PER_REQUEST - total;
			/* Blocks only until the kernel's CRNG is seeded once. */
			n = getrandom(p, want, 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				vmsg_log("device %u: getrandom: %s", dev->dev_num, strerror(errno));
				return (int64_t)total;
			}
			p += n;
			left -= (uint64_t)n;
			total += (uint64_t)n;
		}
		/* Only the used length tells the driver what we wrote: stay contiguous. */
		if (left)
			break;
	}
	return (int64_t)total;
}

static const struct vmsg_device_ops rng_ops = {
	.name = "rng",
	.device_id = VIRTIO_ID_RNG,
	.handle_chain = rng_handle_chain,
};

struct vmsg_device *vmsg_rng_create(uint16_t dev_num, const struct vmsg_dev_opts *opts)
{
	struct vmsg_device *dev = vmsg_device_alloc(&rng_ops, dev_num, 1, 0, opts);

	if (dev)
		dev->config_size = 0;
	return dev;
}
