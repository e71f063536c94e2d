// SPDX-License-Identifier: GPL-2.0-only
/*
 * HAVE_OF_RESERVED_MEM_LOOKUP_BY_NAME
 *
 * struct reserved_mem *of_reserved_mem_lookup_by_name(const char *name)
 * was proposed by the virtio-msg RFC v1 (patch 1/6, 2025-07-30) but is not
 * in any kernel up to 7.3 (not declared/exported in Debian 6.16.12 ..
 * 7.3.4): expected to fail everywhere today.
 */
#include <linux/module.h>
#include <linux/of_reserved_mem.h>

static struct reserved_mem *(*const probe_fn)(const char *) __used =
	of_reserved_mem_lookup_by_name;

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("virtio-msg compat probe: of_reserved_mem_lookup_by_name()");
