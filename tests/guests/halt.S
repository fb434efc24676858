/* Says it is running, then halts with interrupts off: the vCPU sleeps in the kernel forever. */
.code64
.globl _start
_start:
	mov	$'H', %al
	mov	$0x3f8, %dx
	outb	%al, %dx
	cli
1:	hlt
	jmp	1b
