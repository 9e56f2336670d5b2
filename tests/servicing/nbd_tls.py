#!/usr/bin/env python3
"""TLS and plain NBD connections across a servicing (docs/servicing.md, "TLS").
Usage: nbd_tls.py PORT GOFILE

Two TCP connections to nvmekeepd (--tls on, X.509): one negotiates
NBD_OPT_STARTTLS, then NBD_OPT_GO inside TLS; the other stays plaintext.
Each reads 4 KiB. Prints "ready" and waits until GOFILE exists (the test
services the daemon meanwhile). Then:
  - the TLS connection must end cleanly: the server's TLS close_notify, then
    the end of the stream (an end without close_notify fails: the test reads
    with suppress_ragged_eofs=False); a request sent after it gets no reply;
  - the plaintext connection was handed over: its next read works;
  - a new TLS connection to the successor works (reconnect).
Exit 0 when all three hold; the reason otherwise."""
import os
import socket
import ssl
import struct
import sys
import time

IHAVEOPT = 0x49484156454F5054
OPT_GO, OPT_STARTTLS = 7, 5


def rx(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("end of stream after %d of %d bytes" % (len(b), n))
        b += c
    return b


def opt(s, o, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, o, len(data)) + data)
    while True:
        _, ro, typ, ln = struct.unpack(">QIII", rx(s, 20))
        rx(s, ln)
        if typ & 0x80000000:
            sys.exit("option %d refused: %#x" % (o, typ))
        if typ == 1:
            return


def connect(port, tls):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    rx(s, 18)
    s.sendall(struct.pack(">I", 1 | 2))
    if tls:
        opt(s, OPT_STARTTLS)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        s = ctx.wrap_socket(s, suppress_ragged_eofs=False)
    opt(s, OPT_GO, struct.pack(">IH", 0, 0))
    return s


def read(s, handle):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, handle, 1 << 20, 4096))
    magic, err, h = struct.unpack(">IIQ", rx(s, 16))
    if magic != 0x67446698 or err or h != handle:
        sys.exit("read: magic %#x error %d handle %d" % (magic, err, h))
    return rx(s, 4096)


def main():
    port, gofile = int(sys.argv[1]), sys.argv[2]
    t = connect(port, True)
    p = connect(port, False)
    read(t, 1)
    read(p, 1)
    print("ready: TLS %s, plaintext" % t.version(), flush=True)
    deadline = time.time() + 60
    while not os.path.exists(gofile):
        if time.time() > deadline:
            sys.exit("no go after 60 s")
        time.sleep(0.01)
    # the TLS connection: close_notify, then the end
    try:
        b = t.recv(1)
    except ssl.SSLEOFError as e:
        sys.exit("TLS connection ended without close_notify: %s" % e)
    except (ConnectionError, ssl.SSLError) as e:
        sys.exit("TLS connection: %s" % e)
    if b:
        sys.exit("TLS connection: unexpected %r" % b)
    print("TLS connection: close_notify received, then end of stream", flush=True)
    try:
        t.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, 2, 0, 4096))
        if t.recv(16):
            sys.exit("TLS connection: a request was answered after close_notify")
    except (OSError, ssl.SSLError):
        pass
    print("plaintext connection after the servicing: read %d bytes" % len(read(p, 2)),
          flush=True)
    n = connect(port, True)
    read(n, 3)
    print("new TLS connection to the successor (%s): read works" % n.version(), flush=True)


if __name__ == "__main__":
    try:
        main()
    except (EOFError, OSError) as e:
        sys.exit(str(e))
