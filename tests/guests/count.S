/* Says it is running, then counts in the quadword at COUNTER forever: the host watches the
 * count to see whether the vCPU runs. */
.set COUNTER, 0x300000
.code64
.globl _start
_start:
	mov	$'R', %al
	mov	$0x3f8, %dx
	outb	%al, %dx
1:	incq	COUNTER
	jmp	1b
