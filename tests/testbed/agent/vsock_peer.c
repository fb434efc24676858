/*
 * vsock_peer: the guest's end of the vsock tests (built static by the test bed, /bin/vsock_peer
 * in L2). Busybox has no AF_VSOCK, so this small program is the guest's client and server.
 *
 *   vsock_peer serve PORT FILE COUNT   accept COUNT connections on PORT (any CID), each served
 *                                      by a child that sends FILE and closes; exit 0 when all
 *                                      COUNT were sent whole
 *   vsock_peer send CID PORT FILE      connect to CID:PORT, send FILE, shut down sending and
 *                                      wait for the peer to close; exit 0 when all was sent
 * and for bench/vsock, each taking COUNT connections on PORT one after another:
 *   vsock_peer source PORT BYTES COUNT send BYTES (zeros) to each, then close
 *   vsock_peer sink PORT COUNT         read each to its end, then close
 *   vsock_peer accepts PORT COUNT      close each at once (the peer times its connect)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what) {
  fprintf(stderr, "vsock_peer: %s: %s\n", what, strerror(errno));
  return 1;
}

/* Sends the whole of FILE on s; 0 on success. */
static int send_file(int s, const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return fail(path);
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) return fail("read");
    if (n == 0) break;
    for (ssize_t at = 0; at < n;) {
      ssize_t w = write(s, buf + at, n - at);
      if (w < 0) return fail("write");
      at += w;
    }
  }
  close(fd);
  return 0;
}

static struct sockaddr_vm address(unsigned cid, unsigned port) {
  struct sockaddr_vm a;
  memset(&a, 0, sizeof a);
  a.svm_family = AF_VSOCK;
  a.svm_cid = cid;
  a.svm_port = port;
  return a;
}

/* A listening socket on PORT (any CID). */
static int listener(unsigned port, int backlog) {
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (s < 0) return -1;
  struct sockaddr_vm a = address(VMADDR_CID_ANY, port);
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, backlog) < 0) return -1;
  return s;
}

static int serve(unsigned port, const char *path, int count) {
  int s = listener(port, count);
  if (s < 0) return fail("listen");
  for (int i = 0; i < count; i++) {
    int c = accept(s, NULL, NULL);
    if (c < 0) return fail("accept");
    if (fork() == 0) {
      int status = send_file(c, path);
      close(c);
      _exit(status);
    }
    close(c);
  }
  int failed = 0, status;
  while (wait(&status) > 0) failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return failed != 0;
}

/* bench/vsock's servers: what each of COUNT connections gets (see the usage above). */
static int bench(const char *mode, unsigned port, long bytes, int count) {
  static char buf[65536];
  int s = listener(port, count);
  if (s < 0) return fail("listen");
  for (int i = 0; i < count; i++) {
    int c = accept(s, NULL, NULL);
    if (c < 0) return fail("accept");
    if (strcmp(mode, "source") == 0) {
      for (long left = bytes; left > 0;) {
        ssize_t w = write(c, buf, left < (long)sizeof buf ? left : (long)sizeof buf);
        if (w < 0) return fail("write");
        left -= w;
      }
    } else if (strcmp(mode, "sink") == 0) {
      while (read(c, buf, sizeof buf) > 0) { /* to the end */ }
    }
    close(c);
  }
  return 0;
}

static int send_to(unsigned cid, unsigned port, const char *path) {
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (s < 0) return fail("socket");
  struct sockaddr_vm a = address(cid, port);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) return fail("connect");
  if (send_file(s, path) != 0) return 1;
  shutdown(s, SHUT_WR);
  char byte;
  while (read(s, &byte, 1) > 0) { /* until the peer closes */ }
  close(s);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "serve") == 0) {
    return serve(strtoul(argv[2], NULL, 10), argv[3], atoi(argv[4]));
  }
  if (argc == 5 && strcmp(argv[1], "send") == 0) {
    return send_to(strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10), argv[4]);
  }
  if (argc == 5 && strcmp(argv[1], "source") == 0) {
    return bench("source", strtoul(argv[2], NULL, 10), atol(argv[3]), atoi(argv[4]));
  }
  if (argc == 4 && (strcmp(argv[1], "sink") == 0 || strcmp(argv[1], "accepts") == 0)) {
    return bench(argv[1], strtoul(argv[2], NULL, 10), 0, atoi(argv[3]));
  }
  fprintf(stderr, "usage: vsock_peer serve PORT FILE COUNT | send CID PORT FILE | "
                  "source PORT BYTES COUNT | sink PORT COUNT | accepts PORT COUNT\n");
  return 2;
}
