/*
 * kvm_exits.c: the C peer of the exit round-trip benchmark (bench/).
 *
 * Runs the guest bench/guest/exits.S (an ELF64 image linked at 0x200000) on /dev/kvm with the same
 * VM set-up and long-mode entry state as our TypeScript VMM, and times the guest's two phases:
 *   'S' .. 'P' on COM1: N PIO write exits to port 0x80
 *   'P' .. 'M' on COM1: N MMIO write exits to 0xEFF00000 (ECAM bus 0xff, no memory slot)
 * then stops when the guest writes 0xfe to port 0x64 (i8042 pulse reset).
 *
 * Usage: kvm_exits GUEST.elf
 * Output (stdout, one line): {"pio_exits":N,"mmio_exits":N,"pio_ns":T,"mmio_ns":T}
 * Errors: a message on stderr (with a register dump for guest failures) and exit status 1.
 * With KVM_EXITS_DUMP set in the environment, the vCPU state at the end is dumped to stderr.
 *
 * Only <linux/kvm.h> and libc: compile with `gcc -O2 -o kvm_exits kvm_exits.c`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- Machine layout (matches src/arch/x86_64 of the TypeScript VMM) ---- */
#define GUEST_MEM_SIZE (256ull << 20) /* 256 MiB of RAM at GPA 0, slot 0 */
#define HUGE_PAGE_SIZE (2ull << 20)   /* align the host mapping for THP */
#define TSS_ADDR 0xfffbd000ull        /* KVM_SET_TSS_ADDR: 3 pages below the 4 GiB BIOS area */
#define GDT_ADDR 0x500ull             /* crosvm x86_64 layout: boot GDT */
#define IDT_ADDR 0x520ull             /* crosvm x86_64 layout: empty boot IDT */
#define BOOT_STACK 0x8ff0ull          /* initial RSP */
#define PML4_ADDR 0x9000ull           /* page map level 4 */
#define PDPT_ADDR 0xa000ull           /* page directory pointer table */
#define PD_ADDR 0xb000ull             /* 4 page directories, 0xb000..0xefff: 4 GiB of 2 MiB pages */
#define ZERO_PAGE_ADDR 0x7000ull      /* boot_params ("zero page"); RSI at entry */

/* ---- Architectural constants (Intel SDM vol. 3A, 2.5 and 4.5) ---- */
#define X86_CR0_PE (1ull << 0)
#define X86_CR0_ET (1ull << 4)
#define X86_CR0_NE (1ull << 5)
#define X86_CR0_PG (1ull << 31)
#define X86_CR4_PAE (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define PTE_PRESENT (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_PS (1ull << 7) /* page-directory entry maps a 2 MiB page */

/* GDT selectors (index << 3), as crosvm's boot GDT: null, code, data, tss */
#define GDT_CODE 1
#define GDT_DATA 2
#define GDT_TSS 3

/* ---- The guest's protocol (bench/guest/exits.S) ---- */
#define COM1_PORT 0x3f8
#define POST_PORT 0x80
#define I8042_CMD_PORT 0x64
#define I8042_RESET 0xfe

/* ELF64 (System V gABI, "ELF-64 Object File Format" 1.5) */
#define EI_NIDENT 16
#define PT_LOAD 1
#define EM_X86_64 62

struct elf64_ehdr {
  uint8_t e_ident[EI_NIDENT];
  uint16_t e_type, e_machine;
  uint32_t e_version;
  uint64_t e_entry, e_phoff, e_shoff;
  uint32_t e_flags;
  uint16_t e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx;
};

struct elf64_phdr {
  uint32_t p_type, p_flags;
  uint64_t p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align;
};

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void fail(const char *msg) {
  fprintf(stderr, "kvm_exits: %s\n", msg);
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) die("clock_gettime");
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Loads every PT_LOAD segment at p_paddr; returns e_entry. */
static uint64_t load_elf(const char *path, uint8_t *mem, uint64_t mem_size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(path);
  struct stat st;
  if (fstat(fd, &st) != 0) die("fstat");
  size_t size = (size_t)st.st_size;
  uint8_t *file = malloc(size ? size : 1);
  if (!file) die("malloc");
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, file + got, size - got);
    if (n < 0) die("read");
    if (n == 0) break;
    got += (size_t)n;
  }
  close(fd);
  if (got < sizeof(struct elf64_ehdr)) fail("ELF file too short");

  struct elf64_ehdr eh;
  memcpy(&eh, file, sizeof eh);
  if (memcmp(eh.e_ident, "\177ELF", 4) != 0 || eh.e_ident[4] != 2 /* ELFCLASS64 */ ||
      eh.e_ident[5] != 1 /* ELFDATA2LSB */ || eh.e_machine != EM_X86_64)
    fail("not a little-endian x86_64 ELF64 file");
  if (eh.e_phentsize != sizeof(struct elf64_phdr)) fail("unexpected e_phentsize");
  if (eh.e_phoff > got || (uint64_t)eh.e_phnum * sizeof(struct elf64_phdr) > got - eh.e_phoff)
    fail("program headers outside the file");

  int loaded = 0;
  for (unsigned i = 0; i < eh.e_phnum; i++) {
    struct elf64_phdr ph;
    memcpy(&ph, file + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type != PT_LOAD) continue;
    if (ph.p_filesz > ph.p_memsz || ph.p_offset > got || ph.p_filesz > got - ph.p_offset)
      fail("PT_LOAD segment outside the file");
    if (ph.p_paddr > mem_size || ph.p_memsz > mem_size - ph.p_paddr)
      fail("PT_LOAD segment outside guest memory");
    memcpy(mem + ph.p_paddr, file + ph.p_offset, ph.p_filesz);
    memset(mem + ph.p_paddr + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
    loaded++;
  }
  free(file);
  if (!loaded) fail("no PT_LOAD segment");
  return eh.e_entry;
}

/* A GDT descriptor from flags (type/S/DPL/P in bits 0-7, AVL/L/D/G in bits 12-15), base, limit. */
static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
  return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
         ((uint64_t)(limit & 0x000f0000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) |
         (uint64_t)(limit & 0x0000ffffu);
}

/* The kvm_segment that a GDT descriptor would load (what the CPU caches after a selector load). */
static struct kvm_segment segment_from_gdt(uint64_t e, uint16_t index) {
  struct kvm_segment s;
  memset(&s, 0, sizeof s);
  s.base = ((e >> 16) & 0xffffff) | (((e >> 56) & 0xff) << 24);
  uint32_t limit = (uint32_t)((e & 0xffff) | (((e >> 48) & 0xf) << 16));
  s.g = (e >> 55) & 1;
  s.limit = s.g ? (limit << 12) | 0xfff : limit;
  s.selector = (uint16_t)(index * 8);
  s.type = (e >> 40) & 0xf;
  s.s = (e >> 44) & 1;
  s.dpl = (e >> 45) & 3;
  s.present = (e >> 47) & 1;
  s.avl = (e >> 52) & 1;
  s.l = (e >> 53) & 1;
  s.db = (e >> 54) & 1;
  s.unusable = !s.present;
  return s;
}

static void setup_long_mode(uint8_t *mem, struct kvm_sregs *sregs) {
  /* GDT: null; code 0x08 (0xa09b: P, DPL0, S, type 0xb exec/read/accessed, L, G);
   *      data 0x10 (0xc093: P, DPL0, S, type 3 read/write/accessed, D/B, G);
   *      tss 0x18 (0x808b: P, type 0xb busy 64-bit TSS, G). */
  uint64_t gdt[4] = {
      gdt_entry(0, 0, 0),
      gdt_entry(0xa09b, 0, 0xfffff),
      gdt_entry(0xc093, 0, 0xfffff),
      gdt_entry(0x808b, 0, 0xfffff),
  };
  memcpy(mem + GDT_ADDR, gdt, sizeof gdt);
  memset(mem + IDT_ADDR, 0, 8);

  struct kvm_segment code = segment_from_gdt(gdt[GDT_CODE], GDT_CODE);
  struct kvm_segment data = segment_from_gdt(gdt[GDT_DATA], GDT_DATA);
  struct kvm_segment tss = segment_from_gdt(gdt[GDT_TSS], GDT_TSS);

  sregs->gdt.base = GDT_ADDR;
  sregs->gdt.limit = sizeof gdt - 1;
  sregs->idt.base = IDT_ADDR;
  sregs->idt.limit = 7;
  sregs->cs = code;
  sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
  sregs->tr = tss;

  /* Identity map 4 GiB with 2 MiB pages: PML4[0] -> PDPT, PDPT[0..3] -> PD 0..3. */
  uint64_t *pml4 = (uint64_t *)(mem + PML4_ADDR);
  uint64_t *pdpt = (uint64_t *)(mem + PDPT_ADDR);
  uint64_t *pd = (uint64_t *)(mem + PD_ADDR);
  memset(pml4, 0, 4096);
  memset(pdpt, 0, 4096);
  pml4[0] = PDPT_ADDR | PTE_PRESENT | PTE_RW;
  for (uint64_t i = 0; i < 4; i++) pdpt[i] = (PD_ADDR + i * 4096) | PTE_PRESENT | PTE_RW;
  for (uint64_t i = 0; i < 4 * 512; i++) pd[i] = (i << 21) | PTE_PRESENT | PTE_RW | PTE_PS;

  sregs->cr3 = PML4_ADDR;
  sregs->cr4 = X86_CR4_PAE;
  sregs->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
  sregs->efer = EFER_LME | EFER_LMA;
}

static void dump_segment(const char *name, const struct kvm_segment *s) {
  fprintf(stderr,
          "  %-4s sel=%#06x base=0x%016llx limit=%#010x type=%#x p=%u dpl=%u db=%u s=%u l=%u g=%u "
          "avl=%u unusable=%u\n",
          name, s->selector, (unsigned long long)s->base, s->limit, s->type, s->present, s->dpl,
          s->db, s->s, s->l, s->g, s->avl, s->unusable);
}

static void dump_vcpu(int vcpu) {
  struct kvm_regs r;
  struct kvm_sregs s;
  if (ioctl(vcpu, KVM_GET_REGS, &r) == 0) {
    fprintf(stderr,
            "  rip=%#llx rsp=%#llx rflags=%#llx rax=%#llx rcx=%#llx rdx=%#llx rsi=%#llx "
            "rdi=%#llx\n",
            (unsigned long long)r.rip, (unsigned long long)r.rsp, (unsigned long long)r.rflags,
            (unsigned long long)r.rax, (unsigned long long)r.rcx, (unsigned long long)r.rdx,
            (unsigned long long)r.rsi, (unsigned long long)r.rdi);
  }
  if (ioctl(vcpu, KVM_GET_SREGS, &s) == 0) {
    fprintf(stderr, "  cr0=%#llx cr2=%#llx cr3=%#llx cr4=%#llx efer=%#llx apic_base=%#llx\n",
            (unsigned long long)s.cr0, (unsigned long long)s.cr2, (unsigned long long)s.cr3,
            (unsigned long long)s.cr4, (unsigned long long)s.efer,
            (unsigned long long)s.apic_base);
    fprintf(stderr, "  gdt base=%#llx limit=%#x idt base=%#llx limit=%#x\n",
            (unsigned long long)s.gdt.base, s.gdt.limit, (unsigned long long)s.idt.base,
            s.idt.limit);
    dump_segment("cs", &s.cs);
    dump_segment("ds", &s.ds);
    dump_segment("ss", &s.ss);
    dump_segment("tr", &s.tr);
  }
}

static void guest_failure(int vcpu, struct kvm_run *run, const char *what) {
  fprintf(stderr, "kvm_exits: guest failed: %s (exit_reason %u)\n", what, run->exit_reason);
  if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
    fprintf(stderr, "  hardware_entry_failure_reason=%#llx\n",
            (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
  if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
    fprintf(stderr, "  internal.suberror=%u ndata=%u", run->internal.suberror, run->internal.ndata);
    for (unsigned i = 0; i < run->internal.ndata && i < 16; i++)
      fprintf(stderr, " %#llx", (unsigned long long)run->internal.data[i]);
    fputc('\n', stderr);
  }
  dump_vcpu(vcpu);
  exit(1);
}

static void set_cpuid(int kvm, int vcpu) {
  for (unsigned nent = 64; nent <= 4096; nent *= 2) {
    size_t size = sizeof(struct kvm_cpuid2) + nent * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *cpuid = calloc(1, size);
    if (!cpuid) die("calloc");
    cpuid->nent = nent;
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) == 0) {
      if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) != 0) die("KVM_SET_CPUID2");
      free(cpuid);
      return;
    }
    int err = errno;
    free(cpuid);
    if (err != E2BIG) {
      errno = err;
      die("KVM_GET_SUPPORTED_CPUID");
    }
  }
  fail("KVM_GET_SUPPORTED_CPUID: table too large");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s GUEST.elf\n", argv[0]);
    return 1;
  }

  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("/dev/kvm");
  if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) fail("unexpected KVM API version");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("KVM_CREATE_VM");
  if (ioctl(vm, KVM_SET_TSS_ADDR, (unsigned long)TSS_ADDR) != 0) die("KVM_SET_TSS_ADDR");
  if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) != 0) die("KVM_CREATE_IRQCHIP");
  struct kvm_pit_config pit;
  memset(&pit, 0, sizeof pit);
  if (ioctl(vm, KVM_CREATE_PIT2, &pit) != 0) die("KVM_CREATE_PIT2");

  /* Guest RAM: anonymous, 2 MiB aligned, transparent huge pages. */
  size_t reserve = GUEST_MEM_SIZE + HUGE_PAGE_SIZE;
  uint8_t *raw = mmap(NULL, reserve, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) die("mmap guest memory");
  uintptr_t huge_mask = (uintptr_t)(HUGE_PAGE_SIZE - 1);
  uint8_t *mem = (uint8_t *)(((uintptr_t)raw + huge_mask) & ~huge_mask);
  if (madvise(mem, GUEST_MEM_SIZE, MADV_HUGEPAGE) != 0) die("madvise(MADV_HUGEPAGE)");
  struct kvm_userspace_memory_region region = {
      .slot = 0,
      .flags = 0,
      .guest_phys_addr = 0,
      .memory_size = GUEST_MEM_SIZE,
      .userspace_addr = (uint64_t)(uintptr_t)mem,
  };
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) != 0) die("KVM_SET_USER_MEMORY_REGION");

  uint64_t entry = load_elf(argv[1], mem, GUEST_MEM_SIZE);

  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("KVM_CREATE_VCPU");
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size < (int)sizeof(struct kvm_run)) die("KVM_GET_VCPU_MMAP_SIZE");
  struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");

  set_cpuid(kvm, vcpu);

  struct kvm_sregs sregs;
  if (ioctl(vcpu, KVM_GET_SREGS, &sregs) != 0) die("KVM_GET_SREGS");
  setup_long_mode(mem, &sregs);
  if (ioctl(vcpu, KVM_SET_SREGS, &sregs) != 0) die("KVM_SET_SREGS");

  struct kvm_regs regs;
  memset(&regs, 0, sizeof regs);
  regs.rip = entry;
  regs.rsp = BOOT_STACK;
  regs.rbp = BOOT_STACK;
  regs.rflags = 2; /* bit 1 is reserved, always 1; IF = 0 */
  regs.rsi = ZERO_PAGE_ADDR;
  if (ioctl(vcpu, KVM_SET_REGS, &regs) != 0) die("KVM_SET_REGS");

  uint64_t pio_exits = 0, mmio_exits = 0;
  uint64_t t_start = 0, t_pio = 0, t_mmio = 0;
  int seen_start = 0, seen_pio = 0, seen_mmio = 0;

  for (;;) {
    if (ioctl(vcpu, KVM_RUN, 0) != 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      die("KVM_RUN");
    }
    switch (run->exit_reason) {
    case KVM_EXIT_IO: {
      uint8_t *data = (uint8_t *)run + run->io.data_offset;
      if (run->io.direction == KVM_EXIT_IO_IN) {
        memset(data, 0xff, (size_t)run->io.size * run->io.count); /* open bus */
        break;
      }
      if (run->io.port == POST_PORT) {
        pio_exits++;
      } else if (run->io.port == COM1_PORT) {
        for (uint32_t i = 0; i < run->io.count; i++) {
          uint8_t byte = data[i * run->io.size];
          uint64_t t = now_ns();
          if (byte == 'S' && !seen_start) {
            t_start = t;
            seen_start = 1;
          } else if (byte == 'P' && !seen_pio) {
            t_pio = t;
            seen_pio = 1;
          } else if (byte == 'M' && !seen_mmio) {
            t_mmio = t;
            seen_mmio = 1;
          }
        }
      } else if (run->io.port == I8042_CMD_PORT && data[0] == I8042_RESET) {
        if (!seen_start || !seen_pio || !seen_mmio) fail("guest reset before writing all markers");
        if (getenv("KVM_EXITS_DUMP")) {
          fprintf(stderr, "kvm_exits: vCPU state at the guest's reset request:\n");
          dump_vcpu(vcpu);
        }
        printf("{\"pio_exits\":%llu,\"mmio_exits\":%llu,\"pio_ns\":%llu,\"mmio_ns\":%llu}\n",
               (unsigned long long)pio_exits, (unsigned long long)mmio_exits,
               (unsigned long long)(t_pio - t_start), (unsigned long long)(t_mmio - t_pio));
        return 0;
      }
      break;
    }
    case KVM_EXIT_MMIO:
      if (!run->mmio.is_write) memset(run->mmio.data, 0xff, sizeof run->mmio.data);
      mmio_exits++;
      break;
    case KVM_EXIT_INTR:
      break;
    case KVM_EXIT_HLT:
      guest_failure(vcpu, run, "HLT");
      break;
    case KVM_EXIT_SHUTDOWN:
      guest_failure(vcpu, run, "SHUTDOWN (triple fault)");
      break;
    case KVM_EXIT_FAIL_ENTRY:
      guest_failure(vcpu, run, "FAIL_ENTRY");
      break;
    case KVM_EXIT_INTERNAL_ERROR:
      guest_failure(vcpu, run, "INTERNAL_ERROR");
      break;
    default:
      guest_failure(vcpu, run, "unexpected exit");
    }
  }
}
