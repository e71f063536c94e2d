# shellcheck shell=bash source-path=SCRIPTDIR
# tests/lib/qemu.sh - boot an arm64 (VMSG_ARCH=amd64: amd64) kernel +
# initramfs under QEMU (TCG) and judge the run from the console protocol
# written by tests/lib/initramfs.sh.
#
# Public interface:
#   vmsg_qemu_boot --image <Image> --initrd <cpio> --log <console.log>
#                  [--dtbo <overlay.dtbo>] [--timeout <s>] [--append <args>]
#                  [--workdir <dir>]
#       Boots
#         qemu-system-aarch64 -M virt -cpu max,pauth=off -smp 2 -m 1G
#         (-smp: VMSG_SMP, default 2; racing tests use 4)
#           -nographic -no-reboot -kernel <Image> -initrd <cpio>
#           -append "console=ttyAMA0 panic=-1 <VMSG_APPEND> <args>"
#           [-dtb <merged.dtb>] $VMSG_QEMU_ARGS
#       or, for VMSG_ARCH=amd64 (no device tree: --dtbo is refused),
#         qemu-system-x86_64 -M pc -cpu max -smp 2 -m 1G -nographic
#           -no-reboot -nic none -kernel <bzImage> -initrd <cpio>
#           -append "console=ttyS0 panic=-1 <VMSG_APPEND> <args>"
#           $VMSG_QEMU_ARGS
#       streams the guest script's output to stdout, saves the whole
#       console to --log and returns:
#         the guest script's status (0..119 recommended), if the run
#           finished and its dmesg is clean (or the status is non-zero)
#         120  script passed but dmesg shows a kernel problem (listed)
#         124  wall-clock timeout (QEMU killed)
#         125  guest ended without VMRUN-EXIT (panic, crash, bad initramfs)
#         126  host-side error (QEMU/dtc/fdtoverlay failed)
#   vmsg_qemu_dmesg_check <dmesg-file>  prints offending lines, non-zero if any
#   vmsg_dtb_merge <overlay.dtbo> <out.dtb>  base DTB of exactly this machine
#       configuration + overlay (QEMU's own DTB is only generated at run time)
#
# Environment: VMSG_TIMEOUT (600), VMSG_APPEND (extra kernel args, default
#   "quiet": the console is slow under TCG and dmesg is collected anyway),
#   VMSG_QEMU_ARGS (extra QEMU args, word-split, e.g. "-device
#   virtio-rng-device"), VMSG_DMESG_IGNORE (ERE; matching lines are not
#   judged), VMSG_DMESG_CHECK=0 disables the dmesg verdict.

[[ -n "${_VMSG_QEMU_SH:-}" ]] && return 0
_VMSG_QEMU_SH=1
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

VMSG_RC_DMESG=120
VMSG_RC_TIMEOUT=124
VMSG_RC_NOEXIT=125
VMSG_RC_HOST=126

# The one machine configuration.  The DTB dump must use the same options:
# the generated DTB depends on CPU, SMP and memory size.
_vmsg_qemu_machine() {
	local extra=()
	[[ -n "${VMSG_QEMU_ARGS:-}" ]] && read -r -a extra <<<"$VMSG_QEMU_ARGS"
	# shellcheck disable=SC2054  # "max,pauth=off" is one QEMU argument
	_VMSG_QEMU_MACHINE=(-cpu max,pauth=off -smp "${VMSG_SMP:-2}" -m 1G -nographic -no-reboot "${extra[@]}")
}

# The amd64 machine: the PC (i440fx, ACPI power-off), no NIC (its option
# ROM is not needed and nothing in the guest uses a network), serial
# console on ttyS0.  The guest's only virtio devices are ours.
_vmsg_qemu_machine_amd64() {
	local extra=()
	[[ -n "${VMSG_QEMU_ARGS:-}" ]] && read -r -a extra <<<"$VMSG_QEMU_ARGS"
	_VMSG_QEMU_MACHINE=(-M pc -cpu max -smp "${VMSG_SMP:-2}" -m 1G -nographic -no-reboot -nic none "${extra[@]}")
}

vmsg_dtb_merge() {
	local dtbo="$1" out="$2" base
	vmsg_need_cmd qemu-system-aarch64 qemu-system-arm fdtoverlay device-tree-compiler \
		/usr/lib/ipxe/qemu/efi-virtio.rom ipxe-qemu
	_vmsg_qemu_machine
	base="${out%.dtb}.base.dtb"
	qemu-system-aarch64 -M "virt,dumpdtb=$base" "${_VMSG_QEMU_MACHINE[@]}" \
		</dev/null >/dev/null 2>&1 || { vmsg_log "QEMU dumpdtb failed"; return 1; }
	fdtoverlay -i "$base" -o "$out" "$dtbo" || { vmsg_log "fdtoverlay failed for $dtbo"; return 1; }
}

# Kernel problems that fail a run even if the script passed.
VMSG_DMESG_BAD='WARNING:|BUG:|Oops|KASAN|possible recursive locking|inconsistent lock state|circular locking|scheduling while atomic|Call trace:|Kernel panic|UBSAN:|kernel BUG|general protection|Unable to handle kernel|INFO: task .* blocked|rcu: INFO|soft lockup|hard LOCKUP|lockdep|suspected memory leak|DMA-API: debugging out of memory'

# Lines matching VMSG_DMESG_BAD that are boot banners, not reports (the
# debug kernel of tests/debugkernel prints them on every boot).
VMSG_DMESG_BENIGN='^(\[[ 0-9.]+\] )?rcu:[[:space:]]+RCU lockdep checking is enabled\.$'

# The one "Call trace:" that is not a report: the stack dump of an
# allocation failure that fault injection forced (the debug kernel's
# failslab/fail_page_alloc, verbose=1): "FAULT_INJECTION: forcing a
# failure", then within a few lines the allocator's "vmalloc error:" or
# "page allocation failure:" and its dump (tests/guest/lib.sh
# kmsg_reports judges the guest's side the same way).  Prints <file>
# without those lines.
_vmsg_dmesg_drop_injected() {
	awk '/FAULT_INJECTION: forcing a failure/ { fi = NR }
		/vmalloc error:|page allocation failure:/ { if (fi && NR - fi <= 6) a = NR }
		/Call trace:/ && a && NR - a <= 4 { next }
		{ print }' "$1"
}

vmsg_qemu_dmesg_check() {
	local f="$1" hits
	hits="$(_vmsg_dmesg_drop_injected "$f" | grep -E -- "$VMSG_DMESG_BAD" |
		grep -v -E -- "$VMSG_DMESG_BENIGN" || true)"
	if [[ -n "${VMSG_DMESG_IGNORE:-}" && -n "$hits" ]]; then
		hits="$(grep -v -E -- "$VMSG_DMESG_IGNORE" <<<"$hits" || true)"
	fi
	[[ -z "$hits" ]] && return 0
	printf '%s\n' "$hits"
	return 1
}

vmsg_qemu_boot() {
	local image="" initrd="" log="" dtbo="" timeout="${VMSG_TIMEOUT:-600}" append="" workdir=""
	while (($#)); do
		case "$1" in
		--image) image="$2" ;;
		--initrd) initrd="$2" ;;
		--log) log="$2" ;;
		--dtbo) dtbo="$2" ;;
		--timeout) timeout="$2" ;;
		--append) append="$2" ;;
		--workdir) workdir="$2" ;;
		*) echo "vmsg_qemu_boot: unknown option $1" >&2; return "$VMSG_RC_HOST" ;;
		esac
		shift 2
	done
	[[ -f "$image" && -f "$initrd" && -n "$log" ]] ||
		{ echo "vmsg_qemu_boot: --image, --initrd and --log are required" >&2; return "$VMSG_RC_HOST"; }
	local arch
	arch="$(vmsg_arch)" || return "$VMSG_RC_HOST"
	if [[ "$arch" == amd64 && -n "$dtbo" ]]; then
		echo "vmsg_qemu_boot: amd64 has no device tree; --dtbo is arm64 only" >&2
		return "$VMSG_RC_HOST"
	fi
	# QEMU's default NIC on virt is virtio-net-pci, whose option ROM comes
	# from ipxe-qemu (only a Recommends, which we don't install).
	if [[ "$arch" == amd64 ]]; then
		vmsg_need_cmd qemu-system-x86_64 qemu-system-x86 timeout coreutils \
			/usr/share/seabios/bios-256k.bin seabios
		_vmsg_qemu_machine_amd64
	else
		vmsg_need_cmd qemu-system-aarch64 qemu-system-arm timeout coreutils \
			/usr/lib/ipxe/qemu/efi-virtio.rom ipxe-qemu
		_vmsg_qemu_machine
	fi
	mkdir -p "$(dirname "$log")"
	workdir="${workdir:-$(dirname "$log")}"
	local dtbargs=()
	if [[ -n "$dtbo" ]]; then
		local merged
		merged="$workdir/merged.dtb"
		vmsg_dtb_merge "$dtbo" "$merged" || return "$VMSG_RC_HOST"
		dtbargs=(-dtb "$merged")
	fi
	# No -dtb at all without an overlay: QEMU then generates its own DTB
	# (feeding the dumped one back unchanged is known to hang the boot).
	local cmd=(qemu-system-aarch64 -M virt "${_VMSG_QEMU_MACHINE[@]}"
		-kernel "$image" -initrd "$initrd"
		-append "console=ttyAMA0 panic=-1 ${VMSG_APPEND-quiet} $append" "${dtbargs[@]}")
	if [[ "$arch" == amd64 ]]; then
		cmd=(qemu-system-x86_64 "${_VMSG_QEMU_MACHINE[@]}"
			-kernel "$image" -initrd "$initrd"
			-append "console=ttyS0 panic=-1 ${VMSG_APPEND-quiet} $append")
	fi
	printf '# %s\n' "${cmd[*]}" >"$log"
	vmsg_log "booting (timeout ${timeout}s), console log: $log"
	local rc=0 t0
	t0="$(vmsg_now)"
	# stdin </dev/null: CI has none, and an interactive tty must not be put
	# into raw mode.  -k: QEMU ignoring SIGTERM still dies.  The awk filter
	# streams just the guest script's output, live, without the CRs.
	# (Inside if/else a caller's errexit is not triggered, and PIPESTATUS
	# still holds the pipeline's statuses, whether or not pipefail is set.)
	# The start marker may follow the firmware's terminal escapes on the
	# same line (SeaBIOS on amd64 leaves "ESC c ESC [2J" without a newline).
	if timeout -k 10 "$timeout" "${cmd[@]}" </dev/null 2>&1 | tee -a "$log" |
		awk '{ sub(/\r$/, "") } /^VMRUN-EXIT=/ { on = 0 } on { print; fflush() } /VMRUN-START$/ { on = 1 }'; then
		rc="${PIPESTATUS[0]}"
	else
		rc="${PIPESTATUS[0]}"
	fi
	_VMSG_BOOT_SECONDS="$(vmsg_elapsed "$t0")"
	if ((rc == 124 || rc == 137)); then
		echo "FAIL: VM timed out after ${timeout}s (console log: $log)" >&2
		return "$VMSG_RC_TIMEOUT"
	fi
	((rc == 0)) || { echo "FAIL: QEMU exited with status $rc (console log: $log)" >&2; return "$VMSG_RC_HOST"; }
	local status
	status="$(tr -d '\r' <"$log" | sed -n 's/^VMRUN-EXIT=\([0-9][0-9]*\)$/\1/p' | tail -1)"
	if [[ -z "$status" ]]; then
		echo "FAIL: guest did not report VMRUN-EXIT (panic or crash?); console log: $log" >&2
		# Output after VMRUN-START was already streamed; otherwise show how
		# the boot ended.
		grep -q 'VMRUN-START.\{0,1\}$' "$log" || tr -d '\r' <"$log" | tail -25 >&2
		return "$VMSG_RC_NOEXIT"
	fi
	local dmesg="${log%.log}.dmesg"
	tr -d '\r' <"$log" | sed -n '/^VMRUN-DMESG-BEGIN$/,/^VMRUN-DMESG-END$/p' | sed '1d;$d' >"$dmesg"
	if [[ "${VMSG_DMESG_CHECK:-1}" != 0 ]]; then
		local bad l
		if ! bad="$(vmsg_qemu_dmesg_check "$dmesg")"; then
			echo "FAIL: kernel log has problems (full dmesg: $dmesg):" >&2
			while IFS= read -r l; do printf '  %s\n' "$l"; done <<<"$bad" >&2
			((status != 0)) || status=$VMSG_RC_DMESG
		fi
	fi
	return "$status"
}
