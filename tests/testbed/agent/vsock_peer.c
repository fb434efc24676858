/*
 * vsock_peer: the guest's end of the vsock tests (built static by the test bed, /bin/vsock_peer
 * in L2). Busybox has no AF_VSOCK, so this small program is the guest's client and server.
 *
 *   vsock_peer serve PORT FILE COUNT   accept COUNT connections on PORT (any CID), each served
 *                                      by a child that sends FILE and closes; exit 0 when all
 *                                      COUNT were sent whole
 *   vsock_peer send CID PORT FILE      connect to CID:PORT, send FILE, shut down sending and
 *                                      wait for the peer to close; exit 0 when all was sent
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

static int serve(unsigned port, const char *path, int count) {
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (s < 0) return fail("socket");
  struct sockaddr_vm a = address(VMADDR_CID_ANY, port);
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) return fail("bind");
  if (listen(s, count) < 0) return fail("listen");
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
  fprintf(stderr, "usage: vsock_peer serve PORT FILE COUNT | send CID PORT FILE\n");
  return 2;
}
