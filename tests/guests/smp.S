/*
 * Two vCPUs at once. The boot vCPU starts the AP the way Linux does (INIT, then
 * SIPI with vector 0x10 through the local APIC's ICR), then spins until the AP has
 * answered through memory. The AP, in real mode at 0x10000, prints its APIC ID from
 * CPUID, reads the value the host left at MAILBOX, stores it plus one at
 * MAILBOX+8, and halts. The boot vCPU then stores DONE_VALUE at MAILBOX+16 and
 * resets the machine. Serial output: "A" then the AP's APIC ID digit, then "B".
 */
MAILBOX = 0x11000
DONE_VALUE = 0x5678
APIC_ICR_LOW = 0xfee00300
APIC_ICR_HIGH = 0xfee00310
ICR_INIT_ASSERT = 0x4500
ICR_STARTUP = 0x4600
SIPI_VECTOR = 0x10

.code64
.globl _start
_start:
	mov	$APIC_ICR_HIGH, %esi
	movl	$(1 << 24), (%rsi)
	mov	$APIC_ICR_LOW, %esi
	movl	$ICR_INIT_ASSERT, (%rsi)
	mov	$APIC_ICR_HIGH, %esi
	movl	$(1 << 24), (%rsi)
	mov	$APIC_ICR_LOW, %esi
	movl	$(ICR_STARTUP | SIPI_VECTOR), (%rsi)

	mov	MAILBOX, %eax
	inc	%eax
1:	pause
	cmp	MAILBOX + 8, %eax
	jne	1b

	mov	$'B', %al
	mov	$0x3f8, %dx
	outb	%al, %dx
	movl	$DONE_VALUE, MAILBOX + 16
	mov	$0xfe, %al
	outb	%al, $0x64
2:	hlt
	jmp	2b

.section .trampoline, "ax"
.code16
ap_start:
	mov	$0x3f8, %dx
	mov	$'A', %al
	outb	%al, %dx
	mov	$1, %eax
	cpuid
	mov	$0x3f8, %dx
	shr	$24, %ebx
	mov	%bl, %al
	add	$'0', %al
	outb	%al, %dx
	mov	$(MAILBOX >> 4), %ax
	mov	%ax, %ds
	mov	0, %eax
	inc	%eax
	mov	%eax, 8
	cli
3:	hlt
	jmp	3b
