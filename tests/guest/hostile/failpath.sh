# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=sh
#
# The fail path and the bounce buffers against a device that lies or dies
# (issue 17, items 3, 4 and 5): scenarios of tests/guest/hostile/failpath.c.
# Variables carry the group's prefix fp_ (busybox sh has one namespace).

fp_img() { # path MiB
	dd if=/dev/zero of="$1" bs=1M count="$2" 2>/dev/null
}
fp_field() { # log key
	sed -n "s/^$2=\([^ ]*\).*/\1/p" "$1" | tail -1
}
fp_wait_pids() { # seconds pids...: all gone within the time
	fp_n=$(($1 * 10)); shift
	for fp_p in "$@"; do
		while kill -0 "$fp_p" 2>/dev/null; do
			fp_n=$((fp_n - 1))
			[ "$fp_n" -gt 0 ] || return 1
			sleep 0.1
		done
	done
}
fp_dmesg_lacks() { # pattern: the kernel log since the last dmesg_clear
	! dmesg | grep -E "$1"
}
fp_read_fails() { # disk: an O_DIRECT 4 KiB read does not deliver the data
	[ "$(dd if="$1" bs=4k count=1 iflag=direct 2>/dev/null | wc -c)" -ne 4096 ]
}
fp_dmesg_contains() { # pattern
	dmesg | grep -qE "$1"
}

# Item 5: a read the device reports done without writing it.  The reader
# must see its own bytes (O_DIRECT) or at least not the earlier write's
# marker (page cache, whose fresh pages hold anything).
fp_img /tmp/fp-stale.img 8
vmsg-hostile stale-read /tmp/fp-stale.img >/tmp/fp-stale.log 2>&1
fp_rc=$?
check failpath-stale-ran [ "$fp_rc" -eq 0 ]
fp_v=$(fp_field /tmp/fp-stale.log direct)
if [ "$fp_v" = own ]; then ok failpath-stale-direct; else
	fail failpath-stale-direct "O_DIRECT reader got '$fp_v' bytes, not its own"; fi
fp_v=$(fp_field /tmp/fp-stale.log cached)
if [ "$fp_v" = not-marker ]; then ok failpath-stale-cached; else
	fail failpath-stale-cached "page-cache reader got '$fp_v'"; fi
rm -f /tmp/fp-stale.img

# Item 3: the fail path walks what the device rewrote.  Bounded: the rng
# device goes within 60 s and no CPU stalls.
dmesg_clear
hostile_start /tmp/fp-bomb.log indirect-bomb
if hostile_wait 90; then ok failpath-bomb-ran; else
	fail failpath-bomb-ran "$(tail -3 /tmp/fp-bomb.log)"; kill -KILL "$H" 2>/dev/null; fi
fp_v=$(fp_field /tmp/fp-bomb.log rng_gone)
if [ "$fp_v" = 1 ]; then ok failpath-bomb-bounded; else
	fail failpath-bomb-bounded "rng device still there 60 s after its peer went"; fi
check failpath-bomb-no-stall fp_dmesg_lacks 'soft lockup|hard LOCKUP|rcu.*stall|hung_task|blocked for more than'

# Item 4: GET_DEVICE_STATUS answered after the timeout while a second
# thread of the backend goes on completing the ring under O_DIRECT load.
# The timeout breaks the device: its I/O must end in errors, and the used
# ring must never be written by both sides.
dmesg_clear
fp_timeout=$(cat /sys/module/virtio_msg_transport/parameters/timeout_ms)
set_timeout 1000
fp_img /tmp/fp-late.img 32
rm -f /tmp/ready /tmp/fp-late-arm
hostile_start /tmp/fp-late.log late-status --ready-file /tmp/ready \
	--arm-file /tmp/fp-late-arm /tmp/fp-late.img
if wait_for 300 test -e /tmp/ready; then
	ok failpath-late-ready
	fp_disk=""
	for fp_d in /sys/block/vd*; do
		[ -e "$fp_d" ] && fp_disk=${fp_d##*/} && break
	done
	fp_pids=""
	for fp_i in 1 2 3; do
		(
			fp_end=$(($(date +%s) + 12))
			while [ "$(date +%s)" -lt "$fp_end" ]; do
				dd if="/dev/$fp_disk" of=/dev/null bs=4k count=64 \
					skip=$((fp_i * 1024)) iflag=direct 2>/dev/null
			done
		) &
		fp_pids="$fp_pids $!"
	done
	sleep 1
	# Reads GET_DEVICE_STATUS: times out after 1 s, the answer comes at 1.5 s.
	: >/tmp/fp-late-arm
	cat "/sys/block/$fp_disk/device/status" >/dev/null 2>&1
	# shellcheck disable=SC2086  # a list of pids
	check failpath-late-io-ends fp_wait_pids 60 $fp_pids
	# An error, or nothing: the broken device's capacity may read as 0.
	check failpath-late-io-fails fp_read_fails "/dev/$fp_disk"
	check failpath-late-one-writer fp_dmesg_lacks 'is not a head|id [0-9]+ out of range|used len'
	kill -TERM "$H"
	if hostile_wait 60; then ok failpath-late-remove; else
		fail failpath-late-remove "REMOVE did not return within 60 s"; kill -KILL "$H" 2>/dev/null; fi
	check failpath-late-broken-said fp_dmesg_contains 'request timed out; marking it broken'
else
	fail failpath-late-ready "$(tail -3 /tmp/fp-late.log)"
	kill -KILL "$H" 2>/dev/null
fi
set_timeout "$fp_timeout"
rm -f /tmp/fp-late.img /tmp/fp-late-arm
