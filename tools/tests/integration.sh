#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Runs the real virtio-msg-backend binary against tests/fake_lb.so, an
# LD_PRELOAD stand-in for the kernel's loopback bus (see fake_lb.c), and
# checks start-up, readiness, signal handling, ADD/REMOVE and error paths.
# Usage: integration.sh BACKEND FAKE_LB_SO
set -u

BIN=$1
SHIM=$2
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() {
	failed=$((failed + 1))
	echo "FAIL $1"
	sed 's/^/    | /' "$tmp/log"
}

backend() {
	LD_PRELOAD=$SHIM "$BIN" --lb-dev /fake/virtio-msg-lb "$@"
}

# In the background; $pid is the backend itself (not a subshell), so that
# signals reach it.
backend_bg() {
	LD_PRELOAD=$SHIM "$BIN" --lb-dev /fake/virtio-msg-lb "$@" &
	pid=$!
}

# Same, with SIGINT not ignored (sh ignores it for background jobs, and
# the backend honours that).
backend_bg_int() {
	LD_PRELOAD=$SHIM env --default-signal=INT "$BIN" --lb-dev /fake/virtio-msg-lb "$@" &
	pid=$!
}

stop() {	# signal; waits at most 10 s, returns the exit status
	kill -"$1" "$pid"
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "backend did not exit on SIG$1" >>"$tmp/log"
		kill -KILL "$pid"
	fi
	wait "$pid"
}

wait_for() {	# file, timeout in tenths of a second
	i=0
	while [ ! -e "$1" ] && [ $i -lt "$2" ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -e "$1" ]
}

truncate -s 1M "$tmp/disk.img"
truncate -s 64K "$tmp/ro.img"

# Start, become ready, serve a driver, shut down on SIGTERM; both wire formats.
for wire in 0 1; do
	name="lifecycle, wire format $wire"
	rm -f "$tmp/ready"
	export FAKE_LB_WIRE=$wire
	backend_bg --rng 1 --blk "2:$tmp/disk.img" --blk "3:$tmp/ro.img:ro" \
		--ready-file "$tmp/ready" -v >"$tmp/log" 2>&1
	unset FAKE_LB_WIRE
	if ! wait_for "$tmp/ready" 100; then
		stop KILL
		bad "$name (never ready)"
		continue
	fi
	[ "$(cat "$tmp/ready")" = "$pid" ] || echo "ready file content wrong" >>"$tmp/log"
	stop TERM
	rc=$?
	if [ $rc -eq 0 ] && ! grep -q FAILED "$tmp/log" &&
	   grep -q "fake-lb: device 1 removed" "$tmp/log" &&
	   grep -q "fake-lb: device 2 removed" "$tmp/log" &&
	   grep -q "fake-lb: device 3 removed" "$tmp/log" &&
	   ! grep -q "ready file content wrong" "$tmp/log" &&
	   ! grep -q "did not exit" "$tmp/log" &&
	   [ ! -e "$tmp/ready" ] &&
	   [ "$(od -An -tu1 -j $((3 * 512)) -N 2 "$tmp/disk.img" | tr -s ' ')" = " 2 33" ]; then
		ok "$name"
	else
		bad "$name (rc $rc)"
	fi
done

# The data-path fast path: kick/call eventfds, a worker per queue, multi-queue
# blk.  --queues is bounded by the online CPUs.
nq=$(nproc 2>/dev/null || echo 1)
[ "$nq" -gt 2 ] && nq=2
fast() {	# name, expected "K/N kicks, C/N calls", extra grep, backend args...
	fname=$1 want=$2 extra=$3
	shift 3
	rm -f "$tmp/ready"
	backend_bg --rng 1 --blk "2:$tmp/disk.img" --queues 2 --ready-file "$tmp/ready" \
		"$@" >"$tmp/log" 2>&1
	if ! wait_for "$tmp/ready" 100; then
		stop KILL
		bad "$fname (never ready)"
		return
	fi
	stop TERM
	rc=$?
	if [ $rc -eq 0 ] && ! grep -q FAILED "$tmp/log" &&
	   grep -q "fake-lb: device 2: $want by eventfd" "$tmp/log" &&
	   grep -q "fake-lb: device 2 removed" "$tmp/log" &&
	   grep -q "fake-lb: device 1 removed" "$tmp/log" &&
	   { [ -z "$extra" ] || grep -q -- "$extra" "$tmp/log"; } &&
	   [ "$(od -An -tu1 -j $((3 * 512)) -N 2 "$tmp/disk.img" | tr -s ' ')" = " 2 33" ]; then
		ok "$fname"
	else
		bad "$fname (rc $rc)"
	fi
}
n=$((2 * nq))
export FAKE_LB_VRING_FDS=1
fast "eventfd kick and call, $nq blk queue(s)" "$n/$n kicks, $n/$n calls" \
	"device 2: $nq request queues"
if [ "$nq" -eq 2 ] && [ "$(od -An -tu1 -j $((11 * 512)) -N 2 "$tmp/disk.img" | tr -s ' ')" != " 3 34" ]; then
	bad "eventfd kick and call: queue 1 did not write its sector"
fi
export FAKE_LB_EVENT_IDX=1
fast "eventfd with EVENT_IDX" "$n/$n kicks, $n/$n calls" "event idx" --event-idx -v
unset FAKE_LB_EVENT_IDX
fast "--no-eventfd keeps messages" "0/$n kicks, 0/$n calls" "not used (--no-eventfd)" \
	--no-eventfd -v
export FAKE_LB_VRING_FDS=2
fast "eventfd ioctls failing: messages" "0/$n kicks, 0/$n calls" "such queues use messages"
if [ "$(grep -c "such queues use messages" "$tmp/log")" -ne 1 ]; then
	bad "eventfd ioctls failing: logged more than once"
fi
unset FAKE_LB_VRING_FDS
fast "kernel without eventfds" "0/$n kicks, 0/$n calls" "no kick/call eventfds" -v

# Exit without REMOVE while the workers run: they are stopped and joined.
name="--no-remove with workers running"
rm -f "$tmp/ready"
FAKE_LB_VRING_FDS=1 backend_bg --rng 9 --blk "2:$tmp/disk.img" --queues 2 --no-remove \
	--ready-file "$tmp/ready" -v >"$tmp/log" 2>&1
wait_for "$tmp/ready" 100
stop TERM
rc=$?
if [ $rc -eq 0 ] && grep -q "fake-lb: device 2 added" "$tmp/log" &&
   ! grep -q "removed" "$tmp/log" && ! grep -q "did not exit" "$tmp/log" &&
   [ "$(grep -c "worker stopped" "$tmp/log")" -eq $((1 + nq)) ]; then
	ok "$name"
else
	bad "$name (rc $rc)"
fi

# REMOVE right after a ring full of writes on every queue: the reset stops the
# busy workers, and nothing is sent after its response.
for fds in 1 0; do
	name="REMOVE with busy workers, eventfds $fds"
	rm -f "$tmp/ready"
	FAKE_LB_VRING_FDS=$fds FAKE_LB_BUSY_REMOVE=1 backend_bg --rng 1 \
		--blk "2:$tmp/disk.img" --queues 2 --ready-file "$tmp/ready" -v >"$tmp/log" 2>&1
	wait_for "$tmp/ready" 100
	stop TERM
	rc=$?
	if [ $rc -eq 0 ] && ! grep -q FAILED "$tmp/log" &&
	   grep -q "fake-lb: device 2: reset with $nq queue(s) busy" "$tmp/log" &&
	   grep -q "fake-lb: device 2 removed" "$tmp/log" &&
	   ! grep -q "did not exit" "$tmp/log"; then
		ok "$name"
	else
		bad "$name (rc $rc)"
	fi
done

# SIGINT works too, --no-remove leaves the devices.
name="SIGINT with --no-remove"
rm -f "$tmp/ready"
backend_bg_int --rng 9 --no-remove --ready-file "$tmp/ready" >"$tmp/log" 2>&1
wait_for "$tmp/ready" 100
stop INT
rc=$?
if [ $rc -eq 0 ] && grep -q "fake-lb: device 9 added" "$tmp/log" &&
   ! grep -q "removed" "$tmp/log" && ! grep -q "did not exit" "$tmp/log"; then
	ok "$name"
else
	bad "$name (rc $rc)"
fi

# An inherited SIG_IGN for SIGINT is honoured (here: sh's background job).
name="ignored SIGINT stays ignored"
rm -f "$tmp/ready"
backend_bg --rng 9 --ready-file "$tmp/ready" >"$tmp/log" 2>&1
wait_for "$tmp/ready" 100
kill -INT "$pid"
sleep 0.5
if kill -0 "$pid" 2>/dev/null; then
	stop TERM
	rc=$?
	if [ $rc -eq 0 ] && grep -q "fake-lb: device 9 removed" "$tmp/log"; then
		ok "$name"
	else
		bad "$name (rc $rc)"
	fi
else
	wait "$pid"
	bad "$name (exited on SIGINT)"
fi

# A second signal ends a shutdown that hangs in REMOVE.
name="second signal during a hanging REMOVE"
rm -f "$tmp/ready"
export FAKE_LB_HANG_REMOVE=1
backend_bg --rng 9 --ready-file "$tmp/ready" >"$tmp/log" 2>&1
unset FAKE_LB_HANG_REMOVE
wait_for "$tmp/ready" 100
kill -TERM "$pid"
sleep 0.5
stop TERM
rc=$?
if [ $rc -eq 143 ] && ! grep -q "did not exit" "$tmp/log"; then
	ok "$name"
else
	bad "$name (rc $rc)"
fi

# ADD failing with EEXIST: clear message, devices added so far removed, exit 1.
name="ADD EEXIST rolls back"
FAKE_LB_EXISTS=5 backend --rng 4 --rng 5 >"$tmp/log" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "device 5 already exists on the bus" "$tmp/log" &&
   grep -q "fake-lb: device 4 removed" "$tmp/log"; then
	ok "$name"
else
	bad "$name (rc $rc)"
fi

# A message device another process has locked: a second backend on the bus.
name="second backend refused"
: >"$tmp/msgdev"
flock "$tmp/msgdev" sleep 5 &
lockpid=$!
sleep 0.3
backend --msg-dev "$tmp/msgdev" --rng 1 >"$tmp/log" 2>&1
rc=$?
kill "$lockpid" 2>/dev/null
wait "$lockpid" 2>/dev/null
if [ $rc -eq 1 ] && grep -q "is in use by another virtio-msg-backend" "$tmp/log"; then
	ok "$name"
else
	bad "$name (rc $rc)"
fi

# Setup errors.
name="missing control device"
"$BIN" --lb-dev "$tmp/nonexistent" --rng 1 >"$tmp/log" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "cannot open $tmp/nonexistent: No such file" "$tmp/log"; then
	ok "$name"
else
	bad "$name (rc $rc)"
fi

name="missing disk image"
backend --blk "1:$tmp/nope.img" >"$tmp/log" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "cannot open $tmp/nope.img" "$tmp/log"; then
	ok "$name"
else
	bad "$name (rc $rc)"
fi

name="usage errors"
r1=0; r2=0; r3=0; r4=0; r5=0; r6=0; r7=0
"$BIN" >"$tmp/log" 2>&1 || r1=$?
"$BIN" --rng 70000 >>"$tmp/log" 2>&1 || r2=$?
"$BIN" --rng 1 --rng 1 >>"$tmp/log" 2>&1 || r3=$?
"$BIN" --queue-size 100 --rng 1 >>"$tmp/log" 2>&1 || r4=$?
"$BIN" --blk 1 >>"$tmp/log" 2>&1 || r5=$?
"$BIN" --queues 0 --rng 1 >>"$tmp/log" 2>&1 || r6=$?
"$BIN" --queues 17 --rng 1 >>"$tmp/log" 2>&1 || r7=$?
if [ "$r1$r2$r3$r4$r5$r6$r7" = 2222222 ] && "$BIN" --help | grep -q -- "--blk DEVNUM:FILE" &&
   "$BIN" --help | grep -q -- "--queues N" && "$BIN" --help | grep -q -- "--no-eventfd" &&
   "$BIN" --version | grep -q "virtio-msg-backend"; then
	ok "$name"
else
	bad "$name ($r1 $r2 $r3 $r4 $r5 $r6 $r7)"
fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
