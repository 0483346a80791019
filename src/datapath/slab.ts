/**
 * Slabs: the one buffer each data-path worker reads packets into, builds headers in, and hands
 * to the kernel, with room in front of every packet slot for the headers that go before it.
 *
 * Why one buffer: a batch system call takes one buffer and a list of (offset, length) pieces, so
 * every piece a batch refers to (a packet where it landed, a rebuilt segment header, a virtio
 * header) must live in the same slab. Why WebAssembly memory: the checksum's bulk summation runs
 * in WebAssembly SIMD, and WebAssembly code reads only its own memory (wire/checksum-simd.ts).
 * Where SIMD is unavailable the slab is a plain Uint8Array and checksums take the JavaScript loop.
 */
import { attachSimdSum, WASM_PAGE } from '../wire/checksum-simd.js';
import { VXLAN_HEADER_LENGTH } from '../wire/vxlan.js';
import { ETHERNET_HEADER_LENGTH } from '../wire/ethernet.js';

/** What vxnet puts in front of an inner IP packet: the VXLAN header and the inner Ethernet header. */
export const ENCAP_LENGTH = VXLAN_HEADER_LENGTH + ETHERNET_HEADER_LENGTH;

/**
 * Bytes kept free in front of every packet slot. Outbound, the 22 bytes of VXLAN + inner
 * Ethernet are written there in place; inbound, a decapsulated packet already has 22 bytes in
 * front of it, where its 10-byte virtio header goes. Rounded up to keep slots 64-byte aligned.
 */
export const HEADROOM = 64;

/** A zeroed slab of `size` bytes whose checksums run in SIMD where the runtime allows. */
export function allocateSlab(size: number): Uint8Array {
  const pages = Math.max(1, Math.ceil(size / WASM_PAGE));
  let memory: WebAssembly.Memory;
  try {
    memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  } catch {
    return new Uint8Array(size);
  }
  if (!attachSimdSum(memory)) return new Uint8Array(size);
  return new Uint8Array(memory.buffer, 0, size);
}
