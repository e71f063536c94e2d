#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Fault injection on the debug kernel (issue 12, tests/debugkernel/README.md
# "Fault injection"), run by tests/debugkernel/guest-kmemleak.sh as
# DK_SUITE=failnth-suite.sh (busybox sh).
#
# For each operation class, N = 1, 2, ... : the operation runs once with
# /proc/thread-self/fail-nth = N (its Nth fallible allocation fails, in the
# thread that does it), until an N where no failure was injected any more.
#   load-transport  finit_module(virtio_msg_transport.ko)   (vmsg-test failnth)
#   load-loopback   finit_module(virtio_msg_loopback.ko)    (vmsg-test failnth)
#                   only the allocations of the module's init (under
#                   do_one_initcall(): bus, class, chrdev, debugfs ...) count:
#                   the module loader's own hundreds (sections, sysfs, the
#                   trace-event core, which WARNs on -ENOMEM by design) are
#                   the kernel's, not ours (stack-trace filter require-start/end)
#   load-ffa        finit_module(virtio_msg_ffa.ko) with the fake partition
#                   of tests/ffa loaded: the FF-A probe (not by default:
#                   FAILNTH_CLASSES; needs vmsg_ffa_fake.ko)
#   add             VIRTIO_MSG_LB_IOC_ADD of a virtio-rng device with its
#                   peer serving: the device's registration on the bus,
#                   probe, virtqueue setup and pool slots  (vmsg-peer --fail-nth)
# After each N: no kernel report in dmesg (an allocation-failure report of
# the injected failure itself is expected), nothing of the device left on
# the bus, the module unloads, and the same operation without injection
# succeeds (add: the rng device reads; both modules are unloaded and
# loaded again every FAILNTH_RELOAD_EVERY-th N, default 10, and at the
# end: per N that would double the class's time).  Allocations of the
# debug tooling itself (kmemleak's metadata) never count or fail.  A load or ADD that failed although nothing was injected, or
# that succeeded with the failure injected but then left a broken state,
# is a problem.  Prints, per class,
#   figure failnth-<class>-points <number of N that hit an injected failure>
#   ok failnth-<class> | FAIL failnth-<class>: <problems, the first one>
# one "failnth: <class> N=<n>: <outcome>" line per N and one
# "failnth: <class> N=<n>: <problem>" line per problem.
# Environment: FAILNTH_MAX (default 2000): an N where failures are still
# injected after that many is a problem (no end); FAILNTH_CLASSES (default
# "load-transport load-loopback add"): the classes to run;
# FAILNTH_RELOAD_EVERY (default 10; 1 = after every N of add).
BACKEND=/usr/bin/virtio-msg-backend
fails=0
B=""
# shellcheck source-path=SCRIPTDIR source=lib.sh
. /test/lib.sh

MAX="${FAILNTH_MAX:-2000}"
CLASSES="${FAILNTH_CLASSES:-load-transport load-loopback add}"
RELOAD_EVERY="${FAILNTH_RELOAD_EVERY:-10}"
# The loopback bus with its smallest run-time pool: the pool is allocated
# page by page, 4096 failure points of the same loop with the default
# 16 MiB, 64 with this.
LB_PARAMS="pool_size=262144"
FFA_PARAMS="pool_size=262144 bus_timeout_ms=1000"
DBG=/sys/kernel/debug
UPD="${VMRUN_UPDATES:-/lib/modules/$(uname -r)/updates}"

lb_field() { vmsg-test info | sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
bus_empty() { [ "$(lb_field num_devices):$(lb_field pool_in_use)" = 0:0 ]; }
loaded() { grep -q "^$1 " /proc/modules; }
peer_settled() { [ -e /tmp/ready ] || ! kill -0 "$B" 2>/dev/null; }

# --- setup ---------------------------------------------------------------------
for f in failslab fail_page_alloc; do
	if [ ! -d "$DBG/$f" ] || [ ! -w /proc/self/fail-nth ]; then
		fail failnth-setup "no $DBG/$f or /proc/self/fail-nth (not the debug kernel)"
		exit 1
	fi
	# Nothing fails by probability: task-filter and no task has
	# make-it-fail.  Only fail-nth injects, GFP_KERNEL included.
	echo Y >"$DBG/$f/task-filter"
	echo 100 >"$DBG/$f/probability"
	echo 1 >"$DBG/$f/interval"
	echo -1 >"$DBG/$f/times"
	echo 0 >"$DBG/$f/space"
	echo N >"$DBG/$f/ignore-gfp-wait"
	# One "FAULT_INJECTION: forcing a failure" line per injection, not
	# rate limited: kmsg_reports needs it next to the allocator's report.
	echo 1 >"$DBG/$f/verbose"
	echo 1000000 >"$DBG/$f/verbose_ratelimit_burst"
done
echo 0 >"$DBG/fail_page_alloc/min-order"
# The address range of a kernel function, "0x<start> 0x<end>", from
# /proc/kallsyms (in address order: the end is the next symbol).
fn_range() {
	awk -v f="$1" '$3 == f { a = $1; next } a { print "0x" a, "0x" $1; exit }' /proc/kallsyms
}
INITCALL=$(fn_range do_one_initcall)
case "$INITCALL" in
0x0000000000000000* | "")
	fail failnth-setup "do_one_initcall not in /proc/kallsyms: '$INITCALL'"
	exit 1 ;;
esac
# Only allocations with <range> on the stack count and fail ("" = all).
fi_require() {
	for f in failslab fail_page_alloc; do
		if [ -n "$1" ]; then
			echo "${1%% *}" >"$DBG/$f/require-start"
			echo "${1##* }" >"$DBG/$f/require-end"
		else
			echo 0 >"$DBG/$f/require-start"
			echo 0xffffffffffffffff >"$DBG/$f/require-end"
		fi
	done
}
# kmemleak's own metadata for every allocation is allocated (and may
# fail, falling back to its pool) right after it: not ours, and it would
# double the count.  Left out by the filter's reject range.
KMEMLEAK=$(fn_range __alloc_object)
for f in failslab fail_page_alloc; do
	if [ -n "$KMEMLEAK" ]; then
		echo "${KMEMLEAK%% *}" >"$DBG/$f/reject-start"
		echo "${KMEMLEAK##* }" >"$DBG/$f/reject-end"
	fi
done
ok failnth-setup
modprobe virtio_rng

# --- helpers ----------------------------------------------------------------------
problems=0
first=""
problem() { # class n what
	echo "failnth: $1 N=$2: $3"
	problems=$((problems + 1))
	[ -n "$first" ] || first="N=$2: $3"
}

# The kernel log since the last call, judged (lib.sh kmsg_reports: the
# allocation-failure report of an injected failure is expected, any other
# report is not).  Prints the offending lines.
kmsg_bad() {
	dmesg -c >/tmp/fn-kmsg
	cat /tmp/fn-kmsg >>/tmp/vmrun-dmesg-cleared
	kmsg_reports /tmp/fn-kmsg
}

unload_all() {
	! loaded virtio_msg_ffa || rmmod virtio_msg_ffa || return 1
	! loaded vmsg_ffa_fake || rmmod vmsg_ffa_fake || return 1
	! loaded virtio_msg_loopback || rmmod virtio_msg_loopback || return 1
	! loaded virtio_msg_transport || rmmod virtio_msg_transport
}

# One ADD through vmsg-peer, optionally with fail-nth ($1, 0 = none).
# Leaves the peer's pid in B when it serves; prints its fail-nth line.
peer_add() {
	rm -f /tmp/ready
	if [ "$1" -gt 0 ]; then
		taskset 1 vmsg-peer --fail-nth "$1" --ready-file /tmp/ready --rng 1 >/tmp/fn-peer.log 2>&1 &
	else
		taskset 1 vmsg-peer --ready-file /tmp/ready --rng 1 >/tmp/fn-peer.log 2>&1 &
	fi
	B=$!
	wait_for 300 peer_settled
}

# The same load without injection must work, and the module unload.
retry_load() { # class module [params]
	# shellcheck disable=SC2086  # params: a list of words
	if ! modprobe "$2" $3; then
		problem "$1" "$nth" "modprobe $2 without injection failed"
	elif ! rmmod "$2"; then
		problem "$1" "$nth" "rmmod $2 after the retry failed"
	fi
}

retry_add() {
	if [ $((nth % RELOAD_EVERY)) = 0 ]; then
		unload_all || { problem add "$nth" "modules do not unload"; return; }
		if ! modprobe virtio_msg_transport || ! modprobe virtio_msg_loopback "$LB_PARAMS"; then
			problem add "$nth" "modprobe failed"
			return
		fi
	fi
	if peer_add 0 && [ -e /tmp/ready ]; then
		rng_read 4 || problem add "$nth" "retry: rng read failed"
	else
		problem add "$nth" "retry: ADD without injection failed: $(cat /tmp/fn-peer.log)"
	fi
	stop_backend || problem add "$nth" "retry: peer did not stop cleanly"
	wait_for 50 bus_empty || problem add "$nth" "retry: bus not empty"
}

# Ends a class: the figure and the verdict.
class_end() { # class points reached-end
	echo "figure failnth-$1-points $2"
	if [ "$3" != 1 ]; then
		problem "$1" "$nth" "still injecting at N=$MAX (FAILNTH_MAX)"
	fi
	if [ "$problems" -eq 0 ] && [ "$2" -gt 0 ]; then
		ok "failnth-$1"
	elif [ "$problems" -eq 0 ]; then
		fail "failnth-$1" "no failure was ever injected"
	else
		fail "failnth-$1" "$problems problem(s), first: $first"
	fi
	problems=0
	first=""
}

# --- module load ----------------------------------------------------------------
# load_class <class> <module> <params> [<command loading what it needs>]
load_class() {
	class=$1 mod=$2 params=$3 dep=${4:-}
	points=0 ended=0 nth=1
	unload_all
	# shellcheck disable=SC2086  # a command and its arguments
	[ -z "$dep" ] || $dep
	kmsg_bad >/dev/null
	while [ "$nth" -le "$MAX" ]; do
		r=$(vmsg-test failnth "$nth" load "$UPD/$mod.ko" "$params")
		echo "failnth: $class N=$nth: $r"
		case "$r" in
		"OK not-injected")
			loaded "$mod" || problem "$class" "$nth" "loaded OK but not in /proc/modules"
			rmmod "$mod" || problem "$class" "$nth" "rmmod after a clean load failed"
			ended=1
			break ;;
		*" injected") points=$((points + 1)) ;;
		*) problem "$class" "$nth" "load failed with nothing injected: $r" ;;
		esac
		# Loaded in spite of the failure (it was tolerated): must unload.
		if loaded "$mod"; then
			rmmod "$mod" || problem "$class" "$nth" "loaded with a failure injected ($r), rmmod fails"
		fi
		bad=$(kmsg_bad)
		[ -z "$bad" ] || problem "$class" "$nth" "($r) kernel report: $(echo "$bad" | head -1)"
		retry_load "$class" "$mod" "$params"
		nth=$((nth + 1))
	done
	bad=$(kmsg_bad)
	[ -z "$bad" ] || problem "$class" "$nth" "kernel report: $(echo "$bad" | head -1)"
	class_end "$class" "$points" "$ended"
}

want() { case " $CLASSES " in *" $1 "*) ;; *) return 1 ;; esac; }
fi_require "$INITCALL"
want load-transport && load_class load-transport virtio_msg_transport ""
want load-loopback && load_class load-loopback virtio_msg_loopback "$LB_PARAMS" "modprobe virtio_msg_transport"
# The FF-A driver's load probes the fake partition (tests/ffa): version
# exchange, pool, area share, bus registration, all in the loading task.
ffa_deps() { modprobe virtio_msg_transport && modprobe vmsg_ffa_fake modes=both; }
want load-ffa && load_class load-ffa virtio_msg_ffa "$FFA_PARAMS" ffa_deps
fi_require ""

# --- ADD of a served device ------------------------------------------------------
want add || { unload_all; echo "failnth: $fails failed"; [ "$fails" -eq 0 ]; exit; }
points=0 ended=0 nth=1
unload_all
modprobe virtio_msg_transport
modprobe virtio_msg_loopback "$LB_PARAMS"
kmsg_bad >/dev/null
while [ "$nth" -le "$MAX" ]; do
	peer_add "$nth"
	r=$(sed -n 's/^fail-nth [0-9]* ADD //p' /tmp/fn-peer.log)
	echo "failnth: add N=$nth: $r (uptime $(cut -d" " -f1 /proc/uptime))"
	if ! peer_settled; then
		problem add "$nth" "ADD did not return within 30 s"
		kill_backend
		break
	fi
	case "$r" in
	"OK not-injected")
		rng_read 4 || problem add "$nth" "clean ADD, but the rng read failed"
		stop_backend || problem add "$nth" "clean ADD, peer did not stop cleanly"
		wait_for 50 bus_empty || problem add "$nth" "bus not empty after the clean run"
		unload_all || problem add "$nth" "modules do not unload at the end"
		ended=1
		break ;;
	*" injected") points=$((points + 1)) ;;
	"") problem add "$nth" "no fail-nth line from vmsg-peer: $(cat /tmp/fn-peer.log)" ;;
	*) problem add "$nth" "ADD failed with nothing injected: $r" ;;
	esac
	# A device added in spite of the failure may lack its driver; it
	# must go away with its peer all the same.
	if [ -e /tmp/ready ]; then
		stop_backend || problem add "$nth" "($r) peer did not stop cleanly"
	else
		kill_backend
	fi
	wait_for 50 bus_empty || problem add "$nth" "($r) bus not empty: $(vmsg-test info)"
	bad=$(kmsg_bad)
	[ -z "$bad" ] || problem add "$nth" "($r) kernel report: $(echo "$bad" | head -1)"
	retry_add
	bad=$(kmsg_bad)
	[ -z "$bad" ] || problem add "$nth" "retry: kernel report: $(echo "$bad" | head -1)"
	nth=$((nth + 1))
done
class_end add "$points" "$ended"

unload_all
for f in failslab fail_page_alloc; do echo 0 >"$DBG/$f/probability"; done
echo "failnth: $fails failed"
[ "$fails" -eq 0 ]
