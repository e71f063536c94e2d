/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * virtio-msg-dkms compatibility layer, force-included into every object.
 *
 * The HAVE_* symbols come from compile probes run against the target
 * kernel's headers (compat/probes/, compat/gen-autoconf.sh): they say what
 * *this* header tree has, which a version number cannot (distributions
 * backport).  Driver sources call the newest interface; the shims below
 * map it onto older kernels.
 */
#ifndef _VIRTIO_MSG_COMPAT_H
#define _VIRTIO_MSG_COMPAT_H

#include "compat_autoconf.h"

#ifndef __ASSEMBLY__

/*
 * Feature bits beyond 64 (virtio_features.h, 6.17): the transport keeps
 * VMSG_FEATURE_WORDS 64-bit words; the core offers get_extended_features
 * only where HAVE_VIRTIO_EXTENDED_FEATURES says virtio has the op.
 */
/* No includes here: this header precedes each file's own pr_fmt. */
#ifdef HAVE_VIRTIO_EXTENDED_FEATURES
#define VMSG_FEATURE_WORDS			VIRTIO_FEATURES_U64S
#define vmsg_vdev_features(vdev)		((vdev)->features_array)
#else
#define VMSG_FEATURE_WORDS			1
#define vmsg_vdev_features(vdev)		(&(vdev)->features)
#endif

struct device;
struct reserved_mem;
struct device_node;

/*
 * reserved_mem_device_init() and of_reserved_mem_lookup_by_name() were
 * proposed with the virtio-msg RFC but are in no kernel; the prefixed
 * versions in compat/reserved_mem.c never clash with a kernel that gains
 * them, and defer to it when it does.
 */
int vmsg_reserved_mem_device_init(struct device *dev, struct reserved_mem *rmem);
void vmsg_reserved_mem_device_release(struct device *dev,
				      struct reserved_mem *rmem);
struct reserved_mem *vmsg_of_reserved_mem_lookup_by_name(const char *name);
struct device_node *vmsg_of_reserved_mem_find(const char *compatible);

#endif /* __ASSEMBLY__ */
#endif /* _VIRTIO_MSG_COMPAT_H */
