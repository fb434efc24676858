"""The host's end of the vsock test bed scenarios (in L1, beside the VMM).

Through the userspace device's Unix sockets:
  vsock_host.py receive PATH NAME       listen on the Unix socket PATH, take one connection,
                                        read it to its end: prints NAME=<bytes> <sha256>
  vsock_host.py fetch UDS PORT COUNT    COUNT connections at once to guest port PORT through the
                                        device's socket UDS (CONNECT PORT, then OK), each read to
                                        its end: prints
                                        l1_vsock_fetched=<connections answered OK> <sha256s>
Through vhost-vsock, with AF_VSOCK sockets (the fetches go through the TypeScript API,
vsock_fetch.ts):
  vsock_host.py vreceive PORT NAME      listen on vsock port PORT (any CID), as receive
"""

import hashlib
import os
import socket
import sys
import threading


def read_all(conn):
    digest, size = hashlib.sha256(), 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return size, digest.hexdigest()
        digest.update(chunk)
        size += len(chunk)


def receive(family, address, name):
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind(address)
    server.listen(1)
    conn, _ = server.accept()
    size, sha = read_all(conn)
    conn.close()
    if family == socket.AF_UNIX:
        os.unlink(address)
    print(f"{name}={size} {sha}", flush=True)


def fetch_unix(uds, port, results):
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(uds)
    conn.sendall(f"CONNECT {port}\n".encode())
    line = b""
    while not line.endswith(b"\n"):
        byte = conn.recv(1)
        if not byte:
            return
        line += byte
    if line.startswith(b"OK "):
        results.append(read_all(conn)[1])
    conn.close()


def fetch(uds, port, count):
    results = []
    threads = [threading.Thread(target=fetch_unix, args=(uds, port, results)) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"l1_vsock_fetched={len(results)} {' '.join(sorted(set(results)))}", flush=True)


mode, args = sys.argv[1], sys.argv[2:]
if mode == "receive":
    receive(socket.AF_UNIX, args[0], args[1])
elif mode == "vreceive":
    receive(socket.AF_VSOCK, (socket.VMADDR_CID_ANY, int(args[0])), args[1])
else:
    fetch(args[0], int(args[1]), int(args[2]))
