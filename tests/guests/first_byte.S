/*
 * The trivial guest of the start-up benchmark: writes one byte to COM1, then triple-faults
 * (an empty IDT and a ud2: #UD -> #GP -> #DF -> shutdown). Every instruction encodes the same in
 * 32-bit protected mode and in 64-bit mode, so one ELF runs both under our VMM (entered at
 * e_entry in long mode) and under QEMU microvm (entered at the PVH note's address in 32-bit
 * mode, paging off): QEMU loads an ELF kernel only with that note.
 */
.globl _start
_start:
	mov	$'K', %al
	mov	$0x3f8, %dx
	outb	%al, %dx
	mov	$empty_idt, %eax
	lidt	(%rax)
	ud2
1:	jmp	1b
empty_idt:
	.word 0
	.quad 0

/* <xen/interface/elfnote.h>: XEN_ELFNOTE_PHYS32_ENTRY, the PVH entry point QEMU looks for. */
XEN_ELFNOTE_PHYS32_ENTRY = 18
.section .note.pvh, "a"
.balign 4
	.long	4f - 3f		/* namesz */
	.long	6f - 5f		/* descsz */
	.long	XEN_ELFNOTE_PHYS32_ENTRY
3:	.asciz	"Xen"
4:	.balign 4
5:	.long	_start
6:	.balign 4
