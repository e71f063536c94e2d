#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Guest script for the debug kernel (tests/debugkernel/): runs an in-guest
# suite, then a kmemleak scan.  Busybox sh.  Needs the suites in /test:
#   tests/vm-run KERNEL=7.3.4-debug FILES=tests/guest ENV=SUITE_POOL=runtime \
#       tests/debugkernel/guest-kmemleak.sh
# Environment: DK_SUITE (default suite.sh; ffa-suite.sh for FF-A), plus
# whatever the suite itself reads (SUITE_POOL, SUITE_KERNEL, ...).
#
# Prints the suite's own lines, then
#   ok|FAIL kmemleak-available, ok|FAIL kmemleak-ours, ok|FAIL kmsg-clean
# and every suspected leak and offending kernel message verbatim.
# kmsg-clean: the FF-A suite clears the kernel log (dmesg -c) between its
# parts, so vm-run's end-of-run dmesg check sees only the last part; every
# record is captured here from /dev/kmsg (a reader of its own, untouched by
# dmesg -c) and judged with vm-run's patterns (tests/guest/lib.sh
# kmsg_reports: VMSG_DMESG_BAD minus the plain "lockdep" that the lockdep
# boot banner matches; lockdep's reports are matched by their titles; the
# allocation-failure report of a failure that fault injection forced is
# not a report).  A leak counts as ours when its
# allocation backtrace names one of our modules, or has a frame the kernel
# cannot symbolise any more (module text that is gone: the suites unload
# our modules before they end).  Exit status: the suite's, or 1 when it
# passed but the scan failed.

# shellcheck source-path=SCRIPTDIR source=../guest/lib.sh
. /test/lib.sh
KL=/sys/kernel/debug/kmemleak
SUITE="/test/${DK_SUITE:-suite.sh}"
fails=0

[ -f "$SUITE" ] || { echo "FAIL dk-suite: $SUITE missing (vm-run FILES=tests/guest)"; exit 1; }
if [ ! -w "$KL" ]; then
	echo "FAIL kmemleak-available: no $KL (not the debug kernel, or kmemleak off)"
	exit 1
fi
# SLUB's per-CPU sheaves (6.18+) keep the pointer of every object they
# handed out in their array until the slot is reused, and kmemleak scans
# that array: a leaked object stays "referenced" and is never reported
# (a deliberate leak of 16 kmalloc(100) went unseen).  A cache with a
# debug flag has no sheaves: boot with slab_debug=U.
if [ "$(cat /sys/kernel/slab/kmalloc-128/store_user 2>/dev/null)" != 1 ]; then
	echo "FAIL kmemleak-available: slab caches have per-CPU sheaves, which hide leaks from kmemleak (boot with slab_debug=U)"
	exit 1
fi
echo "ok kmemleak-available"
cat /dev/kmsg >/tmp/kmsg.all &
KMSG=$!
# Suspects from boot are not ours: forget them, report only new ones.
echo clear >"$KL"

sh "$SUITE"
rc=$?

# An object is reported once it is older than 5 s and unreferenced in a
# scan; the second scan catches what the first one only aged.
sleep 6
echo scan >"$KL"
sleep 1
echo scan >"$KL"
cat "$KL" >/tmp/kmemleak.txt
n=$(grep -c '^unreferenced object' /tmp/kmemleak.txt)
# One record per object: join its lines (but the first, which has the
# object's own address), then classify.  A frame the kernel cannot
# symbolise is a bare address: "[<...>] 0x..." in older kernels, a line
# of its own "0x..." since 6.x.
ours=$(awk '/^unreferenced object/ { if (rec != "") print rec; rec = "-"; next }
	{ rec = rec " " $0 }
	END { if (rec != "") print rec }' /tmp/kmemleak.txt |
	grep -c -E 'virtio_msg|vmsg|\[<[0-9a-f]+>\] 0x[0-9a-f]+$|\] 0x[0-9a-f]+ | 0x[0-9a-f]+( |$)')
echo "kmemleak: $n suspected leak(s) after the suite, $ours ours"
if [ "$n" -gt 0 ]; then
	echo "kmemleak-report-begin"
	cat /tmp/kmemleak.txt
	echo "kmemleak-report-end"
fi
if [ "$ours" -eq 0 ]; then
	echo "ok kmemleak-ours"
else
	echo "FAIL kmemleak-ours: $ours leak(s) from our modules"
	fails=$((fails + 1))
fi
sleep 1
kill "$KMSG" 2>/dev/null
if kmsg_reports /tmp/kmsg.all | grep . >/tmp/kmsg.bad; then
	echo "FAIL kmsg-clean: $(wc -l </tmp/kmsg.bad) report line(s); whole kernel log follows"
	echo "kmsg-begin"
	cat /tmp/kmsg.all
	echo "kmsg-end"
	fails=$((fails + 1))
else
	echo "ok kmsg-clean"
fi
[ "$rc" -ne 0 ] && exit "$rc"
[ "$fails" -eq 0 ]
