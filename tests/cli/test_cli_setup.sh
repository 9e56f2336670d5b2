#!/usr/bin/env bash
# nvmekeep setup list over a sysfs tree built here (NVMK_SYSFS_ROOT): only
# NVMe functions (class 010802h) are listed, with driver, IOMMU group and the
# vendor/device names of libpci's PCI ID database; an ID the database does
# not know gets no name. TAP output. Touches no real device.
set -u
CLI=$1
SYS=$(mktemp -d)
trap 'rm -rf "$SYS"' EXIT
n=0
fail=0

# func ADDR CLASS VENDOR DEVICE [DRIVER [GROUP]]
func() {
	local d=$SYS/bus/pci/devices/$1
	mkdir -p "$d"
	echo "$2" >"$d/class"
	echo "$3" >"$d/vendor"
	echo "$4" >"$d/device"
	if [ -n "${5:-}" ]; then
		mkdir -p "$SYS/bus/pci/drivers/$5"
		ln -s "../../../../bus/pci/drivers/$5" "$d/driver"
	fi
	if [ -n "${6:-}" ]; then
		mkdir -p "$SYS/kernel/iommu_groups/$6"
		ln -s "../../../../kernel/iommu_groups/$6" "$d/iommu_group"
	fi
}
func 0000:00:04.0 0x010802 0x1b36 0x0010 nvme 7    # QEMU's NVMe controller
func 0000:00:03.0 0x020000 0x8086 0x100e e1000     # a network function: not listed
func 0000:01:00.0 0x010802 0xfffe 0x0001           # an ID pci.ids does not have

check() { # name, command output, regex that must match (grep -E)
	n=$((n + 1))
	if grep -Eq -- "$3" <<<"$2"; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1: /$3/ not in:"
		sed 's/^/#   /' <<<"$2"
		fail=$((fail + 1))
	fi
}

out=$(NVMK_SYSFS_ROOT=$SYS "$CLI" setup list 2>&1)
check "QEMU NVMe function with driver, group and name" "$out" \
	'^0000:00:04.0 +1b36:0010 +nvme +7 +Red Hat, Inc\. QEMU NVM Express Controller$'
check "unknown ID: numbers, no name" "$out" '^0000:01:00.0 +fffe:0001 +\(none\) +\(none\) *$'
n=$((n + 1))
if grep -q '0000:00:03.0' <<<"$out"; then
	echo "not ok $n - a non-NVMe function was listed"
	fail=$((fail + 1))
else
	echo "ok $n - non-NVMe functions are not listed"
fi

out=$(NVMK_SYSFS_ROOT=$SYS "$CLI" setup list -o json 2>&1)
n=$((n + 1))
if python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert [f["address"] for f in d] == ["0000:00:04.0", "0000:01:00.0"], d
assert d[0]["name"] == "Red Hat, Inc. QEMU NVM Express Controller", d[0]
assert (d[0]["vendor"], d[0]["device"], d[0]["driver"], d[0]["iommu_group"]) == (0x1b36, 0x10, "nvme", "7")
assert d[1]["name"] == "" and d[1]["driver"] == "", d[1]
' <<<"$out"; then
	echo "ok $n - setup list -o json: addresses, names, drivers, groups"
else
	echo "not ok $n - setup list -o json:"
	sed 's/^/#   /' <<<"$out"
	fail=$((fail + 1))
fi

rm -rf "$SYS/bus/pci/devices"/*
out=$(NVMK_SYSFS_ROOT=$SYS "$CLI" setup list 2>&1)
check "no NVMe function: says so" "$out" '^no NVMe PCI functions found$'

echo "1..$n"
[ "$fail" -eq 0 ]
