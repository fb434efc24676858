/*
 * The guest half of the block benchmark (bench/blk.ts): runs one phase on a block device with
 * O_DIRECT and prints two short console lines around it, which the host timestamps:
 *
 *   @B <phase>                           before the first request
 *   @E <phase> <ops> <bytes> <guest ns>  after the last one completed
 *
 * Phases at queue depth 1 (one request in flight, pread/pwrite):
 *   write DEV MIB   sequential 1 MiB pwrite from offset 0, wrapping at the end of DEV
 *   read  DEV MIB   sequential 1 MiB pread, the same way
 *   rand  DEV OPS   4 KiB pread at uniformly random 4 KiB-aligned offsets (fixed seed)
 * and at queue depth N (Linux native AIO, `io_submit(2)`, as fio's libaio engine: N requests in
 * flight, each completion replaced by the next request at once); the phase is named with its
 * depth (`randread8`):
 *   randread  DEV OPS N    4 KiB reads at random offsets, as `rand`
 *   randwrite DEV OPS N    4 KiB writes at random offsets, then fdatasync
 *   seqread   DEV MIB N    1 MiB reads in order, as `read`
 *   seqwrite  DEV MIB N    1 MiB writes in order, then fdatasync
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
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <sys/syscall.h>
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

/* The offset of request `i` of a phase: random 4 KiB blocks, or 1 MiB blocks in order. */
static off_t offset_of(int random, uint64_t i, uint64_t blocks, unsigned block, uint64_t *state) {
  uint64_t n = random ? next_random(state) % blocks : i % blocks;
  return (off_t)n * block;
}

/*
 * A phase at queue depth `depth` through native AIO: `count` requests of `block` bytes, each
 * into (or from) its own buffer, `depth` kept in flight. Returns 0, or exits on an error.
 */
static void run_aio(int fd, int writing, int random, uint64_t count, unsigned block,
                    uint64_t blocks, unsigned depth, unsigned char *buffers, uint64_t *state) {
  aio_context_t ctx = 0;
  if (syscall(SYS_io_setup, depth, &ctx) != 0) die("io_setup");
  struct iocb *iocbs = calloc(depth, sizeof(struct iocb));
  struct io_event *events = calloc(depth, sizeof(struct io_event));
  if (!iocbs || !events) die("calloc");
  uint64_t issued = 0, completed = 0;
  unsigned free_count = depth;
  unsigned *free_slots = calloc(depth, sizeof(unsigned));
  if (!free_slots) die("calloc");
  for (unsigned i = 0; i < depth; i++) free_slots[i] = depth - 1 - i;
  while (completed < count) {
    struct iocb *batch[depth];
    unsigned n = 0;
    while (free_count > 0 && issued < count) {
      unsigned slot = free_slots[--free_count];
      struct iocb *cb = &iocbs[slot];
      memset(cb, 0, sizeof(*cb));
      cb->aio_data = slot;
      cb->aio_fildes = (uint32_t)fd;
      cb->aio_lio_opcode = writing ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
      cb->aio_buf = (uint64_t)(uintptr_t)(buffers + (size_t)slot * block);
      cb->aio_nbytes = block;
      cb->aio_offset = offset_of(random, issued, blocks, block, state);
      batch[n++] = cb;
      issued++;
    }
    if (n > 0 && syscall(SYS_io_submit, ctx, (long)n, batch) != (long)n) die("io_submit");
    long got = syscall(SYS_io_getevents, ctx, 1L, (long)depth, events, NULL);
    if (got < 1) die("io_getevents");
    for (long i = 0; i < got; i++) {
      if (events[i].res != (int64_t)block) {
        fprintf(stderr, "request failed: %lld\n", (long long)events[i].res);
        exit(1);
      }
      free_slots[free_count++] = (unsigned)events[i].data;
      completed++;
    }
  }
  syscall(SYS_io_destroy, ctx);
  free(iocbs);
  free(events);
  free(free_slots);
}

int main(int argc, char **argv) {
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: %s write|read|rand DEV MIB|OPS\n"
                    "       %s randread|randwrite|seqread|seqwrite DEV OPS|MIB DEPTH\n",
            argv[0], argv[0]);
    return 2;
  }
  const char *kind = argv[1];
  unsigned depth = argc == 5 ? (unsigned)strtoul(argv[4], NULL, 0) : 0;
  int writing, random_offsets;
  if (depth == 0) {
    writing = strcmp(kind, "write") == 0;
    random_offsets = strcmp(kind, "rand") == 0;
    if (!writing && !random_offsets && strcmp(kind, "read") != 0) {
      fprintf(stderr, "unknown phase %s\n", kind);
      return 2;
    }
  } else {
    writing = strcmp(kind, "randwrite") == 0 || strcmp(kind, "seqwrite") == 0;
    random_offsets = strncmp(kind, "rand", 4) == 0; /* random offsets, 4 KiB */
    if (!writing && strcmp(kind, "randread") != 0 && strcmp(kind, "seqread") != 0) {
      fprintf(stderr, "unknown phase %s\n", kind);
      return 2;
    }
  }
  char phase[32];
  snprintf(phase, sizeof(phase), depth ? "%s%u" : "%s", kind, depth);
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
  unsigned block = random_offsets ? RAND_BLOCK : SEQ_BLOCK;
  unsigned buffers = depth ? depth : 1;
  void *buffer;
  if (posix_memalign(&buffer, 4096, (size_t)block * buffers) != 0) die("posix_memalign");
  for (size_t i = 0; i < (size_t)block * buffers; i++) {
    ((unsigned char *)buffer)[i] = (unsigned char)(i * 7 + 1);
  }
  uint64_t seq_blocks = size / SEQ_BLOCK;
  uint64_t rand_blocks = size / RAND_BLOCK;
  uint64_t state = 0x9E3779B97F4A7C15ull;

  printf("@B %s\n", phase);
  fflush(stdout);
  uint64_t start = now_ns();
  uint64_t blocks = random_offsets ? rand_blocks : seq_blocks;
  if (depth) {
    run_aio(fd, writing, random_offsets, count, block, blocks, depth, buffer, &state);
  } else {
    for (uint64_t i = 0; i < count; i++) {
      off_t offset = offset_of(random_offsets, i, blocks, block, &state);
      ssize_t n = writing ? pwrite(fd, buffer, block, offset) : pread(fd, buffer, block, offset);
      if (n != (ssize_t)block) die(writing ? "pwrite" : "pread");
    }
  }
  uint64_t bytes = count * block;
  if (writing && fdatasync(fd) != 0) die("fdatasync");
  uint64_t elapsed = now_ns() - start;
  printf("@E %s %llu %llu %llu\n", phase, (unsigned long long)count, (unsigned long long)bytes,
         (unsigned long long)elapsed);
  fflush(stdout);
  close(fd);
  return 0;
}
