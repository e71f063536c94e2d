# shellcheck shell=bash source-path=SCRIPTDIR
# tests/lib/initramfs.sh - busybox initramfs for booting a Debian arm64
# (VMSG_ARCH=amd64: amd64) kernel under QEMU and running one guest test
# script.
#
# Public interface:
#   vmsg_initramfs_build --kernel <ver> --script <run.sh> --out <file>
#                        [--modules <dir>] [--progs <dir>] [--files <dir>]
#       --script   guest script, installed as /test/run.sh and run by
#                  busybox sh (ash: no bash-isms) with cwd /test
#       --modules  directory whose *.ko (searched recursively) go to
#                  /lib/modules/<abi>/updates/ (depmod is run, so
#                  `modprobe <name>` resolves dependencies on Debian modules)
#       --progs    directory whose regular files go to /usr/bin (static
#                  executables of the kernel's architecture)
#       --files    directory copied as-is into /test (helpers, data)
#       --env      file of NAME='value' lines (sh syntax), installed as
#                  /etc/vmrun.env and exported to the guest script
#   VMSG_INITRAMFS_MODULES  Debian modules to include, as paths relative to
#       /lib/modules/<abi> (a dir or one .ko) or bare module names; their
#       dependencies are added automatically.  Default: virtio, hw_random,
#       block and arm_ffa drivers (+ virtio_mmio, which Debian builds as =m);
#       for amd64 the virtio drivers, virtio_rng and virtio_blk
#       (VMSG_INITRAMFS_MODULES_AMD64: the amd64 kernels' block and
#       hw_random directories pull in dozens of unrelated drivers).
#   VMSG_INITRAMFS_EXTRA_MODULES  more of them, added to either list
#       (the hostile suite's virtio_net)
#   VMSG_INITRAMFS_COMPRESS  none|gzip|zstd (default gzip: every Debian
#       kernel has RD_GZIP=y).
#
# The guest protocol (parsed by tests/lib/qemu.sh):
#   VMRUN-START                      /init is about to run /test/run.sh
#   VMRUN-EXIT=<status>              the script's exit status
#   VMRUN-DMESG-BEGIN ... VMRUN-DMESG-END   full dmesg after the script
# then the guest powers off (poweroff -f → PSCI SYSTEM_OFF, on amd64 ACPI
# S5 → QEMU exits).

[[ -n "${_VMSG_INITRAMFS_SH:-}" ]] && return 0
_VMSG_INITRAMFS_SH=1
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=kernels.sh
source "$(dirname "${BASH_SOURCE[0]}")/kernels.sh"

VMSG_INITRAMFS_MODULES_DEFAULT="kernel/drivers/virtio kernel/drivers/char/hw_random kernel/drivers/block kernel/drivers/firmware/arm_ffa"
VMSG_INITRAMFS_MODULES_AMD64="kernel/drivers/virtio virtio_rng virtio_blk"

# The default module selection for VMSG_ARCH.
vmsg_initramfs_default_modules() {
	case "$(vmsg_arch)" in
	arm64) printf '%s\n' "$VMSG_INITRAMFS_MODULES_DEFAULT virtio_mmio" ;;
	amd64) printf '%s\n' "$VMSG_INITRAMFS_MODULES_AMD64" ;;
	esac
}

# busybox-static for VMSG_ARCH from trixie (cached in busybox/ for arm64,
# busybox-<arch>/ for the others).  Prints the binary's path.
_vmsg_busybox_dir() {
	local arch
	arch="$(vmsg_arch)" || return 1
	if [[ "$arch" == arm64 ]]; then
		printf '%s/busybox\n' "$(vmsg_cache)"
	else
		printf '%s/busybox-%s\n' "$(vmsg_cache)" "$arch"
	fi
}

_vmsg_busybox_locked() {
	local dir idx line rel sha ver deb
	dir="$(_vmsg_busybox_dir)" || return 1
	[[ -x "$dir/bin/busybox" ]] && return 0
	idx="$(vmsg_index trixie "$(vmsg_arch)")" || return 1
	line="$(_vmsg_index_lookup "$idx" busybox-static)"
	[[ -n "$line" ]] || { vmsg_log "busybox-static not in the trixie index"; return 1; }
	IFS=$'\t' read -r ver rel sha _ _ <<<"$line"
	deb="$(_vmsg_fetch_deb "$rel" "$sha")" || return 1
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp"
	dpkg-deb -x "$deb" "$dir.tmp/x" || return 1
	mkdir -p "$dir.tmp/bin"
	mv "$dir.tmp/x/usr/bin/busybox" "$dir.tmp/bin/busybox"
	echo "$ver" >"$dir.tmp/version"
	rm -rf "$dir.tmp/x" "$dir"
	mv "$dir.tmp" "$dir"
}

vmsg_busybox() {
	local dir
	dir="$(_vmsg_busybox_dir)" || return 1
	vmsg_with_lock "$(basename "$dir")" _vmsg_busybox_locked || return 1
	printf '%s/bin/busybox\n' "$dir"
}

# Base module tree for one kernel and module selection, decompressed (busybox
# modprobe/insmod cannot read .ko.xz) and cached.  Prints its directory
# (containing lib/modules/<abi>/).
_vmsg_modbase_locked() {
	local sel="$1" out="$2" m ko dst
	[[ -f "$out/.complete" ]] && return 0
	vmsg_need_cmd modinfo kmod
	rm -rf "$out.tmp"
	dst="$out.tmp/lib/modules/$VMSG_KABI"
	mkdir -p "$dst"
	# name -> path (relative to the modules dir) for every shipped module;
	# module names treat '-' and '_' alike, so key on the '_' spelling.
	local -A path=()
	local name
	while IFS= read -r ko; do
		name="${ko##*/}"
		name="${name%%.ko*}"
		path["${name//-/_}"]="$ko"
	done < <(cd "$VMSG_KMODDIR" && find kernel -name '*.ko*')
	# Expand the selection into module paths.
	local -A want=()
	local queue=()
	for m in $sel; do
		if [[ -d "$VMSG_KMODDIR/$m" ]]; then
			while IFS= read -r ko; do queue+=("$ko"); done \
				< <(cd "$VMSG_KMODDIR" && find "$m" -name '*.ko*')
		elif [[ -f "$VMSG_KMODDIR/$m" ]]; then
			queue+=("$m")
		elif [[ -n "${path[${m//-/_}]:-}" ]]; then
			queue+=("${path[${m//-/_}]}")
		else
			vmsg_log "note: module $m not in $VMSG_KABI (built in or absent)"
		fi
	done
	# Dependency closure from each module's own "depends" list (reading a
	# few dozen .modinfo sections beats a depmod over all ~4500 modules).
	local deps=() dep
	while ((${#queue[@]})); do
		m="${queue[0]}"
		queue=("${queue[@]:1}")
		[[ -n "${want[$m]:-}" ]] && continue
		want["$m"]=1
		IFS=, read -r -a deps <<<"$(modinfo -F depends "$VMSG_KMODDIR/$m")"
		for dep in "${deps[@]}"; do
			dep="${dep//-/_}"
			[[ -n "${path[$dep]:-}" ]] && queue+=("${path[$dep]}")
		done
	done
	for m in "${!want[@]}"; do
		ko="$dst/${m%.xz}"
		ko="${ko%.zst}"
		ko="${ko%.gz}"
		mkdir -p "$(dirname "$ko")"
		case "$m" in
		*.xz) xz -dc "$VMSG_KMODDIR/$m" >"$ko" ;;
		*.zst) zstd -qdc "$VMSG_KMODDIR/$m" >"$ko" ;;
		*.gz) gzip -dc "$VMSG_KMODDIR/$m" >"$ko" ;;
		*) cp "$VMSG_KMODDIR/$m" "$ko" ;;
		esac || return 1
	done
	# depmod wants these to classify built-ins (modprobe of a built-in is
	# then a silent success, as on a real system).
	for m in modules.order modules.builtin modules.builtin.modinfo; do
		[[ -f "$VMSG_KMODDIR/$m" ]] && cp "$VMSG_KMODDIR/$m" "$dst/"
	done
	printf '%s\n' "${!want[@]}" | sort >"$out.tmp/selection"
	rm -rf "$out"
	mv "$out.tmp" "$out"
	touch "$out/.complete"
}

# Guest /init: everything the guest does besides the test script itself.
_vmsg_write_init() {
	cat >"$1" <<'INIT'
#!/bin/busybox sh
# Generated by tests/lib/initramfs.sh.  Runs /test/run.sh once, reports its
# status and the kernel log on the console, then powers the VM off.
/bin/busybox --install -s /bin
export PATH=/usr/bin:/bin:/usr/sbin:/sbin:/test HOME=/root
mkdir -p /proc /sys /dev /tmp /run /root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t configfs configfs /sys/kernel/config 2>/dev/null
hostname vmrun
ln -sf /proc/self/fd /dev/fd 2>/dev/null
export VMRUN_KABI="$(uname -r)"
export VMRUN_UPDATES="/lib/modules/$VMRUN_KABI/updates"
if [ -f /etc/vmrun.env ]; then
	set -a
	. /etc/vmrun.env
	set +a
fi
cd /test || exit 1
echo "VMRUN-START"
# A separate shell process: the script's `exit` or `set -e` must not end
# PID 1 (the kernel would panic instead of reporting a status).
sh /test/run.sh </dev/console
status=$?
echo "VMRUN-EXIT=$status"
echo "VMRUN-DMESG-BEGIN"
# What a script cleared with dmesg_clear (lib.sh) is judged too.
cat /tmp/vmrun-dmesg-cleared 2>/dev/null
dmesg
echo "VMRUN-DMESG-END"
sync
poweroff -f
# Only reached if PSCI power-off is missing; QEMU has -no-reboot.
echo o >/proc/sysrq-trigger
INIT
	chmod 755 "$1"
}

vmsg_initramfs_build() {
	local kver="" script="" out="" mods="" progs="" files="" env=""
	while (($#)); do
		case "$1" in
		--kernel) kver="$2" ;;
		--env) env="$2" ;;
		--script) script="$2" ;;
		--out) out="$2" ;;
		--modules) mods="$2" ;;
		--progs) progs="$2" ;;
		--files) files="$2" ;;
		*) echo "vmsg_initramfs_build: unknown option $1" >&2; return 2 ;;
		esac
		shift 2
	done
	[[ -n "$kver" && -n "$script" && -n "$out" ]] ||
		{ echo "vmsg_initramfs_build: --kernel, --script and --out are required" >&2; return 2; }
	[[ -f "$script" ]] || { echo "no such guest script: $script" >&2; return 2; }
	vmsg_need_cmd cpio cpio xz xz-utils zstd zstd
	vmsg_kernel_fetch "$kver" || return
	local bb sel key base stage
	bb="$(vmsg_busybox)" || return 1
	sel="${VMSG_INITRAMFS_MODULES:-$(vmsg_initramfs_default_modules)}"
	[[ -z "${VMSG_INITRAMFS_EXTRA_MODULES:-}" ]] || sel+=" $VMSG_INITRAMFS_EXTRA_MODULES"
	key="$(printf '%s' "$sel" | md5sum | cut -c1-12)"
	base="$VMSG_KDIR/initramfs-mods-$key"
	vmsg_with_lock "modbase-$(basename "$VMSG_KDIR")" _vmsg_modbase_locked "$sel" "$base" || return 1

	stage="$(mktemp -d "${TMPDIR:-/tmp}/vmsg-initramfs.XXXXXX")"
	local rc=0
	_vmsg_initramfs_stage "$stage" "$bb" "$base" "$mods" "$progs" "$files" "$script" "$out" "$env" || rc=$?
	rm -rf "$stage"
	return "$rc"
}

_vmsg_initramfs_stage() {
	local stage="$1" bb="$2" base="$3" mods="$4" progs="$5" files="$6" script="$7" out="$8" env="${9:-}"
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,test,lib}
	cp "$bb" "$stage/bin/busybox"
	_vmsg_write_init "$stage/init"
	# Hard links: the cached base tree is big-ish and never modified here.
	cp -al "$base/lib/modules" "$stage/lib/" 2>/dev/null || cp -a "$base/lib/modules" "$stage/lib/"
	local kdst="$stage/lib/modules/$VMSG_KABI"
	if [[ -n "$mods" ]]; then
		mkdir -p "$kdst/updates"
		find "$mods" -name '*.ko' -type f -exec cp -t "$kdst/updates/" {} +
	fi
	# Regenerate the index for exactly the modules that are in the image;
	# depmod replaces the hard-linked index files rather than editing them.
	rm -f "$kdst"/modules.{dep,dep.bin,alias,alias.bin,symbols,symbols.bin,softdep,devname,builtin.bin,builtin.alias.bin,weakdep}
	depmod -b "$stage" "$VMSG_KABI" || return 1
	if [[ -n "$progs" ]]; then
		find "$progs" -maxdepth 1 -type f -exec cp -t "$stage/usr/bin/" {} +
		chmod -R a+rx "$stage/usr/bin"
	fi
	# The guest suites' shared helpers, for every guest script.
	cp "$VMSG_REPO/tests/guest/lib.sh" "$stage/test/lib.sh"
	[[ -n "$files" ]] && cp -a "$files/." "$stage/test/"
	[[ -n "$env" ]] && cp "$env" "$stage/etc/vmrun.env"
	cp "$script" "$stage/test/run.sh"
	chmod 755 "$stage/test/run.sh"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$stage/etc/passwd"
	printf 'root:x:0:\n' >"$stage/etc/group"

	mkdir -p "$(dirname "$out")"
	# Sorted, owner-normalised archive so identical inputs give identical cpios.
	(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) >"$out.cpio" || return 1
	case "${VMSG_INITRAMFS_COMPRESS:-gzip}" in
	none) mv "$out.cpio" "$out" ;;
	gzip) gzip -1 -n -c "$out.cpio" >"$out" && rm -f "$out.cpio" ;;
	zstd) zstd -q -3 -f "$out.cpio" -o "$out" && rm -f "$out.cpio" ;;
	*) echo "bad VMSG_INITRAMFS_COMPRESS" >&2; return 2 ;;
	esac
}
