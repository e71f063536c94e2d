// SPDX-License-Identifier: GPL-2.0-only
/*
 * Logging to stderr.  One fprintf per line so the lines of the serving
 * thread and the main thread do not interleave.
 */
#include <stdio.h>

#include "backend.h"

int vmsg_verbose;

void vmsg_vlog(const char *fmt, va_list ap)
{
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, "virtio-msg-backend: %s\n", line);
}

void vmsg_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg_vlog(fmt, ap);
	va_end(ap);
}
