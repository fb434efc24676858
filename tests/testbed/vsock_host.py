"""The host's end of the vsock test bed scenarios (in L1, beside the VMM).

  vsock_host.py receive PATH NAME      listen on the Unix socket PATH, take one connection,
                                       read it to its end: prints NAME=<bytes> <sha256>
  vsock_host.py fetch UDS PORT COUNT   COUNT connections at once to guest port PORT through the
                                       userspace device's socket UDS (CONNECT PORT, then OK),
                                       each read to its end: prints
                                       l1_vsock_fetched=<connections answered OK> <sha256s>
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


def receive(path, name):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    conn, _ = server.accept()
    size, sha = read_all(conn)
    conn.close()
    os.unlink(path)
    print(f"{name}={size} {sha}", flush=True)


def fetch_one(uds, port, results):
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
    threads = [threading.Thread(target=fetch_one, args=(uds, port, results)) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"l1_vsock_fetched={len(results)} {' '.join(sorted(set(results)))}", flush=True)


if sys.argv[1] == "receive":
    receive(sys.argv[2], sys.argv[3])
else:
    fetch(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
