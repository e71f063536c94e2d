// SPDX-License-Identifier: GPL-2.0-only
/*
 * HAVE_MODULE_IMPORT_NS_STRING
 *
 * v6.13 (commit cdd30ebb1b9f, "module: Convert symbol namespace to string
 * literal"): MODULE_IMPORT_NS() and EXPORT_SYMBOL_NS{,_GPL}() take a string
 * literal ("VIRTIO_MSG") instead of a bare identifier.  Both forms compile
 * with a string argument (the old macro just __stringify()'d it into a
 * wrong namespace name), so the probe intercepts MODULE_INFO() and checks
 * that the string arrives unchanged.  True for every supported kernel
 * (>= 6.16); kept as a guard.
 */
#include <linux/module.h>

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("virtio-msg compat probe: MODULE_IMPORT_NS(\"string\")");

#undef MODULE_INFO
#define MODULE_INFO(tag, info) \
	static_assert(sizeof(#tag) == sizeof("import_ns") && \
		      sizeof(info) == sizeof("VMSG_PROBE_NS"), \
		      "MODULE_IMPORT_NS() does not take a string literal")

MODULE_IMPORT_NS("VMSG_PROBE_NS");
