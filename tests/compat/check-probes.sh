#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# check-probes.sh - run the compat probe step against one kernel header tree
# and compare the HAVE_* set with tests/compat/expected-probes.txt.
#
# Usage: tests/compat/check-probes.sh <KDIR> <version> [make args...]
#
#   KDIR       kernel build dir (what /lib/modules/<release>/build points to)
#   version    upstream version (7.3.4) or kernel release (7.3.4+deb13-arm64)
#   make args  passed to make, e.g. for a gcc-12 cross check on bookworm:
#              CC=aarch64-linux-gnu-gcc-12 CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT=
#
# The probe step runs through the real top-level Makefile ("make probes") in
# a private copy of Makefile + compat/, so it never touches the work tree.
# Prints one line per probe and "N passed, N failed"; exits 1 on any
# failure, 2 on usage errors or when the version has no expectation.

set -euo pipefail

if (($# < 2)); then
	echo "usage: $0 <KDIR> <version> [make args...]" >&2
	exit 2
fi
kdir=$1
version=${2%%[+-]*}
shift 2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
expected_file=$here/expected-probes.txt

# Expected set: exact version, else the highest listed x.y.* of the same x.y.
mm=$(echo "$version" | cut -d. -f1,2)
line=$(awk -v v="$version" '!/^#/ && NF && $1 == v' "$expected_file")
if [[ -z "$line" ]]; then
	line=$(awk -v mm="$mm" '!/^#/ && NF { split($1, a, "."); if (a[1] "." a[2] == mm) print }' \
		"$expected_file" | sort -V -k1,1 | tail -n 1)
	[[ -n "$line" ]] && echo "note: no entry for $version, using ${line%% *}"
fi
if [[ -z "$line" ]]; then
	echo "ERROR: no expectation for kernel $version in $expected_file" >&2
	exit 2
fi
read -r -a want <<<"${line#* }"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/compat/probes"
cp "$repo/Makefile" "$tmp/"
cp "$repo/compat/gen-autoconf.sh" "$tmp/compat/"
cp "$repo/compat/probes/Kbuild" "$repo"/compat/probes/*.c "$tmp/compat/probes/"

start=$(date +%s.%N)
if ! make -s -C "$tmp" KDIR="$kdir" "$@" probes >"$tmp/out" 2>&1; then
	cat "$tmp/out" >&2
	echo "ERROR: probe step failed for $kdir" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

header=$tmp/compat/generated/compat_autoconf.h
pass=0
fail=0
for src in "$repo"/compat/probes/*.c; do
	name=$(basename "$src" .c)
	[[ "$name" == baseline ]] && continue
	macro=HAVE_$(echo "$name" | tr 'a-z-' 'A-Z_')
	exp=no
	for w in "${want[@]}"; do
		[[ "$w" == "$macro" ]] && exp=yes
	done
	got=no
	grep -q "^#define $macro 1\$" "$header" && got=yes
	if [[ "$exp" == "$got" ]]; then
		printf 'ok    %-40s %s\n' "$macro" "$got"
		pass=$((pass + 1))
	else
		printf 'FAIL  %-40s expected %s, got %s\n' "$macro" "$exp" "$got"
		fail=$((fail + 1))
		# Show why a probe failed (or what compiled unexpectedly).
		awk -v m="$macro:" '$1 == m { p = 1; next }
			p && /^    / && n < 6 { print "  " $0; n++; next }
			{ p = 0 }' "$tmp/compat/probes/probes.log"
	fi
done
# Expectations naming a probe that no longer exists are failures too.
for w in "${want[@]}"; do
	[[ "$w" == - ]] && continue
	n=$(echo "${w#HAVE_}" | tr '[:upper:]' '[:lower:]')
	if [[ ! -f "$repo/compat/probes/$n.c" ]]; then
		printf 'FAIL  %-40s expected, but compat/probes/%s.c does not exist\n' "$w" "$n"
		fail=$((fail + 1))
	fi
done

echo "kernel $version ($kdir): probe step ${secs}s"
echo "$pass passed, $fail failed"
((fail == 0))
