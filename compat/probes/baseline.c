// SPDX-License-Identifier: GPL-2.0-only
/*
 * Baseline probe: must compile on every kernel.  If it fails, the compiler
 * or the kernel header tree is unusable and gen-autoconf.sh stops the build
 * instead of generating an all-"no" compat_autoconf.h.
 */
#include <linux/module.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>

static int __init probe_init(void)
{
	return 0;
}
module_init(probe_init);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("virtio-msg compat probe: baseline");
