#!/usr/bin/env bash
# Bad input to the nvmekeep CLI: each case must exit with the stated code and
# print an error that names what was wrong (and what is accepted). TAP output.
set -u
CLI=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n=0
fail=0

# expect CODE 'REGEX' -- ARGS...   (stdin from /dev/null unless STDIN_FILE set)
expect() {
	local code=$1 re=$2
	shift 3
	n=$((n + 1))
	local out rc
	out=$("$CLI" "$@" 2>&1 <"${STDIN_FILE:-/dev/null}")
	rc=$?
	if [ "$rc" -eq "$code" ] && grep -Eq -- "$re" <<<"$out"; then
		echo "ok $n - nvmekeep $* -> $code"
	else
		echo "not ok $n - nvmekeep $* -> expected exit $code and /$re/, got exit $rc:"
		sed 's/^/#   /' <<<"$out"
		fail=$((fail + 1))
	fi
}

expect 2 "Usage: nvmekeep"                      -- 
expect 0 "^nvmekeep [0-9]+\.[0-9]+\.[0-9]+$"    -- --version
expect 2 "unknown command 'frobnicate'"          -- frobnicate
expect 2 "unknown option '--bogus'"              -- --bogus list
expect 2 "invalid DEVICE 'nvme0'.*/dev/nvme0n1.*PCI address" -- id-ctrl nvme0
expect 2 "invalid DEVICE '0000:00:3.0': not a PCI address" -- id-ctrl 0000:00:3.0
expect 1 "no PCI function 0000:00:1f.0.*setup list" -- id-ctrl 0000:00:1f.0
expect 2 "unknown action 'frob': expected list, bind or unbind" -- setup frob
expect 2 "bind needs the PCI address \\(DDDD:BB:DD.F\\) of an NVMe function from .nvmekeep setup list., not 'xx'" -- setup bind xx
expect 2 "unbind needs the PCI address"           -- setup unbind
expect 1 "setup bind 0000:00:1f.0: No such device" -- setup bind 0000:00:1f.0
expect 2 "'list' takes no address"               -- setup list 0000:00:1f.0
expect 2 "invalid output format 'xml'.*'normal' or 'json'" -- id-ctrl -o xml
expect 2 "unexpected argument 'extra'"           -- id-ctrl emu extra
expect 2 "missing --namespace-id"                -- id-ns
expect 2 "invalid value '0' for --namespace-id.*from 1 to 4294967294" -- id-ns -n 0
expect 2 "invalid value 'abc' for --namespace-id" -- id-ns -n abc
expect 2 "invalid value '4294967295' for --namespace-id" -- id-ns -n 4294967295
expect 1 "namespace 9 is not active"             -- id-ns -n 9
expect 2 "missing --start-block"                 -- read -d "$TMP/x"
expect 2 "invalid value '-1' for --start-block"  -- read -s -1
expect 2 "invalid value '65536' for --block-count.*0 to 65535" -- read -s 0 -c 65536
expect 2 "outside namespace 1, which has 2097152 blocks" -- read -s 2097152 -d "$TMP/x"
expect 2 "outside namespace 1"                   -- read -s 2097150 -c 7 -d "$TMP/x"
expect 2 "--data-size 4096 does not match 1 blocks of 512 bytes" -- read -s 0 -z 4096 -d "$TMP/x"
expect 2 "invalid size '12Q' for --data-size"     -- read -s 0 -z 12Q
expect 2 "force-unit-access is accepted by write only" -- read -s 0 -f
expect 1 "cannot open namespace 7"               -- read -n 7 -s 0 -d "$TMP/x"
expect 1 "cannot open --data '/nonexistent/dir/f'" -- write -s 0 -d /nonexistent/dir/f
head -c 100 /dev/zero >"$TMP/short"
expect 2 "expected 512 bytes of data from .*short, got 100" -- write -s 0 -d "$TMP/short"
head -c 1024 /dev/zero >"$TMP/long"
expect 2 "holds more than the 512 bytes"         -- write -s 0 -d "$TMP/long"
expect 2 "invalid --rw 'randrw'"                 -- bench --rw randrw
expect 2 "invalid value '0' for --qd"            -- bench --qd 0
expect 2 "invalid value '65' for --threads"      -- bench --threads 65
expect 2 "invalid --mode 'spin'.*poll, irq or hybrid"    -- bench --mode spin
expect 2 "--bs 1000 is not a multiple"           -- bench --bs 1000 -n 1 --time 1
expect 2 "invalid size '0' for --bs"             -- bench --bs 0

expect 2 "unexpected argument 'emu'"              -- config emu
expect 0 "keep_alive   : host,privatepool \(enabled, inferred\)" -- config
OPENHCL_NVME_KEEP_ALIVE=bogus expect 0 "OPENHCL_NVME_KEEP_ALIVE='bogus' is not valid \(accepted: host,privatepool" -- config
OPENHCL_NVME_KEEP_ALIVE=HOST,PrivatePool expect 0 "keep_alive   : host,privatepool \(enabled, env\)" -- config
OPENHCL_IGVM_VTL2_GPA_POOL_CONFIG=12x expect 0 "OPENHCL_IGVM_VTL2_GPA_POOL_CONFIG='12x' is not valid" -- config
OPENHCL_NVME_KEEP_ALIVE=disabled expect 0 '"keep_alive":\{"mode":"disabled","state":"disabled","enabled":false,"source":"env"\}' -- config -o json

# and the good paths still work after all that: a write read back through a file-backed ns
head -c 4096 /dev/urandom >"$TMP/data"
expect 0 "write: success"                        -- write "emu:$TMP/ns1.img" -s 8 -c 7 -d "$TMP/data"
expect 0 "read: success \(4096 bytes from block 8\)" -- read "emu:$TMP/ns1.img" -s 8 -c 7 -d "$TMP/back"
n=$((n + 1))
if cmp -s "$TMP/data" "$TMP/back"; then echo "ok $n - data written then read back across two runs"; else echo "not ok $n - read-back data differs"; fail=$((fail + 1)); fi

echo "1..$n"
[ "$fail" -eq 0 ]
