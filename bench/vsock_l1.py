"""bench/vsock's host side, in L1: measures a guest's vsock servers (bench/guest/vsock_agent.sh)
through AF_VSOCK to a CID (vhost-vsock, ours or QEMU's), or through our userspace device's Unix
socket (CONNECT <port>, then OK). Prints `@@VB g2h=<Mbit/s> h2g=<Mbit/s> connect_us=<median>`:
the median of ROUNDS transfers of BYTES each way, and of CONNECTS connects, each until the
guest closes it.

  vsock_l1.py vsock CID BYTES ROUNDS CONNECTS
  vsock_l1.py uds PATH BYTES ROUNDS CONNECTS
"""

import socket
import statistics
import sys
import time


def connect(kind, target, port):
    if kind == "vsock":
        s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        s.connect((int(target), port))
        return s
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(target)
    s.sendall(f"CONNECT {port}\n".encode())
    line = b""
    while not line.endswith(b"\n"):
        byte = s.recv(1)
        if not byte:
            raise ConnectionError(f"port {port} refused")
        line += byte
    return s


def mbits(nbytes, seconds):
    return nbytes * 8 / seconds / 1e6


def guest_to_host(kind, target):
    start = time.monotonic()
    s = connect(kind, target, 5001)
    n = 0
    while chunk := s.recv(1 << 16):
        n += len(chunk)
    s.close()
    return mbits(n, time.monotonic() - start)


def host_to_guest(kind, target, nbytes):
    block = bytes(1 << 16)
    start = time.monotonic()
    s = connect(kind, target, 5002)
    for _ in range(nbytes // len(block)):
        s.sendall(block)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)  # the guest closes once it has read everything
    s.close()
    return mbits(nbytes, time.monotonic() - start)


def connect_us(kind, target):
    start = time.monotonic()
    s = connect(kind, target, 5003)
    s.recv(1)
    elapsed = time.monotonic() - start
    s.close()
    return elapsed * 1e6


kind, target, nbytes, rounds, connects = sys.argv[1:6]
nbytes, rounds, connects = int(nbytes), int(rounds), int(connects)
g2h = statistics.median(guest_to_host(kind, target) for _ in range(rounds))
h2g = statistics.median(host_to_guest(kind, target, nbytes) for _ in range(rounds))
lat = statistics.median(connect_us(kind, target) for _ in range(connects))
print(f"@@VB g2h={g2h:.1f} h2g={h2g:.1f} connect_us={lat:.0f}", flush=True)
