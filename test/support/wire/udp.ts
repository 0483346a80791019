/**
 * Test support for src/wire/udp.ts: what the data path does not use (views and value types for
 * parsing and building whole headers), kept as the tests' decoder and encoder over the same field
 * table the hot path reads. It re-exports the production module, so a test imports one place.
 */
import { inBounds, readU16, writeU16 } from '../../../src/wire/bytes.js';
import { foldChecksum, onesComplementSum, pseudoHeaderSumV4, pseudoHeaderSumV6 } from '../../../src/wire/checksum.js';
import { IpProtocol } from '../../../src/wire/ipv4.js';
import { UDP_HEADER_LENGTH, UdpField } from '../../../src/wire/udp.js';

export * from '../../../src/wire/udp.js';

export class UdpView {
  constructor(
    public buf: Uint8Array,
    public off = 0,
  ) {}

  bind(buf: Uint8Array, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  /** Source Port. */
  get sourcePort(): number {
    return readU16(this.buf, this.off + UdpField.SourcePort);
  }
  set sourcePort(value: number) {
    writeU16(this.buf, this.off + UdpField.SourcePort, value);
  }

  /** Destination Port. */
  get destinationPort(): number {
    return readU16(this.buf, this.off + UdpField.DestinationPort);
  }
  set destinationPort(value: number) {
    writeU16(this.buf, this.off + UdpField.DestinationPort, value);
  }

  /** Length: header plus data, in bytes. */
  get length(): number {
    return readU16(this.buf, this.off + UdpField.Length);
  }
  set length(value: number) {
    writeU16(this.buf, this.off + UdpField.Length, value);
  }

  /** Checksum (0 over IPv4 means "not computed"). */
  get checksum(): number {
    return readU16(this.buf, this.off + UdpField.Checksum);
  }
  set checksum(value: number) {
    writeU16(this.buf, this.off + UdpField.Checksum, value);
  }

  get payloadOffset(): number {
    return this.off + UDP_HEADER_LENGTH;
  }

  /** Computes the checksum over pseudo-header, header and `length` bytes, IPv4 addresses. */
  fillChecksumV4(source: number, destination: number): void {
    const length = this.length;
    this.checksum = 0;
    this.checksum = nonZero(
      foldChecksum(onesComplementSum(this.buf, this.off, length, pseudoHeaderSumV4(source, destination, IpProtocol.UDP, length))),
    );
  }

  /** Computes the checksum; the IPv6 addresses are the 16 bytes at `addrBuf[sourceOff]`, `addrBuf[destinationOff]`. */
  fillChecksumV6(addrBuf: Uint8Array, sourceOff: number, destinationOff: number): void {
    const length = this.length;
    this.checksum = 0;
    const pseudo = pseudoHeaderSumV6(addrBuf, sourceOff, destinationOff, IpProtocol.UDP, length);
    this.checksum = nonZero(foldChecksum(onesComplementSum(this.buf, this.off, length, pseudo)));
  }

  /** True when the checksum verifies, or is zero (RFC 768: the sender did not compute one). */
  isValidChecksumV4(source: number, destination: number): boolean {
    if (this.checksum === 0) return true;
    const length = this.length;
    return onesComplementSum(this.buf, this.off, length, pseudoHeaderSumV4(source, destination, IpProtocol.UDP, length)) === 0xffff;
  }

  /** True when the checksum verifies. Zero is invalid over IPv6 (RFC 8200 §8.1). */
  isValidChecksumV6(addrBuf: Uint8Array, sourceOff: number, destinationOff: number): boolean {
    if (this.checksum === 0) return false;
    const length = this.length;
    const pseudo = pseudoHeaderSumV6(addrBuf, sourceOff, destinationOff, IpProtocol.UDP, length);
    return onesComplementSum(this.buf, this.off, length, pseudo) === 0xffff;
  }
}

/** RFC 768: a computed checksum of zero is sent as all ones, since zero means "none". */
function nonZero(checksum: number): number {
  return checksum === 0 ? 0xffff : checksum;
}

/** The boundary check: a whole header, and 8 <= Length <= len. */
export function tryUdp(buf: Uint8Array, off: number, len: number): boolean {
  if (!inBounds(buf, off, len) || len < UDP_HEADER_LENGTH) return false;
  const length = readU16(buf, off + UdpField.Length);
  return length >= UDP_HEADER_LENGTH && length <= len;
}

export interface UdpRepr {
  sourcePort: number;
  destinationPort: number;
  payloadLength: number;
}

export function parseUdp(view: UdpView): UdpRepr | null {
  if (view.length < UDP_HEADER_LENGTH) return null;
  return {
    sourcePort: view.sourcePort,
    destinationPort: view.destinationPort,
    payloadLength: view.length - UDP_HEADER_LENGTH,
  };
}

/** Writes all 8 bytes; the checksum is zero until `fillChecksumV4`/`V6` runs over the payload. */
export function emitUdp(repr: UdpRepr, view: UdpView): void {
  view.sourcePort = repr.sourcePort;
  view.destinationPort = repr.destinationPort;
  view.length = UDP_HEADER_LENGTH + repr.payloadLength;
  view.checksum = 0;
}

export function udpLen(_repr: UdpRepr): number {
  return UDP_HEADER_LENGTH;
}
