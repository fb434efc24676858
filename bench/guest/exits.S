/*
 * exits.S: guest for the PIO/MMIO exit round-trip benchmark (bench/).
 *
 * Entered in 64-bit long mode at the ELF entry point, as the Linux 64-bit boot protocol enters a
 * kernel: flat 64-bit CS, identity-mapped paging covering the first 4 GiB, interrupts off,
 * RSI = boot_params (ignored). Linked at physical = virtual 0x200000 (exits.ld).
 *
 * Protocol with the VMM (one byte per OUT to COM1 0x3f8):
 *   'S' guest started  -> N x `out %al, $0x80`           (PIO write exits)
 *   'P' PIO phase done -> N x `movl %eax, (0xEFF00000)`  (MMIO write exits; ECAM bus 0xff)
 *   'M' MMIO phase done -> `out 0xfe -> 0x64` (i8042 pulse reset), then hlt forever
 *
 * N is the 8-byte little-endian value at symbol `iterations`, which immediately follows the
 * 16-byte ASCII magic "EXITBENCH-ITERS:" in the image. A driver patches N by searching the ELF
 * file bytes for the magic and overwriting the 8 bytes after it (bench/c_baseline.ts
 * setIterations). N = 0 is treated as "no iterations".
 */
	.set COM1, 0x3f8               /* 8250 UART data register */
	.set POST_PORT, 0x80           /* POST diagnostic port: a PIO exit no device answers */
	.set I8042_CMD, 0x64           /* i8042 command port */
	.set I8042_RESET, 0xfe         /* i8042 command: pulse reset line */
	.set ECAM_BASE, 0xE0000000     /* PCIe ECAM window (our layout) */
	.set ECAM_BUS_FF, ECAM_BASE + (0xff << 20) /* bus 0xff: no device, no memory slot */

	.code64
	.text
	.globl _start
	.type _start, @function
_start:
	cli
	mov $'S', %al
	mov $COM1, %dx
	out %al, %dx

	/* phase 1: PIO write exits */
	mov iterations(%rip), %rcx
	test %rcx, %rcx
	jz 2f
	xor %eax, %eax
1:	out %al, $POST_PORT
	dec %rcx
	jnz 1b
2:
	mov $'P', %al
	mov $COM1, %dx
	out %al, %dx

	/* phase 2: MMIO write exits */
	mov iterations(%rip), %rcx
	test %rcx, %rcx
	jz 4f
	mov $ECAM_BUS_FF, %edi         /* zero-extends: rdi = 0x00000000EFF00000 */
	xor %eax, %eax
3:	movl %eax, (%rdi)
	dec %rcx
	jnz 3b
4:
	mov $'M', %al
	mov $COM1, %dx
	out %al, %dx

	/* reset via the i8042; if the VMM ignores it, halt forever */
	mov $I8042_RESET, %al
	out %al, $I8042_CMD
5:	hlt
	jmp 5b
	.size _start, . - _start

	.data
	.balign 8
	.ascii "EXITBENCH-ITERS:"            /* 16-byte magic: the count follows it */
	.globl iterations
	.type iterations, @object
iterations:
	.quad 200000
	.size iterations, 8
