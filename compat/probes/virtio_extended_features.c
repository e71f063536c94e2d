// SPDX-License-Identifier: GPL-2.0-only
/*
 * HAVE_VIRTIO_EXTENDED_FEATURES
 *
 * v6.17: virtio gained feature words beyond 64 bits (commit e7d4c1c5a546
 * "virtio: introduce extended features"): new <linux/virtio_features.h> (VIRTIO_FEATURES_U64S,
 * virtio_features_*() helpers), struct virtio_device.features becomes
 * VIRTIO_DECLARE_FEATURES(features) (a union with features_array[]), and
 * struct virtio_config_ops gets the optional
 *	void (*get_extended_features)(struct virtio_device *vdev, u64 *features);
 * Absent in Debian 6.16.12, present from 6.17.13.
 */
#include <linux/module.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_features.h>

#if !defined(VIRTIO_FEATURES_U64S) || VIRTIO_FEATURES_U64S < 2
#error "no extended virtio feature words"
#endif

static void probe_get_extended_features(struct virtio_device *vdev,
					u64 *features)
{
	virtio_features_zero(features);
	features[VIRTIO_FEATURES_U64S - 1] = vdev->features_array[0];
}

static const struct virtio_config_ops probe_ops __used = {
	.get_extended_features = probe_get_extended_features,
};

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("virtio-msg compat probe: virtio extended features");
