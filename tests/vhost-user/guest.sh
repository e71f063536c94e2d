#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# tests/vhost-user/guest.sh - virtio-msg-vhost-user end to end, inside the
# trixie arm64 image VM (tests/image/run): real vhost-user backends from
# Debian serve virtio-msg devices on the loopback bus.
#
#  fs:    virtiofsd --tag vmsgfs; mount -t virtiofs; create/read/rename/
#         delete; a 10 000-file tree walk (files/s); 64 MiB written,
#         fsync'd, compared with the backend's copy and read back (MB/s)
#  blk:   qemu-storage-daemon --export type=vhost-user-blk of a raw image;
#         mkfs.ext4, mount, 64 MiB written and verified (MB/s), and the
#         same on virtio-msg-backend's own virtio-blk for comparison
#  vsock: vhost-device-vsock (sid .deb): a guest AF_VSOCK connection
#         echoed by a UNIX-socket server behind the backend
#  faults: each backend killed mid-I/O (I/O fails, nothing hangs), the
#         bridge killed mid-I/O, a garbage-speaking backend, --reconnect
#         to a restarted backend; the modules unload at the end.
# Output: "ok NAME" / "FAIL NAME: why", "figure NAME VALUE UNIT".
# ok/fail always succeed: "check && ok || fail" is an if-then-else here.
# shellcheck disable=SC2015
set -u
T=/test B=/test/bin F=/test/files
export PATH="$B:$F:$PATH"
fails=0
ok() { echo "ok $1${2:+ ($2)}"; }
fail() { echo "FAIL $1${2:+: $2}"; fails=$((fails + 1)); }
figure() { echo "figure $1 $2 $3"; }
now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$(now)" 'BEGIN { printf "%.1f", n / (b - a) }'; }
# wait_for FILE SECONDS
wait_for() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[[ -e "$1" ]] && return 0
		sleep 0.1
	done
	return 1
}
# gone PID SECONDS: true once the process has exited
gone() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}
dropcaches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
logtail() { tail -n "${2:-4}" "$1" 2>/dev/null | tr '\n' '|' | cut -c1-400; }
new_disk() {
	local before="$1" i d
	for ((i = 0; i < 300; i++)); do
		for d in /sys/block/vd*; do
			d="${d##*/}"
			[[ " $before " == *" $d "* ]] || { echo "$d"; return 0; }
		done
		sleep 0.1
	done
	return 1
}
disks() { (cd /sys/block && echo vd*); }

# VHU_ONLY="fs blk vsock garbage" (tests/image/run passes VHU_* through)
# shellcheck source=/dev/null
[[ -f $T/env ]] && source $T/env
only() { [[ -z "${VHU_ONLY:-}" || " $VHU_ONLY " == *" $1 "* ]]; }

# A hang must cost minutes, not the stage, and leave its cause: after
# VHU_WATCHDOG seconds (a run takes ~70 s) the blocked tasks' stacks are
# printed and the VM powered off, which tests/image/run reports as a FAIL.
WD="${VHU_WATCHDOG:-420}"
(
	sleep "$WD"
	echo "FAIL watchdog: still running after $WD s; blocked tasks follow"
	# shellcheck disable=SC2009 # every process with its wait channel
	ps -eo pid,stat,wchan:32,args | grep -v '\[' | cut -c1-160
	echo w >/proc/sysrq-trigger
	dmesg | tail -n 200
	echo o >/proc/sysrq-trigger
) &
WD_PID=$!

# The image's own backends first, the ones from the .debs otherwise.
VFSD=/usr/libexec/virtiofsd
[[ -x "$VFSD" ]] || VFSD="$F/virtiofsd"
QSD="$(command -v qemu-storage-daemon || true)"
VSOCKD=/usr/bin/vhost-device-vsock
[[ -x "$VSOCKD" ]] || VSOCKD="$F/vhost-device-vsock"
echo "backends: virtiofsd=$VFSD qsd=${QSD:-none} vsock=$VSOCKD"

if insmod $T/ko/virtio_msg_transport.ko && insmod $T/ko/virtio_msg_loopback.ko; then
	ok modules-load
else
	fail modules-load
	exit 1
fi
udevadm settle --timeout=30
mkdir -p /srv/share /mnt/vfs /mnt/blk /run/vhu
head -c 64M /dev/urandom >/tmp/src64

# ---------------------------------------------------------------- virtiofs
only fs && {
"$VFSD" --socket-path=/run/vhu/fs.sock --shared-dir=/srv/share --tag=vmsgfs \
	--sandbox=none --cache=never >/tmp/vfsd.log 2>&1 &
VFSD_PID=$!
virtio-msg-vhost-user --socket /run/vhu/fs.sock --type fs --dev 1 \
	--ready-file /run/vhu/fs.ready >/tmp/br-fs.log 2>&1 &
BR_FS=$!
if wait_for /run/vhu/fs.ready 120 && mount -t virtiofs vmsgfs /mnt/vfs; then
	ok fs-mount "$(grep -o 'protocol features negotiated.*' /tmp/br-fs.log)"
	r=ok
	echo hello >/mnt/vfs/a && [[ "$(cat /srv/share/a)" == hello ]] || r="create"
	[[ "$(cat /mnt/vfs/a)" == hello ]] || r="read"
	mv /mnt/vfs/a /mnt/vfs/b && [[ -e /srv/share/b && ! -e /srv/share/a ]] || r="rename"
	rm /mnt/vfs/b && [[ ! -e /srv/share/b ]] || r="delete"
	[[ $r == ok ]] && ok fs-create-read-rename-delete || fail fs-create-read-rename-delete "$r"

	# 10 000 files made on the backend's side, walked through virtiofs
	mkdir -p /srv/share/tree
	for ((d = 0; d < 100; d++)); do
		mkdir /srv/share/tree/d$d && (cd /srv/share/tree/d$d && touch $(seq -f f%g 0 99))
	done
	dropcaches
	t="$(now)"
	n="$(find /mnt/vfs/tree -type f | wc -l)"
	if ((n == 10000)); then
		fps="$(rate 10000 "$t")"
		ok fs-tree-walk-10000 "$fps files/s"
		figure fs-tree-walk "$fps" files/s
	else
		fail fs-tree-walk-10000 "found $n files"
	fi
	rm -rf /srv/share/tree

	t="$(now)"
	if dd if=/tmp/src64 of=/mnt/vfs/big bs=1M conv=fsync status=none; then
		w="$(rate 64 "$t")"
		dropcaches
		t="$(now)"
		dd if=/mnt/vfs/big of=/tmp/back64 bs=1M status=none
		r="$(rate 64 "$t")"
		if cmp /srv/share/big /tmp/src64 && cmp /tmp/back64 /tmp/src64; then
			ok fs-64MiB-write-fsync-verify "write $w MB/s, read $r MB/s"
			figure fs-write "$w" MB/s
			figure fs-read "$r" MB/s
		else
			fail fs-64MiB-write-fsync-verify "data differ"
		fi
	else
		fail fs-64MiB-write-fsync-verify "dd failed"
	fi
	rm -f /mnt/vfs/big

	# virtiofsd killed in the middle of a write
	dd if=/dev/zero of=/mnt/vfs/victim bs=1M count=512 conv=fsync status=none 2>/tmp/dd-fs.err &
	DD=$!
	sleep 2
	kill -9 "$VFSD_PID"
	if gone "$DD" 60; then
		ok fs-backend-killed-io-ends "$(head -c 120 /tmp/dd-fs.err)"
	else
		fail fs-backend-killed-io-ends "dd still running after 60 s"
		kill -9 "$DD"
	fi
	gone "$BR_FS" 20 && ok fs-bridge-exits-backend-gone || fail fs-bridge-exits-backend-gone
	umount -l /mnt/vfs 2>/dev/null
else
	fail fs-mount "$(logtail /tmp/br-fs.log) $(logtail /tmp/vfsd.log)"
fi
kill -9 "$BR_FS" "$VFSD_PID" 2>/dev/null
wait "$BR_FS" "$VFSD_PID" 2>/dev/null

# virtiofsd without --tag offers no config space: the bridge's --tag is it
"$VFSD" --socket-path=/run/vhu/fs2.sock --shared-dir=/srv/share --sandbox=none \
	>/tmp/vfsd2.log 2>&1 &
VFSD_PID=$!
virtio-msg-vhost-user --socket /run/vhu/fs2.sock --type fs --dev 1 --tag cmdline \
	--ready-file /run/vhu/fs2.ready >/tmp/br-fs2.log 2>&1 &
BR_FS=$!
if wait_for /run/vhu/fs2.ready 120 && mount -t virtiofs cmdline /mnt/vfs &&
	echo tagged >/mnt/vfs/t && [[ "$(cat /srv/share/t)" == tagged ]] && umount /mnt/vfs; then
	kill -TERM "$BR_FS"
	if gone "$BR_FS" 20 && wait "$BR_FS"; then
		ok fs-tag-from-command-line "$(grep -o 'protocol features negotiated.*' /tmp/br-fs2.log)"
	else
		fail fs-tag-from-command-line "no clean exit on SIGTERM"
	fi
else
	fail fs-tag-from-command-line "$(logtail /tmp/br-fs2.log) $(logtail /tmp/vfsd2.log)"
fi
umount /mnt/vfs 2>/dev/null
kill -9 "$BR_FS" "$VFSD_PID" 2>/dev/null
wait "$BR_FS" "$VFSD_PID" 2>/dev/null
rm -f /srv/share/t
}

# -------------------------------------------------------------------- blk
blk_run() { # name: mkfs, mount, 64 MiB write+verify on /dev/$2
	local name="$1" dev="$2" t w r
	if ! mkfs.ext4 -q -F "/dev/$dev" >/tmp/mkfs.log 2>&1 || ! mount "/dev/$dev" /mnt/blk; then
		fail "$name-mkfs-mount" "$(logtail /tmp/mkfs.log)"
		return
	fi
	t="$(now)"
	dd if=/tmp/src64 of=/mnt/blk/big bs=1M conv=fsync status=none
	w="$(rate 64 "$t")"
	umount /mnt/blk && mount "/dev/$dev" /mnt/blk
	dropcaches
	t="$(now)"
	dd if=/mnt/blk/big of=/tmp/back64 bs=1M status=none
	r="$(rate 64 "$t")"
	if cmp /tmp/back64 /tmp/src64; then
		ok "$name-ext4-64MiB-verify" "write $w MB/s, read $r MB/s"
		figure "$name-write" "$w" MB/s
		figure "$name-read" "$r" MB/s
	else
		fail "$name-ext4-64MiB-verify" "data differ"
	fi
	umount /mnt/blk
}

qsd_start() {
	"$QSD" --blockdev "driver=file,node-name=file0,filename=$1,cache.direct=off" \
		--blockdev driver=raw,node-name=disk0,file=file0 \
		--export type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=/run/vhu/blk.sock,writable=on,num-queues=2 \
		>>/tmp/qsd.log 2>&1 &
	QSD_PID=$!
}

if only blk && [[ -n "$QSD" ]]; then
	truncate -s 256M /srv/disk.raw
	rm -f /run/vhu/blk.sock
	qsd_start /srv/disk.raw
	before="$(disks)"
	virtio-msg-vhost-user --socket /run/vhu/blk.sock --type blk --dev 2 \
		--ready-file /run/vhu/blk.ready >/tmp/br-blk.log 2>&1 &
	BR_BLK=$!
	if wait_for /run/vhu/blk.ready 120 && dev="$(new_disk "$before")"; then
		ok blk-added "/dev/$dev; $(grep -o 'protocol features negotiated.*' /tmp/br-blk.log)"
		# GET_QUEUE_NUM: two request queues, both used by blk-mq
		if grep -q 'type 2, 2 queues' /tmp/br-blk.log &&
			[[ -d "/sys/block/$dev/mq/1" && ! -d "/sys/block/$dev/mq/2" ]]; then
			ok blk-multiqueue-2
		else
			fail blk-multiqueue-2 "$(grep -o 'type 2, .*' /tmp/br-blk.log) mq: $(echo /sys/block/"$dev"/mq/*)"
		fi
		blk_run blk-vhost-user "$dev"
		# qemu-storage-daemon killed in the middle of direct writes
		# rewrites the disk until a write fails: it cannot end on its own
		# (nocreat: once the node is gone, dd would fill a file in /dev)
		while dd if=/dev/zero of="/dev/$dev" bs=1M count=64 oflag=direct conv=nocreat status=none \
			2>/tmp/dd-blk.err; do :; done &
		DD=$!
		sleep 2
		kill -9 "$QSD_PID"
		if gone "$DD" 60; then
			ok blk-backend-killed-io-ends "$(head -c 120 /tmp/dd-blk.err)"
		else
			fail blk-backend-killed-io-ends "dd still running after 60 s"
			kill -9 "$DD"
		fi
		gone "$BR_BLK" 20 && ok blk-bridge-exits-backend-gone || fail blk-bridge-exits-backend-gone
	else
		fail blk-added "$(logtail /tmp/br-blk.log) $(logtail /tmp/qsd.log)"
	fi
	kill -9 "$BR_BLK" "$QSD_PID" 2>/dev/null
	wait "$BR_BLK" "$QSD_PID" 2>/dev/null

	# The bridge killed in the middle of I/O from four writers, three
	# rounds: qemu-storage-daemon, which still maps the pool, must not go
	# on serving the rings the kernel is failing (a lost removal once
	# hung in del_gendisk, about one round in eight).  Each writer
	# rewrites its part of the disk until a write fails.
	ends=0 removed=0 sigbus=0 why=""
	for round in 1 2 3; do
		rm -f /run/vhu/blk.sock /run/vhu/blk.ready
		qsd_start /srv/disk.raw
		before="$(disks)"
		virtio-msg-vhost-user --socket /run/vhu/blk.sock --type blk --dev 2 \
			--ready-file /run/vhu/blk.ready >/tmp/br-blk2.log 2>&1 &
		BR_BLK=$!
		if ! wait_for /run/vhu/blk.ready 120 || ! dev="$(new_disk "$before")"; then
			why="round $round: setup: $(logtail /tmp/br-blk2.log)"
			kill -9 "$BR_BLK" "$QSD_PID" 2>/dev/null
			wait "$BR_BLK" "$QSD_PID" 2>/dev/null
			break
		fi
		DDS=()
		for w in 0 1 2 3; do
			while dd if=/dev/zero of="/dev/$dev" bs=256k count=256 seek=$((w * 256)) \
				oflag=direct conv=nocreat,notrunc status=none 2>"/tmp/dd-blk2.$w.err"; do :; done &
			DDS+=($!)
		done
		sleep 2
		kill -9 "$BR_BLK"
		left=4
		for ((i = 0; i < 600 && left; i++)); do
			left=0
			for p in "${DDS[@]}"; do kill -0 "$p" 2>/dev/null && left=$((left + 1)); done
			((left)) && sleep 0.1
		done
		if ((left)); then
			why="round $round: $left of 4 writers still running after 60 s"
			kill -9 "${DDS[@]}" 2>/dev/null
		else
			ends=$((ends + 1))
		fi
		for ((i = 0; i < 100; i++)); do [[ -e /sys/block/$dev ]] || break; sleep 0.1; done
		[[ -e /sys/block/$dev ]] || removed=$((removed + 1))
		kill -9 "$BR_BLK" "$QSD_PID" 2>/dev/null
		wait "$BR_BLK" 2>/dev/null
		# 128 + SIGBUS: it touched the pool after the kernel took it back
		wait "$QSD_PID" 2>/dev/null
		(($? == 135)) && sigbus=$((sigbus + 1))
		((left)) && break
	done
	((ends == 3)) && ok blk-bridge-killed-io-ends "3 rounds, backend SIGBUS in $sigbus; $(head -c 100 /tmp/dd-blk2.0.err)" ||
		fail blk-bridge-killed-io-ends "$why"
	((removed == 3)) && ok blk-bridge-killed-device-removed ||
		fail blk-bridge-killed-device-removed "$removed of 3 rounds${why:+; $why}"

	# reconnection: the backend restarts, the bridge adds the device again
	rm -f /run/vhu/blk.sock /run/vhu/blk.ready
	qsd_start /srv/disk.raw
	before="$(disks)"
	virtio-msg-vhost-user --socket /run/vhu/blk.sock --type blk --dev 2 --reconnect \
		--ready-file /run/vhu/blk.ready >/tmp/br-blk3.log 2>&1 &
	BR_BLK=$!
	if wait_for /run/vhu/blk.ready 120 && dev="$(new_disk "$before")"; then
		kill -9 "$QSD_PID"
		wait "$QSD_PID" 2>/dev/null
		for ((i = 0; i < 100; i++)); do [[ -e /sys/block/$dev ]] || break; sleep 0.1; done
		rm -f /run/vhu/blk.sock /run/vhu/blk.ready
		before="$(disks)"
		qsd_start /srv/disk.raw
		if wait_for /run/vhu/blk.ready 60 && dev2="$(new_disk "$before")" &&
			dd if="/dev/$dev2" of=/dev/null bs=1M count=4 status=none; then
			ok blk-reconnect "/dev/$dev -> /dev/$dev2"
		else
			fail blk-reconnect "$(logtail /tmp/br-blk3.log 6)"
		fi
	else
		fail blk-reconnect-setup "$(logtail /tmp/br-blk3.log)"
	fi
	kill -TERM "$BR_BLK" 2>/dev/null
	gone "$BR_BLK" 20 && ok blk-bridge-sigterm-removes || fail blk-bridge-sigterm-removes
	kill -9 "$BR_BLK" "$QSD_PID" 2>/dev/null
	wait "$BR_BLK" "$QSD_PID" 2>/dev/null
elif only blk; then
	fail blk-qemu-storage-daemon "not installed in the image"
fi

# a bridge waiting for a backend that never comes still stops on SIGTERM
if only blk; then
	virtio-msg-vhost-user --socket /run/vhu/nobody.sock --type blk --dev 6 --reconnect \
		>/tmp/br-wait.log 2>&1 &
	BR_W=$!
	sleep 2
	kill -TERM "$BR_W"
	gone "$BR_W" 10 && ok bridge-sigterm-while-waiting || fail bridge-sigterm-while-waiting
	kill -9 "$BR_W" 2>/dev/null
	wait "$BR_W" 2>/dev/null
fi

# without the kernel eventfds: the bridge relays kicks and used buffers
if only blk && [[ -n "$QSD" ]]; then
	rm -f /run/vhu/blk.sock /run/vhu/blk.ready
	qsd_start /srv/disk.raw
	before="$(disks)"
	virtio-msg-vhost-user --socket /run/vhu/blk.sock --type blk --dev 2 --no-vring-fds \
		--ready-file /run/vhu/blk.ready >/tmp/br-blk4.log 2>&1 &
	BR_BLK=$!
	if wait_for /run/vhu/blk.ready 120 && dev="$(new_disk "$before")" &&
		dd if=/tmp/src64 of="/dev/$dev" bs=1M count=16 oflag=direct conv=nocreat status=none &&
		dd if="/dev/$dev" of=/tmp/back16 bs=1M count=16 iflag=direct status=none &&
		cmp /tmp/back16 <(head -c 16M /tmp/src64); then
		kill -TERM "$BR_BLK"
		gone "$BR_BLK" 20
		ok blk-relayed-notifications-16MiB "$(grep -o 'relayed [0-9].*' /tmp/br-blk4.log)"
	else
		fail blk-relayed-notifications-16MiB "$(logtail /tmp/br-blk4.log)"
	fi
	kill -9 "$BR_BLK" "$QSD_PID" 2>/dev/null
	wait "$BR_BLK" "$QSD_PID" 2>/dev/null
fi

# the built-in backend on the same kind of image, for comparison
only blk && {
truncate -s 256M /srv/disk2.raw
before="$(disks)"
virtio-msg-backend --blk 3:/srv/disk2.raw --ready-file /run/vhu/be.ready >/tmp/be.log 2>&1 &
BE=$!
if wait_for /run/vhu/be.ready 60 && dev="$(new_disk "$before")"; then
	blk_run blk-builtin "$dev"
else
	fail blk-builtin "$(logtail /tmp/be.log)"
fi
kill -TERM "$BE" 2>/dev/null
gone "$BE" 30 || kill -9 "$BE"
wait "$BE" 2>/dev/null
}

# ------------------------------------------------------------------ vsock
if only vsock && [[ -x "$VSOCKD" ]] && command -v python3 >/dev/null; then
	python3 - >/tmp/echo.log 2>&1 <<'PY' &
import os, socket
p = "/run/vhu/vm.vsock_5000"
try:
    os.unlink(p)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(p)
s.listen(1)
c, _ = s.accept()
while True:
    d = c.recv(65536)
    if not d:
        break
    c.sendall(d)
PY
	ECHO=$!
	RUST_LOG=debug "$VSOCKD" --guest-cid 3 --socket /run/vhu/vsock.sock --uds-path /run/vhu/vm.vsock \
		>/tmp/vsockd.log 2>&1 &
	VS_PID=$!
	virtio-msg-vhost-user --socket /run/vhu/vsock.sock --type vsock --dev 4 \
		--ready-file /run/vhu/vs.ready >/tmp/br-vs.log 2>&1 &
	BR_VS=$!
	if wait_for /run/vhu/vs.ready 120; then
		# Writes of 1 KiB: a 7.3 guest sends larger writes as nonlinear
		# skbs, several data descriptors per packet, which
		# vhost-device-vsock 0.3.0 refuses ("error reading TX packet:
		# DescriptorLengthTooSmall"), with QEMU as much as here.
		if timeout 90 python3 -u - >/tmp/vsc.log 2>&1 <<'PY'
import os, socket, time
for attempt in range(10):
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    try:
        s.connect((2, 5000))
        break
    except OSError as e:
        print("connect:", e)
        s.close()
        time.sleep(1)
data = os.urandom(256 << 10)
got = b""
for i in range(0, len(data), 1024):
    s.sendall(data[i:i + 1024])
    while len(got) < i + 1024:
        d = s.recv(65536)
        assert d, "connection closed"
        got += d
assert got == data, "echo differs"
print("echoed", len(got))
PY
		then
			ok vsock-echo-256KiB
		else
			fail vsock-echo-256KiB "$(logtail /tmp/vsc.log) $(logtail /tmp/vsockd.log 10)"
		fi
		kill -9 "$VS_PID"
		gone "$BR_VS" 20 && ok vsock-backend-killed-bridge-exits || fail vsock-backend-killed-bridge-exits
	else
		fail vsock-added "$(logtail /tmp/br-vs.log) $(logtail /tmp/vsockd.log)"
	fi
	kill -9 "$BR_VS" "$VS_PID" "$ECHO" 2>/dev/null
	wait "$BR_VS" "$VS_PID" "$ECHO" 2>/dev/null
elif only vsock; then
	echo "skip vsock: no vhost-device-vsock or python3"
fi

# ---------------------------------------------------------- garbage backend
only garbage && {
python3 - >/tmp/garbage.log 2>&1 <<'PY' &
import socket, os
p = "/run/vhu/garbage.sock"
try:
    os.unlink(p)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(p)
s.listen(1)
c, _ = s.accept()
c.recv(4096)
c.sendall(b"\xde\xad\xbe\xef" * 64)
c.recv(4096)
PY
GB=$!
wait_for /run/vhu/garbage.sock 30
if timeout 30 virtio-msg-vhost-user --socket /run/vhu/garbage.sock --type blk --dev 5 \
	>/tmp/br-garbage.log 2>&1; then
	fail garbage-backend-clean-error "bridge exited 0"
elif [[ $? -eq 124 ]]; then
	fail garbage-backend-clean-error "bridge hung"
else
	ok garbage-backend-clean-error "$(logtail /tmp/br-garbage.log 1)"
fi
kill -9 "$GB" 2>/dev/null
wait "$GB" 2>/dev/null
}

# --------------------------------------------------------------- teardown
for ((i = 0; i < 50; i++)); do rmmod virtio_msg_loopback 2>/dev/null && break; sleep 0.2; done
if ! lsmod | grep -q '^virtio_msg_loopback' && rmmod virtio_msg_transport; then
	ok modules-unload
else
	fail modules-unload "$(lsmod | grep virtio_msg)"
fi
dmesg | grep -E 'virtio.msg|virtio_fs|BUG|WARNING|hung' | tail -25 | sed 's/^/dmesg: /'
for f in /tmp/br-*.log; do sed "s|^|$(basename "$f"): |" "$f" | tail -12; done
kill "$WD_PID" 2>/dev/null
exit "$fails"
