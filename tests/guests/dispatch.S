/*
 * Exercises PIO and MMIO dispatch with data returned to the guest. Results go to
 * RESULTS (0x300000) for the host to check after the VM ends:
 *   +0  PCI 00:00.0 dword 0 read through 0xCF8/0xCFC (config mechanism #1)
 *   +4  the same dword read over MMIO from the ECAM window (0xE0000000)
 *   +8  CONFIG_ADDRESS read back from 0xCF8
 *   +12 CMOS status register D (0x0D)
 *   +16 ECAM dword 0 of absent device 00:1f.0
 *   +20 a byte read from unclaimed port 0x300
 *   +24 COM1 scratch register after writing 0x5a to it
 *   +32 the u64 the host left at HOST_VALUE (0x300100), copied by the guest
 */
.code64
RESULTS = 0x300000
HOST_VALUE = 0x300100
.globl _start
_start:
	mov	$RESULTS, %edi
	mov	$0x80000000, %eax
	mov	$0xcf8, %dx
	outl	%eax, %dx
	mov	$0xcfc, %dx
	inl	%dx, %eax
	mov	%eax, 0(%rdi)

	mov	$0xe0000000, %esi
	mov	(%rsi), %eax
	mov	%eax, 4(%rdi)

	mov	$0xcf8, %dx
	inl	%dx, %eax
	mov	%eax, 8(%rdi)

	mov	$0x0d, %al
	outb	%al, $0x70
	inb	$0x71, %al
	movzbl	%al, %eax
	mov	%eax, 12(%rdi)

	mov	$(0xe0000000 + (0x1f << 15)), %esi
	mov	(%rsi), %eax
	mov	%eax, 16(%rdi)

	mov	$0x300, %dx
	inb	%dx, %al
	movzbl	%al, %eax
	mov	%eax, 20(%rdi)

	mov	$0x3ff, %dx
	mov	$0x5a, %al
	outb	%al, %dx
	xor	%eax, %eax
	inb	%dx, %al
	mov	%eax, 24(%rdi)

	mov	HOST_VALUE, %rax
	mov	%rax, 32(%rdi)

	mov	$'D', %al
	mov	$0x3f8, %dx
	outb	%al, %dx
	mov	$0xfe, %al
	outb	%al, $0x64
1:	hlt
	jmp	1b
