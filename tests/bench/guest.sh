#!/bin/bash
# shellcheck disable=SC2012  # ls of sysfs directories: plain names
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/bench/guest.sh - the bench inside the trixie arm64 VM (run as
# /test/guest.sh by the package test's init, tests/pkg/init).  Everything
# in one boot, so every ratio compares figures of the same guest run.
#
# /test (the disk labelled VMSGTEST, written by tests/bench/run) holds
# env (BENCH_* settings), bin/ (vmsg-bench, virtio-msg-backend),
# modules/ (this tree's .ko for the image's kernel).  Results go to
# /test/out/: raw.txt ("<key> <value>", one line per repetition),
# fio-<target>-<job>-<rep>.json, info.txt (KEY=value), logs.
#
# Every process doing I/O, every backend and daemon runs on CPU 0
# (taskset 1): under TCG a wakeup across vCPUs costs a timer tick.  Only
# the "2cpu" floor figures cross vCPUs, on purpose.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# shellcheck source=/dev/null
. /test/env
REPS="${BENCH_REPS:-5}"
RUNTIME="${BENCH_RUNTIME:-4}"
PP_ITERS="${BENCH_PP_ITERS:-2000}"	# same-vCPU ping-pong round trips
PP_ITERS_X="${BENCH_PP_ITERS_X:-200}"	# cross-vCPU ones (a tick each)
CTL_ITERS="${BENCH_CTL_ITERS:-2000}"	# sysfs reads per repetition
RNG_KIB="${BENCH_RNG_KIB:-1024}"
IMG_MB="${BENCH_IMG_MB:-256}"
OUT=/test/out
BIN=/test/bin
VB="$BIN/vmsg-bench"
BACKEND="$BIN/virtio-msg-backend"
IMG=/dev/shm/bench.img
RAW="$OUT/raw.txt"
mkdir -p "$OUT"
: >"$RAW"
errors=0

emit() { # key value
	if [[ "$2" =~ ^[0-9.]+$ ]]; then
		echo "$1 $2" >>"$RAW"
		echo "bench $1 $2"
	else
		echo "bench-error $1: no value (${2:0:200})"
		errors=$((errors + 1))
	fi
}
info() { echo "$1=$2" >>"$OUT/info.txt"; echo "info $1=$2"; }
err() { echo "bench-error $*"; errors=$((errors + 1)); }
# Only for foreground commands: "pin prog &" would make $! a subshell's
# pid, not the program's; background programs are started with taskset 1
# directly (taskset execs them).
pin() { taskset 1 "$@"; }

wait_for() { # tenths command...
	local n=$1
	shift
	while ! "$@"; do
		n=$((n - 1))
		((n > 0)) || return 1
		sleep 0.1
	done
}

no_rng_bound() { ! ls -d /sys/bus/virtio/drivers/virtio_rng/virtio* >/dev/null 2>&1; }
vdisks() { ls -d /sys/block/vd* 2>/dev/null | sed 's|.*/||' | sort; }
new_disk() { # old list -> the one new vdX
	comm -13 <(echo "$1") <(vdisks) | head -1
}

info uptime_at_start_s "$(cut -d' ' -f1 /proc/uptime)"
info kernel "$(uname -r)"
info cpus "$(nproc)"
info cpu_model "$(sed -n 's/^CPU part.*: //p' /proc/cpuinfo | head -1)"
info fio "$(fio --version)"
info qsd "$(qemu-storage-daemon --version | head -1)"
info reps "$REPS"
info fio_runtime_s "$RUNTIME"

if ! insmod /test/modules/virtio_msg_transport.ko ||
	! insmod /test/modules/virtio_msg_loopback.ko; then
	err "cannot load the modules"
	exit 1
fi
modprobe virtio_rng
wait_for 100 test -e /dev/virtio-msg-lb || { err "no /dev/virtio-msg-lb"; exit 1; }

# The backend rows run once per notification mode: with and without
# eventfds when the backend offers --no-eventfd, once otherwise.
if "$BACKEND" --help 2>&1 | grep -q -- --no-eventfd; then
	MODES="eventfd no-eventfd"
else
	MODES="default"
fi
info backend_modes "$MODES"

# ---------------------------------------------------------------- floor
echo "== floor"
for ((r = 1; r <= REPS; r++)); do
	emit floor.pipe_rt_1cpu_ns "$("$VB" pingpong pipe 0 0 "$PP_ITERS")"
	emit floor.eventfd_rt_1cpu_ns "$("$VB" pingpong eventfd 0 0 "$PP_ITERS")"
	emit floor.pipe_rt_2cpu_ns "$("$VB" pingpong pipe 0 1 "$PP_ITERS_X")"
	emit floor.eventfd_rt_2cpu_ns "$("$VB" pingpong eventfd 0 1 "$PP_ITERS_X")"
	emit floor.memcpy_4k_MBps "$(pin "$VB" memcpy 4 256)"
	emit floor.memcpy_1m_MBps "$(pin "$VB" memcpy 1024 256)"
done

# ---------------------------------------------------------- control path
# One request/response round trip through the bus.  With the transport's
# trace events (virtio_msg:*) the kernel's clock measures it; without them
# the time of a sysfs read of "status" (one GET_DEVICE_STATUS round trip)
# minus that of "device" (answered from memory, no message).
echo "== control path"
TRACE=/sys/kernel/tracing
[[ -d $TRACE/events ]] || mount -t tracefs tracefs $TRACE 2>/dev/null
if [[ -d $TRACE/events/virtio_msg ]]; then
	CTL_METHOD=trace
else
	CTL_METHOD=sysfs
fi
info ctl_method "$CTL_METHOD"

# Latency fields of the trace events: any "<...lat...>=<number>" field,
# in ns unless its name ends in _us.  The median of one repetition.
trace_latency() {
	# mawk (the image's awk) has no asort(): sort(1) orders the values.
	awk '{
		for (i = 1; i <= NF; i++)
			if ($i ~ /lat[a-z_]*=[0-9]+/) {
				split($i, kv, "=")
				v = kv[2] + 0
				if (kv[1] ~ /_us$/) v *= 1000
				print v
			}
	}' "$@" | sort -g | awk '{ a[NR] = $1 } END {
		if (!NR) exit 1
		printf "%.0f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
	}'
}

taskset 1 "$BACKEND" --ready-file /tmp/ready-ctl --rng 1 >"$OUT/backend-ctl.log" 2>&1 &
BPID=$!
if wait_for 300 test -e /tmp/ready-ctl; then
	rngdev="$(ls -d /sys/bus/virtio/drivers/virtio_rng/virtio* 2>/dev/null | head -1)"
	info ctl_device "${rngdev##*/}"
	for ((r = 1; r <= REPS; r++)); do
		base="$(pin "$VB" readloop "$rngdev/device" "$CTL_ITERS")"
		if [[ $CTL_METHOD == trace ]]; then
			echo >$TRACE/trace
			echo 1 >$TRACE/events/virtio_msg/enable
		fi
		st="$(pin "$VB" readloop "$rngdev/status" "$CTL_ITERS")"
		emit ctl.sysfs_status_read_ns "$st"
		emit ctl.sysfs_device_read_ns "$base"
		if [[ $CTL_METHOD == trace ]]; then
			echo 0 >$TRACE/events/virtio_msg/enable
			cp $TRACE/trace "$OUT/trace-ctl-$r.txt"
			lat="$(trace_latency "$OUT/trace-ctl-$r.txt")" || lat=""
			if [[ -z $lat ]]; then
				# Events without a latency field: say so, and fall back.
				CTL_METHOD=sysfs
				info ctl_method "sysfs (the virtio_msg events carry no latency field)"
			fi
		fi
		if [[ $CTL_METHOD == trace ]]; then
			emit ctl.rt_ns "$lat"
		else
			emit ctl.rt_ns "$(awk -v a="$st" -v b="$base" 'BEGIN { printf "%.0f\n", a - b }')"
		fi
	done
else
	err "backend for the control path did not start"
	cat "$OUT/backend-ctl.log"
fi
kill -TERM "$BPID" 2>/dev/null
wait "$BPID"
wait_for 300 no_rng_bound

# ADD -> bound driver: from starting the backend to its ready file, which
# it writes once every ADD returned (ADD returns once the driver probed).
add_time() { # ndevs
	local args=() i rc
	for ((i = 0; i < $1; i++)); do
		args+=(--rng "$((100 + i))")
	done
	rm -f /tmp/ready-add /tmp/add.t
	taskset 1 "$VB" spawn-ready /tmp/ready-add "$BACKEND" --ready-file /tmp/ready-add "${args[@]}" \
		>/tmp/add.t 2>"$OUT/backend-add.log" &
	local sp=$!
	if wait_for 600 test -s /tmp/add.t; then
		awk '{ printf "%.3f\n", $1 / 1e6 }' /tmp/add.t
		local n
		n="$(ls -d /sys/bus/virtio/drivers/virtio_rng/virtio* 2>/dev/null | wc -l)"
		((n == $1)) || echo "bench-error add: $n virtio_rng devices bound, not $1" >&2
	fi
	kill -TERM "$(cat /tmp/ready-add 2>/dev/null)" 2>/dev/null
	wait "$sp"
	rc=$?
	# Every device must be gone before the next start.
	wait_for 300 no_rng_bound
	return $rc
}
for ((r = 1; r <= REPS; r++)); do
	emit ctl.add_1dev_ms "$(add_time 1)"
	emit ctl.add_64dev_ms "$(add_time 64)"
done

# ------------------------------------------------------------- data path
echo "== data path"
# Image in tmpfs, shared by our backend and the VDUSE export; non-zero
# data so that nothing can shortcut zero pages.
dd if=/dev/urandom of=$IMG bs=1M count="$IMG_MB" status=none ||
	{ err "cannot create $IMG"; exit 1; }

# The peer: a VDUSE disk from qemu-storage-daemon, bound by virtio_vdpa.
for m in vduse vdpa virtio_vdpa; do
	modprobe "$m" || err "modprobe $m"
done
before="$(vdisks)"
pin qemu-storage-daemon \
	--blockdev driver=file,node-name=file0,filename=$IMG \
	--export type=vduse-blk,id=vduse0,node-name=file0,name=vduse0,writable=on,num-queues=1 \
	--pidfile /tmp/qsd.pid --daemonize >"$OUT/qsd.log" 2>&1 || err "qemu-storage-daemon: $(cat "$OUT/qsd.log")"
VDUSE_DISK=""
if vdpa dev add name vduse0 mgmtdev vduse >>"$OUT/qsd.log" 2>&1 &&
	wait_for 300 test -n "$(new_disk "$before")"; then
	VDUSE_DISK="/dev/$(new_disk "$before")"
	info vduse_disk "$VDUSE_DISK"
	info vduse_driver "$(basename "$(readlink -f "/sys/block/${VDUSE_DISK#/dev/}/device/driver")")"
else
	err "no VDUSE disk: $(cat "$OUT/qsd.log")"
fi

# fio jobs: name and arguments.  Every job on CPU 0, libaio, O_DIRECT.
JOBS="qd1 qd32x4 seqread seqwrite"
job_args() {
	case "$1" in
	qd1) echo "--rw=randread --bs=4k --iodepth=1 --numjobs=1" ;;
	qd32x4) echo "--rw=randread --bs=4k --iodepth=32 --numjobs=4 --group_reporting" ;;
	seqread) echo "--rw=read --bs=1M --iodepth=1 --numjobs=1" ;;
	seqwrite) echo "--rw=write --bs=1M --iodepth=1 --numjobs=1" ;;
	esac
}
run_fio() { # target disk job rep
	local f="$OUT/fio-$1-$3-$4.json"
	# shellcheck disable=SC2046  # job_args is a list of options
	if pin fio --name="$3" --filename="$2" --ioengine=libaio --direct=1 \
		--time_based --runtime="$RUNTIME" --ramp_time=0 --norandommap \
		$(job_args "$3") --output-format=json --output="$f" >/dev/null 2>"$f.err"; then
		echo "bench fio $1 $3 rep $4 done"
	else
		err "fio $1 $3 rep $4: $(head -c 300 "$f.err")"
		rm -f "$f"
	fi
}

for mode in $MODES; do
	margs=()
	[[ $mode == no-eventfd ]] && margs=(--no-eventfd)
	before="$(vdisks)"
	rm -f /tmp/ready-data
	taskset 1 "$BACKEND" "${margs[@]}" --ready-file /tmp/ready-data --rng 1 --blk 2:$IMG \
		>"$OUT/backend-data-$mode.log" 2>&1 &
	BPID=$!
	if ! wait_for 300 test -e /tmp/ready-data ||
		! wait_for 100 test -n "$(new_disk "$before")"; then
		err "backend ($mode) did not serve a disk: $(cat "$OUT/backend-data-$mode.log")"
		kill -TERM "$BPID" 2>/dev/null
		wait "$BPID"
		continue
	fi
	LB_DISK="/dev/$(new_disk "$before")"
	info "lb_disk_$mode" "$LB_DISK"
	info "hwrng_$mode" "$(cat /sys/class/misc/hw_random/rng_current)"
	# Repetitions interleave the two disks: host load shifts hit both.
	for ((r = 1; r <= REPS; r++)); do
		for j in $JOBS; do
			run_fio "lb-$mode" "$LB_DISK" "$j" "$r"
			[[ -z $VDUSE_DISK ]] || run_fio vduse "$VDUSE_DISK" "$j" "$mode$r"
		done
		emit "rng.lb-$mode.MBps" "$(pin "$VB" rate /dev/hwrng "$RNG_KIB" 64)"
	done
	kill -TERM "$BPID" 2>/dev/null
	wait "$BPID" || err "backend ($mode) exit status $?"
done

if [[ -n $VDUSE_DISK ]]; then
	vdpa dev del vduse0 || err "vdpa dev del"
fi
[[ -f /tmp/qsd.pid ]] && kill -TERM "$(cat /tmp/qsd.pid)"
info uptime_at_end_s "$(cut -d' ' -f1 /proc/uptime)"
dmesg >"$OUT/dmesg.txt"
echo "bench errors: $errors"
((errors == 0))
