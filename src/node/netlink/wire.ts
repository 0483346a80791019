/**
 * Netlink framing (linux/netlink.h; RFC 3549 section 2.3.2), the layer under every rtnetlink
 * message the agent sends or reads. A datagram holds one or more messages, each a 16-byte header
 * and a family-specific body; bodies end in attributes, each a 4-byte length-and-type header and
 * a value, padded to 4 bytes, and attributes nest. Everything is in the host's byte order.
 *
 *    0               1               2               3
 *   +---------------+---------------+---------------+---------------+
 *   |                         nlmsg_len (whole message)             |
 *   +-------------------------------+-------------------------------+
 *   |          nlmsg_type           |          nlmsg_flags          |
 *   +-------------------------------+-------------------------------+
 *   |                           nlmsg_seq                           |
 *   +---------------------------------------------------------------+
 *   |                           nlmsg_pid                           |
 *   +---------------------------------------------------------------+
 *   |  body: family header (ifinfomsg, ifaddrmsg, rtmsg, ...), then attributes:
 *   |  +-----------+-----------+------------------------+---------+
 *   |  | nla_len   | nla_type  | value (nla_len - 4)    | pad to 4|
 *   |  +-----------+-----------+------------------------+---------+
 *
 * Shaped like pg-protocol's framing: a writer that appends into a buffer it grows about 1.5x at
 * a time (a request is a few hundred bytes, so it rarely grows), with nests closed by patching
 * their length, and a reader that checks every length once, where the bytes come in, and yields
 * only messages and attributes that fit. Bytes from the kernel that do not parse end the walk;
 * nothing here throws on them.
 */
import { endianness } from 'node:os';

/** The host's byte order, which netlink uses for every field. */
export const LITTLE_ENDIAN = endianness() === 'LE';

/** struct nlmsghdr field offsets. */
export const NLMSG = { length: 0, type: 4, flags: 6, seq: 8, pid: 12 } as const;
export const NLMSG_HEADER_LEN = NLMSG.pid + 4;
/** struct nlattr field offsets. */
export const NLA = { length: 0, type: 2 } as const;
export const NLA_HEADER_LEN = NLA.type + 2;
/** nla_type bits that are flags, not part of the type. */
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

/** Control message types (linux/netlink.h). */
export const NlmsgType = { Noop: 1, Error: 2, Done: 3, Overrun: 4 } as const;

/** nlmsg_flags. Get requests and new requests give the same bits different names. */
export const NlmFlags = {
  Request: 0x1, Multi: 0x2, Ack: 0x4, Echo: 0x8, DumpInterrupted: 0x10,
  /** Get requests. */
  Root: 0x100, Match: 0x200, Dump: 0x300,
  /** New requests. */
  Replace: 0x100, Exclusive: 0x200, Create: 0x400, Append: 0x800,
  /** Acks: the request was left out of the error message; extended-ack attributes follow. */
  Capped: 0x100, AckTlvs: 0x200,
} as const;

/** Attributes of an error message with extended acks (NLMSGERR_ATTR_*). */
export const NlmsgErrAttr = { Msg: 1, Offset: 2, Cookie: 3 } as const;

export function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Builds one netlink message; `finish` returns its bytes (a view on the writer's buffer). */
export class NetlinkWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private len = 0;

  constructor(type: number, flags: number, seq: number) {
    this.reserve(NLMSG_HEADER_LEN);
    this.view.setUint16(NLMSG.type, type, LITTLE_ENDIAN);
    this.view.setUint16(NLMSG.flags, flags, LITTLE_ENDIAN);
    this.view.setUint32(NLMSG.seq, seq >>> 0, LITTLE_ENDIAN);
    this.view.setUint32(NLMSG.pid, 0, LITTLE_ENDIAN);
  }

  /** Appends `n` zero bytes and returns their offset, for a fixed header to be filled in place. */
  reserve(n: number): number {
    const at = this.len;
    const need = at + align4(n);
    if (need > this.buf.length) {
      const next = new Uint8Array(Math.max(need, Math.ceil(this.buf.length * 1.5)));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    this.buf.fill(0, at, need);
    this.len = need;
    return at;
  }

  u8(at: number, v: number): void { this.view.setUint8(at, v); }
  u16(at: number, v: number): void { this.view.setUint16(at, v, LITTLE_ENDIAN); }
  u32(at: number, v: number): void { this.view.setUint32(at, v >>> 0, LITTLE_ENDIAN); }
  i32(at: number, v: number): void { this.view.setInt32(at, v, LITTLE_ENDIAN); }

  /** An attribute with `value` as its payload. */
  attr(type: number, value: Uint8Array): void {
    const at = this.reserve(NLA_HEADER_LEN + value.length);
    this.u16(at + NLA.length, NLA_HEADER_LEN + value.length);
    this.u16(at + NLA.type, type);
    this.buf.set(value, at + NLA_HEADER_LEN);
  }

  attrU8(type: number, v: number): void { this.attr(type, Uint8Array.of(v)); }

  attrU32(type: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, LITTLE_ENDIAN);
    this.attr(type, b);
  }

  /** A NUL-terminated string attribute (IFLA_IFNAME, IFLA_IFALIAS, IFLA_INFO_KIND). */
  attrString(type: number, s: string): void {
    const utf8 = new TextEncoder().encode(s);
    const b = new Uint8Array(utf8.length + 1);
    b.set(utf8);
    this.attr(type, b);
  }

  /** Opens a nested attribute; close it with `endNest(returned offset)`. */
  beginNest(type: number): number {
    const at = this.reserve(NLA_HEADER_LEN);
    this.u16(at + NLA.type, type | NLA_F_NESTED);
    return at;
  }

  endNest(at: number): void {
    this.u16(at + NLA.length, this.len - at);
  }

  /** The finished message, its length field set. */
  finish(): Uint8Array {
    this.u32(NLMSG.length, this.len);
    return this.buf.subarray(0, this.len);
  }
}

/** One message of a datagram. `body` is everything after the 16-byte header. */
export interface NetlinkMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  readonly body: Uint8Array;
}

/** The messages of a datagram, in order; a length that does not fit ends the walk. */
export function* messages(datagram: Uint8Array): Generator<NetlinkMessage> {
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  let off = 0;
  while (off + NLMSG_HEADER_LEN <= datagram.length) {
    const len = view.getUint32(off + NLMSG.length, LITTLE_ENDIAN);
    if (len < NLMSG_HEADER_LEN || off + len > datagram.length) return;
    yield {
      type: view.getUint16(off + NLMSG.type, LITTLE_ENDIAN),
      flags: view.getUint16(off + NLMSG.flags, LITTLE_ENDIAN),
      seq: view.getUint32(off + NLMSG.seq, LITTLE_ENDIAN),
      pid: view.getUint32(off + NLMSG.pid, LITTLE_ENDIAN),
      body: datagram.subarray(off + NLMSG_HEADER_LEN, off + len),
    };
    off += align4(len);
  }
}

/**
 * The attributes in `bytes` by type (flag bits masked off; the last of a repeated type wins),
 * each value a view on `bytes`. An attribute whose length does not fit ends the walk.
 */
export function attributes(bytes: Uint8Array): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 0;
  while (off + NLA_HEADER_LEN <= bytes.length) {
    const len = view.getUint16(off + NLA.length, LITTLE_ENDIAN);
    if (len < NLA_HEADER_LEN || off + len > bytes.length) break;
    out.set(view.getUint16(off + NLA.type, LITTLE_ENDIAN) & NLA_TYPE_MASK, bytes.subarray(off + NLA_HEADER_LEN, off + len));
    off += align4(len);
  }
  return out;
}

/** Reads a u8 or u32 value of an attribute, or undefined when it is too short. */
export function readU8(v: Uint8Array | undefined): number | undefined {
  return v && v.length >= 1 ? v[0] : undefined;
}

export function readU32(v: Uint8Array | undefined): number | undefined {
  return v && v.length >= 4 ? new DataView(v.buffer, v.byteOffset, 4).getUint32(0, LITTLE_ENDIAN) : undefined;
}

/** A NUL-terminated (or unterminated) string value. */
export function readString(v: Uint8Array | undefined): string | undefined {
  if (!v) return undefined;
  const nul = v.indexOf(0);
  return new TextDecoder().decode(nul >= 0 ? v.subarray(0, nul) : v);
}

/** The errno and extended-ack text of an NLMSG_ERROR body (errno 0 is an ack). */
export interface NetlinkAck {
  readonly errno: number;
  /** The kernel's own explanation (NLMSGERR_ATTR_MSG), when it gave one. */
  readonly message: string | undefined;
  /** The sequence number of the request it answers. */
  readonly seq: number;
}

/**
 * struct nlmsgerr: a negative errno (i32), then the request's header (and, unless Capped, its
 * body), then with AckTlvs the extended-ack attributes. Undefined when the body is too short.
 */
export function parseAck(m: NetlinkMessage): NetlinkAck | undefined {
  if (m.body.length < 4 + NLMSG_HEADER_LEN) return undefined;
  const view = new DataView(m.body.buffer, m.body.byteOffset, m.body.byteLength);
  const errno = -view.getInt32(0, LITTLE_ENDIAN) | 0; // | 0: an ack is 0, not -0
  const requestLen = view.getUint32(4 + NLMSG.length, LITTLE_ENDIAN);
  const seq = view.getUint32(4 + NLMSG.seq, LITTLE_ENDIAN);
  let message: string | undefined;
  if (m.flags & NlmFlags.AckTlvs) {
    const echoed = m.flags & NlmFlags.Capped ? NLMSG_HEADER_LEN : align4(requestLen);
    if (4 + echoed <= m.body.length) message = readString(attributes(m.body.subarray(4 + echoed)).get(NlmsgErrAttr.Msg));
  }
  return { errno, message, seq };
}
