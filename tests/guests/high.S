/* Linked like vmlinux (see high.ld): prints "vmlinux-layout ok" with RIP-relative data, then resets. */
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
msg:	.ascii "vmlinux-layout ok\n"
msg_len = . - msg
