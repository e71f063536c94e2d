# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=sh
#
# Removal group (vmsg-hostile scenarios in removal.c): REMOVE of a device
# that cannot or will not make progress returns in bounded time, the
# transport refuses or caps what cannot work, a resized ring stays within
# what the device and the transport's tracking allow, and a shared memory
# region the bus does not have is refused.  Bounded waits only: a REMOVE
# that has not returned after 60 s has hung (the transport gives up on a
# device after about timeout_ms without progress).

# The scenario's result line KEY=VALUE from log $1.
rm_field() { sed -n "s/.*$2=\([^ ]*\).*/\1/p" "$1" | tail -1; }
# dmesg since the last dmesg_clear, into $1.
rm_dmesg() { dmesg >"$1"; }
# Kernel reports in $1, slab_debug's ("BUG kmalloc-16 (...): Object
# corrupt", no colon after BUG) among them.
rm_reports() {
	kmsg_reports "$1"
	grep -E '(BUG|FIX) kmalloc-|Redzone overwritten|Poison overwritten' "$1"
}

rm_img=/tmp/removal.img
dd if=/dev/zero of=$rm_img bs=1M count=8 2>/dev/null
set_timeout 1000

# Unbinds virtio_blk from the disk $1 in the background; rm_u is its pid.
rm_unbind() {
	rm_vd=$(basename "$(readlink -f "/sys/block/${1#/dev/}/device")")
	echo "$rm_vd" >/sys/bus/virtio/drivers/virtio_blk/unbind &
	rm_u=$!
}

# $1 name, $2 how the driver lets go (remove: REMOVE; unbind: sysfs unbind,
# then REMOVE); the rest: blk-stuck options.  Starts it, waits until the
# disk is there, reads from it in the background (buffered: readahead makes
# requests of many segments), then lets the driver go.
rm_blk_stuck() {
	rm_tn=$1; rm_how=$2; shift 2
	dmesg_clear
	rm -f /tmp/ready
	hostile_start "/tmp/$rm_tn.log" blk-stuck --ready-file /tmp/ready --blk 1:$rm_img "$@"
	if ! wait_for 300 test -e /tmp/ready; then
		fail "$rm_tn-added" "$(tail -3 "/tmp/$rm_tn.log")"
		kill -TERM "$H" 2>/dev/null
		hostile_wait 60 || kill -KILL "$H" 2>/dev/null
		return
	fi
	ok "$rm_tn-added"
	rm_dev=$(blk_dev)
	if [ -n "$rm_dev" ]; then
		dd if="$rm_dev" of=/dev/null bs=256k count=8 2>/dev/null &
		rm_io=$!
		sleep 3
	else
		rm_io=""
	fi
	if [ "$rm_how" = unbind ] && [ -n "$rm_dev" ]; then
		rm_unbind "$rm_dev"
		rm_left=600
		while kill -0 "$rm_u" 2>/dev/null && [ "$rm_left" -gt 0 ]; do
			rm_left=$((rm_left - 1)); sleep 0.1
		done
		if kill -0 "$rm_u" 2>/dev/null; then
			fail "$rm_tn-unbind-returns" "unbind still blocked after 60 s"
		else
			ok "$rm_tn-unbind-returns"
		fi
	fi
	kill -TERM "$H"
	if hostile_wait 60; then
		ok "$rm_tn-remove-returns"
		check "$rm_tn-remove-ok" [ "$(rm_field "/tmp/$rm_tn.log" remove)" = ok ]
	else
		fail "$rm_tn-remove-returns" "REMOVE still blocked after 60 s: $(tail -2 "/tmp/$rm_tn.log")"
	fi
	if [ -n "$rm_io" ]; then
		# The reader ends, with data or an error, once the disk is gone.
		rm_left=600
		while kill -0 "$rm_io" 2>/dev/null && [ "$rm_left" -gt 0 ]; do
			rm_left=$((rm_left - 1)); sleep 0.1
		done
		if kill -0 "$rm_io" 2>/dev/null; then
			fail "$rm_tn-io-ends" "the reader of $rm_dev still waits"
		else
			ok "$rm_tn-io-ends"
		fi
	fi
	rm_dmesg "/tmp/$rm_tn.dmesg"
	check "$rm_tn-no-warn" [ -z "$(rm_reports "/tmp/$rm_tn.dmesg")" ]
}

# A ring of 8 without indirect descriptors and seg_max 32: the transport
# caps seg_max (or refuses the ring); I/O works, nothing WARNs.
rm_blk_stuck removal-blk-small-ring remove --queue-size 8 --seg-max 32 --no-indirect
if grep -q "capping it to 6" /tmp/removal-blk-small-ring.dmesg; then
	ok removal-blk-small-ring-capped
else
	fail removal-blk-small-ring-capped "no seg_max cap in dmesg"
fi
# A device that answers every message but completes no request once
# added: REMOVE breaks it after a period without progress.
rm_blk_stuck removal-blk-hold remove --hold
check removal-blk-hold-broken grep -q "removal makes no progress" /tmp/removal-blk-hold.dmesg
# The same when the driver is unbound through sysfs: not the transport's
# REMOVE, the same wait in del_gendisk().
rm_blk_stuck removal-blk-hold-unbind unbind --hold
check removal-blk-hold-unbind-broken grep -q "removal makes no progress" /tmp/removal-blk-hold-unbind.dmesg

# virtio-net rx ring resize (ethtool -G) through SIOCETHTOOL.
if ! modprobe virtio_net 2>/dev/null; then
	skip removal-net-resize "no virtio_net module in the image"
else
	# A device whose queues hold 8: growing to 256 must be refused.
	dmesg_clear
	hostile_start /tmp/net8.log net-resize --queue-size 8 --ring 256
	if hostile_wait 120; then ok removal-net-grow-past-max-exits; else
		fail removal-net-grow-past-max-exits "$(tail -3 /tmp/net8.log)"
		kill -KILL "$H" 2>/dev/null
	fi
	check removal-net-grow-past-max-refused [ "$(rm_field /tmp/net8.log resize_256)" != ok ]
	check removal-net-grow-past-max-max8 [ "$(rm_field /tmp/net8.log before_rx_max)" = 8 ]
	check removal-net-grow-past-max-stays [ "$(rm_field /tmp/net8.log after_rx)" = 8 ]
	check removal-net-grow-past-max-removed [ "$(rm_field /tmp/net8.log remove)" = ok ]
	rm_dmesg /tmp/net8.dmesg
	check removal-net-grow-past-max-clean [ -z "$(rm_reports /tmp/net8.dmesg)" ]

	# Queues of 256: shrink to 8, grow back to 256, then the backend goes
	# with the ring full: the transport must return all 256 buffers, with
	# tracking of the ring's new size.
	dmesg_clear
	hostile_start /tmp/net256.log net-resize --queue-size 256 --ring 8 --ring 256 --vanish
	if hostile_wait 120; then ok removal-net-resize-exits; else
		fail removal-net-resize-exits "$(tail -3 /tmp/net256.log)"
		kill -KILL "$H" 2>/dev/null
	fi
	check removal-net-resize-shrink [ "$(rm_field /tmp/net256.log resize_8)" = ok ]
	check removal-net-resize-grow [ "$(rm_field /tmp/net256.log resize_256)" = ok ]
	check removal-net-resize-size [ "$(rm_field /tmp/net256.log after_rx)" = 256 ]
	# The kernel removes the device of a peer that went away.
	check removal-net-resize-gone wait_for 300 bus_empty
	rm_dmesg /tmp/net256.dmesg
	check removal-net-resize-tracked [ -z "$(grep 'ring state lost' /tmp/net256.dmesg)" ]
	check removal-net-resize-clean [ -z "$(rm_reports /tmp/net256.dmesg)" ]
fi

# GET_SHM: a region at a bus address outside anything the bus has, which
# virtio-fs (DAX window) would claim and map as physical memory.
# A module on the debug kernel, built in on Debian's.
modprobe virtiofs 2>/dev/null
if [ ! -d /sys/bus/virtio/drivers/virtiofs ]; then
	skip removal-shm "no virtiofs driver in this kernel"
else
	dmesg_clear
	rm -f /tmp/ready
	hostile_start /tmp/shm.log shm-region --ready-file /tmp/ready 0x0c000000 0x200000
	if wait_for 300 test -e /tmp/ready; then
		ok removal-shm-added
		# Refused, the region is simply not there: virtio-fs probes
		# without a DAX window instead of claiming and mapping it.
		check removal-shm-probed [ "$(virtio_count virtiofs)" = 1 ]
		check removal-shm-not-mapped [ -z "$(grep -i '^ *0*c000000-' /proc/iomem)" ]
	else
		fail removal-shm-added "$(tail -3 /tmp/shm.log)"
	fi
	kill -TERM "$H"
	if hostile_wait 60; then ok removal-shm-exits; else
		fail removal-shm-exits "$(tail -3 /tmp/shm.log)"
		kill -KILL "$H" 2>/dev/null
	fi
	rm_dmesg /tmp/shm.dmesg
	check removal-shm-refused grep -q "shared memory region .* refused" /tmp/shm.dmesg
	check removal-shm-clean [ -z "$(rm_reports /tmp/shm.dmesg)" ]
fi
set_timeout 3000
