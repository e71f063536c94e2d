#!/bin/sh
# tests/guest/demo.sh - guest side of "make demo" (tests/demo.sh boots it
# with OVERLAY=vmsglb): a guided tour of the virtio-msg loopback bus with
# the user-space backend serving a virtio-rng and a virtio-blk device.
# Runs under busybox sh; prints "DEMO OK" at the end and exits 0 only then.

# TCG wakes a thread on another vCPU only after ~5 ms, on the same vCPU in
# well under 1 ms: everything here (and so the backend, a child) runs on
# CPU 0.
taskset -p 1 $$ >/dev/null 2>&1

heading() {
	echo
	echo "==== $* ===="
}
die() {
	echo "DEMO FAILED: $*"
	[ -n "$BACKEND" ] && kill -TERM "$BACKEND" 2>/dev/null
	exit 1
}
BACKEND=""

heading "Kernel"
uname -a

heading "Loading the modules: virtio_msg_transport, virtio_msg_loopback"
modprobe virtio_msg_transport || die "modprobe virtio_msg_transport"
modprobe virtio_msg_loopback || die "modprobe virtio_msg_loopback"
# No udev here: load the virtio drivers the devices will need by hand.
modprobe virtio_rng || die "modprobe virtio_rng"
modprobe virtio_blk || die "modprobe virtio_blk"
modprobe ext4 2>/dev/null
lsmod | grep -E '^(virtio_msg|virtio_rng|virtio_blk)' | awk '{ printf "  %-22s %8s bytes\n", $1, $2 }'

heading "Device nodes /dev/virtio-msg*"
ls -l /dev/virtio-msg* || die "no /dev/virtio-msg* nodes"

heading "Loopback bus (VIRTIO_MSG_LB_IOC_INFO and the kernel log)"
vmsg-test info 2>/dev/null || echo "(vmsg-test info not available)"
dmesg | grep -i -E 'virtio.msg|vmsglb|restricted' | sed 's/^/  /' | tail -n 12

heading "Starting virtio-msg-backend --rng 1 --blk 2:/tmp/disk.img (pinned to CPU 0)"
dd if=/dev/zero of=/tmp/disk.img bs=1M count=16 2>/dev/null || die "cannot create /tmp/disk.img"
taskset 1 virtio-msg-backend --rng 1 --blk 2:/tmp/disk.img --ready-file /tmp/backend.ready \
	>/tmp/backend.log 2>&1 &
BACKEND=$!
i=0
while [ ! -f /tmp/backend.ready ] && [ $i -lt 300 ]; do
	kill -0 "$BACKEND" 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
[ -f /tmp/backend.ready ] || { cat /tmp/backend.log; die "backend did not get ready"; }
echo "backend pid $BACKEND is serving:"
sed 's/^/  /' /tmp/backend.log

heading "Devices on the virtio bus (/sys/bus/virtio/devices)"
disk=""
for d in /sys/bus/virtio/devices/*; do
	[ -e "$d" ] || continue
	drv="(no driver)"
	[ -e "$d/driver" ] && drv="$(basename "$(readlink "$d/driver")")"
	printf '  %-10s device id %-4s vendor %-8s driver %-12s %s\n' "$(basename "$d")" \
		"$(cat "$d/device")" "$(cat "$d/vendor")" "$drv" \
		"$(basename "$(readlink -f "$d/..")")"
	for b in "$d"/block/*; do
		[ -e "$b" ] && disk="$(basename "$b")"
	done
done
[ -n "$disk" ] || die "no virtio-blk disk appeared"

heading "Reading 64 KiB from /dev/hwrng (virtio-rng served by the backend)"
rng=""
read -r avail </sys/class/misc/hw_random/rng_available
for r in $avail; do
	case "$r" in virtio_rng*) rng="$r" ;; esac
done
[ -n "$rng" ] || die "no virtio_rng in rng_available"
echo "$rng" >/sys/class/misc/hw_random/rng_current
echo "rng_available: $(cat /sys/class/misc/hw_random/rng_available)"
echo "rng_current:   $(cat /sys/class/misc/hw_random/rng_current)"
dd if=/dev/hwrng of=/tmp/random.bin bs=4096 count=16 2>/dev/null
n=$(wc -c </tmp/random.bin)
[ "$n" -eq 65536 ] || die "read $n bytes from /dev/hwrng, wanted 65536"
hexdump -C /tmp/random.bin | head -n 8
echo "... $n bytes, md5 $(md5sum </tmp/random.bin | cut -d' ' -f1)"

heading "Block device /dev/$disk (virtio-blk backed by /tmp/disk.img)"
echo "size: $(blockdev --getsize64 "/dev/$disk") bytes"
msg="written through virtio-msg at $(date)"
if command -v mke2fs >/dev/null 2>&1 && grep -q ext4 /proc/filesystems; then
	echo "# mke2fs /dev/$disk; mount; write a file; umount; mount again; read it"
	mke2fs -L vmsgdemo "/dev/$disk" >/tmp/mkfs.log 2>&1 || { cat /tmp/mkfs.log; die "mke2fs failed"; }
	mkdir -p /mnt/disk
	mount -t ext2 "/dev/$disk" /mnt/disk || die "mount failed"
	echo "$msg" >/mnt/disk/hello.txt || die "write failed"
	umount /mnt/disk || die "umount failed"
	echo 3 >/proc/sys/vm/drop_caches
	mount -t ext2 -o ro "/dev/$disk" /mnt/disk || die "second mount failed"
	ls -l /mnt/disk
	echo "hello.txt: $(cat /mnt/disk/hello.txt)"
	[ "$(cat /mnt/disk/hello.txt)" = "$msg" ] || die "file content differs after remount"
	umount /mnt/disk || die "second umount failed"
else
	echo "# no mke2fs/ext2 here: dd round trip of 1 MiB with md5"
	dd if=/dev/urandom of=/tmp/pattern bs=64k count=16 2>/dev/null
	dd if=/tmp/pattern of="/dev/$disk" bs=64k count=16 conv=fsync 2>/dev/null || die "write failed"
	echo 3 >/proc/sys/vm/drop_caches
	dd if="/dev/$disk" of=/tmp/readback bs=64k count=16 2>/dev/null || die "read failed"
	a=$(md5sum </tmp/pattern | cut -d' ' -f1)
	b=$(md5sum </tmp/readback | cut -d' ' -f1)
	echo "written md5 $a, read back md5 $b"
	[ "$a" = "$b" ] || die "data differs"
fi

heading "Stopping the backend (SIGTERM: the devices are removed from the bus)"
kill -TERM "$BACKEND"
wait "$BACKEND"
st=$?
BACKEND=""
[ "$st" -eq 0 ] || { cat /tmp/backend.log; die "backend exited with status $st"; }
echo "backend exited with status 0"
left=""
for d in /sys/bus/virtio/devices/*; do
	[ -e "$d" ] || continue
	bus="$(basename "$(readlink -f "$d/..")")"
	case "$bus" in virtio-msg*) left="$left $(basename "$d")" ;; esac
done
[ -z "$left" ] || die "devices still on the virtio-msg bus:$left"
echo "no devices left on the virtio-msg bus"

heading "Unloading the modules"
rmmod virtio_msg_loopback || die "rmmod virtio_msg_loopback"
rmmod virtio_msg_transport || die "rmmod virtio_msg_transport"
lsmod | grep -q '^virtio_msg' && die "modules still loaded"
echo "virtio_msg_loopback and virtio_msg_transport unloaded"

echo
echo "DEMO OK"
