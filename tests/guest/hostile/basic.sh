# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=sh
#
# The baseline of the hostile suite: vmsg-hostile serving correctly, with
# messages and with eventfds.  If these fail, the tool is at fault, not
# the kernel, and the other groups say nothing.

# The calls counter says which data path served the reads.
basic_calls() { grep -q "calls=$1" /tmp/basic.log; }
t_basic() { # name calls-pattern options...
	basic_n=$1 basic_calls=$2; shift 2
	rm -f /tmp/ready
	hostile_start /tmp/basic.log serve --ready-file /tmp/ready "$@"
	if ! wait_for 300 test -e /tmp/ready; then
		fail "$basic_n-ready" "$(tail -3 /tmp/basic.log)"
		kill -KILL "$H" 2>/dev/null
		return
	fi
	ok "$basic_n-ready"
	check "$basic_n-rng-read" rng_read 16
	kill -TERM "$H"
	check "$basic_n-exit" hostile_wait 60
	check "$basic_n-data-path" basic_calls "$basic_calls"
	check "$basic_n-pool-returned" bus_empty
}
t_basic basic-msg '0$' --rng 1
t_basic basic-eventfd '[1-9]' --eventfd --rng 1
