/**
 * Test support for src/wire/tcp.ts: what the data path does not use (views and value types for
 * parsing and building whole headers), kept as the tests' decoder and encoder over the same field
 * table the hot path reads. It re-exports the production module, so a test imports one place.
 */
import { inBounds, readU16, readU32, writeU16, writeU32 } from '../../../src/wire/bytes.js';
import { foldChecksum, onesComplementSum, pseudoHeaderSumV4, pseudoHeaderSumV6 } from '../../../src/wire/checksum.js';
import { IpProtocol } from '../../../src/wire/ipv4.js';
import { TCP_MIN_HEADER_LENGTH, TcpField, TcpFlags } from '../../../src/wire/tcp.js';

export * from '../../../src/wire/tcp.js';

export class TcpView {
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
    return readU16(this.buf, this.off + TcpField.SourcePort);
  }
  set sourcePort(value: number) {
    writeU16(this.buf, this.off + TcpField.SourcePort, value);
  }

  /** Destination Port. */
  get destinationPort(): number {
    return readU16(this.buf, this.off + TcpField.DestinationPort);
  }
  set destinationPort(value: number) {
    writeU16(this.buf, this.off + TcpField.DestinationPort, value);
  }

  /** Sequence Number (uint32). */
  get sequenceNumber(): number {
    return readU32(this.buf, this.off + TcpField.SequenceNumber);
  }
  set sequenceNumber(value: number) {
    writeU32(this.buf, this.off + TcpField.SequenceNumber, value);
  }

  /** Acknowledgment Number (uint32). */
  get acknowledgmentNumber(): number {
    return readU32(this.buf, this.off + TcpField.AcknowledgmentNumber);
  }
  set acknowledgmentNumber(value: number) {
    writeU32(this.buf, this.off + TcpField.AcknowledgmentNumber, value);
  }

  /** Data Offset in bytes (the 4-bit field counts 32-bit words). Setter takes bytes; clears Rsrvd. */
  get headerLength(): number {
    return (this.buf[this.off + TcpField.DataOffset]! >>> 4) << 2;
  }
  set headerLength(bytes: number) {
    this.buf[this.off + TcpField.DataOffset] = ((bytes >>> 2) & 0x0f) << 4;
  }

  /** The control bits byte (`TcpFlags`). */
  get flags(): number {
    return this.buf[this.off + TcpField.Flags]!;
  }
  set flags(value: number) {
    this.buf[this.off + TcpField.Flags] = value;
  }

  /** Window. */
  get window(): number {
    return readU16(this.buf, this.off + TcpField.Window);
  }
  set window(value: number) {
    writeU16(this.buf, this.off + TcpField.Window, value);
  }

  /** Checksum. */
  get checksum(): number {
    return readU16(this.buf, this.off + TcpField.Checksum);
  }
  set checksum(value: number) {
    writeU16(this.buf, this.off + TcpField.Checksum, value);
  }

  /** Urgent Pointer. */
  get urgentPointer(): number {
    return readU16(this.buf, this.off + TcpField.UrgentPointer);
  }
  set urgentPointer(value: number) {
    writeU16(this.buf, this.off + TcpField.UrgentPointer, value);
  }

  /** Offset in `buf` of the Options (which run to `payloadOffset`). */
  get optionsOffset(): number {
    return this.off + TCP_MIN_HEADER_LENGTH;
  }

  /** Bytes of Options (and padding): Data Offset minus the fixed 20. */
  get optionsLength(): number {
    return this.headerLength - TCP_MIN_HEADER_LENGTH;
  }

  get payloadOffset(): number {
    return this.off + this.headerLength;
  }

  /** Computes the checksum over pseudo-header and `length` bytes of segment (header + data). */
  fillChecksumV4(source: number, destination: number, length: number): void {
    this.checksum = 0;
    this.checksum = foldChecksum(
      onesComplementSum(this.buf, this.off, length, pseudoHeaderSumV4(source, destination, IpProtocol.TCP, length)),
    );
  }

  /** As `fillChecksumV4`; the IPv6 addresses are the 16 bytes at `addrBuf[sourceOff]`, `addrBuf[destinationOff]`. */
  fillChecksumV6(addrBuf: Uint8Array, sourceOff: number, destinationOff: number, length: number): void {
    this.checksum = 0;
    const pseudo = pseudoHeaderSumV6(addrBuf, sourceOff, destinationOff, IpProtocol.TCP, length);
    this.checksum = foldChecksum(onesComplementSum(this.buf, this.off, length, pseudo));
  }

  isValidChecksumV4(source: number, destination: number, length: number): boolean {
    return (
      onesComplementSum(this.buf, this.off, length, pseudoHeaderSumV4(source, destination, IpProtocol.TCP, length)) === 0xffff
    );
  }

  isValidChecksumV6(addrBuf: Uint8Array, sourceOff: number, destinationOff: number, length: number): boolean {
    const pseudo = pseudoHeaderSumV6(addrBuf, sourceOff, destinationOff, IpProtocol.TCP, length);
    return onesComplementSum(this.buf, this.off, length, pseudo) === 0xffff;
  }
}

/** The boundary check: `len` is the segment length from the IP layer; 20 <= Data Offset <= len. */
export function tryTcp(buf: Uint8Array, off: number, len: number): boolean {
  if (!inBounds(buf, off, len) || len < TCP_MIN_HEADER_LENGTH) return false;
  const headerLength = (buf[off + TcpField.DataOffset]! >>> 4) << 2;
  return headerLength >= TCP_MIN_HEADER_LENGTH && headerLength <= len;
}

export interface TcpRepr {
  sourcePort: number;
  destinationPort: number;
  sequenceNumber: number;
  acknowledgmentNumber: number;
  flags: number;
  window: number;
  urgentPointer: number;
  /** Raw option bytes; emit pads them with zeros (End of Option List) to a multiple of 4. */
  options: Uint8Array;
}

export function parseTcp(view: TcpView): TcpRepr | null {
  if (view.headerLength < TCP_MIN_HEADER_LENGTH) return null;
  return {
    sourcePort: view.sourcePort,
    destinationPort: view.destinationPort,
    sequenceNumber: view.sequenceNumber,
    acknowledgmentNumber: view.acknowledgmentNumber,
    flags: view.flags,
    window: view.window,
    urgentPointer: view.urgentPointer,
    options: view.buf.slice(view.optionsOffset, view.payloadOffset),
  };
}

/** Writes the whole header, options and padding included; the checksum is zero until filled. */
export function emitTcp(repr: TcpRepr, view: TcpView): void {
  const headerLength = tcpLen(repr);
  view.sourcePort = repr.sourcePort;
  view.destinationPort = repr.destinationPort;
  view.sequenceNumber = repr.sequenceNumber;
  view.acknowledgmentNumber = repr.acknowledgmentNumber;
  view.headerLength = headerLength;
  view.flags = repr.flags;
  view.window = repr.window;
  view.checksum = 0;
  view.urgentPointer = repr.urgentPointer;
  const at = view.optionsOffset;
  const options = repr.options;
  for (let i = 0; i < headerLength - TCP_MIN_HEADER_LENGTH; i++) view.buf[at + i] = i < options.length ? options[i]! : 0;
}

export function tcpLen(repr: TcpRepr): number {
  return TCP_MIN_HEADER_LENGTH + ((repr.options.length + 3) & ~3);
}
