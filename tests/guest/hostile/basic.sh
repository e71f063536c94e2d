# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=sh
#
# The baseline of the hostile suite: vmsg-hostile serving correctly, with
# messages and with eventfds.  If these fail, the tool is at fault, not
# the kernel, and the other groups say nothing.

t_basic() { # name options...
	n=$1; shift
	rm -f /tmp/ready
	hostile_start /tmp/basic.log serve --ready-file /tmp/ready "$@"
	if ! wait_for 300 test -e /tmp/ready; then
		fail "$n-ready" "$(tail -3 /tmp/basic.log)"
		kill -KILL "$H" 2>/dev/null
		return
	fi
	ok "$n-ready"
	check "$n-rng-read" rng_read 16
	kill -TERM "$H"
	check "$n-exit" hostile_wait 60
	check "$n-pool-returned" bus_empty
}
t_basic basic-msg --rng 1
t_basic basic-eventfd --eventfd --rng 1
