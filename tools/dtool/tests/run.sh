#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Unit tests of virtio-msg-dt on the host (make -C tools/dtool check).
# Base trees: QEMU's own "virt" DTB (qemu-system-aarch64 -M virt,dumpdtb=)
# and variants of it made with dtc/fdtput; corrupt inputs made by cutting
# and overwriting bytes.  Prints ok/FAIL lines and "N passed, N failed".
#
# usage: run.sh <virtio-msg-dt> <dts dir>
set -u
DT=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
DTS=$(cd "$2" && pwd)
W=$(cd "$(dirname "$0")" && pwd)/work
pass=0 fails=0

for c in qemu-system-aarch64 dtc fdtget fdtput; do
	command -v $c >/dev/null 2>&1 || { echo "missing $c (qemu-system-arm, device-tree-compiler)" >&2; exit 1; }
done
rm -rf "$W"
mkdir -p "$W"
cd "$W" || exit 1

ok() { echo "ok $1"; pass=$((pass + 1)); }
fail() { echo "FAIL $1${2:+: $2}"; fails=$((fails + 1)); }
# expect <name> <status> <stderr/stdout regex> cmd...: status and output
expect() {
	name=$1 want=$2 re=$3
	shift 3
	"$@" >out.txt 2>&1
	got=$?
	if [ "$got" != "$want" ]; then
		fail "$name" "exit $got, want $want: $(head -c 300 out.txt)"
	elif [ -n "$re" ] && ! grep -Eq -- "$re" out.txt; then
		fail "$name" "output does not match /$re/: $(head -c 300 out.txt)"
	else
		ok "$name"
	fi
}
absent() { if [ -e "$2" ] || ls "$2".tmp.* >/dev/null 2>&1; then fail "$1" "$2 (or a temp file) exists"; else ok "$1"; fi; }
reg_of() { fdtget -t x "$1" "$2" reg; }

qemu() { # <out.dtb> <mem>
	qemu-system-aarch64 -M "virt,dumpdtb=$1" -cpu max,pauth=off -smp 2 -m "$2" -nographic \
		</dev/null >/dev/null 2>&1
}
qemu virt.dtb 1G || { echo "qemu dumpdtb failed" >&2; exit 1; }
qemu virt512.dtb 512M || exit 1
for f in "$DTS"/*.dtso; do
	dtc -q -@ -I dts -O dtb -o "$(basename "$f" .dtso).dtbo" "$f" || exit 1
done
dtc -q -I dtb -O dts -o virt.dts virt.dtb

# --- inspect -----------------------------------------------------------------
expect inspect-no-pool 3 'no pool' "$DT" inspect virt.dtb
expect inspect-usage 2 'at most one' "$DT" inspect a b

# --- merge -------------------------------------------------------------------
expect merge-fixed 0 '' "$DT" merge virt.dtb vmsglb.dtbo -o lb.dtb
expect merge-fixed-inspect 0 'vmsglb@7e000000.*virtio_msg_loopback' sh -c "'$DT' inspect lb.dtb | tr '\n' ' '"
expect merge-fixed-range 0 '0x7e000000-0x7effffff' "$DT" inspect lb.dtb
if command -v fdtoverlay >/dev/null 2>&1; then
	fdtoverlay -i virt.dtb -o lb-ref.dtb vmsglb.dtbo
	dtc -q -I dtb -O dts -s lb.dtb >a.dts; dtc -q -I dtb -O dts -s lb-ref.dtb >b.dts
	if cmp -s a.dts b.dts; then ok merge-equals-fdtoverlay; else fail merge-equals-fdtoverlay "$(diff a.dts b.dts | head -5)"; fi
fi
expect merge-dynamic-ffa 0 '' "$DT" merge virt.dtb vmsgffa-dynamic.dtbo -o ffa.dtb
expect merge-dynamic-ffa-inspect 0 'dynamic.*16 MiB' "$DT" inspect ffa.dtb
expect merge-dynamic-ffa-driver 0 'virtio_msg_ffa' "$DT" inspect ffa.dtb
expect merge-two-overlays 0 '' "$DT" merge lb.dtb vmsgffa.dtbo -o both.dtb
expect merge-two-overlays-inspect 0 '2 usable pools' "$DT" inspect both.dtb
expect merge-not-overlay 1 'not an overlay' "$DT" merge virt.dtb virt.dtb -o bad.dtb
absent merge-not-overlay-no-output bad.dtb
# fixed pool at 0x7e000000 is outside the RAM of a 512 MiB machine
expect merge-outside-memory 1 'not inside /memory' "$DT" merge virt512.dtb vmsglb.dtbo -o bad.dtb
absent merge-outside-memory-no-output bad.dtb
# a memreserve over the fixed window: overlapping ranges
sed 's|^/dts-v1/;|/dts-v1/;\n/memreserve/ 0x7e800000 0x100000;|' virt.dts >mr.dts
dtc -q -I dts -O dtb -o mr.dtb mr.dts
expect merge-overlap-memreserve 1 'overlaps /memreserve/' "$DT" merge mr.dtb vmsglb.dtbo -o bad.dtb
absent merge-overlap-no-output bad.dtb
expect merge-usage 2 'usage' "$DT" merge virt.dtb vmsglb.dtbo
echo keep >keep.dtb
expect merge-bad-keeps-old-output 1 '' "$DT" merge virt512.dtb vmsglb.dtbo -o keep.dtb
if [ "$(cat keep.dtb)" = keep ]; then ok merge-old-output-untouched; else fail merge-old-output-untouched; fi
expect merge-no-such-dir 1 'temporary file' "$DT" merge virt.dtb vmsglb.dtbo -o nodir/out.dtb

# --- add-pool ----------------------------------------------------------------
expect add-pool 0 'vmsglb@7f000000' "$DT" add-pool virt.dtb -o ap.dtb --size 16M
expect add-pool-reg 0 '^0 7f000000 0 1000000$' reg_of ap.dtb /reserved-memory/vmsglb@7f000000
expect add-pool-compatible 0 'virtio-msg,loopback restricted-dma-pool' fdtget ap.dtb /reserved-memory/vmsglb@7f000000 compatible
expect add-pool-inspect 0 '1 usable pool' "$DT" inspect ap.dtb
expect add-pool-cells 0 '^2$' fdtget ap.dtb /reserved-memory '#size-cells'
expect add-pool-same-kind-again 1 'already has a loopback pool' "$DT" add-pool ap.dtb -o bad.dtb --size 1M
absent add-pool-again-no-output bad.dtb
expect add-pool-ffa-beside 0 'vmsgffa@7e000000' "$DT" add-pool ap.dtb -o ap2.dtb --size 16M --kind ffa
expect add-pool-ffa-inspect 0 '2 usable pools' "$DT" inspect ap2.dtb
# existing fixed reservations at the top of RAM: placed below them
sed 's|^/dts-v1/;|/dts-v1/;\n/memreserve/ 0x7f000000 0x1000000;|' virt.dts >mr2.dts
dtc -q -I dts -O dtb -o mr2.dtb mr2.dts
expect add-pool-below-memreserve 0 'vmsglb@7e800000' "$DT" add-pool mr2.dtb -o ap3.dtb --size 8M
expect add-pool-beside-small-memreserve 0 'vmsglb@7f800000' "$DT" add-pool mr.dtb -o ap3b.dtb --size 8M
cp virt.dtb rm.dtb
fdtput -p -c rm.dtb /reserved-memory/fw@7fc00000
fdtput -t x rm.dtb /reserved-memory '#address-cells' 2
fdtput -t x rm.dtb /reserved-memory '#size-cells' 2
fdtput -t x rm.dtb /reserved-memory/fw@7fc00000 reg 0 0x7fc00000 0 0x400000
expect add-pool-below-reserved-node 0 'vmsglb@7f000000' "$DT" add-pool rm.dtb -o ap4.dtb --size 12M
expect add-pool-below-reserved-node-2 0 'vmsglb@7ec00000' "$DT" add-pool rm.dtb -o ap5.dtb --size 16M
expect add-pool-align 0 'vmsglb@7c000000' "$DT" add-pool rm.dtb -o ap6.dtb --size 16M --align 64M
expect add-pool-no-room 1 'no room' "$DT" add-pool virt.dtb -o bad.dtb --size 2G
absent add-pool-no-room-no-output bad.dtb
cp virt.dtb nomem.dtb
fdtput -r nomem.dtb /memory@40000000
expect add-pool-no-memory 1 'no /memory' "$DT" add-pool nomem.dtb -o bad.dtb --size 16M
absent add-pool-no-memory-no-output bad.dtb
expect add-pool-bad-size 2 'size' "$DT" add-pool virt.dtb -o bad.dtb --size 12q
expect add-pool-unaligned-size 2 'multiple of 4 KiB' "$DT" add-pool virt.dtb -o bad.dtb --size 1000
expect add-pool-bad-kind 2 'loopback or ffa' "$DT" add-pool virt.dtb -o bad.dtb --size 16M --kind foo
expect add-pool-usage 2 'usage' "$DT" add-pool virt.dtb --size 16M

# --- inspect: unusable pools --------------------------------------------------
cp lb.dtb nomap.dtb
fdtput nomap.dtb /reserved-memory/vmsglb@7e000000 no-map ''
expect inspect-no-map 1 'NOT usable: has no-map' "$DT" inspect nomap.dtb
cp lb.dtb dis.dtb
fdtput -t s dis.dtb /reserved-memory/vmsglb@7e000000 status disabled
expect inspect-disabled 1 'status is not okay' "$DT" inspect dis.dtb
cp lb.dtb ov.dtb
fdtput -c ov.dtb /reserved-memory/other@7e800000
fdtput -t x ov.dtb /reserved-memory/other@7e800000 reg 0 0x7e800000 0 0x1000
expect inspect-overlap 1 'overlaps /reserved-memory/other@7e800000' "$DT" inspect ov.dtb
cp lb.dtb byname.dtb
fdtput -d byname.dtb /reserved-memory/vmsglb@7e000000 compatible
expect inspect-by-name 0 'by node name only' "$DT" inspect byname.dtb

# --- corrupt input -------------------------------------------------------------
head -c 1000 virt.dtb >trunc.dtb
expect truncated-inspect 1 'truncated' "$DT" inspect trunc.dtb
expect truncated-merge 1 'truncated' "$DT" merge trunc.dtb vmsglb.dtbo -o bad.dtb
absent truncated-merge-no-output bad.dtb
expect truncated-overlay 1 'truncated' sh -c "head -c 200 vmsglb.dtbo >t.dtbo; '$DT' merge virt.dtb t.dtbo -o bad.dtb"
absent truncated-overlay-no-output bad.dtb
: >empty.dtb
expect empty 1 'shorter than the header' "$DT" inspect empty.dtb
head -c 4096 /dev/zero >zero.dtb
expect garbage-magic 1 'not a valid device tree blob' "$DT" inspect zero.dtb
# overwrite 64 bytes in the middle of the structure block
off=$(( $(fdtdump virt.dtb 2>/dev/null | sed -n 's/^\/\/ off_dt_struct:[[:space:]]*\(0x[0-9a-f]*\).*/\1/p') + 200 ))
[ "$off" -gt 200 ] || off=300
cp virt.dtb corrupt.dtb
printf 'XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX' |
	dd of=corrupt.dtb bs=1 seek="$off" conv=notrunc 2>/dev/null
expect corrupt-struct 1 'corrupt device tree blob' "$DT" inspect corrupt.dtb
expect corrupt-add-pool 1 'corrupt' "$DT" add-pool corrupt.dtb -o bad.dtb --size 16M
absent corrupt-add-pool-no-output bad.dtb
expect missing-file 1 'No such file' "$DT" inspect /nonexistent.dtb
expect unknown-command 2 'unknown command' "$DT" frobnicate
expect version 0 'virtio-msg-dt ' "$DT" --version

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
