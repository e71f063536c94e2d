#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/ffa-check.sh - build the modules and the fake FF-A partitions
# (tests/ffa) for each kernel in a private copy of the repository, and run
# tests/guest/ffa-suite.sh in QEMU on it.
#
#   KERNELS="6.17.13 7.0.13 7.3.4" tests/ffa-check.sh   (the default list)
#   KERNELS=all: every kernel with FF-A (6.17 and later)
#   OVERLAY_KERNELS="7.3.4" (default: the last kernel of KERNELS) or all:
#     kernels booted once more with OVERLAY=vmsgffa, running only the
#     device-tree pool checks of the suite (FFA_OVERLAY=1)
#
# Prints "PASS <kernel>" / "FAIL <kernel>: <why>" and "N passed, N failed";
# exits 0 iff nothing failed.  Logs go to $LOGDIR (default tests/logs).
set -u
REPO="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=lib/chroot.sh
source "$REPO/tests/lib/chroot.sh"

KERNELS="${KERNELS:-6.17.13 7.0.13 7.3.4}"
[[ "$KERNELS" == all ]] && KERNELS="6.17.13 6.18.15 6.19.14 7.0.13 7.1.13 7.2.12 7.2.13 7.3.4"
LOGDIR="${LOGDIR:-$REPO/tests/logs}"
# Kernels also booted with OVERLAY=vmsgffa (default: the last of KERNELS).
OVERLAY_KERNELS="${OVERLAY_KERNELS:-${KERNELS##* }}"
WORK="$(mktemp -d /tmp/ffa-check.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$LOGDIR"
pass=0
failed=0

result() { # status kernel why
	if [[ "$1" == 0 ]]; then
		echo "PASS $2"
		pass=$((pass + 1))
	else
		echo "FAIL $2: $3"
		failed=$((failed + 1))
	fi
}

report() { # name vm-run-status output
	grep -E '^(FAIL|skip) ' "$3" | sed "s/^/  $1: /"
	case $2 in
	0) result 0 "$1" ;;
	77) echo "SKIP $1: kernel not available" ;;
	120) result 1 "$1" "WARN/BUG/Oops in dmesg" ;;
	124|125) result 1 "$1" "guest hung or crashed (vm-run $2)" ;;
	*) result 1 "$1" "$(grep -c '^FAIL ' "$3") check(s) failed (vm-run $2)" ;;
	esac
}

# Private copy: kbuild writes objects in-tree.
build() { # kernel dir
	local k="$1" d="$2"
	mkdir -p "$d/tests" "$d/mods" "$d/progs"
	cp -r "$REPO"/{Makefile,Kbuild,VERSION,src,include,compat,tools} "$d/" &&
		cp -r "$REPO/tests/ffa" "$d/tests/" && rm -rf "$d/compat/generated" || return 1
	# Objects of the work tree may be of another architecture.
	find "$d" \( -name '*.o' -o -name '*.ko' -o -name 'virtio-msg-backend' \) -type f -delete
	vmsg_kernel_fetch "$k" >/dev/null || return 1
	vmsg_chroot_run --kernel "$k" --bind "$d" -- sh -c "
		make -C '$d' KDIR=/lib/modules/$VMSG_KABI/build ARCH=arm64 \
			CROSS_COMPILE=aarch64-linux-gnu- W=1 &&
		make -C /lib/modules/$VMSG_KABI/build M='$d/tests/ffa' ARCH=arm64 \
			CROSS_COMPILE=aarch64-linux-gnu- W=1 modules &&
		make -C '$d/tools' CC=aarch64-linux-gnu-gcc STATIC=1" \
		>"$LOGDIR/ffa-build-$k.log" 2>&1 || return 1
	cp "$d"/*.ko "$d"/tests/ffa/*.ko "$d/mods/" &&
		cp "$d/tools/virtio-msg-backend" "$d/progs/"
}

for k in $KERNELS; do
	d="$WORK/$k"
	if ! build "$k" "$d"; then
		result 1 "$k" "build failed, see $LOGDIR/ffa-build-$k.log"
		continue
	fi
	"$REPO/tests/vm-run" KERNEL="$k" BUILD=0 MODDIR="$d/mods" PROGS="$d/progs" \
		LOGDIR="$LOGDIR" TIMEOUT=600 "$REPO/tests/guest/ffa-suite.sh" \
		>"$LOGDIR/ffa-check-$k.out" 2>&1
	rc=$?
	report "$k" "$rc" "$LOGDIR/ffa-check-$k.out"
	# The device-tree pool (dts/vmsgffa.dtso): one more boot, on the
	# newest kernel of the list only (OVERLAY_KERNELS=all: every kernel).
	[[ "$OVERLAY_KERNELS" == all || " $OVERLAY_KERNELS " == *" $k "* ]] || continue
	"$REPO/tests/vm-run" KERNEL="$k" BUILD=0 MODDIR="$d/mods" PROGS="$d/progs" \
		OVERLAY=vmsgffa ENV=FFA_OVERLAY=1 LOGDIR="$LOGDIR" TIMEOUT=600 \
		"$REPO/tests/guest/ffa-suite.sh" >"$LOGDIR/ffa-check-$k-overlay.out" 2>&1
	report "$k+vmsgffa" "$?" "$LOGDIR/ffa-check-$k-overlay.out"
done
echo "$pass passed, $failed failed"
[[ "$failed" == 0 ]]
