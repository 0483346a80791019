/**
 * Ethernet II frame header (IEEE 802.3 §3.1.1, the DIX layout; no 802.1Q tag).
 *
 * In vxnet this is the inner header of a VXLAN packet: the TUN device carries bare IP, so the
 * data path writes it in the headroom in front of each packet on the way out and checks and
 * strips it on the way in. MAC addresses stay in the buffer; the view reads, compares and copies
 * them as byte ranges so the hot path never builds a string or an array for one.
 */

import { bytesEqual, copyBytes, inBounds, readU16, writeU16 } from './bytes.js';

/*
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                  Destination MAC address                      |
 *  +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                               |                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
 *  |                    Source MAC address                         |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |           EtherType           |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
/** Byte offset of each field from the start of the header: the one layout, for views and the hot path alike. */
export const EthernetField = {
  Destination: 0,
  Source: 6,
  EtherType: 12,
} as const;

export const MAC_LENGTH = 6;
export const ETHERNET_HEADER_LENGTH = EthernetField.EtherType + 2;

/** EtherType values vxnet looks at (IEEE registry). Anything else is counted and dropped. */
export const EtherType = {
  IPv4: 0x0800,
  ARP: 0x0806,
  IPv6: 0x86dd,
} as const;

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
