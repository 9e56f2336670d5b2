#!/usr/bin/env python3
"""Flip a byte inside the manager state embedded in a servicing state memfd
(tools/nvmekeepd/service_state.proto) and re-seal the outer CRC32C, so that
the envelope passes and the manager's own checks (nvmk_mgr_restore) refuse
it. Usage: corrupt_mgr_state.py FILE (e.g. /proc/self/fd/N)."""
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def varint(b, i):
    v = s = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << s
        s += 7
        if not x & 0x80:
            return v, i


def fields(b):
    """field number -> (value start, value end) of each field, last one wins"""
    out, i = {}, 0
    while i < len(b):
        key, i = varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            _, j = varint(b, i)
        elif wt == 1:
            j = i + 8
        elif wt == 5:
            j = i + 4
        elif wt == 2:
            n, i = varint(b, i)
            j = i + n
        else:
            sys.exit("unexpected wire type %d" % wt)
        out[f] = (i, j)
        i = j
    return out


path = sys.argv[1]
with open(path, "r+b") as f:
    env = bytearray(f.read())
    ef = fields(env)
    cs, ce = ef[2]  # crc32c, fixed32
    ps, pe = ef[3]  # payload
    if struct.unpack("<I", env[cs:ce])[0] != crc32c(env[ps:pe]):
        sys.exit("the state's checksum does not match this CRC32C: not a servicing state?")
    payload = env[ps:pe]
    ms, me = fields(payload)[7]  # mgr_state
    payload[ms + (me - ms) // 2] ^= 0xFF
    env[ps:pe] = payload
    env[cs:ce] = struct.pack("<I", crc32c(payload))
    f.seek(0)
    f.write(env)
