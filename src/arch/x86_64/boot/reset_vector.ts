/**
 * A stand-in for the firmware at the x86 reset vector, F000:FFF0: ten bytes of real-mode code
 * that reset the VM through the ACPI reset register.
 *
 * A guest jumps there to reboot "through the BIOS", and Linux does exactly that on our
 * hardware-reduced ACPI machine: with the FADT's HW_REDUCED_ACPI flag set and EFI runtime
 * services not disabled on the command line, `reboot_init` (arch/x86/kernel/reboot.c) picks
 * `BOOT_EFI`; without EFI, `efi_reboot` returns, and the next method, `BOOT_BIOS`, switches to
 * real mode and jumps to F000:FFF0. Nothing would be there, and the guest would hang instead of
 * ending the VM.
 *
 * @module
 */

import { ACPI_PM_PORT, RESET_OFFSET, RESET_VALUE } from "../../../devices/legacy/acpi_pm.ts";

/**
 * Physical address of F000:FFF0, where a far jump to the reset vector lands (segment 0xF000 has
 * base 0xF0000 in real mode). The last 16 bytes of the BIOS area below 1 MiB.
 */
export const RESET_VECTOR_ADDRESS = 0xf_fff0;

// Real-mode (16-bit) opcodes, Intel SDM vol. 2.
/** `MOV r8, imm8` (B0+rb): AL. */
const MOV_AL_IMM8 = 0xb0;
/** `MOV r16, imm16` (B8+rw): DX is register 2. */
const MOV_DX_IMM16 = 0xba;
/** `OUT DX, AL`. */
const OUT_DX_AL = 0xee;
/** `CLI`. */
const CLI = 0xfa;
/** `HLT`. */
const HLT = 0xf4;
/** `JMP rel8`. */
const JMP_REL8 = 0xeb;
/** rel8 of a `JMP` back to the `HLT` just before it: -3 (two bytes of JMP, one of HLT). */
const BACK_TO_HLT = 0xfd;

/**
 * The stub to write at {@link RESET_VECTOR_ADDRESS}:
 * `mov al, RESET_VALUE; mov dx, reset port; out dx, al; cli; hlt; jmp $-1`.
 */
export function resetVectorStub(): Uint8Array {
  const port = ACPI_PM_PORT + RESET_OFFSET;
  return Uint8Array.of(
    MOV_AL_IMM8,
    RESET_VALUE,
    MOV_DX_IMM16,
    port & 0xff,
    port >> 8,
    OUT_DX_AL,
    CLI,
    HLT,
    JMP_REL8,
    BACK_TO_HLT,
  );
}
