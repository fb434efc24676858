/* Says it is running, then counts in the quadword at COUNTER forever: only the host can stop
 * this guest, and the count shows the host whether its vCPU runs. */
.set COUNTER, 0x300000
.code64
.globl _start
_start:
	mov	$'R', %al
	mov	$0x3f8, %dx
	outb	%al, %dx
1:	incq	COUNTER
	jmp	1b
