/**
 * virtio_net_hdr, the 10-byte legacy header in front of every packet on a TUN device opened
 * with IFF_VNET_HDR (Linux include/uapi/linux/virtio_net.h; virtio spec 1.x §5.1.6).
 *
 * It is how the kernel and vxnet hand each other offload work: on read, a TSO/USO super-packet
 * with its type and segment size and a checksum left for us to finish (NEEDS_CSUM); on write,
 * the same for super-packets we merged. The 16-bit fields are in the device's byte order. A
 * legacy TUN device uses the host's, and every host vxnet targets (x86-64, arm64) is
 * little-endian, so they are read little-endian here; a big-endian host would have to set
 * TUNSETVNETLE.
 */

import { readU16Le, writeU16Le } from './bytes.js';

/*
 *   0               1               2               3
 *  +---------------+---------------+---------------+---------------+
 *  |     flags     |    gso_type   |        hdr_len (LE)           |
 *  +---------------+---------------+---------------+---------------+
 *  |        gso_size (LE)          |       csum_start (LE)         |
 *  +---------------+---------------+---------------+---------------+
 *  |       csum_offset (LE)        |
 *  +---------------+---------------+
 */
/** Byte offset of each field from the start of the header: the one layout, for views and the hot path alike. */
export const VirtioField = {
  Flags: 0,
  GsoType: 1,
  HeaderLength: 2,
  GsoSize: 4,
  CsumStart: 6,
  CsumOffset: 8,
} as const;

export const VIRTIO_NET_HDR_LENGTH = VirtioField.CsumOffset + 2;

export const VirtioNetHdrFlags = {
  /** The checksum from `csumStart` to the end is not done; store it at `csumStart + csumOffset`. */
  NeedsCsum: 1,
  /** The checksum has been verified. */
  DataValid: 2,
} as const;

export const VirtioGsoType = {
  None: 0,
  TcpV4: 1,
  /** UFO: IPv4 fragmentation of a big UDP datagram. Linux no longer produces it. */
  Udp: 3,
  TcpV6: 4,
  /** USO: split into UDP datagrams of `gsoSize` payload bytes each. */
  UdpL4: 5,
  /** Flag bit: the TCP stream uses ECN; CWR goes on the first segment only. */
  Ecn: 0x80,
} as const;

/** The six fields as plain values; both `VirtioNetHdrRepr` objects and `VirtioNetHdrView` satisfy it. */
export interface VirtioNetHdrFields {
  readonly flags: number;
  readonly gsoType: number;
  readonly headerLength: number;
  readonly gsoSize: number;
  readonly csumStart: number;
  readonly csumOffset: number;
}

export class VirtioNetHdrView implements VirtioNetHdrFields {
  constructor(
    public buf: Uint8Array,
    public off = 0,
  ) {}

  bind(buf: Uint8Array, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  /** flags (`VirtioNetHdrFlags`). */
  get flags(): number {
    return this.buf[this.off + VirtioField.Flags]!;
  }
  set flags(value: number) {
    this.buf[this.off + VirtioField.Flags] = value;
  }

  /** gso_type (`VirtioGsoType`, possibly with the Ecn bit). */
  get gsoType(): number {
    return this.buf[this.off + VirtioField.GsoType]!;
  }
  set gsoType(value: number) {
    this.buf[this.off + VirtioField.GsoType] = value;
  }

  /** hdr_len: bytes of headers (IP + transport). The kernel treats it as a hint. */
  get headerLength(): number {
    return readU16Le(this.buf, this.off + VirtioField.HeaderLength);
  }
  set headerLength(value: number) {
    writeU16Le(this.buf, this.off + VirtioField.HeaderLength, value);
  }

  /** gso_size: payload bytes per segment (the MSS for TCP). */
  get gsoSize(): number {
    return readU16Le(this.buf, this.off + VirtioField.GsoSize);
  }
  set gsoSize(value: number) {
    writeU16Le(this.buf, this.off + VirtioField.GsoSize, value);
  }

  /** csum_start: where the checksummed data begins, from the start of the packet (the L4 header). */
  get csumStart(): number {
    return readU16Le(this.buf, this.off + VirtioField.CsumStart);
  }
  set csumStart(value: number) {
    writeU16Le(this.buf, this.off + VirtioField.CsumStart, value);
  }

  /** csum_offset: where the checksum goes, from `csumStart` (16 for TCP, 6 for UDP). */
  get csumOffset(): number {
    return readU16Le(this.buf, this.off + VirtioField.CsumOffset);
  }
  set csumOffset(value: number) {
    writeU16Le(this.buf, this.off + VirtioField.CsumOffset, value);
  }

  /** Writes all ten bytes as zero: a plain packet, checksum complete, nothing to segment. */
  clear(): void {
    for (let i = 0; i < VIRTIO_NET_HDR_LENGTH; i++) this.buf[this.off + i] = 0;
  }

  get payloadOffset(): number {
    return this.off + VIRTIO_NET_HDR_LENGTH;
  }
}
