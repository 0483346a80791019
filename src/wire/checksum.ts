/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * Every IPv4 header, every TCP/UDP/ICMP message and every segment the GSO code cuts is
 * checksummed here, so this is the hottest loop in the wire layer. It leans on two properties
 * from RFC 1071 §2: the sum is independent of byte order (sum little-endian words, swap the
 * result) and it can be computed in any word width and folded at the end. On little-endian hosts
 * the bulk of the buffer is therefore read four bytes at a time through a `Uint32Array` over the
 * buffer's whole `ArrayBuffer`, accumulated in a double (exact up to 2^53) and folded once. That
 * `Uint32Array` is cached per `ArrayBuffer`; the data path checksums out of one slab, so it is
 * built once, not per packet. Short or odd-aligned stretches go through an unrolled 16-bit loop.
 *
 * Buffers allocated with `allocateSlab` (checksum-simd.ts) live in WebAssembly memory, and for
 * them the bulk summation runs in WebAssembly SIMD instead, sixteen bytes a step.
 *
 * Conventions: `onesComplementSum` returns the folded, uncomplemented 16-bit sum, so partial
 * sums chain through `initial`; `foldChecksum` turns a sum into the value that goes on the wire.
 */

import { simdSumFor, SIMD_MAX_LENGTH } from './checksum-simd.js';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Below this length the set-up of the word loop costs more than it saves. */
const WORD_LOOP_MIN = 96;

let cachedArray: Uint8Array | null = null;
let cachedByteOffset = 0;
let cachedBuffer: ArrayBufferLike | null = null;
let cachedWords: Uint32Array = new Uint32Array(0);

/** Folds a non-negative sum of any size (up to 2^53) to 16 bits with end-around carry. */
function fold(sum: number): number {
  if (sum > 0xffffffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function swap16(v: number): number {
  return ((v & 0xff) << 8) | (v >>> 8);
}

/** Sum of big-endian 16-bit words in `buf[off, off+len)`, a trailing odd byte padded with zero. Unfolded. */
function wordSum16(buf: Uint8Array, off: number, len: number): number {
  let sum = 0;
  let i = off;
  const end = off + len;
  const end8 = end - 7;
  while (i < end8) {
    sum +=
      ((buf[i]! << 8) | buf[i + 1]!) +
      ((buf[i + 2]! << 8) | buf[i + 3]!) +
      ((buf[i + 4]! << 8) | buf[i + 5]!) +
      ((buf[i + 6]! << 8) | buf[i + 7]!);
    i += 8;
  }
  while (i < end - 1) {
    sum += (buf[i]! << 8) | buf[i + 1]!;
    i += 2;
  }
  if (i < end) sum += buf[i]! << 8;
  return sum;
}

/** Sum of native (little-endian) 32-bit words `words[from, to)`, folded to 16 bits. */
function wordSum32(words: Uint32Array, from: number, to: number): number {
  let sum = 0;
  let i = from;
  const to4 = to - 3;
  while (i < to4) {
    sum += words[i]! + words[i + 1]! + words[i + 2]! + words[i + 3]!;
    i += 4;
    // 2^20 words of at most 2^32 each stay far below 2^53; fold long before that.
    if ((i & 0xfffff) < 4) sum = fold(sum);
  }
  while (i < to) sum += words[i++]!;
  return fold(sum);
}

/**
 * RFC 1071 ones' complement sum of `buf[off, off+len)`, plus `initial` (a previous sum, e.g. a
 * pseudo-header). Returns the folded, NOT complemented, 16-bit sum. An odd trailing byte is
 * padded with zero, as the RFC requires, so chaining only works on even-length pieces.
 */
export function onesComplementSum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  if (len < WORD_LOOP_MIN || !LITTLE_ENDIAN) return fold(initial + wordSum16(buf, off, len));
  const simd = simdSumFor(buf);
  if (simd !== undefined && len <= SIMD_MAX_LENGTH && off >= 0 && off + len <= buf.length) {
    return fold(initial + swap16(simd(buf.byteOffset + off, len)));
  }

  if (buf !== cachedArray) {
    // Reading `.buffer` and `.byteOffset` is not free; do it once per array, not per call.
    cachedArray = buf;
    cachedByteOffset = buf.byteOffset;
    const buffer = buf.buffer;
    if (buffer !== cachedBuffer) {
      cachedBuffer = buffer;
      cachedWords = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
    }
  }
  const abs = cachedByteOffset + off;
  const head = (4 - (abs & 3)) & 3;
  const first = (abs + head) >>> 2;
  const count = (len - head) >>> 2;
  if (first + count > cachedWords.length) return fold(initial + wordSum16(buf, off, len));

  // Bytes before the first aligned word, summed relative to `off`.
  let sum = initial + wordSum16(buf, off, head);
  // The aligned words, read little-endian. Relative to `off` they start at offset `head`: at an
  // even offset their big-endian sum is the byte swap of the little-endian one; at an odd offset
  // the pairing shifts by one byte, which swaps once more.
  const little = wordSum32(cachedWords, first, first + count);
  sum += (head & 1) === 0 ? swap16(little) : little;
  // Bytes after the last aligned word: same parity as the head.
  const tailOff = off + head + count * 4;
  const tail = fold(wordSum16(buf, tailOff, off + len - tailOff));
  sum += (head & 1) === 0 ? tail : swap16(tail);
  return fold(sum);
}

/** The checksum field value for a ones' complement sum: `~sum`, folded to 16 bits. */
export function foldChecksum(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/**
 * Sum of the IPv4 pseudo-header (RFC 793 §3.1, RFC 768): source and destination address,
 * zero, protocol, and the upper-layer length. Folded, not complemented.
 */
export function pseudoHeaderSumV4(source: number, destination: number, protocol: number, length: number): number {
  return fold(
    (source >>> 16) + (source & 0xffff) + (destination >>> 16) + (destination & 0xffff) + protocol + length,
  );
}

/**
 * Sum of the IPv6 pseudo-header (RFC 8200 §8.1): the 16-byte source and destination addresses
 * at `buf[sourceOff]` and `buf[destinationOff]`, the 32-bit upper-layer length and the next
 * header value. Folded, not complemented.
 */
export function pseudoHeaderSumV6(
  buf: Uint8Array,
  sourceOff: number,
  destinationOff: number,
  protocol: number,
  length: number,
): number {
  return fold(
    wordSum16(buf, sourceOff, 16) + wordSum16(buf, destinationOff, 16) + (length >>> 16) + (length & 0xffff) + protocol,
  );
}

/**
 * RFC 1624 eqn. 3: the new checksum after one 16-bit word covered by it changes from
 * `oldWord` to `newWord`, without touching the rest of the data: HC' = ~(~HC + ~m + m').
 */
export function checksumAdjust(oldChecksum: number, oldWord: number, newWord: number): number {
  return ~fold((~oldChecksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff)) & 0xffff;
}

/** `checksumAdjust` for a 32-bit field (an IPv4 address, a TCP sequence number): two words. */
export function checksumAdjust32(oldChecksum: number, oldValue: number, newValue: number): number {
  return (
    ~fold(
      (~oldChecksum & 0xffff) +
        (~(oldValue >>> 16) & 0xffff) +
        (~oldValue & 0xffff) +
        (newValue >>> 16) +
        (newValue & 0xffff),
    ) & 0xffff
  );
}
