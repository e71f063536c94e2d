#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/hostile-check.sh - boot one kernel with this tree's modules and run
# tests/guest/hostile-suite.sh (hostile and buggy backends, vmsg-hostile)
# on a machine of several CPUs.
#
#   tests/hostile-check.sh                       7.3.4, -smp 4, every group
#   KERNEL=7.3.4-debug tests/hostile-check.sh    the debug kernel (KASAN,
#                                                lockdep; built if missing)
#   HOSTILE_GROUPS="callbacks removal"           some groups only, and how
#   SECONDS_EACH=20                              long racing scenarios run
#   SMP=2 APPEND="slab_debug=FZPU" TIMEOUT=900   machine and kernel options
#
# Prints the suite's lines and "N passed, N failed"; exits 0 iff nothing
# failed (a WARN/BUG/KASAN/lockdep report in dmesg fails the boot).  Logs
# in $LOGDIR (default tests/logs).
set -u
REPO="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=lib/build.sh
source "$REPO/tests/lib/build.sh"

KERNEL="${KERNEL:-7.3.4}"
SMP="${SMP:-4}"
GROUPS_="${HOSTILE_GROUPS:-}"
LOGDIR="${LOGDIR:-$REPO/tests/logs}"
WORK="$(mktemp -d /tmp/hostile-check.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$LOGDIR" "$WORK/ko" "$WORK/progs"
out="$LOGDIR/hostile-$KERNEL.out"

vmsg_copy_module_sources "$WORK/src"
if ! vmsg_build_modules "$KERNEL" "$WORK/src" W=1 >"$LOGDIR/hostile-build-$KERNEL.log" 2>&1 ||
	! vmsg_collect_modules "$WORK/src" "$WORK/ko" >>"$LOGDIR/hostile-build-$KERNEL.log" 2>&1; then
	echo "FAIL hostile-build: see $LOGDIR/hostile-build-$KERNEL.log"
	echo "0 passed, 1 failed"
	exit 1
fi
vmsg_copy_tool_sources "$WORK/tools-src"
if ! { VMSG_ARCH=arm64 vmsg_build_backend "$WORK/tools-src" "$WORK/progs" &&
	VMSG_ARCH=arm64 vmsg_build_vmsg_test "$WORK/tools-src" "$WORK/progs"; } \
	>"$LOGDIR/hostile-progs.log" 2>&1; then
	echo "FAIL hostile-progs: see $LOGDIR/hostile-progs.log"
	echo "0 passed, 1 failed"
	exit 1
fi
env_args=(ENV="SUITE_KERNEL=$KERNEL" ENV="SUITE_SMP=$SMP")
[[ -n "$GROUPS_" ]] && env_args+=(ENV="HOSTILE_GROUPS=$GROUPS_")
[[ -n "${SECONDS_EACH:-}" ]] && env_args+=(ENV="HOSTILE_SECONDS=$SECONDS_EACH")
rc=0
# virtio_net, virtiofs: ring resize and GET_SHM (tests/guest/hostile/removal.sh).
VMSG_INITRAMFS_EXTRA_MODULES="${VMSG_INITRAMFS_EXTRA_MODULES:-virtio_net virtiofs}" \
	"$REPO/tests/vm-run" KERNEL="$KERNEL" SMP="$SMP" BUILD=0 MODDIR="$WORK/ko" PROGS="$WORK/progs" \
	FILES="$REPO/tests/guest" LOGDIR="$LOGDIR" TIMEOUT="${TIMEOUT:-900}" APPEND="${APPEND:-}" \
	"${env_args[@]}" "$REPO/tests/guest/hostile-suite.sh" >"$out" 2>&1 || rc=$?
grep -E '^(ok|FAIL|skip|hostile:) ' "$out"
p="$(grep -c '^ok ' "$out")"
f="$(grep -c '^FAIL ' "$out")"
case $rc in
0) ;;
120) echo "FAIL hostile-dmesg-clean: kernel report in dmesg (log: $out)"; f=$((f + 1)) ;;
*) echo "FAIL hostile-boot: vm-run status $rc (log: $out)"; f=$((f + 1)) ;;
esac
echo "$p passed, $f failed"
[[ "$f" == 0 ]]
