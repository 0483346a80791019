/**
 * The Internet checksum's bulk summation in WebAssembly SIMD, over packet slabs that live in
 * WebAssembly memory.
 *
 * Why: after offloads, summing payload bytes is the largest piece of JavaScript work per byte
 * on both paths (cutting TSO super-packets needs a full TCP checksum per segment; merging
 * received segments needs each one verified). The JavaScript loop in checksum.ts adds 32-bit
 * words; this module adds sixteen bytes per step: `i32x4.extadd_pairwise_i16x8_u` widens eight
 * 16-bit words into four 32-bit lanes, pairwise, and `i32x4.add` accumulates them.
 *
 * Byte order: the lanes read little-endian 16-bit words. RFC 1071 §2(B) shows the ones'
 * complement sum is byte-order independent: the sum of byte-swapped words is the byte-swapped
 * sum, so the caller swaps the folded result once.
 *
 * Overflow: each step adds at most 2 × 65535 to a 32-bit lane, so 32,768 steps (512 KiB) fit;
 * `SIMD_MAX_LENGTH` keeps callers below that (packets are at most 64 KiB).
 *
 * WebAssembly code can only read its own memory, so a data path that wants this allocates its
 * slab in a WebAssembly memory and attaches the summation to it (`attachSimdSum`); the native addon reads and writes that memory like any other
 * ArrayBuffer. There is no toolchain on the build machines, so the module's ~150 bytes are
 * emitted below from a commented instruction list. The slabs themselves are the data path's
 * (datapath/slab.ts); this module only knows how to sum over a WebAssembly memory.
 */

export const SIMD_MAX_LENGTH = 1 << 19;
const PAGE = 65536;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

const I32 = 0x7f;
const I64 = 0x7e;
const V128 = 0x7b;
const op = {
  block: 0x02, loop: 0x03, if: 0x04, end: 0x0b, br: 0x0c, brIf: 0x0d, void: 0x40,
  localGet: 0x20, localSet: 0x21,
  i32Load8U: 0x2d, i32Load16U: 0x2f, i32Const: 0x41, i64Const: 0x42,
  i32LtU: 0x49, i32GeU: 0x4f, i64Eqz: 0x50,
  i32Add: 0x6a, i32Sub: 0x6b, i32And: 0x71, i64Add: 0x7c, i64And: 0x83, i64ShrU: 0x88,
  i32WrapI64: 0xa7, i64ExtendI32U: 0xad, simd: 0xfd,
} as const;
// SIMD sub-opcodes (after the 0xfd prefix).
const V128_LOAD = [0x00];
const I32X4_EXTRACT_LANE = [0x1b];
const I32X4_EXTADD_PAIRWISE_I16X8_U = [0x7f];
const I32X4_ADD = [0xae, 0x01];

// Locals: 0 = ptr (i32), 1 = len (i32), 2 = acc (v128), 3 = end (i32), 4 = s (i64).
const P = 0, N = 1, ACC = 2, END = 3, S = 4;

/** sum(ptr, len) -> the folded 16-bit ones' complement sum of little-endian words. */
const body: number[] = [
  // end = ptr + (len & ~15)
  op.localGet, P, op.localGet, N, op.i32Const, 0x70 /* -16 */, op.i32And, op.i32Add, op.localSet, END,
  // while (ptr < end) { acc += extadd_pairwise_u16(load128(ptr)); ptr += 16 }
  op.block, op.void, op.loop, op.void,
  op.localGet, P, op.localGet, END, op.i32GeU, op.brIf, 1,
  op.localGet, ACC,
  op.localGet, P, op.simd, ...V128_LOAD, 0x00 /* align */, 0x00 /* offset */,
  op.simd, ...I32X4_EXTADD_PAIRWISE_I16X8_U,
  op.simd, ...I32X4_ADD,
  op.localSet, ACC,
  op.localGet, P, op.i32Const, 16, op.i32Add, op.localSet, P,
  op.br, 0,
  op.end, op.end,
  // s = lane0 + lane1 + lane2 + lane3 (as u64)
  op.localGet, ACC, op.simd, ...I32X4_EXTRACT_LANE, 0, op.i64ExtendI32U,
  op.localGet, ACC, op.simd, ...I32X4_EXTRACT_LANE, 1, op.i64ExtendI32U, op.i64Add,
  op.localGet, ACC, op.simd, ...I32X4_EXTRACT_LANE, 2, op.i64ExtendI32U, op.i64Add,
  op.localGet, ACC, op.simd, ...I32X4_EXTRACT_LANE, 3, op.i64ExtendI32U, op.i64Add,
  op.localSet, S,
  // len &= 15; while (len >= 2) { s += load16(ptr); ptr += 2; len -= 2 }
  op.localGet, N, op.i32Const, 15, op.i32And, op.localSet, N,
  op.block, op.void, op.loop, op.void,
  op.localGet, N, op.i32Const, 2, op.i32LtU, op.brIf, 1,
  op.localGet, S, op.localGet, P, op.i32Load16U, 0x01, 0x00, op.i64ExtendI32U, op.i64Add, op.localSet, S,
  op.localGet, P, op.i32Const, 2, op.i32Add, op.localSet, P,
  op.localGet, N, op.i32Const, 2, op.i32Sub, op.localSet, N,
  op.br, 0,
  op.end, op.end,
  // an odd last byte is the low byte of a little-endian word padded with zero
  op.localGet, N, op.if, op.void,
  op.localGet, S, op.localGet, P, op.i32Load8U, 0x00, 0x00, op.i64ExtendI32U, op.i64Add, op.localSet, S,
  op.end,
  // while (s >> 16) s = (s & 0xffff) + (s >> 16)
  op.block, op.void, op.loop, op.void,
  op.localGet, S, op.i64Const, 16, op.i64ShrU, op.i64Eqz, op.brIf, 1,
  op.localGet, S, op.i64Const, 0xff, 0xff, 0x03 /* 65535 */, op.i64And,
  op.localGet, S, op.i64Const, 16, op.i64ShrU, op.i64Add, op.localSet, S,
  op.br, 0,
  op.end, op.end,
  op.localGet, S, op.i32WrapI64,
  op.end,
];

const locals = [3, 1, V128, 1, I32, 1, I64];
const code = [...uleb(locals.length + body.length), ...locals, ...body];
const bytes = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, [1, 0x60, 2, I32, I32, 1, I32]), // type 0: (i32, i32) -> i32
  ...section(2, [1, 3, ...Buffer.from('env'), 6, ...Buffer.from('memory'), 0x02, 0x00, 0x01]), // import env.memory, min 1 page
  ...section(3, [1, 0]), // function 0 has type 0
  ...section(7, [1, 3, ...Buffer.from('sum'), 0x00, 0]), // export "sum" = function 0
  ...section(10, [1, ...code]),
]);

let compiled: WebAssembly.Module | null | undefined;

function module(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(bytes);
    } catch {
      compiled = null; // no WebAssembly SIMD on this runtime: the JavaScript loop is used
    }
  }
  return compiled;
}

export type SumFn = (ptr: number, len: number) => number;

interface Registered { readonly buffer: ArrayBufferLike; readonly sum: SumFn }
const registered: Registered[] = [];

/** True when this runtime compiles the SIMD module (every Node.js we support does). */
export function simdAvailable(): boolean {
  return module() !== null;
}

/**
 * Instantiates the summation over `memory` and registers it, so that `onesComplementSum` over
 * any view of that memory runs in SIMD. Returns false where WebAssembly SIMD is unavailable.
 */
export function attachSimdSum(memory: WebAssembly.Memory): boolean {
  const m = module();
  if (m === null) return false;
  const instance = new WebAssembly.Instance(m, { env: { memory } });
  registered.push({ buffer: memory.buffer, sum: instance.exports['sum'] as SumFn });
  if (registered.length > 64) registered.shift();
  return true;
}

export const WASM_PAGE = PAGE;

let lastBuffer: ArrayBufferLike | undefined;
let lastSum: SumFn | undefined;

/** The SIMD summation for `buf`'s memory, or undefined when `buf` is not in a slab. */
export function simdSumFor(buf: Uint8Array): SumFn | undefined {
  const b = buf.buffer;
  if (b === lastBuffer) return lastSum;
  for (let i = registered.length - 1; i >= 0; i--) {
    const r = registered[i]!;
    if (r.buffer === b) {
      lastBuffer = b;
      lastSum = r.sum;
      return r.sum;
    }
  }
  return undefined;
}
