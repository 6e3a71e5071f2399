#!/usr/bin/env python3
"""Loopback HTTP ceiling for bench/run: the cheapest possible server (stdlib, one thread).

usage: loopback.py PORT FILE

  GET  /  → 200 with FILE's bytes via socket.sendfile() (zero-copy from the page cache)
  PUT  /  → reads Content-Length bytes into one reused buffer, discards them, 204

With curl as the client on the same cores, this is the most any HTTP server can move
here; it is the yardstick for the ims/Glance transfer figures. Serves until killed.
"""
import os
import socket
import sys

port, path = int(sys.argv[1]), sys.argv[2]
size = os.path.getsize(path)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(8)
buf = bytearray(1 << 20)
view = memoryview(buf)


def handle(conn):
    f = conn.makefile("rb")
    while True:
        line = f.readline()
        if not line:
            return
        method = line.split()[0].decode()
        length = 0
        while True:
            h = f.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode().partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip())
        if method == "PUT":
            # drain what the buffered reader already holds, then recv_into directly
            left = length
            pre = f.peek(0)[:left] if hasattr(f, "peek") else b""
            if pre:
                f.read(len(pre))
                left -= len(pre)
            while left > 0:
                n = conn.recv_into(view, min(left, len(buf)))
                if n == 0:
                    return
                left -= n
            conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\n\r\n" % size)
            with open(path, "rb") as src:
                conn.sendfile(src)


while True:
    c, _ = srv.accept()
    try:
        handle(c)
    except (ConnectionError, OSError):
        pass
    finally:
        c.close()
