/**
 * Big-endian field access and byte copies shared by the header views.
 *
 * Network headers are big-endian and rarely aligned, so fields are assembled from single bytes
 * rather than read through a DataView (which would need one DataView per buffer, or an
 * allocation per rebind). V8 inlines these small functions into the accessors that call them.
 * None of them checks bounds: the views check the length once, at the boundary.
 */

export function readU16(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

export function writeU16(buf: Uint8Array, off: number, value: number): void {
  buf[off] = value >>> 8;
  buf[off + 1] = value;
}

/** Reads an unsigned 32-bit big-endian value; the `>>> 0` keeps it out of the negative range. */
export function readU32(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

export function writeU32(buf: Uint8Array, off: number, value: number): void {
  buf[off] = value >>> 24;
  buf[off + 1] = value >>> 16;
  buf[off + 2] = value >>> 8;
  buf[off + 3] = value;
}

export function readU24(buf: Uint8Array, off: number): number {
  return (buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!;
}

export function writeU24(buf: Uint8Array, off: number, value: number): void {
  buf[off] = value >>> 16;
  buf[off + 1] = value >>> 8;
  buf[off + 2] = value;
}

export function readU16Le(buf: Uint8Array, off: number): number {
  return buf[off]! | (buf[off + 1]! << 8);
}

export function writeU16Le(buf: Uint8Array, off: number, value: number): void {
  buf[off] = value;
  buf[off + 1] = value >>> 8;
}

/** Copies below this many bytes are done with a plain loop; above it, `set` (memcpy) wins. */
const SMALL_COPY = 64;

/**
 * Copies `len` bytes from `src[srcOff..]` to `dst[dstOff..]`. Within one array this is
 * `copyWithin`, which allocates nothing. Between two arrays a large copy goes through
 * `set(subarray)`, which costs one short-lived view object but runs at memcpy speed; that is
 * the only way to reach memcpy from JavaScript, and it is cheaper than a byte loop past a few
 * dozen bytes.
 */
export function copyBytes(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, len: number): void {
  if (dst === src) {
    dst.copyWithin(dstOff, srcOff, srcOff + len);
  } else if (len < SMALL_COPY) {
    for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i]!;
  } else {
    dst.set(src.subarray(srcOff, srcOff + len), dstOff);
  }
}

/** True when `a[aOff..aOff+len)` equals `b[bOff..bOff+len)`. */
export function bytesEqual(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** True when `[off, off + len)` is a valid, non-negative range inside `buf`. */
export function inBounds(buf: Uint8Array, off: number, len: number): boolean {
  return off >= 0 && len >= 0 && off + len <= buf.length;
}
