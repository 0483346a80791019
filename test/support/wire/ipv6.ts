/**
 * Test support for src/wire/ipv6.ts: what the data path does not use (views and value types for
 * parsing and building whole headers), kept as the tests' decoder and encoder over the same field
 * table the hot path reads. It re-exports the production module, so a test imports one place.
 */
import { bytesEqual, copyBytes, inBounds, readU16, readU32, writeU16, writeU32 } from '../../../src/wire/bytes.js';
import { IPV6_ADDRESS_LENGTH, IPV6_HEADER_LENGTH, IPV6_VERSION, Ipv6Field } from '../../../src/wire/ipv6.js';

export * from '../../../src/wire/ipv6.js';

export class Ipv6View {
  constructor(
    public buf: Uint8Array,
    public off = 0,
  ) {}

  bind(buf: Uint8Array, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  /** Version (4 bits). */
  get version(): number {
    return this.buf[this.off + Ipv6Field.VersionClassLabel]! >>> 4;
  }
  set version(value: number) {
    const at = this.off + Ipv6Field.VersionClassLabel;
    this.buf[at] = (value << 4) | (this.buf[at]! & 0x0f);
  }

  /** Traffic Class (8 bits: DSCP and ECN). */
  get trafficClass(): number {
    return (readU16(this.buf, this.off + Ipv6Field.VersionClassLabel) >>> 4) & 0xff;
  }
  set trafficClass(value: number) {
    const at = this.off + Ipv6Field.VersionClassLabel;
    const word = readU16(this.buf, at);
    writeU16(this.buf, at, (word & 0xf00f) | ((value & 0xff) << 4));
  }

  /** Flow Label (20 bits). */
  get flowLabel(): number {
    return readU32(this.buf, this.off + Ipv6Field.VersionClassLabel) & 0xfffff;
  }
  set flowLabel(value: number) {
    const at = this.off + Ipv6Field.VersionClassLabel;
    this.buf[at + 1] = (this.buf[at + 1]! & 0xf0) | ((value >>> 16) & 0x0f);
    this.buf[at + 2] = value >>> 8;
    this.buf[at + 3] = value;
  }

  /** Payload Length: bytes after this 40-byte header, extension headers included. */
  get payloadLength(): number {
    return readU16(this.buf, this.off + Ipv6Field.PayloadLength);
  }
  set payloadLength(value: number) {
    writeU16(this.buf, this.off + Ipv6Field.PayloadLength, value);
  }

  /** Next Header (an `IpProtocol` or an extension header type). */
  get nextHeader(): number {
    return this.buf[this.off + Ipv6Field.NextHeader]!;
  }
  set nextHeader(value: number) {
    this.buf[this.off + Ipv6Field.NextHeader] = value;
  }

  /** Hop Limit. */
  get hopLimit(): number {
    return this.buf[this.off + Ipv6Field.HopLimit]!;
  }
  set hopLimit(value: number) {
    this.buf[this.off + Ipv6Field.HopLimit] = value;
  }

  /** Offset in `buf` of the Source Address (16 bytes). */
  get sourceOffset(): number {
    return this.off + Ipv6Field.SourceAddress;
  }

  /** Offset in `buf` of the Destination Address (16 bytes). */
  get destinationOffset(): number {
    return this.off + Ipv6Field.DestinationAddress;
  }

  /** Word `i` (0-3, most significant first) of the Source Address, as a uint32. */
  sourceWord(i: number): number {
    return readU32(this.buf, this.off + Ipv6Field.SourceAddress + 4 * i);
  }
  setSourceWord(i: number, value: number): void {
    writeU32(this.buf, this.off + Ipv6Field.SourceAddress + 4 * i, value);
  }

  /** Word `i` (0-3, most significant first) of the Destination Address, as a uint32. */
  destinationWord(i: number): number {
    return readU32(this.buf, this.off + Ipv6Field.DestinationAddress + 4 * i);
  }
  setDestinationWord(i: number, value: number): void {
    writeU32(this.buf, this.off + Ipv6Field.DestinationAddress + 4 * i, value);
  }

  /** Sets the Source Address from the 16 bytes at `src[srcOff]`. */
  setSource(src: Uint8Array, srcOff = 0): void {
    copyBytes(this.buf, this.off + Ipv6Field.SourceAddress, src, srcOff, IPV6_ADDRESS_LENGTH);
  }

  /** Sets the Destination Address from the 16 bytes at `src[srcOff]`. */
  setDestination(src: Uint8Array, srcOff = 0): void {
    copyBytes(this.buf, this.off + Ipv6Field.DestinationAddress, src, srcOff, IPV6_ADDRESS_LENGTH);
  }

  sourceEquals(addr: Uint8Array, addrOff = 0): boolean {
    return bytesEqual(this.buf, this.off + Ipv6Field.SourceAddress, addr, addrOff, IPV6_ADDRESS_LENGTH);
  }

  destinationEquals(addr: Uint8Array, addrOff = 0): boolean {
    return bytesEqual(this.buf, this.off + Ipv6Field.DestinationAddress, addr, addrOff, IPV6_ADDRESS_LENGTH);
  }

  /** Offset in `buf` of the first byte after the fixed header. */
  get payloadOffset(): number {
    return this.off + IPV6_HEADER_LENGTH;
  }
}


export interface Ipv6Repr {
  /** 16 bytes. */
  sourceAddress: Uint8Array;
  /** 16 bytes. */
  destinationAddress: Uint8Array;
  nextHeader: number;
  payloadLength: number;
  hopLimit: number;
  trafficClass: number;
  flowLabel: number;
}

export function parseIpv6(view: Ipv6View): Ipv6Repr | null {
  if (view.version !== IPV6_VERSION) return null;
  const src = view.sourceOffset;
  const dst = view.destinationOffset;
  return {
    sourceAddress: view.buf.slice(src, src + IPV6_ADDRESS_LENGTH),
    destinationAddress: view.buf.slice(dst, dst + IPV6_ADDRESS_LENGTH),
    nextHeader: view.nextHeader,
    payloadLength: view.payloadLength,
    hopLimit: view.hopLimit,
    trafficClass: view.trafficClass,
    flowLabel: view.flowLabel,
  };
}

export function emitIpv6(repr: Ipv6Repr, view: Ipv6View): void {
  writeU32(
    view.buf,
    view.off + Ipv6Field.VersionClassLabel,
    ((IPV6_VERSION << 28) | ((repr.trafficClass & 0xff) << 20) | (repr.flowLabel & 0xfffff)) >>> 0,
  );
  view.payloadLength = repr.payloadLength;
  view.nextHeader = repr.nextHeader;
  view.hopLimit = repr.hopLimit;
  view.setSource(repr.sourceAddress);
  view.setDestination(repr.destinationAddress);
}

export function ipv6Len(_repr: Ipv6Repr): number {
  return IPV6_HEADER_LENGTH;
}
