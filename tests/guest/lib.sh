# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=sh
#
# Helpers shared by the in-guest suites (suite.sh, ffa-suite.sh), sourced
# as /test/lib.sh: tests/lib/initramfs.sh puts it into every guest image.
# busybox sh: no bash-isms.  The suites set BACKEND and keep the running
# backend's pid in B; failures are counted in fails.

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
skip() { echo "skip $1: $2"; }
check() { # name command...
	name="$1"; shift
	if "$@"; then ok "$name"; else fail "$name" "$*"; fi
}

# Under TCG a wakeup across vCPUs costs a timer tick (~5 ms) while one on
# the same vCPU is sub-millisecond: the backend and the processes doing
# I/O run on CPU 0.  That only changes speed.
pin() { taskset 1 "$@"; }

wait_for() { # tenths command...
	n=$1; shift
	while ! "$@"; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
	done
}

# Starts the backend pinned, with the given options; sets B to its pid.
# $1 is its log file.
run_backend() {
	log=$1; shift
	rm -f /tmp/ready
	# taskset execs the backend: $! is the backend itself, not a subshell.
	taskset 1 "$BACKEND" --ready-file /tmp/ready "$@" >"$log" 2>&1 &
	B=$!
	if ! wait_for 300 test -e /tmp/ready; then
		cat "$log"
		return 1
	fi
}

stop_backend() { # exit status of the backend: 0 for a clean stop
	[ -n "$B" ] || return 0
	kill -TERM "$B" 2>/dev/null
	wait "$B"
	rc=$?
	B=""
	return $rc
}

# "dmesg -c" that keeps what it clears for the run's final dmesg verdict
# (tests/lib/initramfs.sh prints it before the rest of the log).
dmesg_clear() { dmesg -c >>/tmp/vmrun-dmesg-cleared; }

# SIGKILL, as a crash would; also a stopped (SIGSTOP) backend.
kill_backend() {
	[ -n "$B" ] || return 0
	kill -KILL "$B" 2>/dev/null
	kill -CONT "$B" 2>/dev/null
	wait "$B" 2>/dev/null
	B=""
}

virtio_count() { # driver
	c=0
	for d in /sys/bus/virtio/drivers/"$1"/virtio*; do
		[ -e "$d" ] && c=$((c + 1))
	done
	echo "$c"
}

# Reads $1 KiB from /dev/hwrng, checks size and that it is not constant.
rng_read() {
	pin dd if=/dev/hwrng of=/tmp/rnd bs=1024 count="$1" 2>/dev/null || return 1
	[ "$(wc -c </tmp/rnd)" -eq $(($1 * 1024)) ] || return 1
	# Random data does not compress; a stuck source does.
	[ "$(gzip -c /tmp/rnd | wc -c)" -gt $(($1 * 1000)) ]
}

# The one virtio disk of the VM is ours: neither QEMU's arm64 virt machine
# nor the amd64 PC of the harness has one.
blk_dev() {
	for d in /sys/block/vd*; do
		[ -e "$d" ] || continue
		echo "/dev/${d##*/}"
		return 0
	done
	return 1
}

md5_of() { md5sum | cut -d' ' -f1; }

# Kernel reports in a log: vm-run's patterns (tests/lib/qemu.sh
# VMSG_DMESG_BAD) minus the plain "lockdep" that the lockdep boot banner
# matches (lockdep's reports are matched by their titles), plus ODEBUG and
# workqueue lockups.
KMSG_BAD='WARNING:|BUG:|Oops|KASAN|UBSAN:|possible recursive locking|inconsistent lock state|circular locking|possible circular|suspicious RCU usage|scheduling while atomic|Call trace:|Kernel panic|kernel BUG|Unable to handle kernel|INFO: task .* blocked|rcu: INFO|soft lockup|hard LOCKUP|suspected memory leak|DMA-API: debugging out of memory|ODEBUG:|workqueue lockup'

# Prints the report lines of kernel log file $1.  The one exception: the
# stack dump of an allocation failure that fault injection forced
# ("FAULT_INJECTION: forcing a failure", then within a few lines the
# allocator's "vmalloc error:" / "page allocation failure:" report and its
# "Call trace:") is the expected outcome, not a report.
kmsg_reports() {
	awk -v bad="$KMSG_BAD" '
		/FAULT_INJECTION: forcing a failure/ { fi = NR }
		/vmalloc error:|page allocation failure:/ { if (fi && NR - fi <= 6) alloc = NR }
		$0 ~ bad {
			if (/Call trace:/ && alloc && NR - alloc <= 4) next
			print
		}' "$1"
}
