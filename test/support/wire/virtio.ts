/**
 * Test support for src/wire/virtio.ts: what the data path does not use (views and value types for
 * parsing and building whole headers), kept as the tests' decoder and encoder over the same field
 * table the hot path reads. It re-exports the production module, so a test imports one place.
 */
import { inBounds, readU16Le, writeU16Le } from '../../../src/wire/bytes.js';
import { VIRTIO_NET_HDR_LENGTH, VirtioGsoType, VirtioNetHdrFields, VirtioNetHdrView } from '../../../src/wire/virtio.js';

export * from '../../../src/wire/virtio.js';

export function tryVirtioNetHdr(buf: Uint8Array, off: number, len: number): boolean {
  return inBounds(buf, off, len) && len >= VIRTIO_NET_HDR_LENGTH;
}

export interface VirtioNetHdrRepr extends VirtioNetHdrFields {
  flags: number;
  gsoType: number;
  headerLength: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/** Null for a gso_type Linux does not define. */
export function parseVirtioNetHdr(view: VirtioNetHdrView): VirtioNetHdrRepr | null {
  const base = view.gsoType & ~VirtioGsoType.Ecn;
  if (
    base !== VirtioGsoType.None &&
    base !== VirtioGsoType.TcpV4 &&
    base !== VirtioGsoType.Udp &&
    base !== VirtioGsoType.TcpV6 &&
    base !== VirtioGsoType.UdpL4
  ) {
    return null;
  }
  return {
    flags: view.flags,
    gsoType: view.gsoType,
    headerLength: view.headerLength,
    gsoSize: view.gsoSize,
    csumStart: view.csumStart,
    csumOffset: view.csumOffset,
  };
}

export function emitVirtioNetHdr(repr: VirtioNetHdrFields, view: VirtioNetHdrView): void {
  view.flags = repr.flags;
  view.gsoType = repr.gsoType;
  view.headerLength = repr.headerLength;
  view.gsoSize = repr.gsoSize;
  view.csumStart = repr.csumStart;
  view.csumOffset = repr.csumOffset;
}

export function virtioNetHdrLen(_repr: VirtioNetHdrFields): number {
  return VIRTIO_NET_HDR_LENGTH;
}
