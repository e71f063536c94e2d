#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# In-guest suite of hostile and buggy backends (vmsg-hostile), run by
# tests/vm-run as the guest script with FILES=tests/guest (busybox sh).
# Every group of scenarios is a file tests/guest/hostile/<group>.sh, sourced
# here in name order, so that groups are added without touching this file.
# Each prints "ok NAME" / "FAIL NAME: why" / "skip NAME: why" through
# lib.sh's helpers; a group must leave the loopback bus empty and loaded.
# busybox sh has one namespace: lib.sh's helpers use n and name, so a
# group prefixes its own variables (its name, e.g. cb_).
#
# Environment: SUITE_KERNEL=<version> (messages), HOSTILE_GROUPS="a b"
# (only these groups; default all), HOSTILE_SECONDS (how long the racing
# scenarios run each; default per group), SUITE_SMP (CPUs of the VM).

fails=0
B=""
BACKEND=/usr/bin/virtio-msg-backend

# shellcheck source-path=SCRIPTDIR source=lib.sh
. /test/lib.sh

lb_field() { vmsg-test info | sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
bus_empty() { [ "$(lb_field num_devices):$(lb_field pool_in_use)" = 0:0 ]; }
set_timeout() { echo "$1" >/sys/module/virtio_msg_transport/parameters/timeout_ms; }
# vmsg-hostile in the background, its output in $1; H is its pid.
hostile_start() {
	log=$1; shift
	vmsg-hostile "$@" >"$log" 2>&1 &
	H=$!
}
hostile_wait() { # seconds: wait for $H, FAIL-worthy if it is still running
	hw_n=$(($1 * 10))
	while kill -0 "$H" 2>/dev/null; do
		hw_n=$((hw_n - 1))
		[ "$hw_n" -gt 0 ] || return 1
		sleep 0.1
	done
	wait "$H"
}

echo "hostile: $(nproc) CPUs, kernel ${SUITE_KERNEL:-$(uname -r)}"
check hostile-modprobe modprobe virtio_msg_loopback
modprobe virtio_rng
modprobe virtio_blk

for hs_file in /test/hostile/*.sh; do
	[ -e "$hs_file" ] || continue
	hs_group=$(basename "$hs_file" .sh)
	if [ -n "${HOSTILE_GROUPS:-}" ]; then
		case " $HOSTILE_GROUPS " in *" $hs_group "*) ;; *) continue ;; esac
	fi
	echo "hostile: group $hs_group"
	# shellcheck disable=SC1090
	. "$hs_file"
	check "$hs_group-bus-left-empty" bus_empty
done

check hostile-unload-loopback rmmod virtio_msg_loopback
check hostile-unload-transport rmmod virtio_msg_transport
echo "suite: $fails failed"
[ "$fails" -eq 0 ]
