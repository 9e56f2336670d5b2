#!/usr/bin/env bash
# The CLI's JSON speaks nvme-cli's language: id-ctrl, id-ns and list carry
# the keys nvme-cli 2.x prints, with its JSON types, and no others; the normal
# output of id-ctrl and id-ns prints the same fields. TAP output.
#
# The key lists below were written down by reading nvme-cli 2.x's printer
# (nvme-print-json.c: json_nvme_id_ctrl, json_nvme_id_ns and the list printer
# json_print_list_items): i = JSON integer, s = string, a = array.
# Conditional keys: subnqn only when not empty; npwg, npwa, npdg, npda, nows
# only when NSFEAT bit 4 is set.
set -u
CLI=$1
n=0
fail=0

ID_CTRL_KEYS='vid:i ssvid:i sn:s mn:s fr:s rab:i ieee:i cmic:i mdts:i cntlid:i ver:i
rtd3r:i rtd3e:i oaes:i ctratt:i rrls:i cntrltype:i fguid:s crdt1:i crdt2:i crdt3:i
nvmsr:i vwci:i mec:i oacs:i acl:i aerl:i frmw:i lpa:i elpe:i npss:i avscc:i apsta:i
wctemp:i cctemp:i mtfa:i hmpre:i hmmin:i tnvmcap:i unvmcap:i rpmbs:i edstt:i dsto:i
fwug:i kas:i hctma:i mntmt:i mxtmt:i sanicap:i hmminds:i hmmaxd:i nsetidmax:i
endgidmax:i anatt:i anacap:i anagrpmax:i nanagrpid:i pels:i domainid:i megcap:i
sqes:i cqes:i maxcmd:i nn:i oncs:i fuses:i fna:i vwc:i awun:i awupf:i icsvscc:i
nwpc:i acwu:i ocfs:i sgls:i mnan:i maxdna:i maxcna:i oaqd:i subnqn:s ioccsz:i
iorcsz:i icdoff:i fcatt:i msdbd:i ofcs:i psds:a'
PSD_KEYS='max_power:i max_power_scale:i non-operational_state:i entry_lat:i exit_lat:i
read_tput:i read_lat:i write_tput:i write_lat:i idle_power:i idle_scale:i
active_power:i active_power_work:i active_scale:i'
ID_NS_KEYS='nsze:i ncap:i nuse:i nsfeat:i nlbaf:i flbas:i mc:i dpc:i dps:i nmic:i
rescap:i fpi:i dlfeat:i nawun:i nawupf:i nacwu:i nabsn:i nabo:i nabspf:i noiob:i
nvmcap:i nsattr:i nvmsetid:i npwg:i npwa:i npdg:i npda:i nows:i mssrl:i mcl:i
msrc:i nulbaf:i anagrpid:i endgid:i eui64:s nguid:s lbafs:a'
LBAF_KEYS='ms:i ds:i rp:i'
LIST_KEYS='NameSpace:i DevicePath:s Firmware:s ModelNumber:s SerialNumber:s
UsedBytes:i MaximumLBA:i PhysicalSize:i SectorSize:i'

# check NAME KEYS OPTIONAL_KEYS PYTHON_EXPR_FOR_THE_OBJECT < json
check() {
	python3 -c '
import json, sys
name, keys, optional, expr = sys.argv[1:5]
doc = json.load(sys.stdin)
obj = eval(expr, {"doc": doc})
want = dict(k.rsplit(":", 1) for k in keys.split())
types = {"i": int, "s": str, "a": list}
errs = []
for k, t in want.items():
    if k not in obj:
        if k not in optional.split():
            errs.append("missing key %r" % k)
    elif type(obj[k]) is not types[t] or isinstance(obj[k], bool):
        errs.append("key %r is %s, nvme-cli prints %s" % (k, type(obj[k]).__name__, types[t].__name__))
errs += ["key %r is not one nvme-cli prints" % k for k in obj if k not in want]
for e in errs:
    print("#   " + e)
print(("not ok" if errs else "ok") + " - %s: %d keys as nvme-cli 2.x" % (name, len(obj)))
sys.exit(1 if errs else 0)
' "$@"
}

# t NAME CMD... : run the CLI, feed its JSON to check
t() {
	local name=$1 keys=$2 opt=$3 expr=$4
	shift 4
	n=$((n + 1))
	local out
	if ! out=$("$CLI" "$@" 2>&1); then
		echo "not ok $n - $name: nvmekeep $* failed:"
		sed 's/^/#   /' <<<"$out"
		fail=$((fail + 1))
		return
	fi
	check "$name" "$keys" "$opt" "$expr" <<<"$out" | sed "s/^\(not \)\{0,1\}ok /&$n /"
	[ "${PIPESTATUS[0]}" -eq 0 ] || fail=$((fail + 1))
}

t "id-ctrl" "$ID_CTRL_KEYS" "subnqn" 'doc' id-ctrl -o json
t "id-ctrl psds[0]" "$PSD_KEYS" "" 'doc["psds"][0]' id-ctrl -o json
t "id-ns 1" "$ID_NS_KEYS" "npwg npwa npdg npda nows" 'doc' id-ns -n 1 -o json
t "id-ns 2" "$ID_NS_KEYS" "npwg npwa npdg npda nows" 'doc' id-ns -n 2 -o json
t "id-ns lbafs[0]" "$LBAF_KEYS" "" 'doc["lbafs"][0]' id-ns -n 1 -o json
t "list Devices[0]" "$LIST_KEYS" "" 'doc["Devices"][0]' list -o json
t "list Devices[1]" "$LIST_KEYS" "" 'doc["Devices"][1]' list -o json

# values that must agree with what the emulator was built with (device.c):
# namespace 1 = 1 GiB of 512 B blocks, namespace 2 = 64 GiB of 4 KiB blocks
n=$((n + 1))
out=$("$CLI" list -o json | python3 -c '
import json, sys
d = json.load(sys.stdin)["Devices"]
print(" ".join("%d:%s:%d:%d:%d" % (x["NameSpace"], x["DevicePath"], x["SectorSize"], x["MaximumLBA"], x["PhysicalSize"]) for x in d))')
if [ "$out" = "1:emu:512:2097152:1073741824 2:emu:4096:16777216:68719476736" ]; then
	echo "ok $n - list values: $out"
else
	echo "not ok $n - list values: $out"
	fail=$((fail + 1))
fi

# normal output prints every field the JSON has (psds/lbafs as ps/lbaf lines)
for cmd in "id-ctrl" "id-ns -n 1"; do
	n=$((n + 1))
	# shellcheck disable=SC2086
	keys=$("$CLI" $cmd -o json | python3 -c 'import json,sys; print("\n".join(k for k in json.load(sys.stdin) if k not in ("psds", "lbafs")))')
	# shellcheck disable=SC2086
	normal=$("$CLI" $cmd)
	missing=""
	for k in $keys; do
		grep -Eq "^$k *:" <<<"$normal" || missing="$missing $k"
	done
	grep -Eq '^(ps +0|lbaf +0) ' <<<"$normal" || missing="$missing ps/lbaf-lines"
	if [ -z "$missing" ]; then
		echo "ok $n - $cmd: normal output prints the $(wc -w <<<"$keys") JSON fields"
	else
		echo "not ok $n - $cmd: normal output lacks:$missing"
		fail=$((fail + 1))
	fi
done

echo "1..$n"
[ "$fail" -eq 0 ]
