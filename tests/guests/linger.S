/* Says it is up, runs a while (a countdown of LINGER_LOOPS), says it is done, then asks the
 * i8042 to pulse the reset line: a guest that ends by itself, for tests that run many VMs. */
.set LINGER_LOOPS, 2000000
.code64
.globl _start
_start:
	mov	$0x3f8, %dx
	mov	$'U', %al
	outb	%al, %dx
	mov	$LINGER_LOOPS, %ecx
1:	dec	%ecx
	jnz	1b
	mov	$'D', %al
	outb	%al, %dx
	mov	$'\n', %al
	outb	%al, %dx
	mov	$0xfe, %al
	outb	%al, $0x64
2:	hlt
	jmp	2b
