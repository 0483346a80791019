/**
 * Test support for src/wire/ethernet.ts: what the data path does not use (views and value types for
 * parsing and building whole headers), kept as the tests' decoder and encoder over the same field
 * table the hot path reads. It re-exports the production module, so a test imports one place.
 */
import { bytesEqual, copyBytes, inBounds, readU16, writeU16 } from '../../../src/wire/bytes.js';
import { ETHERNET_HEADER_LENGTH, EtherType, EthernetField, MAC_LENGTH } from '../../../src/wire/ethernet.js';

export * from '../../../src/wire/ethernet.js';

export class EthernetView {
  constructor(
    public buf: Uint8Array,
    public off = 0,
  ) {}

  /** Points the view at another frame; returns `this` so a reused view reads in one line. */
  bind(buf: Uint8Array, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  /** Byte `i` (0-5) of the Destination MAC address. */
  destinationAt(i: number): number {
    return this.buf[this.off + EthernetField.Destination + i]!;
  }

  /** Sets the Destination MAC address from the 6 bytes at `mac[macOff]`. */
  setDestination(mac: Uint8Array, macOff = 0): void {
    copyBytes(this.buf, this.off + EthernetField.Destination, mac, macOff, MAC_LENGTH);
  }

  /** Same as `setDestination`, named for the copy-from-another-packet case. */
  copyDestinationFrom(src: Uint8Array, srcOff: number): void {
    copyBytes(this.buf, this.off + EthernetField.Destination, src, srcOff, MAC_LENGTH);
  }

  /** True when the Destination MAC address equals the 6 bytes at `mac[macOff]`. */
  destinationEquals(mac: Uint8Array, macOff = 0): boolean {
    return bytesEqual(this.buf, this.off + EthernetField.Destination, mac, macOff, MAC_LENGTH);
  }

  /** True when the Destination MAC address has the group bit set (multicast or broadcast). */
  get destinationIsMulticast(): boolean {
    return (this.buf[this.off + EthernetField.Destination]! & 1) !== 0;
  }

  /** Byte `i` (0-5) of the Source MAC address. */
  sourceAt(i: number): number {
    return this.buf[this.off + EthernetField.Source + i]!;
  }

  /** Sets the Source MAC address from the 6 bytes at `mac[macOff]`. */
  setSource(mac: Uint8Array, macOff = 0): void {
    copyBytes(this.buf, this.off + EthernetField.Source, mac, macOff, MAC_LENGTH);
  }

  /** Same as `setSource`, named for the copy-from-another-packet case. */
  copySourceFrom(src: Uint8Array, srcOff: number): void {
    copyBytes(this.buf, this.off + EthernetField.Source, src, srcOff, MAC_LENGTH);
  }

  /** True when the Source MAC address equals the 6 bytes at `mac[macOff]`. */
  sourceEquals(mac: Uint8Array, macOff = 0): boolean {
    return bytesEqual(this.buf, this.off + EthernetField.Source, mac, macOff, MAC_LENGTH);
  }

  /** EtherType: the protocol of the payload (`EtherType`). */
  get etherType(): number {
    return readU16(this.buf, this.off + EthernetField.EtherType);
  }
  set etherType(value: number) {
    writeU16(this.buf, this.off + EthernetField.EtherType, value);
  }

  /** Offset in `buf` of the first payload byte. */
  get payloadOffset(): number {
    return this.off + ETHERNET_HEADER_LENGTH;
  }
}

/** True when `buf[off, off+len)` is in bounds and holds a whole Ethernet header. */
export function tryEthernet(buf: Uint8Array, off: number, len: number): boolean {
  return inBounds(buf, off, len) && len >= ETHERNET_HEADER_LENGTH;
}

export interface EthernetRepr {
  /** 6 bytes. */
  destination: Uint8Array;
  /** 6 bytes. */
  source: Uint8Array;
  etherType: number;
}

export function parseEthernet(view: EthernetView): EthernetRepr {
  const at = view.off;
  return {
    destination: view.buf.slice(at + EthernetField.Destination, at + EthernetField.Destination + MAC_LENGTH),
    source: view.buf.slice(at + EthernetField.Source, at + EthernetField.Source + MAC_LENGTH),
    etherType: view.etherType,
  };
}

export function emitEthernet(repr: EthernetRepr, view: EthernetView): void {
  view.setDestination(repr.destination);
  view.setSource(repr.source);
  view.etherType = repr.etherType;
}

export function ethernetLen(_repr: EthernetRepr): number {
  return ETHERNET_HEADER_LENGTH;
}
