/*
 * Echoes what arrives on COM1 back to COM1, polling the line status register,
 * until it has echoed a newline; then resets the machine.
 */
COM1 = 0x3f8
LSR = COM1 + 5
LSR_DATA_READY = 0x01
.code64
.globl _start
_start:
	mov	$'>', %al
	mov	$COM1, %dx
	outb	%al, %dx
1:	mov	$LSR, %dx
	inb	%dx, %al
	test	$LSR_DATA_READY, %al
	jz	1b
	mov	$COM1, %dx
	inb	%dx, %al
	outb	%al, %dx
	cmp	$'\n', %al
	jne	1b
	mov	$0xfe, %al
	outb	%al, $0x64
2:	hlt
	jmp	2b
