/* Loads an empty IDT and raises an exception: #UD -> #GP -> #DF -> triple fault (shutdown). */
.code64
.globl _start
_start:
	mov	$'T', %al
	mov	$0x3f8, %dx
	outb	%al, %dx
	lidt	empty_idt(%rip)
	ud2
1:	jmp	1b
empty_idt:
	.word 0
	.quad 0
