/**
 * The agent's TUN device as kernel state it owns: created persistent (TUNSETPERSIST) or adopted
 * from an earlier agent, brought to its spec, and put back when something changes it.
 *
 * Persistent, because the device, its addresses and the cluster route must outlive the agent:
 * while no agent runs (a restart, an image pull, a crash), packets for remote pods still route
 * into the device, which has no reader and drops them. Without it the route would vanish with the
 * device, and those packets would follow the default route onto the underlay unencapsulated.
 *
 * Adopting: TUNSETIFF on an existing name attaches to it when it is a multi-queue TUN device (as
 * the agent always opens it; see device/native-tun.ts) with no queue attached (the kernel updates
 * its vnet-header flag to ours). A multi-queue device takes any number of queues, so one that
 * another process holds would be shared, not refused: the agent checks the queue count first.
 * Anything else of that name is refused before the agent touches it, with what the name is
 * taken by and what to do.
 *
 * Re-creating: when the device is deleted while the agent runs, the data path's fds are left
 * detached (their reads fail with EBADFD). TUNSETIFF on the first of them creates a device of the
 * name again, on the others attaches them to it as queues, so the worker threads carry on with
 * the fds they have, and `converge` then configures the new device like a fresh one.
 */
import { nativeIo, TunFlags } from '../device/native.js';
import { openTun, type TunHandle } from '../device/native-tun.js';
import { describeFix, planFixes, wantsIpv6, type DeviceSpec, type DeviceState, type Fix } from './device-spec.js';
import { DeviceConflictError, KernelSetupError } from './errors.js';
import {
  AddrGenMode, encodeAddr, encodeDumpAddrs, encodeDumpRoutes, encodeGetLink, encodeReplaceRoute, encodeSetLink,
  parseAddr, parseLink, parseRoute, TunType, type AddrRepr, type Family, type LinkChange, type LinkRepr, type RouteRepr,
} from './netlink/rtnetlink.js';
import { errnoName, NetlinkError, type NetlinkSocket } from './netlink/socket.js';
import { ensureIpv6Enabled } from './sysctl.js';

const EPERM = 1;
const EACCES = 13;
const EBUSY = 16;
const EINVAL = 22;
/** Passes of read, plan and apply before giving up on a device that keeps changing under us. */
const MAX_PASSES = 3;

export interface OpenedDevice {
  readonly tun: TunHandle;
  readonly ifindex: number;
  /** The device as it was found, when the agent adopted one instead of creating it. */
  readonly adopted: LinkRepr | undefined;
}

/** What one `converge` did: the fixes applied, and what happened to the device itself. */
export interface Convergence {
  readonly fixes: readonly Fix[];
  /** Set when the device was re-created, re-attached or renamed back: what was found. */
  readonly device: string | undefined;
}

/** Why `link` cannot be the agent's device, or undefined when it can be adopted. */
export function adoptionProblem(link: LinkRepr): string | undefined {
  const name = link.name;
  const remedy = `set "device" to a free name, or remove it if nothing uses it (ip link del ${name})`;
  if (link.kind !== 'tun') {
    const what = link.kind ? `a ${link.kind} device` : 'a device of no link kind (a physical NIC?)';
    return `${name} already exists and is ${what}, not a TUN device: another program owns that name; ${remedy}`;
  }
  if (!link.tun) return undefined; // a kernel before 4.15 does not describe it: TUNSETIFF decides
  if (link.tun.type === TunType.Tap) return `${name} already exists and is a TAP device (layer 2); vxnet needs a TUN device (layer 3); ${remedy}`;
  if (!link.tun.multiQueue) return `${name} already exists as a single-queue TUN device, which vxnet (multi-queue) cannot attach to; ${remedy}`;
  if (link.tun.queues > 0) {
    return `TUN device ${name} is held by another process (${link.tun.queues} queue${link.tun.queues === 1 ? '' : 's'} attached): an agent with another runDir, or another program using the name. Stop it, or set "device" to another name`;
  }
  return undefined;
}

export class NodeDevice {
  private tun: TunHandle | undefined;
  private index = 0;

  constructor(readonly spec: DeviceSpec, private readonly nl: NetlinkSocket) {}

  get name(): string { return this.spec.name; }
  /** The device's interface index (it changes when the device is re-created). */
  get ifindex(): number { return this.index; }

  /** Creates the device with `queues` queues, or adopts one of its name, and makes it persistent. */
  open(vnetHeader: boolean, queues: number): OpenedDevice {
    const before = this.link();
    const problem = before && adoptionProblem(before);
    if (problem) throw new DeviceConflictError(problem);
    let tun: TunHandle;
    try {
      tun = openTun(this.name, vnetHeader, queues);
    } catch (err) {
      throw this.attachError(err as Error & { errno?: number });
    }
    const r = nativeIo().tunSetPersist(tun.fd, 1);
    if (r !== 0) {
      for (const fd of tun.fds) nativeIo().close(fd);
      throw new KernelSetupError(`make ${this.name} persistent (TUNSETPERSIST)`, errnoName(r), 'the agent needs CAP_NET_ADMIN');
    }
    this.tun = tun;
    this.index = this.link()?.index ?? 0;
    return { tun, ifindex: this.index, adopted: before };
  }

  /**
   * Takes over the queues a predecessor agent passed on (src/node/handover.ts): nothing is
   * opened, so the queues stay attached and no packet finds the device without a reader. The
   * device must exist under our name; `converge` then checks it as after `open`.
   */
  adoptQueues(tun: TunHandle): OpenedDevice {
    const link = this.link();
    if (!link) throw new KernelSetupError(`take over ${this.name}`, 'the device handed over is not there under that name');
    this.tun = tun;
    this.index = link.index;
    return { tun, ifindex: this.index, adopted: link };
  }

  /**
   * Brings the device to its spec: re-attaches or renames it back when it is gone, then reads,
   * plans and applies until nothing differs. Throws KernelSetupError or DeviceConflictError when
   * the kernel refuses a fix, or the device keeps changing faster than it is fixed.
   */
  converge(): Convergence {
    const done: Fix[] = [];
    let device: string | undefined;
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      device = this.ensureAttached() ?? device;
      if (wantsIpv6(this.spec)) ensureIpv6Enabled(this.name);
      const state = this.state();
      const fixes = planFixes(this.spec, state);
      if (fixes.length === 0) return { fixes: done, device };
      for (const f of fixes) {
        this.apply(f);
        done.push(f);
      }
    }
    const left = planFixes(this.spec, this.state());
    if (left.length === 0) return { fixes: done, device };
    throw new KernelSetupError(`configure ${this.name}`, `it still differs after ${MAX_PASSES} rounds of fixes (${left.map((f) => describeFix(f, this.name)).join('; ')}): something else keeps changing it`, 'find the program that manages this device and exclude it');
  }

  /** The device's link, by name; undefined when there is none. */
  link(): LinkRepr | undefined {
    const m = this.nl.get(`read link ${this.name}`, encodeGetLink(this.nl.nextSeq(), { name: this.name }));
    return m && parseLink(m);
  }

  /** The device, its addresses and the main-table routes to the spec's destinations. */
  state(): DeviceState {
    const link = this.link();
    if (!link) throw new KernelSetupError(`read ${this.name}`, 'the device disappeared while it was being configured');
    const addresses: AddrRepr[] = [];
    for (const family of [4, 6] as const) {
      for (const m of this.nl.dump(`read the addresses of ${this.name}`, (seq) => encodeDumpAddrs(seq, family, link.index))) {
        const a = parseAddr(m);
        if (a && a.family === family && a.index === link.index) addresses.push(a);
      }
    }
    const routes: RouteRepr[] = [];
    for (const family of [...new Set(this.spec.routes.map((r) => r.family))] as Family[]) {
      for (const m of this.nl.dump(`read the IPv${family} routes`, (seq) => encodeDumpRoutes(seq, family))) {
        const r = parseRoute(m);
        if (r && this.spec.routes.some((s) => s.family === r.family && s.dst === r.dst && s.dstLen === r.dstLen)) routes.push(r);
      }
    }
    return { link, addresses, routes };
  }

  private apply(f: Fix): void {
    try {
      switch (f.what) {
        case 'mtu': return this.setLink({ mtu: f.want });
        case 'queue_length': return this.setLink({ txQueueLen: f.want });
        case 'alias': return this.setLink({ alias: f.want });
        case 'accept_local': return this.setLink({ acceptLocal: 1 });
        case 'addr_gen_mode': return this.setLink({ addrGenMode: AddrGenMode.None });
        case 'up': return this.setLink({ up: true });
        case 'address':
          return this.nl.request(`${f.action} address`, encodeAddr(this.nl.nextSeq(), f.action, {
            ...f.address, index: this.index, noDad: f.address.family === 6,
          }));
        case 'route':
          return this.nl.request('replace route', encodeReplaceRoute(this.nl.nextSeq(), { ...f.route, oif: this.index }));
      }
    } catch (err) {
      if (!(err instanceof NetlinkError)) throw err;
      throw new KernelSetupError(`on ${this.name}: ${describeFix(f, this.name)}`, `${errnoName(err.errno)}${err.kernelMessage ? `: ${err.kernelMessage}` : ''}`,
        err.errno === EPERM || err.errno === EACCES ? 'the agent needs CAP_NET_ADMIN' : '');
    }
  }

  private setLink(c: LinkChange): void {
    this.nl.request(`change link ${this.name}`, encodeSetLink(this.nl.nextSeq(), this.index, c));
  }

  /**
   * Makes sure the device of our name is the one our fd is attached to. Returns what was wrong
   * when something had to be done, undefined when nothing was.
   */
  private ensureAttached(): string | undefined {
    const tun = this.tun;
    if (!tun) throw new Error('NodeDevice.converge before open');
    const byName = this.link();
    if (byName && byName.index === this.index) return undefined;
    const ours = this.index > 0 ? this.linkByIndex(this.index) : undefined;
    if (ours) {
      // Still ours, under another name: take the name back (the kernel renames only a down device).
      if (byName) throw new DeviceConflictError(`${this.name} was renamed to ${ours.name} and another device now has the name ${this.name}; delete one of them (ip link del ...) so the agent can take its name back`);
      this.setLink({ up: false });
      this.setLink({ name: this.name });
      return `renamed to ${ours.name}; renamed back`;
    }
    const problem = byName && adoptionProblem(byName);
    if (problem) throw new DeviceConflictError(problem);
    const io = nativeIo();
    const flags = TunFlags.MultiQueue | (tun.vnetHeader ? TunFlags.VnetHeader : 0);
    for (const fd of tun.fds) {
      const r = io.tunAttach(fd, this.name, flags);
      if (r !== 0) throw this.attachError(Object.assign(new Error(errnoName(r)), { errno: r }));
    }
    if (tun.vnetHeader && tun.offloads !== 0) io.tunSetOffload(tun.fd, tun.offloads);
    const p = io.tunSetPersist(tun.fd, 1);
    if (p !== 0) throw new KernelSetupError(`make ${this.name} persistent (TUNSETPERSIST)`, errnoName(p));
    this.index = this.link()?.index ?? 0;
    return byName ? `${this.name} was replaced by another TUN device; attached to it` : `${this.name} was deleted; created again`;
  }

  private linkByIndex(index: number): LinkRepr | undefined {
    const m = this.nl.get(`read link ${index}`, encodeGetLink(this.nl.nextSeq(), { index }));
    return m && parseLink(m);
  }

  /** TUNSETIFF's refusals, in the operator's terms. */
  private attachError(err: Error & { errno?: number }): Error {
    if (err.errno === EBUSY) {
      return new DeviceConflictError(`TUN device ${this.name} is held by another process: an agent with another runDir, or another program using the name. Stop it, or set "device" to another name`);
    }
    if (err.errno === EINVAL) {
      return new DeviceConflictError(`${this.name} exists with TUN flags vxnet cannot attach with (TAP, single-queue, or not a TUN device); set "device" to a free name, or remove it (ip link del ${this.name})`);
    }
    return new KernelSetupError(`open TUN device ${this.name}`, err.message, 'the agent needs CAP_NET_ADMIN and /dev/net/tun');
  }
}
