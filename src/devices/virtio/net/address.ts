/**
 * The addresses a NIC is configured with, as users write them: a MAC `52:54:00:12:34:56` and an
 * IPv4 address or netmask in dotted quads.
 *
 * @module
 */

/** The bytes of a MAC written as six two-digit hex bytes separated by colons; undefined if not one. */
export function parseMac(text: string): number[] | undefined {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) return undefined;
  return text.split(":").map((b) => parseInt(b, 16));
}

/** The bytes of a dotted-quad IPv4 address (each part 0–255, no leading zeros); undefined if not one. */
export function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && +p <= 255)) {
    return undefined;
  }
  return Uint8Array.from(parts, Number);
}

/** Whether four bytes are a netmask: ones, then zeros. */
export function isNetmask(mask: Uint8Array): boolean {
  const bits = ((mask[0] << 24) | (mask[1] << 16) | (mask[2] << 8) | mask[3]) >>> 0;
  const inverted = ~bits >>> 0;
  return (inverted & (inverted + 1)) === 0;
}
