/**
 * The kernel guard: keeps what the agent set on the node (its device, addresses and routes, and
 * its nftables table) as the agent set it, for as long as the agent runs.
 *
 * It listens to netlink on sockets of its own rather than running `ip monitor` and `nft
 * monitor`: rtnetlink's link, address and route groups bring the messages `device.ts` already
 * decodes, nfnetlink's nftables group names the table each change touched; there is no child
 * process to supervise and no text to parse, and libuv wakes the main thread only when the kernel
 * reports a change. An event only says "look again": a change that concerns the agent's state
 * (its link, an address on it, a main-table route to one of its destinations, anything in its
 * table) schedules one check a moment later, so a burst of events (a deleted device sends a
 * dozen) costs one check, and the check compares everything, not just what the event named. A
 * periodic check backs the events up: it catches what the kernel does not announce (accept_local
 * changed through /proc/sys sends no event) and whatever a lost event (socket overrun) would have
 * shown. The periodic check of the nftables table costs a netlink round trip, not a process,
 * while the ruleset's generation has not moved (nft-table.ts).
 *
 * Every fix is logged (`kernel state repaired`, with what and how) and counted in
 * `vxnet_kernel_repairs_total{what}`; a re-created device counts once, as `device`, however many
 * settings it then needed. A check that cannot repair (the kernel refuses, the name is taken by
 * another device, nft fails) makes `health()` unhealthy with the reason, which fails /healthz,
 * until a later check succeeds. Checks that keep finding something to fix back off, up to a few
 * seconds apart, so a program that fights over the device cannot make the agent spin.
 */
import type { LogFn } from '../agent/log.js';
import { describeFix, REPAIR_KINDS, type DeviceSpec, type RepairKind } from './device-spec.js';
import type { Convergence } from './device.js';
import { nftEventTable, NFTABLES_GROUP } from './netlink/nftables.js';
import { parseAddr, parseLink, parseRoute, Rtm, RtmGroup, RtTable } from './netlink/rtnetlink.js';
import { NetlinkEvents, NetlinkProtocol, type EventBatch } from './netlink/socket.js';
import type { NetlinkMessage } from './netlink/wire.js';

/** How soon after an event the state is checked: long enough to take in a burst. */
const SETTLE_MS = 20;
/** Checks that repaired something within this window count towards the back-off ... */
const FIGHT_WINDOW_MS = 10_000;
/** ... once there are more of them than this ... */
const FIGHT_FREE_REPAIRS = 5;
/** ... and it grows up to this. */
const MAX_BACKOFF_MS = 5000;
/** The periodic check. */
export const BACKSTOP_MS = 10_000;

/** What the guard counts: the device's kinds of fix, and the nftables table. */
export const GUARDED_KINDS = [...REPAIR_KINDS, 'nftables'] as const;
export type GuardedKind = (typeof GUARDED_KINDS)[number];

/** What the guard keeps: the device (`NodeDevice`). */
export interface GuardedDevice {
  readonly name: string;
  readonly ifindex: number;
  readonly spec: DeviceSpec;
  /** Brings the device to its spec; throws when it cannot. */
  converge(): Convergence;
}

/** What the guard keeps: the nftables table (`OwnedNftTable`). */
export interface GuardedTable {
  readonly name: string;
  /** Whether an nftables event about (family, table) concerns this table. */
  concerns(family: number, table: string): boolean;
  /** Installs it again when it differs; returns what was wrong, or undefined. Throws when it cannot. */
  check(): Promise<string | undefined>;
}

export interface GuardOptions {
  readonly device: GuardedDevice;
  /** The nftables table, when the agent installed one. */
  readonly nftables?: GuardedTable | undefined;
  readonly log: LogFn;
  readonly backstopMs?: number;
}

export class KernelGuard {
  private readonly counts = new Map<GuardedKind, number>(GUARDED_KINDS.map((k) => [k, 0]));
  private readonly sockets: NetlinkEvents[] = [];
  private backstop: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;
  private running: Promise<GuardedKind[]> | undefined;
  private again: string | undefined;
  private failure: string | undefined;
  /** When the recent checks that repaired something ran. */
  private recentRepairs: number[] = [];
  private stopped = false;

  constructor(private readonly o: GuardOptions) {}

  start(): void {
    this.stopped = false;
    this.listen('rtnetlink', NetlinkProtocol.Route,
      RtmGroup.Link | RtmGroup.Ipv4Addr | RtmGroup.Ipv4Route | RtmGroup.Ipv6Addr | RtmGroup.Ipv6Route);
    if (this.o.nftables) this.listen('nftables', NetlinkProtocol.Netfilter, NFTABLES_GROUP);
    this.backstop = setInterval(() => void this.check('periodic check'), this.o.backstopMs ?? BACKSTOP_MS);
    this.backstop.unref();
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.sockets) s.close();
    this.sockets.length = 0;
    if (this.backstop) clearInterval(this.backstop);
    if (this.pending) clearTimeout(this.pending);
    this.pending = undefined;
  }

  /** Repairs so far, by what (every kind present, zeros included). */
  repairs(): Record<GuardedKind, number> {
    return Object.fromEntries(this.counts) as Record<GuardedKind, number>;
  }

  health(): { healthy: boolean; reason: string } {
    return this.failure ? { healthy: false, reason: `cannot repair the kernel state: ${this.failure}` } : { healthy: true, reason: 'kernel state as configured' };
  }

  /** Checks and repairs now; resolves to the kinds repaired. One check runs at a time; a check
   * asked for while one runs runs once more after it. */
  check(trigger: string): Promise<GuardedKind[]> {
    if (this.pending) clearTimeout(this.pending);
    this.pending = undefined;
    if (this.running) {
      this.again = trigger;
      return this.running;
    }
    this.running = this.checkOnce(trigger).finally(() => {
      this.running = undefined;
      const next = this.again;
      this.again = undefined;
      if (next !== undefined && !this.stopped) void this.check(next);
    });
    return this.running;
  }

  private async checkOnce(trigger: string): Promise<GuardedKind[]> {
    if (this.stopped) return [];
    const dev = this.o.device;
    const repaired: GuardedKind[] = [];
    const problems: string[] = [];
    try {
      const c = dev.converge();
      if (c.device !== undefined) {
        repaired.push('device');
        this.o.log('warn', 'kernel state repaired', { what: 'device', detail: c.device, steps: c.fixes.map((f) => describeFix(f, dev.name)), trigger, device: dev.name });
      } else {
        for (const f of c.fixes) {
          repaired.push(f.what);
          this.o.log('warn', 'kernel state repaired', { what: f.what, detail: describeFix(f, dev.name), trigger, device: dev.name });
        }
      }
    } catch (err) {
      problems.push((err as Error).message);
    }
    const table = this.o.nftables;
    if (table) {
      try {
        const fixed = await table.check();
        if (fixed !== undefined) {
          repaired.push('nftables');
          this.o.log('warn', 'kernel state repaired', { what: 'nftables', detail: fixed, trigger });
        }
      } catch (err) {
        problems.push(`nftables table ${table.name}: ${(err as Error).message}`);
      }
    }
    for (const k of repaired) this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    if (repaired.length > 0) this.recentRepairs.push(Date.now());
    const failure = problems.length > 0 ? problems.join('; ') : undefined;
    if (failure !== undefined && failure !== this.failure) {
      this.o.log('error', 'cannot repair the kernel state; /healthz fails until it can', { error: failure, trigger, device: dev.name });
    } else if (failure === undefined && this.failure !== undefined) {
      this.o.log('info', 'kernel state repairable again', { device: dev.name });
    }
    this.failure = failure;
    return repaired;
  }

  private listen(what: string, protocol: number, groups: number): void {
    try {
      this.sockets.push(new NetlinkEvents(protocol, groups, (b) => this.onEvents(b), (err) => {
        this.o.log('warn', `${what} event socket failed; checking periodically only`, { error: err.message });
      }));
    } catch (err) {
      this.o.log('warn', `cannot listen to ${what} events; checking periodically only`, { error: (err as Error).message });
    }
  }

  private onEvents(b: EventBatch): void {
    if (this.stopped) return;
    if (b.overrun) this.schedule('netlink events lost (overrun)');
    else if (b.messages.some((m) => this.concerns(m))) this.schedule('netlink event');
  }

  private schedule(trigger: string): void {
    if (this.pending) return;
    // Back off while something keeps undoing our fixes: doubling per repair beyond the free ones.
    const now = Date.now();
    this.recentRepairs = this.recentRepairs.filter((t) => now - t < FIGHT_WINDOW_MS);
    const excess = Math.max(0, this.recentRepairs.length - FIGHT_FREE_REPAIRS);
    const delay = Math.min(MAX_BACKOFF_MS, SETTLE_MS * 2 ** Math.min(excess, 16));
    this.pending = setTimeout(() => void this.check(trigger), delay);
    this.pending.unref();
  }

  /** Whether an event is about the agent's state: its link, an address on it, a route it should
   * hold, anything in its nftables table. */
  private concerns(m: NetlinkMessage): boolean {
    const dev = this.o.device;
    switch (m.type) {
      case Rtm.NewLink:
      case Rtm.DelLink: {
        const l = parseLink(m);
        return l !== undefined && (l.index === dev.ifindex || l.name === dev.name);
      }
      case Rtm.NewAddr:
      case Rtm.DelAddr:
        return parseAddr(m)?.index === dev.ifindex;
      case Rtm.NewRoute:
      case Rtm.DelRoute: {
        const r = parseRoute(m);
        if (!r || r.table !== RtTable.Main) return false;
        return r.oif === dev.ifindex || dev.spec.routes.some((s) => s.family === r.family && s.dst === r.dst && s.dstLen === r.dstLen);
      }
      default: {
        const t = nftEventTable(m);
        return t !== undefined && this.o.nftables !== undefined && this.o.nftables.concerns(t.family, t.table);
      }
    }
  }
}
