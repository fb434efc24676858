/* Prints a greeting on COM1, then asks the i8042 to pulse the reset line. */
.code64
.globl _start
_start:
	lea	msg(%rip), %rsi
	mov	$msg_len, %ecx
	mov	$0x3f8, %dx
1:	lodsb
	outb	%al, %dx
	loop	1b
	mov	$0xfe, %al
	outb	%al, $0x64
2:	hlt
	jmp	2b
msg:	.ascii "Hello from the guest\n"
msg_len = . - msg
