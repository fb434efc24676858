/*
 * A minimal virtio-pci driver for the virtio-rng at 00:01.0 (OASIS virtio 1.2 §3.1.1, §4.1):
 * memory decoding on through ECAM, MSI-X vector 1 -> LAPIC vector 0x40, reset, ACKNOWLEDGE |
 * DRIVER, VERSION_1, FEATURES_OK, queue 0 with 8 entries on vector 1, DRIVER_OK, one request for
 * 64 bytes, a doorbell (a KVM ioeventfd: no exit), then HLT until the MSI arrives. Prints "I" from
 * the interrupt handler, then "OK" when the used ring holds the 64 bytes ("F" on any failure),
 * and resets through the i8042.
 */
ECAM_DEV1 = 0xe0008000		/* ECAM: bus 0, device 1, function 0 */
LAPIC = 0xfee00000
VECTOR = 0x40
DESC = 0x300000
AVAIL = 0x301000
USED = 0x302000
BUFFER = 0x310000

.code64
.globl _start
_start:
	mov	$0x3f8, %dx
	/* An interrupt gate for VECTOR. */
	lea	idt+VECTOR*16(%rip), %rdi
	lea	handler(%rip), %rax
	mov	%ax, (%rdi)
	mov	%cs, 2(%rdi)
	movw	$0x8e00, 4(%rdi)	/* present, DPL 0, 64-bit interrupt gate */
	shr	$16, %rax
	mov	%ax, 6(%rdi)
	shr	$16, %rax
	mov	%eax, 8(%rdi)
	lidt	idtr(%rip)
	mov	$LAPIC, %edi
	movl	$0x1ff, 0xf0(%rdi)	/* spurious vector register: APIC enabled */

	mov	$ECAM_DEV1, %esi
	movw	$0x6, 0x04(%rsi)	/* command: memory space, bus master */
	mov	0x10(%rsi), %ebx	/* BAR 0, as the VMM placed it */
	and	$0xfffffff0, %ebx
	movw	$0x8000, 0x42(%rsi)	/* MSI-X capability at 0x40: enable */
	movl	$LAPIC, 0x4010(%rbx)	/* table entry 1: APIC ID 0, fixed, VECTOR */
	movl	$0, 0x4014(%rbx)
	movl	$VECTOR, 0x4018(%rbx)
	movl	$0, 0x401c(%rbx)	/* unmasked */

	movb	$0, 0x14(%rbx)		/* device_status: reset */
1:	cmpb	$0, 0x14(%rbx)
	jne	1b
	movb	$3, 0x14(%rbx)		/* ACKNOWLEDGE | DRIVER */
	movl	$1, 0x08(%rbx)		/* driver_feature_select = 1 */
	movl	$1, 0x0c(%rbx)		/* bit 32: VIRTIO_F_VERSION_1 */
	movb	$0xb, 0x14(%rbx)	/* | FEATURES_OK */
	testb	$8, 0x14(%rbx)
	jz	fail
	movw	$0, 0x16(%rbx)		/* queue_select */
	movw	$8, 0x18(%rbx)		/* queue_size */
	movl	$DESC, 0x20(%rbx)
	movl	$0, 0x24(%rbx)
	movl	$AVAIL, 0x28(%rbx)
	movl	$0, 0x2c(%rbx)
	movl	$USED, 0x30(%rbx)
	movl	$0, 0x34(%rbx)
	movw	$1, 0x1a(%rbx)		/* queue_msix_vector */
	cmpw	$1, 0x1a(%rbx)
	jne	fail
	movw	$1, 0x1c(%rbx)		/* queue_enable */
	movb	$0xf, 0x14(%rbx)	/* | DRIVER_OK */

	movq	$BUFFER, DESC		/* descriptor 0: 64 device-writable bytes */
	movl	$64, DESC+8
	movw	$2, DESC+12
	movw	$0, AVAIL+4		/* avail.ring[0] = 0 */
	movw	$1, AVAIL+2		/* avail.idx = 1 */
	movw	$0, 0x3000(%rbx)	/* the doorbell of queue 0 */
2:	cli
	cmpb	$0, got_irq(%rip)
	jne	3f
	sti
	hlt
	jmp	2b
3:	cmpw	$1, USED+2		/* used.idx */
	jne	fail
	cmpl	$64, USED+8		/* used.ring[0].len */
	jne	fail
	mov	$'O', %al
	outb	%al, %dx
	mov	$'K', %al
	outb	%al, %dx
	jmp	done
fail:	mov	$'F', %al
	outb	%al, %dx
done:	mov	$'\n', %al
	outb	%al, %dx
	mov	$0xfe, %al
	outb	%al, $0x64
4:	hlt
	jmp	4b

handler:
	push	%rax
	push	%rdx
	push	%rdi
	movb	$1, got_irq(%rip)
	mov	$'I', %al
	mov	$0x3f8, %dx
	outb	%al, %dx
	mov	$LAPIC, %edi
	movl	$0, 0xb0(%rdi)		/* EOI */
	pop	%rdi
	pop	%rdx
	pop	%rax
	iretq

got_irq: .byte 0
	.balign 16
idt:	.space (VECTOR + 1) * 16
idtr:	.word (VECTOR + 1) * 16 - 1
	.quad idt
