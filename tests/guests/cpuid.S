/*
 * CPUID on demand, for a bare vCPU without an in-kernel irqchip (linked with flat.ld): the
 * host puts the leaf in EAX and the subleaf in ECX, runs the vCPU, and reads EAX..EDX at the
 * HLT exit that follows; running it again does the next query.
 */
.code16
.globl _start
_start:
1:	cpuid
	hlt
	jmp	1b
