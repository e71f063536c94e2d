#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/check.sh - the project's whole test run ("make check").
#
#   tests/check.sh                     compile matrix (all nine arm64
#                                      kernels, amd64 6.16.12 and 7.3.4) +
#                                      boots of 6.16.12 6.19.14 7.3.4 and
#                                      7.3.4-amd64
#   KERNELS=all tests/check.sh         boot every kernel of the matrix
#   KERNELS="7.3.4" tests/check.sh     boot only these (compile still all)
#   KERNELS="7.3.4-amd64"              a "-amd64" suffix names the Debian
#                                      amd64 kernel of that version
#   KERNELS=none tests/check.sh        compile matrix only
#
# Stages:
#  1. compile, for every kernel of the matrix (two at a time): a clean copy
#     of the module sources is built with W=1 in the kernel's Debian chroot
#     (build-<ver>: make succeeds, the .ko files exist and carry the
#     kernel's vermagic, zero warnings), checked with sparse through the
#     top Makefile's "sparse" target (sparse-<ver>: zero sparse warnings or
#     errors in src/, compat/, include/), and the compat probes are compared
#     with tests/compat/expected-probes.txt (probes-<ver>).  amd64 kernels
#     are built natively in an amd64 chroot, their checks are named
#     build-<ver>-amd64 etc.; they must give the transport and loopback
#     modules and never the FF-A one.  The static guest programs
#     (virtio-msg-backend, vmsg-test) are built once per architecture
#     (build-tools-arm64, build-vmsg-test-arm64, and -amd64 when an amd64
#     kernel is in the matrix), the backend's unit tests run natively
#     (tools-unit-tests), and host checks need no kernel: checkpatch per C
#     file (style:<file>), virtio-msg-dt's tests (dtool-unit-tests), the
#     Makefile's kernel floor (kernel-floor-*).
#  2. boot, for every boot kernel, one after another: tests/vm-run with the
#     prebuilt modules and programs runs the in-guest suite twice,
#       dt       OVERLAY=vmsglb  SUITE_POOL=dt
#       runtime  OVERLAY=none    SUITE_POOL=runtime
#     and the last arm64 boot kernel once more with the pool described by
#     node name only (tests/dts/vmsglb-rfc.dtso, SUITE_POOL=dt, kind
#     dt-name), and once with tests/guest/hostile-suite.sh on four CPUs
#     (kind hostile: vmsg-hostile's racing, ring-forging, late and dying
#     backends, tests/guest/hostile/).  An amd64 kernel (qemu-system-x86_64, no device tree) runs
#     the suite once, runtime only.
#     Every "ok NAME" / "FAIL NAME: why" / "skip NAME: why" line of the suite
#     becomes the check <ver>/<kind>/NAME, plus boot-<ver>-<kind>-dmesg-clean
#     per boot (the VM ran to the end and its dmesg has no WARNING/BUG/...).
#  3. ffa: tests/ffa-check.sh on FF-A kernels (fake partitions), checks
#     ffa/<ver>/NAME and ffa-boot-<ver>.
#  4. debug: the debug kernel of tests/debugkernel/ (KASAN, UBSAN, KFENCE,
#     lockdep, DEBUG_OBJECTS, DMA-API debugging, kmemleak, fault injection,
#     DMA_RESTRICTED_POOL; built once, cached by the hash of its recipe):
#     this tree's modules and the fake FF-A partitions built against it
#     with W=1 (debug/build-modules), then one boot per kind of
#     tests/debugkernel/guest-kmemleak.sh, whatever KERNELS says:
#       runtime  tests/guest/suite.sh, OVERLAY=none, SUITE_POOL=runtime
#       dt       tests/guest/suite.sh, OVERLAY=vmsglb, SUITE_POOL=dt: the
#                kernel's restricted-dma-pool ops confine the DMA
#       failnth  tests/guest/failnth-suite.sh: the Nth allocation of the
#                module loads and of ADD failed, N = 1, 2, ... (its
#                "figure" lines, the failure points, are echoed)
#       failnth-ffa  the same for the FF-A driver's load, which probes a
#                fake partition: version, pool, area share, bus
#       ffa      tests/guest/ffa-suite.sh with the fake partitions
#       hostile  tests/guest/hostile-suite.sh on four CPUs, its racing
#                scenarios run longer (HOSTILE_SECONDS): the stress boot
#     each ending in a kmemleak scan (kmemleak-ours: none of our objects
#     leaked) and kmsg-clean.  Checks debug/<kind>/NAME and
#     debug/boot-<kind>-dmesg-clean (any KASAN, UBSAN, KFENCE, lockdep,
#     DMA-API, ODEBUG or kmemleak report fails it).  Warm ~11.5 min;
#     cold the kernel's download and build add ~6 min (2 idle cores).
#  5. pkg: tests/pkg/run, the Debian packages end to end (build, lintian,
#     apt install + DKMS + modprobe + removal in a trixie arm64 VM), checks
#     pkg/NAME.  Warm ~20 min; cold (no image, no build chroot) ~33 min.
#  6. vhost-user: tests/vhost-user/run in the pkg stage's image, checks
#     vhost-user/NAME (see tests/README.md).
#  7. bench: tests/bench/run --smoke, one short repetition of "make bench"
#     in the same trixie arm64 image (~2 min of VM): checks bench/<figure>
#     that every figure was produced (never its value), bench-smoke-exit.
#
# Output: one line per check, "PASS name", "FAIL name: why" or
# "SKIP name: why" (kernel not on the mirror, or the suite's own skips),
# then a summary whose last line is "N passed, N failed, N skipped".
# Exit status 0 iff nothing failed.  Progress goes to stderr, everything
# else to tests/logs/check-<date>/ (tests/logs/check-latest links to it).
#
# Settings (environment, or make variables of "make check"):
#   KERNELS       boot kernels: default | all | none | list of versions
#   SUITE         guest suite script (default tests/guest/suite.sh)
#   JOBS          compile jobs in parallel (default 2)
#   BOOT_TIMEOUT  wall-clock limit per boot in seconds (default 300; a boot
#                 normally takes 60-120 s under TCG)
#   CHECK_BUDGET  seconds the whole run may take (default 4800, CI allows
#                 5400): a boot gets at most what is left, boots and a pkg
#                 stage that no longer fit are FAILed as "not run"
#   STAGES        "compile boot ffa debug pkg vhost-user bench" (default);
#                 "compile" alone skips boots; the debug stage runs
#                 whatever KERNELS says (KERNELS=none STAGES=debug: only it)
#   FFA_KERNELS   kernels of the FF-A stage (default 6.17.13 7.0.13 7.3.4;
#                 with KERNELS=all every FF-A kernel)
#   DEBUG_KERNEL  version of the debug kernel (default 7.3.4)
#   DEBUG_KINDS   boots of the debug stage (default "runtime dt failnth
#                 failnth-ffa ffa hostile")
#   DEBUG_BOOT_TIMEOUT  per debug-kernel boot (default 600 s; the debug
#                 kernel runs 2-4x slower than Debian's)
#   CHECK_LOGDIR  log directory (default tests/logs/check-<date>)
#   KEEP          1 = keep the work dir with the builds (printed)
#   VMSG_CACHE    cache dir of the kernels/chroots (see tests/README.md)
set -euo pipefail
TESTS_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib/build.sh
source "$TESTS_DIR/lib/build.sh"
# shellcheck source=lib/qemu.sh
source "$TESTS_DIR/lib/qemu.sh"

KERNELS_ALL="6.16.12 6.17.13 6.18.15 6.19.14 7.0.13 7.1.13 7.2.12 7.3.4 7.2.13"
# Debian amd64 kernels: the oldest and the newest of the supported range.
KERNELS_AMD64="6.16.12-amd64 7.3.4-amd64"
KERNELS_BOOT_DEFAULT="6.16.12 6.19.14 7.3.4 7.3.4-amd64"

case "${1:-}" in
-h | --help)
	sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
	exit 0 ;;
"") ;;
*) echo "check.sh: no arguments; settings are environment variables (--help)" >&2; exit 2 ;;
esac

KERNELS="${KERNELS:-default}"
case "$KERNELS" in
default) BOOT_KERNELS="$KERNELS_BOOT_DEFAULT" ;;
all) BOOT_KERNELS="$KERNELS_ALL $KERNELS_AMD64" ;;
none) BOOT_KERNELS="" ;;
*) BOOT_KERNELS="$(tr ',' ' ' <<<"$KERNELS")" ;;
esac
# The compile matrix always has all nine arm64 kernels and the amd64 ones,
# plus any other boot kernel asked for.
COMPILE_KERNELS="$KERNELS_ALL $KERNELS_AMD64"
for v in $BOOT_KERNELS; do
	[[ " $COMPILE_KERNELS " == *" $v "* ]] || COMPILE_KERNELS+=" $v"
done
SUITE="${SUITE:-$VMSG_REPO/tests/guest/suite.sh}"
JOBS="${JOBS:-2}"
BOOT_TIMEOUT="${BOOT_TIMEOUT:-300}"
CHECK_BUDGET="${CHECK_BUDGET:-4800}"
STAGES="${STAGES:-compile boot ffa debug pkg vhost-user bench}"
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || { echo "check.sh: bad JOBS=$JOBS" >&2; exit 2; }
# make -j per compile job: the cores shared out among the parallel jobs.
VMSG_MAKEJ=$(($(nproc) / JOBS))
((VMSG_MAKEJ >= 1)) || VMSG_MAKEJ=1

LOGDIR="${CHECK_LOGDIR:-$VMSG_REPO/tests/logs/check-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$LOGDIR"
LOGDIR="$(cd "$LOGDIR" && pwd)"
if [[ -z "${CHECK_LOGDIR:-}" ]]; then
	ln -sfn "$(basename "$LOGDIR")" "$VMSG_REPO/tests/logs/check-latest"
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/vmsg-check.XXXXXX")"
RESULTS="$LOGDIR/results.txt"
: >"$RESULTS"

T_START="$(vmsg_now)"
JOB_PIDS=()
cleanup() {
	local p
	for p in "${JOB_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	if [[ "${KEEP:-0}" == 1 ]]; then
		echo "check: work dir kept: $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '[check %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# Whole seconds of CHECK_BUDGET left.
budget_left() {
	awk -v a="$T_START" -v b="$(vmsg_now)" -v c="$CHECK_BUDGET" 'BEGIN { printf "%d", c - (b - a) }'
}

# A kernel of the matrix is named by its version (arm64) or by
# <version>-amd64.  These split such a name.
tag_arch() { if [[ "$1" == *-amd64 ]]; then echo amd64; else echo arm64; fi; }
tag_ver() { printf '%s\n' "${1%-amd64}"; }
for v in $COMPILE_KERNELS; do
	[[ "$(tag_ver "$v")" =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]] ||
		{ echo "check.sh: bad kernel '$v' (want <version> or <version>-amd64)" >&2; exit 2; }
done

# Record one check: <file> PASS|FAIL|SKIP <name> [reason].  Jobs collect
# their results in their own file and print it when they end, so lines of
# parallel jobs never mix.
record() {
	local file="$1" verdict="$2" name="$3" why="${4:-}"
	why="${why//$'\n'/ }"
	if [[ "$verdict" == PASS ]]; then
		printf 'PASS %s\n' "$name" >>"$file"
	else
		printf '%s %s: %s\n' "$verdict" "$name" "${why:-no reason given}" >>"$file"
	fi
}

# First line of <file> matching <ERE>, trimmed to something readable.
first_match() {
	grep -E -m1 -- "$2" "$1" 2>/dev/null | cut -c1-200 || true
}

# ---------------------------------------------------------------------------
# Host tools: installed only when missing (one apt-get update at most).
vmsg_need_cmd qemu-system-aarch64 qemu-system-arm /usr/lib/ipxe/qemu/efi-virtio.rom ipxe-qemu \
	debootstrap debootstrap dtc device-tree-compiler fdtoverlay device-tree-compiler \
	curl curl xz xz-utils zstd zstd cpio cpio dpkg-deb dpkg modinfo kmod file file \
	unshare util-linux flock util-linux pkg-config pkg-config /usr/include/libfdt.h libfdt-dev

# ---------------------------------------------------------------------------
# Stage 1: compile.

# Diagnostics of our own files in a build log: relative paths (kbuild >= 6.13
# builds external modules from their directory) or absolute ones under <dir>.
our_diags() {
	local log="$1" dir="$2" kind="$3"
	grep -E -- "^(${dir//./\\.}/)?(src|compat|include)/[^:]+:[0-9]+(:[0-9]+)?: ($kind)" "$log" || true
}

# The modules a kernel must get: FF-A only where the kernel has FF-A.
expected_modules() {
	local m="virtio_msg_transport virtio_msg_loopback"
	grep -qE '^CONFIG_ARM_FFA_TRANSPORT=[ym]' "$VMSG_KCONFIG" && m+=" virtio_msg_ffa"
	printf '%s\n' "$m"
}

# <tag> is <version> (arm64) or <version>-amd64; check and log names use
# the tag, so the two architectures never collide.  Runs in a job's
# subshell: exporting VMSG_ARCH stays local to it.
compile_kernel() {
	local tag="$1" res="$2" rc=0 dir log kdir t0 n m ko missing=() ext v kb
	v="$(tag_ver "$tag")"
	export VMSG_ARCH
	VMSG_ARCH="$(tag_arch "$tag")"
	t0="$(vmsg_now)"
	vmsg_kernel_fetch "$v" >>"$LOGDIR/fetch-$tag.log" 2>&1 || rc=$?
	if ((rc == 77)); then
		for n in build sparse probes; do
			record "$res" SKIP "$n-$tag" "kernel $tag not available from the Debian mirror"
		done
		return 0
	elif ((rc)); then
		for n in build sparse probes; do
			record "$res" FAIL "$n-$tag" "fetching kernel $tag failed (log: $LOGDIR/fetch-$tag.log)"
		done
		return 0
	fi
	kdir="/lib/modules/$VMSG_KABI/build"
	dir="$WORK/build/$tag"
	vmsg_copy_module_sources "$dir"

	# W=1 build.
	log="$LOGDIR/build-$tag.log"
	rc=0
	vmsg_build_modules "$v" "$dir" W=1 >"$log" 2>&1 || rc=$?
	local built=0
	if ((rc)); then
		record "$res" FAIL "build-$tag" "make W=1 failed (status $rc): $(first_match "$log" 'error|Error [0-9]')"
	else
		built=1
		for m in $(expected_modules); do
			[[ -f "$dir/$m.ko" ]] || missing+=("$m.ko")
		done
		while IFS= read -r ko; do
			missing+=("$ko")
		done < <(vmsg_collect_modules "$dir" "$WORK/ko/$tag" || true)
		# Nothing else either: no FF-A module where the kernel has no FF-A.
		for ko in "$dir"/*.ko; do
			[[ -f "$ko" ]] || continue
			m="$(basename "$ko" .ko)"
			[[ " $(expected_modules | tr '\n' ' ') " == *" $m "* ]] || missing+=("$m.ko (unexpected)")
		done
		n="$(grep -c -i 'warning:' "$log" || true)"
		if ((${#missing[@]})); then
			record "$res" FAIL "build-$tag" "missing or wrong: ${missing[*]}"
		elif ((n)); then
			record "$res" FAIL "build-$tag" "$n warning(s), first: $(first_match "$log" '[Ww][Aa][Rr][Nn][Ii][Nn][Gg]:')"
		else
			record "$res" PASS "build-$tag"
		fi
	fi

	# sparse, through the top Makefile's target, in the same (already built)
	# tree with the same W=1 flags: only the checker runs.
	log="$LOGDIR/sparse-$tag.log"
	if ((built == 0)); then
		record "$res" SKIP "sparse-$tag" "not run: build-$tag failed"
	else
		local sparse
		if ! sparse="$(vmsg_sparse 2>>"$log")"; then
			record "$res" FAIL "sparse-$tag" "could not get sparse (log: $log)"
		else
			rc=0
			vmsg_build_modules --bind "$(dirname "$sparse")" "$v" "$dir" W=1 CHECK="$sparse" sparse >>"$log" 2>&1 || rc=$?
			local ours others checked
			ours="$(our_diags "$log" "$dir" 'warning|error')"
			checked="$(grep -c -E '^ +CHECK +' "$log" || true)"
			# Errors in the kernel's headers mean sparse could not parse them.
			others="$(grep -E ': error:' "$log" | grep -v -F -x -- "$ours" | head -1 || true)"
			if [[ -n "$ours" ]]; then
				record "$res" FAIL "sparse-$tag" "$(wc -l <<<"$ours") sparse diagnostic(s), first: $(head -1 <<<"$ours" | cut -c1-200)"
			elif ((rc)); then
				record "$res" FAIL "sparse-$tag" "make sparse failed (status $rc): $(first_match "$log" 'ERROR|error|Error [0-9]')"
			elif [[ -n "$others" ]]; then
				record "$res" FAIL "sparse-$tag" "sparse errors outside our files: ${others:0:200}"
			elif ((checked == 0)); then
				record "$res" FAIL "sparse-$tag" "sparse did not run (no CHECK lines; log: $log)"
			else
				record "$res" PASS "sparse-$tag"
			fi
		fi
	fi

	# compat probe expectations (tests/compat/check-probes.sh, in the chroot).
	log="$LOGDIR/probes-$tag.log"
	rc=0
	mapfile -t kb < <(vmsg_kbuild_args)
	(cd "$VMSG_REPO" && vmsg_chroot_run --kernel "$v" -- bash tests/compat/check-probes.sh \
		"$kdir" "$v" "${kb[@]}") >"$log" 2>&1 || rc=$?
	case "$rc" in
	0) record "$res" PASS "probes-$tag" ;;
	2) record "$res" FAIL "probes-$tag" "check-probes.sh usage/expectation error: $(first_match "$log" 'ERROR')" ;;
	*)
		ext="$(first_match "$log" '^FAIL')"
		record "$res" FAIL "probes-$tag" "$(tail -1 "$log")${ext:+; first: $ext}" ;;
	esac
	say "compiled $tag in $(vmsg_elapsed "$t0") s"
}

# The guest's directory of static programs for an architecture.
progs_dir() {
	if [[ "$1" == arm64 ]]; then echo "$WORK/progs"; else echo "$WORK/progs-$1"; fi
}

# Static guest programs of one architecture, built in its trixie chroot
# from a clean copy (the work tree may hold native objects).
compile_progs() (
	local arch="$1" res="$2" src="$WORK/tools-src-$1" log rc=0 n sfx="" out
	export VMSG_ARCH="$arch"
	out="$(progs_dir "$arch")"
	[[ "$arch" == arm64 ]] || sfx="-$arch"
	vmsg_copy_tool_sources "$src"
	log="$LOGDIR/build-tools$sfx.log"
	if vmsg_build_backend "$src" "$out" >"$log" 2>&1; then
		record "$res" PASS "build-tools-$arch"
	else
		record "$res" FAIL "build-tools-$arch" "$(first_match "$log" 'error|Error [0-9]|no tools|not a static') (log: $log)"
	fi
	log="$LOGDIR/build-vmsg-test$sfx.log"
	vmsg_build_vmsg_test "$src" "$out" >"$log" 2>&1 || rc=$?
	n="$(grep -c 'warning:' "$log" || true)"
	if ((rc)); then
		record "$res" FAIL "build-vmsg-test-$arch" "$(first_match "$log" 'error|no tests') (log: $log)"
	elif ((n)); then
		record "$res" FAIL "build-vmsg-test-$arch" "$n warning(s), first: $(first_match "$log" 'warning:')"
	else
		record "$res" PASS "build-vmsg-test-$arch"
	fi
)

compile_tools() {
	local res="$1" src="$WORK/tools-src" log
	compile_progs arm64 "$res"
	[[ " $MATRIX " != *-amd64" "* ]] || compile_progs amd64 "$res"
	vmsg_copy_tool_sources "$src"
	# The backend's own unit and integration tests, natively on the host.
	log="$LOGDIR/tools-check.log"
	if make -C "$src/tools" check >"$log" 2>&1; then
		record "$res" PASS tools-unit-tests "$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tr '\n' ' ')"
	else
		record "$res" FAIL tools-unit-tests "$(first_match "$log" 'FAIL|failed|error') (log: $log)"
	fi
}

# Host-side checks of the sources, no kernel needed: checkpatch over the C
# files (tests/check-style.sh, one check per file), the virtio-msg-dt unit
# tests (tools/dtool), and the Makefile's refusal of kernels older than the
# compat layer supports (a fake tree claiming 6.15.9 must be refused before
# any probe runs, one claiming 6.16.0 must get past that gate).
compile_host() {
	local res="$1" src="$WORK/host-src" log v out rc
	_vmsg_copy_tree "$src" Makefile Kbuild VERSION src include compat dts tools
	log="$LOGDIR/check-style.log"
	"$TESTS_DIR/check-style.sh" >"$log" 2>&1 || true
	while read -r verdict rest; do
		case "$verdict" in
		PASS) record "$res" PASS "$rest" ;;
		FAIL) record "$res" FAIL "${rest%%: *}" "${rest#*: } (log: $log)" ;;
		esac
	done < <(grep -E '^(PASS|FAIL) style:' "$log")
	grep -q '^PASS style:src/virtio_msg_core.c$' "$log" ||
		grep -q '^FAIL style:' "$log" ||
		record "$res" FAIL check-style "no verdicts (log: $log)"
	log="$LOGDIR/dtool-check.log"
	if make -C "$src/tools/dtool" check >"$log" 2>&1 &&
		grep -qE '^[1-9][0-9]* passed, 0 failed$' "$log"; then
		record "$res" PASS dtool-unit-tests "$(grep -E '^[0-9]+ passed' "$log")"
	else
		record "$res" FAIL dtool-unit-tests "$(first_match "$log" '^FAIL|failed|rror') (log: $log)"
	fi
	for v in 6.15.9 6.16.0; do
		mkdir -p "$WORK/fake-$v/include/config"
		echo "$v-arm64" >"$WORK/fake-$v/include/config/kernel.release"
		printf 'all:
	@false
' >"$WORK/fake-$v/Makefile"
		rc=0
		out="$(make -C "$src" KDIR="$WORK/fake-$v" probes 2>&1)" || rc=$?
		if [[ "$v" == 6.15.9 ]]; then
			if ((rc)) && grep -q 'needs Linux 6.16 or later' <<<"$out" &&
				! grep -q PROBE <<<"$out"; then
				record "$res" PASS kernel-floor-refuses-6.15
			else
				record "$res" FAIL kernel-floor-refuses-6.15 "rc $rc: $(tail -1 <<<"$out")"
			fi
		elif grep -q 'needs Linux' <<<"$out" || ! grep -q PROBE <<<"$out"; then
			record "$res" FAIL kernel-floor-admits-6.16 "$(tail -1 <<<"$out")"
		else
			record "$res" PASS kernel-floor-admits-6.16
		fi
	done
}

# Run "<name> <args>" jobs, at most $JOBS at a time; each job's results file
# is printed (and appended to $RESULTS) as soon as it ends.
run_jobs() {
	local spec name running=0 i
	local -a specs=("$@") pids=() files=()
	for spec in "${specs[@]}"; do
		name="${spec%% *}"
		files+=("$WORK/res-$name")
		: >"$WORK/res-$name"
	done
	i=0
	for spec in "${specs[@]}"; do
		while ((running >= JOBS)); do
			wait -n || true
			running=$((running - 1))
		done
		# shellcheck disable=SC2086  # spec is "function args"
		( ${spec#* } "${files[$i]}" >>"$LOGDIR/jobs.log"
		  cat "${files[$i]}"; cat "${files[$i]}" >>"$RESULTS" ) &
		pids+=("$!")
		JOB_PIDS+=("$!")
		running=$((running + 1))
		i=$((i + 1))
	done
	for i in "${pids[@]}"; do wait "$i" || true; done
	JOB_PIDS=()
}

T_COMPILE=0
if [[ " $STAGES " == *" compile "* ]]; then
	MATRIX="$COMPILE_KERNELS"
else
	# Boots only: build just the boot kernels' modules.
	MATRIX="$BOOT_KERNELS"
fi
if [[ " $STAGES " == *" compile "* || " $STAGES " == *" boot "* ]]; then
	say "compile stage: tools + ${MATRIX:-no kernel} ($JOBS parallel job(s), make -j$VMSG_MAKEJ); logs: $LOGDIR"
	t="$(vmsg_now)"
	jobs_list=("tools compile_tools" "host compile_host")
	for v in $MATRIX; do jobs_list+=("$v compile_kernel $v"); done
	run_jobs "${jobs_list[@]}"
	T_COMPILE="$(vmsg_elapsed "$t")"
fi

# ---------------------------------------------------------------------------
# Stage 2: boots.

# "; first: <line>" for the first kernel problem in a console log, if any.
hung() {
	local l
	l="$(tr -d '\r' <"$1" 2>/dev/null | grep -E -m1 -- "$VMSG_DMESG_BAD" | cut -c1-160 || true)"
	[[ -z "$l" ]] || printf '; first kernel problem: %s' "$l"
}

# vm-run's outcome for one boot, as the boot-<ver>-<kind>-dmesg-clean check.
judge_boot() {
	local res="$1" name="$2" rc="$3" blog="$4" console dmesg status bad
	console="$(find "$blog" -name '*.log' -type f 2>/dev/null | head -1)"
	dmesg="${console%.log}.dmesg"
	status=""
	[[ -n "$console" ]] && status="$(tr -d '\r' <"$console" | sed -n 's/^VMRUN-EXIT=\([0-9][0-9]*\)$/\1/p' | tail -1)"
	case "$rc" in
	0) ;;
	77) record "$res" SKIP "$name" "kernel not available from the Debian mirror"; return ;;
	124) record "$res" FAIL "$name" "VM timed out (console: $console)$(hung "$console")"; return ;;
	125) record "$res" FAIL "$name" "guest never reported VMRUN-EXIT: panic or crash (console: $console)$(hung "$console")"; return ;;
	126) record "$res" FAIL "$name" "host-side QEMU/dtc/fdtoverlay failure (see $blog.err)"; return ;;
	*)
		if [[ -z "$status" ]]; then
			record "$res" FAIL "$name" "vm-run failed with status $rc before the guest ran (see $blog.err)"
			return
		fi ;;
	esac
	if [[ ! -f "$dmesg" ]]; then
		record "$res" FAIL "$name" "no dmesg captured (vm-run status $rc)"
	elif ! bad="$(vmsg_qemu_dmesg_check "$dmesg")"; then
		record "$res" FAIL "$name" "dmesg: $(head -1 <<<"$bad" | cut -c1-200) ($(wc -l <<<"$bad") line(s); $dmesg)"
	elif ((rc != 0 && rc != status)); then
		record "$res" FAIL "$name" "vm-run status $rc"
	else
		record "$res" PASS "$name"
	fi
}

# The suite's lines -> checks <ver>/<kind>/<name>.
parse_suite() {
	local res="$1" prefix="$2" out="$3" rc="$4" line name rest n_ok=0 n_fail=0
	while IFS= read -r line; do
		line="${line%$'\r'}"
		case "$line" in
		"ok "*)
			name="${line#ok }"; name="${name%% *}"
			record "$res" PASS "$prefix/$name"; n_ok=$((n_ok + 1)) ;;
		"FAIL "*)
			rest="${line#FAIL }"; name="${rest%%[: ]*}"; rest="${rest#"$name"}"; rest="${rest#:}"
			record "$res" FAIL "$prefix/$name" "${rest# }"; n_fail=$((n_fail + 1)) ;;
		"skip "*)
			rest="${line#skip }"; name="${rest%%[: ]*}"; rest="${rest#"$name"}"; rest="${rest#:}"
			record "$res" SKIP "$prefix/$name" "${rest# }" ;;
		esac
	done <"$out"
	# A suite that failed without saying what, or said nothing at all.
	if ((rc >= 1 && rc <= 119 && n_fail == 0)); then
		record "$res" FAIL "$prefix/suite-exit" "suite exited $rc without a FAIL line (output: $out)"
	elif ((rc == 0 && n_ok + n_fail == 0)); then
		record "$res" FAIL "$prefix/suite-exit" "suite printed no check (output: $out)"
	fi
}

# The device-tree boots of an arm64 kernel; amd64 has no device tree, so
# its loopback bus always uses the run-time pool.
boot_kinds() {
	local tag="$1" k last=""
	[[ "$(tag_arch "$tag")" == amd64 ]] && { echo runtime; return; }
	for k in $BOOT_KERNELS; do
		[[ "$(tag_arch "$k")" == arm64 ]] && last="$k"
	done
	# The newest arm64 boot kernel also finds its pool by node name only,
	# as device trees made for the RFC series describe it.
	# It also runs the hostile-backend suite, on four CPUs: the races
	# of tests/guest/hostile/ need a hostile side on other CPUs.
	if [[ "$tag" == "$last" ]]; then echo "dt runtime dt-name hostile"; else echo "dt runtime"; fi
}

boot_kernel() {
	local v="$1" res="$2" kind overlay pool blog rc name left timeout kinds arch progs suite smp append extra_mods
	kinds="$(boot_kinds "$v")"
	arch="$(tag_arch "$v")"
	progs="$(progs_dir "$arch")"
	for kind in $kinds; do
		name="boot-$v-$kind-dmesg-clean"
		suite="$SUITE" smp=2 append="" extra_mods=""
		case "$kind" in
		dt) overlay=vmsglb pool=dt ;;
		dt-name) overlay="$TESTS_DIR/dts/vmsglb-rfc.dtso" pool=dt ;;
		# Slab poisoning: a use-after-free in a race then oopses here
		# too, not only on the debug kernel.
		# virtio_net, virtiofs: ring resize and GET_SHM, tests/guest/hostile/removal.sh.
		hostile) overlay=none pool=runtime suite="$TESTS_DIR/guest/hostile-suite.sh" smp=4
			append="slab_debug=FZPU" extra_mods="virtio_net virtiofs" ;;
		*) overlay=none pool=runtime ;;
		esac
		if grep -q "^SKIP build-$v:" "$RESULTS"; then
			record "$res" SKIP "$name" "kernel $v not available from the Debian mirror"
			continue
		fi
		if ! compgen -G "$WORK/ko/$v/*.ko" >/dev/null; then
			record "$res" FAIL "$name" "not booted: no modules (build-$v failed)"
			continue
		fi
		if [[ ! -x "$progs/virtio-msg-backend" || ! -x "$progs/vmsg-test" ||
		      ! -x "$progs/vmsg-peer" || ! -x "$progs/vmsg-hostile" ]]; then
			record "$res" FAIL "$name" "not booted: $arch programs missing (build-tools-$arch / build-vmsg-test-$arch)"
			continue
		fi
		left="$(budget_left)"
		if ((left < 60)); then
			record "$res" FAIL "$name" "not run: CHECK_BUDGET=${CHECK_BUDGET}s used up"
			continue
		fi
		timeout="$BOOT_TIMEOUT"
		((left >= timeout)) || timeout="$left"
		blog="$LOGDIR/boot-$v-$kind"
		mkdir -p "$blog"
		say "boot $v/$kind (OVERLAY=$overlay SUITE_POOL=$pool, timeout ${timeout}s)"
		rc=0
		VMSG_INITRAMFS_EXTRA_MODULES="$extra_mods" \
			"$TESTS_DIR/vm-run" KERNEL="$(tag_ver "$v")" ARCH="$arch" OVERLAY="$overlay" BUILD=0 \
			MODDIR="$WORK/ko/$v" PROGS="$progs" LOGDIR="$blog" TIMEOUT="$timeout" SMP="$smp" APPEND="$append" \
			FILES="$TESTS_DIR/guest" ENV="SUITE_POOL=$pool" ENV="SUITE_KERNEL=$v" "$suite" \
			>"$blog.out" 2>"$blog.err" </dev/null || rc=$?
		say "boot $v/$kind: vm-run status $rc ($(grep -o 'boot=[0-9.]*s' "$blog.err" | tail -1))"
		[[ "$rc" == 77 ]] || parse_suite "$res" "$v/$kind" "$blog.out" "$rc"
		judge_boot "$res" "$name" "$rc" "$blog"
	done
}

T_BOOT=0
if [[ " $STAGES " == *" boot "* && -n "$BOOT_KERNELS" ]]; then
	t="$(vmsg_now)"
	if [[ ! -f "$SUITE" ]]; then
		for v in $BOOT_KERNELS; do
			for kind in $(boot_kinds "$v"); do
				record "$RESULTS" FAIL "boot-$v-$kind-dmesg-clean" "no guest suite $SUITE"
				tail -1 "$RESULTS"
			done
		done
	else
		say "boot stage: $BOOT_KERNELS (suite $SUITE)"
		for v in $BOOT_KERNELS; do
			: >"$WORK/res-boot-$v"
			boot_kernel "$v" "$WORK/res-boot-$v"
			cat "$WORK/res-boot-$v"
			cat "$WORK/res-boot-$v" >>"$RESULTS"
		done
	fi
	T_BOOT="$(vmsg_elapsed "$t")"
fi

# ---------------------------------------------------------------------------
# 3. FF-A: tests/ffa-check.sh builds the fake FF-A partitions (tests/ffa)
# and runs tests/guest/ffa-suite.sh on FF-A kernels (6.17 and later), plus
# one boot of the newest with the vmsgffa overlay.  Its per-check lines
# become ffa/<ver>/NAME, its per-boot verdicts ffa-boot-<ver>.
case "$KERNELS" in
default) FFA_KERNELS="${FFA_KERNELS:-6.17.13 7.0.13 7.3.4}" ;;
all) FFA_KERNELS="${FFA_KERNELS:-all}" ;;
none) FFA_KERNELS="${FFA_KERNELS:-}" ;;
# (grep finds nothing for a list of only 6.16 and amd64 kernels: no FF-A.)
*) FFA_KERNELS="${FFA_KERNELS:-$(tr ' ' '\n' <<<"$BOOT_KERNELS" | { grep -v -e '^6\.16\.' -e '-amd64$' || true; } | tr '\n' ' ')}" ;;
esac
T_FFA=0
if [[ " $STAGES " == *" ffa "* && -n "${FFA_KERNELS// /}" ]]; then
	t="$(vmsg_now)"
	flog="$LOGDIR/ffa"
	mkdir -p "$flog"
	say "FF-A stage: $FFA_KERNELS"
	KERNELS="$FFA_KERNELS" LOGDIR="$flog" \
		"$TESTS_DIR/ffa-check.sh" >"$flog/ffa-check.out" 2>&1 </dev/null || true
	: >"$WORK/res-ffa"
	for out in "$flog"/ffa-check-*.out; do
		[[ -e "$out" ]] || continue
		k="${out##*/ffa-check-}"
		parse_suite "$WORK/res-ffa" "ffa/${k%.out}" "$out" 0
	done
	while read -r verdict rest; do
		case "$verdict" in
		PASS) record "$WORK/res-ffa" PASS "ffa-boot-$rest" ;;
		FAIL) record "$WORK/res-ffa" FAIL "ffa-boot-${rest%%:*}" "${rest#*: }" ;;
		SKIP) record "$WORK/res-ffa" SKIP "ffa-boot-${rest%%:*}" "${rest#*: }" ;;
		esac
	done < <(grep -E '^(PASS|FAIL|SKIP) ' "$flog/ffa-check.out")
	grep -q . "$WORK/res-ffa" || record "$WORK/res-ffa" FAIL ffa-stage "tests/ffa-check.sh reported nothing (log: $flog/ffa-check.out)"
	cat "$WORK/res-ffa"
	cat "$WORK/res-ffa" >>"$RESULTS"
	T_FFA="$(vmsg_elapsed "$t")"
fi

# ---------------------------------------------------------------------------
# 4. debug: the debug kernel of tests/debugkernel/ (KASAN, UBSAN, KFENCE,
# lockdep, DEBUG_OBJECTS, DMA-API debugging, kmemleak, fault injection,
# DMA_RESTRICTED_POOL), built once and cached by the hash of its recipe.
# This tree's modules and the fake FF-A partitions are built against it,
# then tests/debugkernel/guest-kmemleak.sh runs, one boot each:
#   runtime  tests/guest/suite.sh, OVERLAY=none, SUITE_POOL=runtime
#   dt       tests/guest/suite.sh, OVERLAY=vmsglb, SUITE_POOL=dt: the
#            kernel's restricted-dma-pool ops confine the DMA
#   failnth  tests/guest/failnth-suite.sh: fault injection of the module
#            loads and of ADD (its "figure" lines are echoed)
#   ffa      tests/guest/ffa-suite.sh (fake partitions)
#   hostile  tests/guest/hostile-suite.sh, -smp 4, racing scenarios longer
# each ending in the kmemleak scan (kmemleak-ours) and kmsg-clean.  Checks
# debug/<kind>/NAME and debug/boot-<kind>-dmesg-clean (any KASAN, UBSAN,
# lockdep, KFENCE, DMA-API, ODEBUG or kmemleak report fails it).
DEBUG_KERNEL="${DEBUG_KERNEL:-7.3.4}"
DEBUG_BOOT_TIMEOUT="${DEBUG_BOOT_TIMEOUT:-600}"
DEBUG_KINDS="${DEBUG_KINDS:-runtime dt failnth failnth-ffa ffa hostile}"

# Modules (with the fake FF-A partitions) and guest programs for the debug
# kernel, in $WORK/debug; FAIL lines for what does not build.
debug_build() {
	local res="$1" dw="$WORK/debug" log="$LOGDIR/debug/build-modules.log" n rc=0
	mkdir -p "$dw/ko" "$dw/progs"
	vmsg_copy_module_sources "$dw/src"
	mkdir -p "$dw/src/tests"
	cp -r "$VMSG_REPO/tests/ffa" "$dw/src/tests/"
	find "$dw/src/tests" \( -name '*.o' -o -name '*.ko' \) -type f -delete
	{
		vmsg_build_modules "$DEBUG_KERNEL-debug" "$dw/src" W=1 &&
			(cd "$dw/src" && vmsg_chroot_run --kernel "$DEBUG_KERNEL-debug" --bind "$dw/src" -- \
				make -j"${VMSG_MAKEJ:-$(nproc)}" -C "/lib/modules/$VMSG_KABI/build" \
				M="$dw/src/tests/ffa" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- W=1 modules)
	} >"$log" 2>&1 || rc=$?
	n="$(grep -c -i 'warning:' "$log" || true)"
	if ((rc)); then
		record "$res" FAIL debug/build-modules "make W=1 failed (status $rc): $(first_match "$log" 'error|Error [0-9]')"
		return 1
	fi
	if ! vmsg_collect_modules "$dw/src" "$dw/ko" >>"$log" 2>&1 ||
		! cp "$dw/src/tests/ffa/"*.ko "$dw/ko/" 2>>"$log" ||
		[[ ! -f "$dw/ko/virtio_msg_ffa.ko" ]]; then
		record "$res" FAIL debug/build-modules "modules missing or of another kernel (log: $log)"
		return 1
	fi
	# Warnings fail the check; the modules are booted all the same.
	if ((n)); then
		record "$res" FAIL debug/build-modules "$n warning(s), first: $(first_match "$log" '[Ww][Aa][Rr][Nn][Ii][Nn][Gg]:')"
	else
		record "$res" PASS debug/build-modules
	fi
	# The guest programs: the compile stage's when it built them.
	log="$LOGDIR/debug/build-progs.log"
	if [[ -x "$WORK/progs/vmsg-peer" && -x "$WORK/progs/virtio-msg-backend" ]]; then
		cp "$WORK/progs/"* "$dw/progs/"
	else
		vmsg_copy_tool_sources "$dw/tools-src"
		if ! { VMSG_ARCH=arm64 vmsg_build_backend "$dw/tools-src" "$dw/progs" &&
			VMSG_ARCH=arm64 vmsg_build_vmsg_test "$dw/tools-src" "$dw/progs"; } >"$log" 2>&1; then
			record "$res" FAIL debug/build-progs "$(first_match "$log" 'error|no tests') (log: $log)"
			return 1
		fi
	fi
}

debug_boot() {
	local res="$1" kind="$2" name="debug/boot-$2-dmesg-clean" blog="$LOGDIR/debug/boot-$2" left timeout rc=0
	# slab_debug=U: no per-CPU sheaves, whose stale object pointers hide
	# leaks from kmemleak (tests/debugkernel/README.md).
	local append="slab_debug=U" extra_mods=""
	local -a args=(KERNEL="$DEBUG_KERNEL-debug" BUILD=0 MODDIR="$WORK/debug/ko" PROGS="$WORK/debug/progs"
		FILES="$TESTS_DIR/guest" LOGDIR="$blog" ENV="SUITE_KERNEL=$DEBUG_KERNEL-debug")
	case "$kind" in
	runtime) args+=(OVERLAY=none ENV=SUITE_POOL=runtime) ;;
	dt)
		# swiotlb=track_hiwater: the suite reads the region's high-water
		# mark to see the kernel bounced through it.
		args+=(OVERLAY=vmsglb ENV=SUITE_POOL=dt)
		append+=" swiotlb=track_hiwater"
		# The restricted-dma-pool path is expected where the kernel has it.
		grep -qx 'CONFIG_DMA_RESTRICTED_POOL=y' "$VMSG_KCONFIG" && args+=(ENV=SUITE_POOL_OPS=kernel) ;;
	failnth) args+=(OVERLAY=none ENV=DK_SUITE=failnth-suite.sh) ;;
	# Its own boot: the FF-A probe has ~120 failure points, ~2.5 min.
	failnth-ffa) args+=(OVERLAY=none ENV=DK_SUITE=failnth-suite.sh ENV=FAILNTH_CLASSES=load-ffa) ;;
	ffa) args+=(OVERLAY=none ENV=DK_SUITE=ffa-suite.sh) ;;
	# The racing scenarios under KASAN and lockdep, on four CPUs.
	hostile)
		args+=(OVERLAY=none SMP=4 ENV=DK_SUITE=hostile-suite.sh ENV=HOSTILE_SECONDS="${DEBUG_HOSTILE_SECONDS:-20}")
		# Not virtiofs: this kernel's has no DAX window to ask GET_SHM for.
		extra_mods=virtio_net ;;
	*) record "$res" FAIL "$name" "unknown kind $kind (DEBUG_KINDS)"; return ;;
	esac
	left="$(budget_left)"
	if ((left < 120)); then
		record "$res" FAIL "$name" "not run: ${left}s of CHECK_BUDGET=${CHECK_BUDGET}s left"
		return
	fi
	timeout="$DEBUG_BOOT_TIMEOUT"
	((left >= timeout)) || timeout="$left"
	mkdir -p "$blog"
	say "debug $kind (timeout ${timeout}s)"
	VMSG_INITRAMFS_EXTRA_MODULES="$extra_mods" \
		"$TESTS_DIR/vm-run" "${args[@]}" APPEND="$append" TIMEOUT="$timeout" "$TESTS_DIR/debugkernel/guest-kmemleak.sh" \
		>"$blog.out" 2>"$blog.err" </dev/null || rc=$?
	say "debug $kind: vm-run status $rc ($(grep -o 'boot=[0-9.]*s' "$blog.err" | tail -1))"
	grep '^figure ' "$blog.out" | sed 's/^/  /' || true
	parse_suite "$res" "debug/$kind" "$blog.out" "$rc"
	judge_boot "$res" "$name" "$rc" "$blog"
}

T_DEBUG=0
if [[ " $STAGES " == *" debug "* ]]; then
	t="$(vmsg_now)"
	mkdir -p "$LOGDIR/debug"
	: >"$WORK/res-debug"
	left="$(budget_left)"
	dkdir="$(vmsg_debugkernel_dir "$DEBUG_KERNEL" 2>/dev/null || true)"
	# Warm ~15 min with the hostile boot (measured under load), cold the
	# kernel build adds ~20.
	need=1000
	[[ -n "$dkdir" && -f "$dkdir/.complete" ]] || need=2200
	if ((left < need)); then
		record "$WORK/res-debug" FAIL debug-stage "not run: ${left}s of CHECK_BUDGET=${CHECK_BUDGET}s left, it needs ~${need}s"
	else
		say "debug stage: $DEBUG_KERNEL-debug, $DEBUG_KINDS (${left}s of budget left)"
		rc=0
		vmsg_debugkernel_build "$DEBUG_KERNEL" >"$LOGDIR/debug/kernel.log" 2>&1 || rc=$?
		if ((rc == 77)); then
			record "$WORK/res-debug" SKIP debug-stage "linux-source of $DEBUG_KERNEL not available from the Debian mirror"
		elif ((rc)) || ! vmsg_kernel_load "$DEBUG_KERNEL-debug" >>"$LOGDIR/debug/kernel.log" 2>&1; then
			record "$WORK/res-debug" FAIL debug/kernel "debug kernel build failed (log: $LOGDIR/debug/kernel.log)"
		elif debug_build "$WORK/res-debug"; then
			for kind in $DEBUG_KINDS; do
				debug_boot "$WORK/res-debug" "$kind"
			done
		fi
	fi
	cat "$WORK/res-debug"
	cat "$WORK/res-debug" >>"$RESULTS"
	T_DEBUG="$(vmsg_elapsed "$t")"
fi

# ---------------------------------------------------------------------------
# 5. Debian packages: tests/pkg/run builds the source and binary packages
# (lintian clean), then in a Debian trixie arm64 VM installs them with apt,
# lets DKMS build natively for two kernels, modprobes, runs rng/blk and the
# autopkgtest, and removes the package.  Its "ok NAME" / "FAIL NAME: why"
# lines become pkg/NAME; its closing "N passed, N failed" line must agree.
T_PKG=0
if [[ " $STAGES " == *" pkg "* ]]; then
	t="$(vmsg_now)"
	plog="$LOGDIR/pkg"
	mkdir -p "$plog"
	: >"$WORK/res-pkg"
	left="$(budget_left)"
	# Cold, the image build alone takes ~15 min and the VM ~25 min.
	if ((left < 1800)); then
		record "$WORK/res-pkg" FAIL pkg-stage "not run: ${left}s of CHECK_BUDGET=${CHECK_BUDGET}s left, it needs ~1800s"
	else
		say "pkg stage: Debian packages end to end (${left}s of budget left)"
		rc=0
		VMSG_LOGDIR="$plog" VMSG_PKG_TIMEOUT="$((left - 900 < 3000 ? left - 900 : 3000))" \
			"$TESTS_DIR/pkg/run" >"$plog/pkg-run.out" 2>"$plog/pkg-run.err" </dev/null || rc=$?
		parse_suite "$WORK/res-pkg" pkg "$plog/pkg-run.out" 0
		n_ok="$(grep -c '^ok ' "$plog/pkg-run.out" || true)"
		n_fail="$(grep -c '^FAIL ' "$plog/pkg-run.out" || true)"
		if ! grep -qx "$n_ok passed, $n_fail failed" "$plog/pkg-run.out"; then
			record "$WORK/res-pkg" FAIL pkg-summary "no closing \"$n_ok passed, $n_fail failed\" line (rc $rc; log: $plog)"
		elif ((rc != 0 && n_fail == 0)); then
			record "$WORK/res-pkg" FAIL pkg-summary "tests/pkg/run exited $rc without a FAIL line (log: $plog)"
		fi
	fi
	cat "$WORK/res-pkg"
	cat "$WORK/res-pkg" >>"$RESULTS"
	T_PKG="$(vmsg_elapsed "$t")"
fi

# ---------------------------------------------------------------------------
# 6. vhost-user: tests/vhost-user/run boots the pkg stage's trixie arm64
# image (cached) with this tree's modules and runs virtiofsd,
# qemu-storage-daemon and vhost-device-vsock behind virtio-msg-vhost-user
# (tests/vhost-user/guest.sh); ~1.5 min warm, plus the image build (~6 min)
# when the pkg stage has not built it.  A hang ends at the guest's watchdog
# (7 min) with the blocked tasks' stacks in the log.  "ok NAME" / "FAIL NAME" become
# vhost-user/NAME; the "figure" lines (MB/s, files/s) are echoed.
T_VHU=0
if [[ " $STAGES " == *" vhost-user "* ]]; then
	t="$(vmsg_now)"
	vlog="$LOGDIR/vhost-user"
	mkdir -p "$vlog"
	: >"$WORK/res-vhu"
	left="$(budget_left)"
	if ((left < 600)); then
		record "$WORK/res-vhu" FAIL vhost-user-stage "not run: ${left}s of CHECK_BUDGET=${CHECK_BUDGET}s left, it needs ~600s"
	else
		say "vhost-user stage: Debian's vhost-user backends over the loopback bus (${left}s of budget left)"
		rc=0
		VMSG_LOGDIR="$vlog" VMSG_VHU_TIMEOUT="$((left - 120 < 600 ? left - 120 : 600))" \
			"$TESTS_DIR/vhost-user/run" >"$vlog/run.out" 2>"$vlog/run.err" </dev/null || rc=$?
		parse_suite "$WORK/res-vhu" vhost-user "$vlog/run.out" 0
		grep '^figure ' "$vlog/run.out" | sed 's/^/  /' || true
		n_ok="$(grep -c '^ok ' "$vlog/run.out" || true)"
		n_fail="$(grep -c '^FAIL ' "$vlog/run.out" || true)"
		if ! grep -qx "$n_ok passed, $n_fail failed" "$vlog/run.out"; then
			record "$WORK/res-vhu" FAIL vhost-user-summary "no closing \"$n_ok passed, $n_fail failed\" line (rc $rc; log: $vlog)"
		elif ((rc != 0 && n_fail == 0)); then
			record "$WORK/res-vhu" FAIL vhost-user-summary "tests/vhost-user/run exited $rc without a FAIL line (log: $vlog)"
		fi
	fi
	cat "$WORK/res-vhu"
	cat "$WORK/res-vhu" >>"$RESULTS"
	T_VHU="$(vmsg_elapsed "$t")"
fi

# ---------------------------------------------------------------------------
# 7. bench smoke: "make bench" cut to one short repetition, so the bench
# cannot rot.  Its PASS/FAIL lines (one per figure: was it produced) are
# taken as they are; timings are never judged.
T_BENCH=0
if [[ " $STAGES " == *" bench "* ]]; then
	t="$(vmsg_now)"
	blog="$LOGDIR/bench"
	mkdir -p "$blog"
	: >"$WORK/res-bench"
	left="$(budget_left)"
	# Warm (the pkg stage built the image): ~1 min of builds, ~2 min of VM.
	if ((left < 420)); then
		record "$WORK/res-bench" FAIL bench-smoke "not run: ${left}s of CHECK_BUDGET=${CHECK_BUDGET}s left, it needs ~420s"
	else
		say "bench stage: smoke of make bench (${left}s of budget left)"
		rc=0
		VMSG_LOGDIR="$blog" BENCH_TIMEOUT="$((left - 120 < 300 ? left - 120 : 300))" \
			"$TESTS_DIR/bench/run" --smoke >"$blog/bench-run.out" 2>"$blog/bench-run.err" </dev/null || rc=$?
		grep -E '^(PASS|FAIL) bench/' "$blog/bench-run.out" >>"$WORK/res-bench" || true
		n_ok="$(grep -c '^PASS bench/' "$blog/bench-run.out" || true)"
		n_fail="$(grep -c '^FAIL bench/' "$blog/bench-run.out" || true)"
		if ! grep -qx "$n_ok passed, $n_fail failed" "$blog/bench-run.out"; then
			record "$WORK/res-bench" FAIL bench-smoke-exit "no closing \"$n_ok passed, $n_fail failed\" line (rc $rc; log: $blog)"
		elif ((rc != 0)); then
			record "$WORK/res-bench" FAIL bench-smoke-exit "tests/bench/run --smoke exited $rc (log: $blog)"
		else
			record "$WORK/res-bench" PASS bench-smoke-exit
		fi
	fi
	cat "$WORK/res-bench"
	cat "$WORK/res-bench" >>"$RESULTS"
	T_BENCH="$(vmsg_elapsed "$t")"
fi

# ---------------------------------------------------------------------------
# Summary.
passed="$(grep -c '^PASS ' "$RESULTS" || true)"
failed="$(grep -c '^FAIL ' "$RESULTS" || true)"
skipped="$(grep -c '^SKIP ' "$RESULTS" || true)"
{
	echo
	echo "== summary (compile ${T_COMPILE}s, boot ${T_BOOT}s, ffa ${T_FFA}s, debug ${T_DEBUG}s, pkg ${T_PKG}s, vhost-user ${T_VHU}s, bench ${T_BENCH}s, total $(vmsg_elapsed "$T_START")s; logs: $LOGDIR)"
	echo "compile matrix: ${MATRIX:-none}"
	echo "boot kernels:   ${BOOT_KERNELS:-none}"
	if ((skipped)); then
		echo "skipped:"
		grep '^SKIP ' "$RESULTS" | sed 's/^/  /'
	fi
	if ((failed)); then
		echo "failed:"
		grep '^FAIL ' "$RESULTS" | sed 's/^/  /'
	fi
	echo "$passed passed, $failed failed, $skipped skipped"
} | tee "$LOGDIR/summary.txt"
((failed == 0))
