# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=sh
#
# Issue 17, item 9: a backend that stops reading its message node while its
# rng keeps working (vmsg-hostile kicks), and a reader that makes the driver
# kick once per request.  The kernel queues the kicks for the node: it must
# coalesce identical ones (without notification data: one per queue), keep
# distinct ones (with it), hold at most VMSG_USER_MAX_QUEUED (4096) and
# stay responsive; the backend gets what was kept once it reads again.
# The figures are the time the reads took and the mean time of a send:
# each kick used to compare itself with every queued message under the
# node's lock.

kk_uptime() { cut -d' ' -f1 /proc/uptime; }
# The mean time of virtio_msg_user_send() (function_graph), a figure only.
KK_T=/sys/kernel/tracing
kk_trace_on() {
	[ -w $KK_T/set_ftrace_filter ] &&
		echo virtio_msg_user_send >$KK_T/set_ftrace_filter 2>/dev/null &&
		echo function_graph >$KK_T/current_tracer && echo >$KK_T/trace
}
kk_trace_off() { # name
	[ -w $KK_T/set_ftrace_filter ] || return 0
	awk '/virtio_msg_user_send/ {
		for (i = 1; i < NF; i++) if ($(i + 1) == "us") { s += $i; n++; break }
	} END { if (n) printf "figure '"$1"'-send-us-mean %.2f (%d calls)\n", s / n, n }' $KK_T/trace
	echo nop >$KK_T/current_tracer
	echo >$KK_T/set_ftrace_filter
}
kk_queued() { sed -n 's/^queued_kicks=//p' /tmp/kicks.log; }
t_kicks() { # name reads min max options...
	kk_n=$1 kk_reads=$2 kk_min=$3 kk_max=$4
	shift 4
	rm -f /tmp/ready
	hostile_start /tmp/kicks.log kicks --ready-file /tmp/ready --rng 9 "$@"
	if ! wait_for 300 test -e /tmp/ready; then
		fail "$kk_n-ready" "$(tail -3 /tmp/kicks.log)"
		kill -KILL "$H" 2>/dev/null
		return
	fi
	ok "$kk_n-ready"
	kk_trace_on
	kk_t0=$(kk_uptime)
	check "$kk_n-reads" pin dd if=/dev/hwrng of=/dev/null bs=64 count="$kk_reads"
	kk_t1=$(kk_uptime)
	kk_trace_off "$kk_n"
	echo "figure $kk_n-seconds $(awk -v a="$kk_t0" -v b="$kk_t1" 'BEGIN { print b - a }')"
	kill -USR1 "$H"
	check "$kk_n-drained" wait_for 600 grep -q '^queued_kicks=' /tmp/kicks.log
	echo "figure $kk_n-queued $(kk_queued)"
	check "$kk_n-queued-in-range" test "$(kk_queued)" -ge "$kk_min" -a "$(kk_queued)" -le "$kk_max"
	check "$kk_n-rng-read-after" rng_read 16
	kill -TERM "$H"
	check "$kk_n-exit" hostile_wait 60
	check "$kk_n-pool-returned" bus_empty
}
# Identical kicks: one stays queued, however many were sent (the hwrng
# fill thread may kick a few more while the backend drains the node).
t_kicks kicks-identical 3000 1 16
# Distinct kicks (notification data): kept, about one per read, bounded.
t_kicks kicks-distinct 3000 1500 4096 --notification-data --queue-size 256
