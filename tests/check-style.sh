#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/check-style.sh - "make check-style": the kernel's checkpatch.pl
# (--no-tree --strict, file mode) over the kernel code (src/, compat/,
# include/, tests/ffa/vmsg_ffa_fake.c) with every rule, and over the
# user-space code (tests/guest/*.c, tests/bench/*.c, the git-tracked
# tools/**/*.[ch]) without the rules that ask for kernel-only facilities
# (see USER_IGNORE below).
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

# User-space programs are held to the same rules, except those whose only
# remedy is something the kernel defines and libc does not:
#   PREFER_KERNEL_TYPES             u8/u16/u32/u64 (linux/types.h)
#   PREFER_DEFINED_ATTRIBUTE_MACRO  __printf(), __alias(), __packed & co.
#                                   (linux/compiler_attributes.h)
#   ARRAY_SIZE                      ARRAY_SIZE() (linux/array_size.h)
#   BIT_MACRO                       BIT() (linux/bits.h)
#   STRCPY                          strscpy() (lib/string.c)
USER_IGNORE=PREFER_KERNEL_TYPES,PREFER_DEFINED_ATTRIBUTE_MACRO,ARRAY_SIZE,BIT_MACRO,STRCPY
# CAMELCASE stays on for them, but not for the mixed-case names standard C
# itself defines: <inttypes.h>'s PRIx64/SCNu32 & co. and the C11 keywords
# _Static_assert, _Alignas, ...  checkpatch cannot ignore single words, so
# those reports are dropped from its output and its count of checks.
USER_CAMELCASE_OK='(PRI|SCN)[diouxX](8|16|32|64|LEAST(8|16|32|64)|FAST(8|16|32|64)|MAX|PTR)'
USER_CAMELCASE_OK+='|_(Static_assert|Alignas|Alignof|Atomic|Bool|Complex|Generic|Imaginary|Noreturn|Thread_local)'

# Trace event headers have the layout of include/trace/events/*.h, which
# --strict reads as calls: TP_STRUCT__entry( on its own line, TP_PROTO(...)
# indented under TRACE_EVENT(.  Those two checks only, there only.
TRACE_IGNORE=OPEN_ENDED_LINE,PARENTHESIS_ALIGNMENT

is_user_space() {
	case "$1" in
	tests/guest/* | tests/bench/* | tools/*) return 0 ;;
	esac
	return 1
}

cd "$VMSG_REPO"
mapfile -t files < <({
	find src compat include -name '*.[ch]' -not -path 'compat/generated/*' -type f
	find tests/guest tests/bench -maxdepth 1 -name '*.c' -type f
	find tests/guest/hostile -name '*.[ch]' -type f
	echo tests/ffa/vmsg_ffa_fake.c
	# tools/: what git tracks (not scratch files); all of it outside git.
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files -- 'tools/*.[ch]'
	else
		find tools -name '*.[ch]' -type f
	fi
} 2>/dev/null | while read -r f; do [[ ! -f "$f" ]] || echo "$f"; done | LC_ALL=C sort -u)

pass=0
fail=0
extra=()
# shellcheck disable=SC2206  # CHECKPATCH_ARGS is a list of options
[[ -z "${CHECKPATCH_ARGS:-}" ]] || extra=($CHECKPATCH_ARGS)
for f in "${files[@]}"; do
	own=()
	camel_ok=
	if is_user_space "$f"; then
		own=(--ignore "$USER_IGNORE")
		camel_ok="$USER_CAMELCASE_OK"
	elif [[ "$f" == *_trace.h ]]; then
		own=(--ignore "$TRACE_IGNORE")
	fi
	out="$(perl "$cp_pl" --no-tree --strict --show-types --color=never "${own[@]}" "${extra[@]}" \
		-f "$f" 2>&1)" && rc=0 || rc=$?
	total="$(grep -E '^total:' <<<"$out" | tail -1)" || true
	if ((rc != 0)) && [[ -n "$camel_ok" ]]; then
		# Drop the reports (one paragraph each) on standard C names.
		hdr="^CHECK:CAMELCASE: Avoid CamelCase: <($camel_ok)>\$"
		dropped="$(grep -c -E "$hdr" <<<"$out")" || true
		if ((dropped > 0)); then
			out="$(awk -v hdr="$hdr" 'BEGIN { RS = ""; ORS = "\n\n" }
				{ split($0, l, "\n"); if (l[1] !~ hdr) print }' <<<"$out")"
			if [[ "$total" =~ ^total:\ ([0-9]+)\ errors,\ ([0-9]+)\ warnings,\ ([0-9]+)\ checks, ]]; then
				checks=$((BASH_REMATCH[3] - dropped))
				total="${total/ ${BASH_REMATCH[3]} checks,/ $checks checks,}"
				((BASH_REMATCH[1] + BASH_REMATCH[2] + checks > 0)) || rc=0
			fi
		fi
	fi
	if ((rc == 0)); then
		echo "PASS style:$f"
		pass=$((pass + 1))
	else
		echo "FAIL style:$f: $total"
		grep -v -E '^(total:|NOTE:|$)|^ +(mechanically convert|them to the maintainer)' <<<"$out" |
			grep -v -F "$f has style problems" | sed 's/^/    /'
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
((fail == 0))
