/**
 * One batch of outbound UDP messages, as typed arrays the addon sends in one call, plus what the
 * outbound side needs afterwards to count each message exactly.
 *
 * A message is a list of pieces of the slab (an iovec): a plain packet is one piece (its VXLAN
 * header written in the headroom in front of it); a run of TSO segments to one peer is one UDP
 * GSO message of 2 pieces per segment (the segment's rebuilt headers, then its payload where
 * the TUN read left it); and consecutive plain packets of one size to one peer and socket (a
 * stream of small UDP datagrams, a run of TCP acknowledgments) are one UDP GSO message of one
 * piece per packet (joinRun). Per message the plan records the peer's state index, how many
 * datagrams it carries and their inner bytes, and where one inner packet's headers lie (to
 * quote in an ICMP error if the path refuses it).
 *
 * Accounting happens after the send, from the kernel's answer per message: what went is
 * counted on its peer; what was refused is counted as a drop by reason and as an I/O error by
 * errno. Nothing is estimated.
 */
import type { SendList } from '../device/types.js';

export class SendPlan implements SendList {
  readonly iovOffsets: Int32Array;
  readonly iovLengths: Int32Array;
  readonly first: Int32Array;
  readonly pieces: Int32Array;
  readonly results: Int32Array;
  readonly addrs: Uint32Array;
  readonly ports: Uint16Array;
  readonly gso: Int32Array;
  readonly sock: Uint8Array;
  /** Per message: peer state index, datagrams, inner bytes, pieces per datagram, and the
   * contiguous inner headers of one of its packets (offset, length) for ICMP quoting. */
  readonly stateIdx: Int32Array;
  readonly datagrams: Int32Array;
  readonly bytes: Float64Array;
  readonly perDatagram: Int32Array;
  readonly innerAt: Int32Array;
  readonly innerLen: Int32Array;
  count = 0;
  iovCount = 0;

  /**
   * `shareIov`: another plan whose iovec table this one refers to (a fallback plan resends the
   * pieces of a refused message as single datagrams without copying the table).
   */
  constructor(readonly slab: Uint8Array, readonly maxMessages: number, readonly maxPieces: number, shareIov?: SendPlan) {
    this.iovOffsets = shareIov ? shareIov.iovOffsets : new Int32Array(maxPieces);
    this.iovLengths = shareIov ? shareIov.iovLengths : new Int32Array(maxPieces);
    this.first = new Int32Array(maxMessages);
    this.pieces = new Int32Array(maxMessages);
    this.results = new Int32Array(maxMessages);
    this.addrs = new Uint32Array(maxMessages);
    this.ports = new Uint16Array(maxMessages);
    this.gso = new Int32Array(maxMessages);
    this.sock = new Uint8Array(maxMessages);
    this.stateIdx = new Int32Array(maxMessages);
    this.datagrams = new Int32Array(maxMessages);
    this.bytes = new Float64Array(maxMessages);
    this.perDatagram = new Int32Array(maxMessages);
    this.innerAt = new Int32Array(maxMessages);
    this.innerLen = new Int32Array(maxMessages);
  }

  reset(): void {
    this.count = 0;
    this.iovCount = 0;
  }

  /** True when `messages` more messages of `pieces` more pieces fit. */
  hasRoom(messages: number, pieces: number): boolean {
    return this.count + messages <= this.maxMessages && this.iovCount + pieces <= this.maxPieces;
  }

  /** Appends a piece to the iovec table (for the message being built). */
  piece(off: number, len: number): void {
    const j = this.iovCount++;
    this.iovOffsets[j] = off;
    this.iovLengths[j] = len;
  }

  /**
   * Closes a message made of the pieces appended since `firstPiece`. Returns its index.
   */
  message(firstPiece: number, addr: number, port: number, sock: number, gso: number, stateIdx: number,
    datagrams: number, bytes: number, perDatagram: number, innerAt: number, innerLen: number): number {
    const k = this.count++;
    this.first[k] = firstPiece;
    this.pieces[k] = this.iovCount - firstPiece;
    this.addrs[k] = addr;
    this.ports[k] = port;
    this.sock[k] = sock;
    this.gso[k] = gso;
    this.stateIdx[k] = stateIdx;
    this.datagrams[k] = datagrams;
    this.bytes[k] = bytes;
    this.perDatagram[k] = perDatagram;
    this.innerAt[k] = innerAt;
    this.innerLen[k] = innerLen;
    return k;
  }

  /**
   * Adds one whole datagram, the piece just appended (`bytes` of it inner packet), to the last
   * message instead of closing a message of its own, when one UDP GSO send can carry both: the
   * last message is a run of whole datagrams of one piece each, to the same destination through
   * the same socket, and ends with the piece before this one; every datagram of it is `gso`
   * bytes long (the first's length), this one is no longer, and the run stays within
   * `maxDatagrams` and `maxBytes`. A shorter datagram ends the run: the kernel cuts a GSO
   * message every `gso` bytes, so only its last may be short. Returns whether it joined.
   */
  joinRun(addr: number, port: number, sock: number, stateIdx: number, bytes: number, maxDatagrams: number, maxBytes: number): boolean {
    const k = this.count - 1;
    if (k < 0 || this.perDatagram[k] !== 1 || this.first[k]! + this.pieces[k]! !== this.iovCount - 1) return false;
    if (this.addrs[k] !== addr || this.ports[k] !== port || this.sock[k] !== sock || this.stateIdx[k] !== stateIdx) return false;
    const n = this.datagrams[k]!;
    const size = this.gso[k]! > 0 ? this.gso[k]! : this.iovLengths[this.first[k]!]!;
    const len = this.iovLengths[this.iovCount - 1]!;
    if (n >= maxDatagrams || len > size || this.iovLengths[this.iovCount - 2]! !== size || n * size + len > maxBytes) return false;
    this.pieces[k]!++;
    this.datagrams[k] = n + 1;
    this.gso[k] = size;
    this.bytes[k]! += bytes;
    return true;
  }

  /** A message whose pieces are already in the (shared) iovec table: [firstPiece, +pieces). */
  existing(firstPiece: number, pieces: number, addr: number, port: number, sock: number, stateIdx: number,
    bytes: number, innerAt: number, innerLen: number): void {
    const k = this.count++;
    this.first[k] = firstPiece;
    this.pieces[k] = pieces;
    this.addrs[k] = addr;
    this.ports[k] = port;
    this.sock[k] = sock;
    this.gso[k] = 0;
    this.stateIdx[k] = stateIdx;
    this.datagrams[k] = 1;
    this.bytes[k] = bytes;
    this.perDatagram[k] = pieces;
    this.innerAt[k] = innerAt;
    this.innerLen[k] = innerLen;
  }
}
