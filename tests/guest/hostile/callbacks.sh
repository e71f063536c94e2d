# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=sh
#
# The "callbacks" group (callbacks.c): a queue's used path entered from
# several CPUs at once, and a device's fail work against its removal.
# Sourced by hostile-suite.sh (lib.sh loaded, the loopback bus up).
#
# The races need CPUs to race on: with one CPU the checks say so (skip).
# A use-after-free shows as a report only with KASAN or slab poisoning (the
# debug kernel, or slab_debug=FZPU on the command line); elsewhere
# remove-race checks that the loop completes and the bus is left empty.
# Environment: HOSTILE_SECONDS (each used race, default 4), CB_RUNS (runs
# of each used race, default 3), CB_ITERATIONS (remove-race, default 100).

cb_secs="${HOSTILE_SECONDS:-4}"
cb_runs="${CB_RUNS:-3}"
cb_iters="${CB_ITERATIONS:-100}"

# Kernel reports since line $1 of dmesg, and the virtio core's complaint
# about a used ring it cannot make sense of (the queue is dead after it).
cb_reports_since() {
	dmesg | tail -n +"$(($1 + 1))" >/tmp/cb.dmesg
	kmsg_reports /tmp/cb.dmesg
	grep 'is not a head' /tmp/cb.dmesg
}

cb_field() { tr ' ' '\n' </tmp/cb.log | sed -n "s/^$1=//p" | tail -1; }

# name seconds-limit expected-fields scenario args...: runs the scenario,
# checks its status, the key=value lines it must print, and the kernel log.
cb_run() {
	cb_name=$1 cb_limit=$2 cb_want=$3
	shift 3
	cb_mark=$(dmesg | wc -l)
	timeout -s KILL "$cb_limit" vmsg-hostile "$@" >/tmp/cb.log 2>&1
	cb_rc=$?
	sed "s/^/  $cb_name: /" /tmp/cb.log
	cb_why=$(cb_reports_since "$cb_mark" | head -1)
	[ -n "$cb_why" ] && cb_why="kernel: $cb_why"
	if [ -z "$cb_why" ] && [ "$cb_rc" -ne 0 ]; then
		cb_why="vmsg-hostile $1: exit status $cb_rc"
	fi
	for cb_kv in $cb_want; do
		[ -n "$cb_why" ] && break
		[ "$(cb_field "${cb_kv%%=*}")" = "${cb_kv#*=}" ] ||
			cb_why="${cb_kv%%=*}=$(cb_field "${cb_kv%%=*}"), not ${cb_kv#*=}"
	done
	if [ -n "$cb_why" ]; then fail "$cb_name" "$cb_why"; else ok "$cb_name"; fi
}

if [ "$(nproc)" -lt 2 ]; then
	skip callbacks-used-race "one CPU: nothing to race"
	skip callbacks-remove-race "one CPU: nothing to race"
else
	cb_i=1
	while [ "$cb_i" -le "$cb_runs" ]; do
		for cb_how in call event; do
			cb_run "callbacks-used-race-$cb_how-$cb_i" $((cb_secs + 120)) \
				"reader=finished remove=ok pool_in_use=0" \
				"used-race-$cb_how" "$cb_secs"
		done
		cb_i=$((cb_i + 1))
	done
	cb_run callbacks-remove-race 300 "pool_in_use=0 num_devices=0" \
		remove-race "$cb_iters" 240
fi
