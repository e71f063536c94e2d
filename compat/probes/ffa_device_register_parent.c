// SPDX-License-Identifier: GPL-2.0-only
/*
 * HAVE_FFA_DEVICE_REGISTER_PARENT
 *
 * v7.2: ffa_device_register() gained the parent device:
 *	struct ffa_device *ffa_device_register(
 *		const struct ffa_partition_info *part_info,
 *		const struct ffa_ops *ops, struct device *parent);
 * (6.16 .. 7.1: two arguments, no parent).  Present from Debian 7.2.12.
 * Only meaningful with CONFIG_ARM_FFA_TRANSPORT (Debian arm64 >= 6.17):
 * without it <linux/arm_ffa.h> has a static inline stub, whose prototype
 * this probe then reports.  Only test code that fabricates FF-A devices
 * needs it.
 */
#include <linux/module.h>
#include <linux/arm_ffa.h>

static struct ffa_device *(*const probe_fn)(const struct ffa_partition_info *,
					    const struct ffa_ops *,
					    struct device *) __used =
	ffa_device_register;

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("virtio-msg compat probe: 3-argument ffa_device_register()");
