#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/check-style.sh - "make check-style": the kernel's checkpatch.pl
# (--no-tree --strict, file mode) over src/, compat/, include/ and
# tests/guest/*.c (user-space: without PREFER_KERNEL_TYPES).
#
# Debian ships no checkpatch.pl on its own, nor in linux-headers or
# linux-kbuild; the one Debian package that has it is linux-source-<x.y>
# (the whole kernel tree as a tarball, ~150 MB).  The newest linux-source
# the host's apt knows is downloaded once (apt-get download, not installed)
# and checkpatch.pl with spelling.txt and const_structs.checkpatch are
# unpacked into $(vmsg_cache)/checkpatch.  CHECKPATCH=<path> uses another.
#
# Prints PASS/FAIL per file (checkpatch's report for failures) and ends
# with "N passed, N failed"; exit status 0 iff every file is clean.
# CHECKPATCH_ARGS adds options (e.g. "--ignore FILE_PATH_CHANGES").
set -euo pipefail
TESTS_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib/common.sh
source "$TESTS_DIR/lib/common.sh"

_vmsg_checkpatch_locked() {
	local dir pkg tmp deb member z
	dir="$(vmsg_cache)/checkpatch"
	[[ -f "$dir/scripts/checkpatch.pl" ]] && return 0
	vmsg_need_cmd perl perl xz xz-utils dpkg-deb dpkg
	pkg="$(apt-cache search --names-only '^linux-source-[0-9.]+$' | awk '{ print $1 }' | sort -V | tail -1)"
	if [[ -z "$pkg" ]]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
		pkg="$(apt-cache search --names-only '^linux-source-[0-9.]+$' | awk '{ print $1 }' | sort -V | tail -1)"
	fi
	[[ -n "$pkg" ]] || { vmsg_log "no linux-source package known to apt"; return 1; }
	vmsg_log "getting checkpatch.pl from $pkg (one download of ~150 MB)"
	tmp="$(mktemp -d "${TMPDIR:-/tmp}/vmsg-checkpatch.XXXXXX")"
	(cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >&2) || { rm -rf "$tmp"; return 1; }
	deb="$(find "$tmp" -maxdepth 1 -name '*.deb' | head -1)"
	member="$(dpkg-deb -c "$deb" | awk '{ print $NF }' | grep -E '/usr/src/linux-source-.*\.tar\.(xz|bz2|gz)$' | head -1)"
	[[ -n "$member" ]] || { rm -rf "$tmp"; vmsg_log "$pkg has no source tarball"; return 1; }
	z=-J
	case "$member" in *.bz2) z=-j ;; *.gz) z=-z ;; esac
	mkdir -p "$tmp/x"
	dpkg-deb --fsys-tarfile "$deb" | tar -xO "$member" | tar -x "$z" -f - -C "$tmp/x" --wildcards \
		'*/scripts/checkpatch.pl' '*/scripts/spelling.txt' '*/scripts/const_structs.checkpatch' ||
		{ rm -rf "$tmp"; return 1; }
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp"
	mv "$tmp"/x/*/scripts "$dir.tmp/scripts"
	echo "$pkg" >"$dir.tmp/source"
	rm -rf "$tmp" "$dir"
	mv "$dir.tmp" "$dir"
}

if [[ -n "${CHECKPATCH:-}" ]]; then
	cp_pl="$CHECKPATCH"
else
	vmsg_with_lock checkpatch _vmsg_checkpatch_locked || vmsg_die "could not get checkpatch.pl"
	cp_pl="$(vmsg_cache)/checkpatch/scripts/checkpatch.pl"
	vmsg_log "checkpatch.pl from $(cat "$(vmsg_cache)/checkpatch/source")"
fi
vmsg_need_cmd perl perl

cd "$VMSG_REPO"
mapfile -t files < <({
	find src compat include -name '*.[ch]' -not -path 'compat/generated/*' -type f
	find tests/guest -maxdepth 1 -name '*.c' -type f
} 2>/dev/null | LC_ALL=C sort)

pass=0
fail=0
extra=()
# shellcheck disable=SC2206  # CHECKPATCH_ARGS is a list of options
[[ -z "${CHECKPATCH_ARGS:-}" ]] || extra=($CHECKPATCH_ARGS)
for f in "${files[@]}"; do
	own=()
	# User-space programs have no u32 & co.
	[[ "$f" == tests/* ]] && own=(--ignore PREFER_KERNEL_TYPES)
	out="$(perl "$cp_pl" --no-tree --strict --show-types --color=never "${own[@]}" "${extra[@]}" \
		-f "$f" 2>&1)" && rc=0 || rc=$?
	if ((rc == 0)); then
		echo "PASS style:$f"
		pass=$((pass + 1))
	else
		echo "FAIL style:$f: $(grep -E '^total:' <<<"$out" | tail -1)"
		grep -v -E '^(total:|NOTE:|$)|^ +(mechanically convert|them to the maintainer)' <<<"$out" |
			grep -v -F "$f has style problems" | sed 's/^/    /'
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
((fail == 0))
