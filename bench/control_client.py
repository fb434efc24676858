"""The control benchmark's client in L1, one program for both VMMs so neither is favoured.

  control_client.py rtt ours SOCKET N     N round trips of "ResumeVcpus" (a no-op on a running VM)
                                          over crosvm's SOCK_SEQPACKET JSON socket
  control_client.py rtt qemu SOCKET N     N round trips of QMP's query-status
  control_client.py balloon ours SOCKET RAM_BYTES BALLOON_BYTES
                                          crosvm's Adjust with wait_for_success, which our VMM
                                          answers once the guest holds the balloon
  control_client.py balloon qemu SOCKET RAM_BYTES BALLOON_BYTES
                                          QMP balloon to RAM - BALLOON, waits until query-balloon
                                          reports it (QEMU's value is the guest's size, not the
                                          balloon's)

Prints `rtt_us=<median> <p90>` or `balloon_s=<seconds>`.
"""

import json
import socket
import sys
import time


def qmp(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    f = s.makefile("rw")
    json.loads(f.readline())  # greeting
    call(f, "qmp_capabilities")
    return f


def call(f, command, **arguments):
    f.write(json.dumps({"execute": command, "arguments": arguments}) + "\n")
    f.flush()
    while True:
        reply = json.loads(f.readline())
        if "return" in reply or "error" in reply:
            return reply


def rtt(vmm, path, n):
    times = []
    if vmm == "ours":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(path)
        for _ in range(n):
            t = time.perf_counter()
            s.send(b'"ResumeVcpus"')
            assert s.recv(4096) == b'"Ok"'
            times.append(time.perf_counter() - t)
    else:
        f = qmp(path)
        for _ in range(n):
            t = time.perf_counter()
            assert "return" in call(f, "query-status")
            times.append(time.perf_counter() - t)
    times.sort()
    print(f"rtt_us={times[len(times) // 2] * 1e6:.0f} {times[len(times) * 9 // 10] * 1e6:.0f}")


def balloon(vmm, path, ram, size):
    t = time.perf_counter()
    if vmm == "ours":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(path)
        adjust = {"Adjust": {"num_bytes": size, "wait_for_success": True}}
        s.send(json.dumps({"BalloonCommand": adjust}).encode())
        assert s.recv(4096) == b'"Ok"'
    else:
        f = qmp(path)
        call(f, "balloon", value=ram - size)
        while call(f, "query-balloon")["return"]["actual"] != ram - size:
            time.sleep(0.01)
    print(f"balloon_s={time.perf_counter() - t:.2f}")


if __name__ == "__main__":
    if sys.argv[1] == "rtt":
        rtt(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        balloon(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
