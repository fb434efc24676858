/*
 * The guest half of the block benchmark (bench/blk.ts): runs one phase on a block device with
 * O_DIRECT and prints two short console lines around it, which the host timestamps:
 *
 *   @B <phase>                           before the first request
 *   @E <phase> <ops> <bytes> <guest ns>  after the last one completed
 *
 * Phases, all at queue depth 1 (one request in flight):
 *   write DEV MIB   sequential 1 MiB pwrite from offset 0, wrapping at the end of DEV
 *   read  DEV MIB   sequential 1 MiB pread, the same way
 *   rand  DEV OPS   4 KiB pread at uniformly random 4 KiB-aligned offsets (fixed seed)
 *
 * Guest time (CLOCK_MONOTONIC) is printed for a cross-check only: guest clocks drift under
 * TCG, so the host's timestamps of the two lines are the measurement.
 *
 * Built on the host with `gcc -static -O2` (bench/blk.ts does it).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>

#define SEQ_BLOCK (1u << 20)
#define RAND_BLOCK 4096u

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* xorshift64*: a fixed, cheap sequence, the same in every run. */
static uint64_t next_random(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s write|read|rand DEV MIB|OPS\n", argv[0]);
    return 2;
  }
  const char *phase = argv[1];
  int writing = strcmp(phase, "write") == 0;
  int random_reads = strcmp(phase, "rand") == 0;
  if (!writing && !random_reads && strcmp(phase, "read") != 0) {
    fprintf(stderr, "unknown phase %s\n", phase);
    return 2;
  }
  uint64_t count = strtoull(argv[3], NULL, 0);
  int fd = open(argv[2], (writing ? O_WRONLY : O_RDONLY) | O_DIRECT);
  if (fd < 0) die("open");
  uint64_t size;
  struct stat st;
  if (ioctl(fd, BLKGETSIZE64, &size) != 0) {
    if (fstat(fd, &st) != 0) die("fstat");
    size = (uint64_t)st.st_size;
  }
  if (size < SEQ_BLOCK) {
    fprintf(stderr, "device too small\n");
    return 1;
  }
  unsigned block = random_reads ? RAND_BLOCK : SEQ_BLOCK;
  void *buffer;
  if (posix_memalign(&buffer, 4096, block) != 0) die("posix_memalign");
  for (unsigned i = 0; i < block; i++) ((unsigned char *)buffer)[i] = (unsigned char)(i * 7 + 1);
  uint64_t seq_blocks = size / SEQ_BLOCK;
  uint64_t rand_blocks = size / RAND_BLOCK;
  uint64_t state = 0x9E3779B97F4A7C15ull;

  printf("@B %s\n", phase);
  fflush(stdout);
  uint64_t start = now_ns();
  uint64_t bytes = 0;
  for (uint64_t i = 0; i < count; i++) {
    off_t offset = random_reads ? (off_t)(next_random(&state) % rand_blocks) * RAND_BLOCK
                                : (off_t)(i % seq_blocks) * SEQ_BLOCK;
    ssize_t n = writing ? pwrite(fd, buffer, block, offset) : pread(fd, buffer, block, offset);
    if (n != (ssize_t)block) die(writing ? "pwrite" : "pread");
    bytes += block;
  }
  if (writing && fdatasync(fd) != 0) die("fdatasync");
  uint64_t elapsed = now_ns() - start;
  printf("@E %s %llu %llu %llu\n", phase, (unsigned long long)count, (unsigned long long)bytes,
         (unsigned long long)elapsed);
  fflush(stdout);
  close(fd);
  return 0;
}
