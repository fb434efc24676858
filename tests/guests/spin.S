/* Says it is running, then spins forever: only the host can stop this guest. */
.code64
.globl _start
_start:
	mov	$'R', %al
	mov	$0x3f8, %dx
	outb	%al, %dx
1:	pause
	jmp	1b
