/*
 * Counts the interrupts on VECTOR, for a bare vCPU with the in-kernel irqchip (linked with
 * flat.ld, entered in real mode at 0x1000 with CS = 0). It first enters "unreal" mode (DS
 * keeps a 4 GiB limit after a round trip through protected mode) to reach the local APIC's
 * EOI register, installs its handler in the real-mode IVT, then loops: STI; HLT until an
 * interrupt, and report the count so far with OUT to REPORT_PORT (one exit per interrupt).
 * The handler counts the interrupt and EOIs it at the local APIC; for a level-triggered
 * IOAPIC pin that EOI is what lowers the line and fires a resample irqfd.
 */
VECTOR = 0x3a
REPORT_PORT = 0x10
LAPIC_EOI = 0xfee000b0
STACK_TOP = 0x8000

.code16
.globl _start
_start:
	cli
	lgdtl	gdt_pointer
	mov	%cr0, %eax
	or	$1, %eax		/* CR0.PE */
	mov	%eax, %cr0
	mov	$FLAT_DATA, %cx
	mov	%cx, %ds		/* DS cache: base 0, limit 4 GiB */
	and	$~1, %eax
	mov	%eax, %cr0		/* back to real mode; DS keeps its limit */
	xor	%ax, %ax
	mov	%ax, %ds
	mov	%ax, %ss
	mov	$STACK_TOP, %sp
	movw	$handler, VECTOR * 4	/* IVT entry: offset, then segment 0 */
	movw	$0, VECTOR * 4 + 2
	xor	%bx, %bx		/* interrupts taken */
1:	sti
	hlt
	cli
	mov	%bl, %al
	out	%al, $REPORT_PORT
	jmp	1b

handler:
	inc	%bx
	addr32 movl	$0, LAPIC_EOI
	iret

.balign 8
gdt:
	.quad	0
FLAT_DATA = . - gdt
	.quad	0x008f92000000ffff	/* data, read/write, base 0, limit 0xfffff pages */
gdt_end:
gdt_pointer:
	.word	gdt_end - gdt - 1
	.long	gdt
