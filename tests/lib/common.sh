# shellcheck shell=bash source-path=SCRIPTDIR
# tests/lib/common.sh - helpers shared by the test/boot libraries.
#
# Sourced, never executed.  Everything here is side-effect free until a
# function is called, so the other libraries can source it unconditionally.
#
# Environment (all optional):
#   VMSG_CACHE     cache root (default ~/.cache/virtio-msg-dkms).  Nothing that
#                  is downloaded or generated ever lands in the repository.
#   VMSG_MIRROR    Debian mirror URI; default: read from the apt configuration
#                  at run time (the host name must never be written to a file).
#   VMSG_VERBOSE   1 = echo progress messages (default 1).

[[ -n "${_VMSG_COMMON_SH:-}" ]] && return 0
_VMSG_COMMON_SH=1

# Exit status meaning "skipped" (automake/ctest convention) used when a kernel
# is not available from the mirror.
export VMSG_EXIT_SKIP=77

# Absolute path of the repository this library lives in (tests/lib/..).
VMSG_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export VMSG_REPO

vmsg_cache() {
	local c="${VMSG_CACHE:-${HOME:-/root}/.cache/virtio-msg-dkms}"
	mkdir -p "$c"
	printf '%s\n' "$c"
}

vmsg_log() {
	[[ "${VMSG_VERBOSE:-1}" == 1 ]] || return 0
	printf '[vmsg %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

vmsg_die() {
	printf '[vmsg] ERROR: %s\n' "$*" >&2
	exit 1
}

# Seconds since the epoch with sub-second precision, for timing reports.
vmsg_now() { date +%s.%N; }
vmsg_elapsed() { awk -v a="$1" -v b="$(vmsg_now)" 'BEGIN { printf "%.1f", b - a }'; }

# Install Debian packages on the host only when a command (or, for an
# absolute path, a file) is missing; CI machines are fresh, developer
# machines usually already have them.
# Usage: vmsg_need_cmd <command|/file> <package> [<command|/file> <package>]...
vmsg_need_cmd() {
	local missing=()
	while (($# >= 2)); do
		if [[ "$1" == /* ]]; then
			[[ -e "$1" ]] || missing+=("$2")
		else
			command -v "$1" >/dev/null 2>&1 || missing+=("$2")
		fi
		shift 2
	done
	((${#missing[@]})) || return 0
	vmsg_log "installing host packages: ${missing[*]}"
	# apt needs a current list on a fresh machine; update only once per run.
	if [[ -z "${_VMSG_APT_UPDATED:-}" ]]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || vmsg_die "apt-get update failed"
		_VMSG_APT_UPDATED=1
	fi
	# Lock timeout: another job on the machine may be running apt right now.
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		-o DPkg::Lock::Timeout=300 \
		"${missing[@]}" >&2 || vmsg_die "apt-get install ${missing[*]} failed"
}

# The Debian mirror URI, read from the apt configuration at run time.
# deb822 (/etc/apt/sources.list.d/*.sources) first, then one-line format.
# The security archive is skipped: it has no pool/main/l/linux of backports.
vmsg_mirror() {
	if [[ -n "${VMSG_MIRROR:-}" ]]; then
		printf '%s\n' "${VMSG_MIRROR%/}"
		return 0
	fi
	local uri="" f
	for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
		[[ -r "$f" ]] || continue
		# One stanza per paragraph; take the first URI of the first stanza
		# that is a "deb" stanza and not the security archive.
		uri="$(awk 'BEGIN { RS = ""; FS = "\n" }
			{
				types = ""; uris = ""; suites = ""
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^Types:/)  types  = $i
					if ($i ~ /^URIs:/)   uris   = $i
					if ($i ~ /^Suites:/) suites = $i
				}
				if (types ~ /[ \t]deb([ \t]|$)/ && uris != "" && suites !~ /-security/ && uris !~ /security/) {
					sub(/^URIs:[ \t]*/, "", uris); split(uris, u, /[ \t]+/); print u[1]; exit
				}
			}' "$f")"
		[[ -n "$uri" ]] && break
	done
	if [[ -z "$uri" && -r /etc/apt/sources.list ]]; then
		uri="$(awk '$1 == "deb" && $0 !~ /security/ {
				for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; exit }
			}' /etc/apt/sources.list)"
	fi
	[[ -n "$uri" ]] || vmsg_die "no Debian mirror found in the apt configuration"
	printf '%s\n' "${uri%/}"
}

# Download <url> to <dest> atomically (a partial file never has the final name).
vmsg_download() {
	local url="$1" dest="$2" tmp
	vmsg_need_cmd curl curl
	mkdir -p "$(dirname "$dest")"
	tmp="$dest.part.$$"
	if ! curl -fsSL --retry 3 --retry-delay 2 --connect-timeout 20 -o "$tmp" "$url"; then
		rm -f "$tmp"
		return 1
	fi
	mv -f "$tmp" "$dest"
}

# HTTP HEAD probe: succeeds iff <url> exists.
vmsg_url_exists() {
	vmsg_need_cmd curl curl
	curl -fsSI --retry 2 --connect-timeout 20 -o /dev/null "$1"
}

# Cross-process lock so concurrent runs don't build the same cache entry twice.
# Usage: vmsg_with_lock <name> <command...>
vmsg_with_lock() {
	local name="$1"
	shift
	local lock
	lock="$(vmsg_cache)/locks/$name.lock"
	mkdir -p "$(dirname "$lock")"
	(
		flock 9
		"$@"
	) 9>"$lock"
}

# Target architecture of the kernels, modules and guest programs:
# VMSG_ARCH=arm64 (default: Debian arm64 kernels, cross-built, booted with
# qemu-system-aarch64) or amd64 (Debian amd64 kernels, built natively,
# booted with qemu-system-x86_64).  Prints it; dies on anything else.
vmsg_arch() {
	case "${VMSG_ARCH:-arm64}" in
	arm64 | amd64) printf '%s\n' "${VMSG_ARCH:-arm64}" ;;
	*) vmsg_die "VMSG_ARCH=$VMSG_ARCH: only arm64 and amd64 are supported" ;;
	esac
}

# kbuild's arguments for the target architecture (the compiler itself,
# with its version, comes from the Debian headers' Makefile).
vmsg_kbuild_args() {
	case "$(vmsg_arch)" in
	arm64) printf '%s\n' ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- ;;
	amd64) printf '%s\n' ARCH=x86 ;;
	esac
}

# GNU triplet of the target (the chroot's unversioned <triplet>-gcc).
vmsg_triplet() {
	case "$(vmsg_arch)" in
	arm64) printf '%s\n' aarch64-linux-gnu ;;
	amd64) printf '%s\n' x86_64-linux-gnu ;;
	esac
}

# What file(1) says about an executable of the target architecture.
vmsg_file_arch_re() {
	case "$(vmsg_arch)" in
	arm64) printf '%s\n' 'ARM aarch64' ;;
	amd64) printf '%s\n' 'x86-64' ;;
	esac
}
