#!/usr/bin/env python3
"""kvmpager external pager example (Python 3, standard library only).

Serves guest RAM from a raw memory image (byte i of the file is guest-physical byte i; past
its end RAM reads as zero), speaking the kvmpager external pager protocol version 1.

    kvmpager run --pager-exec "python3 image_pager.py"          # image from KVMPAGER_IMAGE
    kvmpager restore DIR --pager-exec "python3 image_pager.py"  # serves DIR/ram.img
    python3 image_pager.py --listen /tmp/pager.sock IMAGE &     # then:
    kvmpager run --image IMAGE --pager-socket /tmp/pager.sock

Each read request is widened to its aligned 2 MiB window and supplied through the data region
(the memfd the hello carried) in pieces of at most the region's size.
"""
import os
import select
import socket
import struct
import sys

VERSION = 1
HEADER = struct.Struct("<IHH")          # size, kind, reserved
KIND_HELLO, KIND_PACKET, KIND_OP, KIND_REPLY = 1, 2, 3, 4
OP_SUPPLY = 0x10
PAGER_VMO_READ = 0
WINDOW = 2 << 20


def read_exact(sock, n):
    buf = b""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while len(buf) < n:
        # poll first: a recv() asleep on a Unix socket also wakes each time the VMM consumes
        # one of our messages (a write-space wake-up); poll waits for data only.
        poller.poll()
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class Pager:
    def __init__(self, sock, image):
        self.sock, self.image = sock, image
        head, fds, _, _ = socket.recv_fds(sock, HEADER.size, 1)
        if not fds:
            sys.exit("image_pager: the hello carried no data region")
        self.region = fds[0]
        head += read_exact(sock, HEADER.size - len(head)) if len(head) < HEADER.size else b""
        size, kind, _ = HEADER.unpack(head)
        body = read_exact(sock, size - HEADER.size)
        version, count, self.region_size = struct.unpack_from("<IIQ", body)
        if kind != KIND_HELLO or version != VERSION:
            sys.exit(f"image_pager: unsupported hello (kind {kind}, version {version})")
        self.vmos = dict(struct.unpack_from("<QQ", body, 16 + 16 * i) for i in range(count))
        self.queue, self.next_id = [], 1

    def read_msg(self):
        head = read_exact(self.sock, HEADER.size)
        if head is None:
            return None, None
        size, kind, _ = HEADER.unpack(head)
        return kind, read_exact(self.sock, size - HEADER.size)

    def op(self, key, op, offset, length, data):
        op_id, self.next_id = self.next_id, self.next_id + 1
        body = struct.pack("<QQIIQQQ", op_id, key, op, 0, offset, length, data)
        self.sock.sendall(HEADER.pack(HEADER.size + len(body), KIND_OP, 0) + body)
        while True:
            kind, body = self.read_msg()
            if kind is None:
                sys.exit(0)
            if kind == KIND_PACKET:
                self.queue.append(body)
            elif kind == KIND_REPLY:
                rid, status, _ = struct.unpack("<QiI", body)
                if rid == op_id:
                    return status

    def serve_read(self, key, offset, length):
        size = self.vmos[key]
        start = offset & ~(WINDOW - 1)
        end = min((offset + length + WINDOW - 1) & ~(WINDOW - 1), size)
        at = start
        while at < end:
            n = min(end - at, self.region_size)
            data = os.pread(self.image, n, at)
            os.pwrite(self.region, data + bytes(n - len(data)), 0)
            status = self.op(key, OP_SUPPLY, at, n, 0)
            if status != 0:
                sys.exit(f"image_pager: SUPPLY at {at:#x} failed with status {status}")
            at += n

    def run(self):
        while True:
            if self.queue:
                body = self.queue.pop(0)
            else:
                kind, body = self.read_msg()
                if kind is None:
                    return
                if kind != KIND_PACKET:
                    continue
            key, _ptype, _status, command, _flags, _r0, offset, length, _r1 = struct.unpack(
                "<QIiHHIQQQ", body)
            if command == PAGER_VMO_READ and key in self.vmos:
                self.serve_read(key, offset, length)


def main():
    args = sys.argv[1:]
    listen = None
    if args[:1] == ["--listen"]:
        listen, args = args[1], args[2:]
    path = args[0] if args else os.environ.get("KVMPAGER_IMAGE")
    if not path:
        sys.exit("usage: image_pager.py [--listen SOCKET] IMAGE (or KVMPAGER_IMAGE)")
    image = os.open(path, os.O_RDONLY)
    if listen:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(listen)
        server.listen(1)
        sock, _ = server.accept()
    else:
        sock = socket.socket(fileno=int(os.environ.get("KVMPAGER_PAGER_FD", "0")))
    Pager(sock, image).run()


if __name__ == "__main__":
    main()
