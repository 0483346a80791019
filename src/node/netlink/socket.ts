/**
 * rtnetlink sockets over the addon: one for requests, one for events.
 *
 * Requests are synchronous, on the main thread. That is cheap and cannot stall: rtnetlink runs a
 * request inside the sendto(2) that carries it, so when the send returns, the answer (or the
 * first part of a dump, the rest produced as it is read) is already queued on the socket. A
 * reply that is not there within a couple of seconds means a broken kernel, and is an error.
 * The kernel's refusal comes back as an errno and, since Linux 4.12, a sentence of its own
 * (extended ack); `NetlinkError` carries both, with what was being done.
 *
 * Events come on sockets of their own, bound to multicast groups (rtnetlink's link, address and
 * route groups; nfnetlink's nftables group). libuv watches each with the event loop's own epoll
 * (the addon's `watchReadable`), so the agent wakes only when the kernel reports a change. If changes come faster than the agent reads them, the kernel drops
 * some and says so (ENOBUFS); the listener then hears `overrun` and must re-read everything.
 */
import { getSystemErrorMap } from 'node:util';
import { nativeIo } from '../../device/native.js';
import { LITTLE_ENDIAN, messages, NLMSG, NlmFlags, NlmsgType, parseAck, type NetlinkMessage } from './wire.js';

/** Netlink protocols (linux/netlink.h). */
export const NetlinkProtocol = { Route: 0, Netfilter: 12 } as const;

/** Large enough for any datagram the kernel sends (dumps are cut at 32 KB). */
const RECV_BUFFER = 64 * 1024;
/** How long a request may wait for its answer. */
const ANSWER_MS = 2000;
/** Receive buffer of the event socket: room for the burst a device deletion causes. */
const EVENT_RCVBUF = 1 << 20;
const ENODEV = 19;
const EPROTO = 71;
const ENOBUFS = 105;
const ETIMEDOUT = 110;

/** "EEXIST (File exists)" for an errno number. */
export function errnoText(errno: number): string {
  const e = getSystemErrorMap().get(-errno);
  return e ? `${e[0]} (${e[1]})` : `errno ${errno}`;
}

export function errnoName(errno: number): string {
  return getSystemErrorMap().get(-errno)?.[0] ?? `errno ${errno}`;
}

/** The kernel refused a request, or the socket failed. */
export class NetlinkError extends Error {
  constructor(readonly what: string, readonly errno: number, readonly kernelMessage?: string) {
    super(`${what}: ${errnoText(errno)}${kernelMessage ? `: ${kernelMessage}` : ''}`);
    this.name = 'NetlinkError';
  }
}

export class NetlinkSocket {
  private readonly buf = new Uint8Array(RECV_BUFFER);
  private readonly from = new Uint32Array(2);
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private closed = false;

  private constructor(private readonly fd: number) {}

  /** A request socket of `protocol` (rtnetlink unless told). */
  static open(protocol: number = NetlinkProtocol.Route): NetlinkSocket {
    return new NetlinkSocket(nativeIo().netlinkOpen(protocol, 0, 0));
  }

  /** The next sequence number, for the message about to be built. */
  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  /** Sends a request that asks for an ack; throws NetlinkError when the kernel refuses it. */
  request(what: string, msg: Uint8Array): void {
    this.exchange(what, msg, () => undefined);
  }

  /** Sends a get request for one object; undefined when the kernel says it does not exist (ENODEV). */
  get(what: string, msg: Uint8Array): NetlinkMessage | undefined {
    let found: NetlinkMessage | undefined;
    try {
      this.exchange(what, msg, (m) => { found = m; });
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === ENODEV) return undefined;
      throw err;
    }
    return found;
  }

  /** Sends a dump request and returns every message of the answer. A dump the kernel marks as
   * interrupted (the table changed while it was read) is read again, up to three times. */
  dump(what: string, build: (seq: number) => Uint8Array): NetlinkMessage[] {
    for (let attempt = 0; ; attempt++) {
      const out: NetlinkMessage[] = [];
      let interrupted = false;
      this.exchange(what, build(this.nextSeq()), (m) => {
        if (m.flags & NlmFlags.DumpInterrupted) interrupted = true;
        out.push(m);
      });
      if (!interrupted || attempt >= 2) return out;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    nativeIo().close(this.fd);
  }

  /**
   * Sends `msg` and hands every answer message with its sequence number to `each`, until the
   * ack, the end of a dump, or a single answer to a plain get. Messages of other sequence
   * numbers (a late answer to an earlier request) are skipped.
   */
  private exchange(what: string, msg: Uint8Array, each: (m: NetlinkMessage) => void): void {
    const io = nativeIo();
    const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
    const seq = view.getUint32(NLMSG.seq, LITTLE_ENDIAN);
    const flags = view.getUint16(NLMSG.flags, LITTLE_ENDIAN);
    const isDump = (flags & NlmFlags.Dump) === NlmFlags.Dump;
    const wantsAck = (flags & NlmFlags.Ack) !== 0;
    const sent = io.netlinkSend(this.fd, msg, msg.length);
    if (sent !== 0) throw new NetlinkError(what, sent);
    const deadline = Date.now() + ANSWER_MS;
    for (;;) {
      const n = io.netlinkRecv(this.fd, this.buf, Math.max(0, deadline - Date.now()), this.from);
      if (n < 0) throw new NetlinkError(what, -n);
      if (n === 0) throw new NetlinkError(`${what}: no answer from the kernel within ${ANSWER_MS} ms`, ETIMEDOUT);
      if (this.from[0] !== 0) continue; // not from the kernel
      // A copy: the messages outlive this buffer, which the next read reuses.
      for (const m of messages(this.buf.slice(0, n))) {
        if (m.seq !== seq) continue;
        if (m.type === NlmsgType.Error) {
          const ack = parseAck(m);
          if (!ack) throw new NetlinkError(`${what}: malformed error message from the kernel`, EPROTO);
          if (ack.errno !== 0) throw new NetlinkError(what, ack.errno, ack.message);
          return;
        }
        if (m.type === NlmsgType.Done) return;
        if (m.type === NlmsgType.Noop || m.type === NlmsgType.Overrun) continue;
        each(m);
        if (!isDump && !wantsAck) return;
      }
    }
  }
}

/** What the event socket delivers: the messages of one wake-up, or the news that some were lost. */
export interface EventBatch {
  readonly messages: readonly NetlinkMessage[];
  /** The kernel dropped events (ENOBUFS): what was missed is unknown; re-read everything. */
  readonly overrun: boolean;
}

/** Listens to multicast groups of a netlink protocol until closed. */
export class NetlinkEvents {
  private readonly buf = new Uint8Array(RECV_BUFFER);
  private readonly from = new Uint32Array(2);
  private readonly fd: number;
  private readonly watch: number;
  private closed = false;

  /**
   * `onBatch` runs on the main thread for every wake-up; `onFailure` when libuv can no longer
   * poll the socket (the listener should fall back to periodic checks).
   */
  constructor(protocol: number, groups: number, private readonly onBatch: (b: EventBatch) => void, private readonly onFailure: (err: NetlinkError) => void) {
    const io = nativeIo();
    this.fd = io.netlinkOpen(protocol, groups, EVENT_RCVBUF);
    try {
      this.watch = io.watchReadable(this.fd, (status) => this.readable(status));
    } catch (err) {
      io.close(this.fd);
      throw err;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const io = nativeIo();
    io.unwatchReadable(this.watch);
    io.close(this.fd);
  }

  private readable(status: number): void {
    if (this.closed) return;
    if (status < 0) {
      this.close();
      this.onFailure(new NetlinkError('watch the netlink event socket', -status));
      return;
    }
    const io = nativeIo();
    const out: NetlinkMessage[] = [];
    let overrun = false;
    // Drain what is queued now; a bounded number of reads, so a flood cannot hold the loop.
    for (let i = 0; i < 64; i++) {
      const n = io.netlinkRecv(this.fd, this.buf, 0, this.from);
      if (n === 0) break;
      if (n < 0) {
        if (-n === ENOBUFS) { overrun = true; continue; }
        break;
      }
      if (this.from[0] !== 0) continue; // only the kernel speaks on these groups
      // Copy: the buffer is reused by the next read.
      for (const m of messages(this.buf.slice(0, n))) out.push(m);
    }
    if (out.length > 0 || overrun) this.onBatch({ messages: out, overrun });
  }
}
