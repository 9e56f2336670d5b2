#!/usr/bin/env python3
"""A raw NBD client (fixed newstyle, NBD_OPT_GO, simple replies) that sends
two 64 KiB READs at 1 MiB in one write, so that the server receives the
second one ahead of the first's completion, and checks that both are
answered with 0x77 bytes. Usage: nbd_pipelined.py SOCKET"""
import socket
import struct
import sys

s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect(sys.argv[1])


def rx(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            sys.exit("connection closed by the server")
        b += c
    return b


rx(18)  # NBDMAGIC, IHAVEOPT, handshake flags
s.sendall(struct.pack(">I", 1 | 2))  # fixed newstyle, no zeroes
data = struct.pack(">IH", 0, 0)  # empty export name, no information requests
s.sendall(struct.pack(">QII", 0x49484156454F5054, 7, len(data)) + data)
while True:
    _, _, typ, ln = struct.unpack(">QIII", rx(20))
    rx(ln)
    if typ == 1:
        break
    if typ & 0x80000000:
        sys.exit("NBD_OPT_GO refused: %#x" % typ)


def read_req(handle):
    return struct.pack(">IHHQQI", 0x25609513, 0, 0, handle, 1 << 20, 65536)


s.sendall(read_req(1) + read_req(2))
print("sent", flush=True)
got = {}
for _ in range(2):
    magic, err, handle = struct.unpack(">IIQ", rx(16))
    if magic != 0x67446698:
        sys.exit("bad reply magic %#x" % magic)
    got[handle] = (err, rx(65536) if err == 0 else b"")
bad = [h for h in (1, 2) if h not in got or got[h][0] or got[h][1] != b"\x77" * 65536]
print("replies for handles %s%s" % (sorted(got), ", wrong: %s" % bad if bad else ""))
sys.exit(1 if bad else 0)
