#!/usr/bin/env python3
"""NBD clients that stall in the middle of the newstyle handshake while
nvmekeepd is serviced, then finish it with the successor and do I/O.
Usage: nbd_handshake.py SOCKET GOFILE

Four connections, each stopped at another point:
  flags     greeting read, client flags not sent
  opthdr    flags sent, NBD_OPT_STRUCTURED_REPLY acknowledged, then 7 of the
            16 bytes of the NBD_OPT_GO header
  optdata   flags sent, the NBD_OPT_GO header and 3 of its 6 data bytes
  between   flags sent, NBD_OPT_STRUCTURED_REPLY acknowledged, nothing more
Prints "stalled", waits (60 s at most) until GOFILE exists, then each
connection finishes NBD_OPT_GO, writes 4 KiB of its own pattern, flushes,
reads it back and compares (simple or structured replies, as negotiated),
and disconnects. Exit 0 when all four did; the reason otherwise."""
import os
import socket
import struct
import sys
import time

IHAVEOPT = 0x49484156454F5054
OPT_GO, OPT_STRUCTURED_REPLY = 7, 8
REP_ACK = 1
SIMPLE_MAGIC, STRUCT_MAGIC = 0x67446698, 0x668E33EF


class Conn:
    def __init__(self, path, name, index):
        self.name, self.index, self.structured = name, index, False
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(60)
        self.s.connect(path)

    def rx(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise RuntimeError("%s: connection closed by the server" % self.name)
            b += c
        return b

    def greeting(self):
        magic, opts, _ = struct.unpack(">QQH", self.rx(18))
        if opts != IHAVEOPT:
            raise RuntimeError("%s: not a newstyle server" % self.name)

    def flags(self):
        self.s.sendall(struct.pack(">I", 1 | 2))  # fixed newstyle, no zeroes

    def opt_reply(self, want_opt):
        _, opt, typ, ln = struct.unpack(">QIII", self.rx(20))
        data = self.rx(ln)
        if opt != want_opt:
            raise RuntimeError("%s: reply for option %d, expected %d" % (self.name, opt, want_opt))
        return typ, data

    def structured_reply(self):
        self.s.sendall(struct.pack(">QII", IHAVEOPT, OPT_STRUCTURED_REPLY, 0))
        typ, _ = self.opt_reply(OPT_STRUCTURED_REPLY)
        if typ != REP_ACK:
            raise RuntimeError("%s: structured replies refused: %#x" % (self.name, typ))
        self.structured = True

    @staticmethod
    def go_bytes():
        data = struct.pack(">IH", 0, 0)  # default export, no information requests
        return struct.pack(">QII", IHAVEOPT, OPT_GO, len(data)) + data

    def go_finish(self):
        while True:
            typ, _ = self.opt_reply(OPT_GO)
            if typ == REP_ACK:
                return
            if typ & 0x80000000:
                raise RuntimeError("%s: NBD_OPT_GO refused: %#x" % (self.name, typ))

    def request(self, typ, handle, off, ln, payload=b""):
        self.s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, typ, handle, off, ln) + payload)

    def reply(self, handle, rlen):
        """The reply to @handle: its data (reads) or b""; raises on an error."""
        data = b""
        while True:
            magic = struct.unpack(">I", self.rx(4))[0]
            if magic == SIMPLE_MAGIC:
                err, h = struct.unpack(">IQ", self.rx(12))
                if h != handle or err:
                    raise RuntimeError("%s: reply handle %#x error %d" % (self.name, h, err))
                return self.rx(rlen) if rlen else b""
            if magic != STRUCT_MAGIC:
                raise RuntimeError("%s: bad reply magic %#x" % (self.name, magic))
            flags, typ, h, ln = struct.unpack(">HHQI", self.rx(16))
            body = self.rx(ln)
            if h != handle:
                raise RuntimeError("%s: chunk for handle %#x" % (self.name, h))
            if typ == 1:  # OFFSET_DATA: offset, data
                data += body[8:]
            elif typ & 0x8000:
                raise RuntimeError("%s: error chunk %s" % (self.name, body))
            if flags & 1:  # DONE
                return data

    def io(self):
        off = (64 << 20) + self.index * 65536
        pat = bytes([0x40 + self.index]) * 4096
        self.request(1, 1, off, len(pat), pat)  # WRITE
        self.reply(1, 0)
        self.request(3, 2, 0, 0)  # FLUSH
        self.reply(2, 0)
        self.request(0, 3, off, len(pat))  # READ
        got = self.reply(3, len(pat))
        if got != pat:
            raise RuntimeError("%s: read back %d bytes that differ" % (self.name, len(got)))
        self.request(2, 4, 0, 0)  # DISC
        self.s.close()


def main():
    path, gofile = sys.argv[1], sys.argv[2]
    conns = [Conn(path, n, i) for i, n in enumerate(("flags", "opthdr", "optdata", "between"))]
    flags, opthdr, optdata, between = conns
    for c in conns:
        c.greeting()
    for c in (opthdr, optdata, between):
        c.flags()
    for c in (opthdr, between):
        c.structured_reply()
    go = Conn.go_bytes()
    opthdr.s.sendall(go[:7])
    optdata.s.sendall(go[:16 + 3])
    time.sleep(0.3)  # the bytes reach the server before it is serviced
    print("stalled", flush=True)
    deadline = time.time() + 60
    while not os.path.exists(gofile):
        if time.time() > deadline:
            sys.exit("no go after 60 s")
        time.sleep(0.01)
    flags.flags()
    flags.s.sendall(go)
    opthdr.s.sendall(go[7:])
    optdata.s.sendall(go[16 + 3:])
    between.s.sendall(go)
    for c in conns:
        c.go_finish()
        c.io()
        print("%s: handshake finished, 4 KiB written and read back%s"
              % (c.name, " (structured replies)" if c.structured else ""), flush=True)


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, OSError) as e:
        sys.exit(str(e))
