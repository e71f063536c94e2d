/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Fault injection of one operation, for the debug kernel's fault-injection
 * checks (tests/guest/failnth-suite.sh): /proc/thread-self/fail-nth makes
 * the Nth fallible call (failslab, fail_page_alloc) of the calling thread
 * fail, and reads back 0 once it did.  Open, arm and read it from the
 * thread that does the operation, with no other system call in between.
 */
#ifndef VMSG_TEST_FAILNTH_H
#define VMSG_TEST_FAILNTH_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline int failnth_open(void)
{
	return open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
}

static inline int failnth_set(int fd, unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	return pwrite(fd, buf, len, 0) == len ? 0 : -1;
}

/* What is left of the count: 0 once the failure was injected, -1 on error. */
static inline long failnth_get(int fd)
{
	char buf[16] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

#endif
