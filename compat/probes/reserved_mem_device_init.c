// SPDX-License-Identifier: GPL-2.0-only
/*
 * HAVE_RESERVED_MEM_DEVICE_INIT
 *
 * int reserved_mem_device_init(struct device *dev, struct reserved_mem *rmem)
 * was proposed by the virtio-msg RFC v1 (patch 2/6, 2025-07-30, on top of
 * v6.16) but is not in any kernel up to 7.3 (Debian 6.16.12 .. 7.3.4 neither
 * declare nor export it), so this probe fails everywhere today; compat/
 * then uses its own implementation.  Taking the function's address checks
 * both presence (undeclared -> error) and the exact prototype.
 */
#include <linux/module.h>
#include <linux/of_reserved_mem.h>

static int (*const probe_fn)(struct device *, struct reserved_mem *) __used =
	reserved_mem_device_init;

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("virtio-msg compat probe: reserved_mem_device_init()");
