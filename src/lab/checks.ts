/**
 * Connectivity checks over a lab, each returning what it observed rather than a bare pass/fail:
 * packets sent and received, bits per second, the client address a server saw. `vxnet lab test`
 * prints them; the tests assert on them; the bench reuses the measuring parts.
 *
 * Every probe is bounded: ping by count and -W, iperf3 by -t and a process timeout, the TCP
 * probe by a timer inside the script and a process timeout around it.
 */
import type { Lab, LabPod } from './lab.js';
import { sleep } from './exec.js';
import { backendOf } from './backends/index.js';
import { OUTSIDE_IP } from './topology.js';
import { describeConnection, probe, serviceRound } from './reach.js';

/** Where a probe runs and which address it uses there. */
export interface Endpoint {
  readonly ns: string;
  readonly ip: string;
  readonly label: string;
}

export function podEndpoint(p: LabPod): Endpoint {
  return { ns: p.ns, ip: p.ip, label: p.name };
}

/** The pod's IPv6 address as an endpoint (dual-stack labs). */
export function podEndpoint6(p: LabPod): Endpoint {
  if (p.ip6 === undefined) throw new Error(`pod ${p.name} has no IPv6 address (is the lab dual-stack?)`);
  return { ns: p.ns, ip: p.ip6, label: p.name };
}

export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  /** What was seen, in one line: "3/3 replies, avg 0.21 ms", "server saw 10.244.1.2". */
  readonly observed: string;
}

// ---- ping ---------------------------------------------------------------------------------

export interface PingResult {
  readonly sent: number;
  readonly received: number;
  /** Per-reply round-trip times in ms, in arrival order. */
  readonly rttsMs: number[];
  readonly output: string;
}

export async function ping(
  lab: Lab,
  fromNs: string,
  to: string,
  opts: { count?: number; intervalS?: number; waitS?: number; size?: number } = {},
): Promise<PingResult> {
  const count = opts.count ?? 3;
  const interval = opts.intervalS ?? 0.2;
  const argv = ['ping', '-n', '-c', String(count), '-i', String(interval), '-W', String(opts.waitS ?? 2)];
  if (opts.size !== undefined) argv.push('-s', String(opts.size), '-M', 'do');
  if (to.includes(':')) argv.push('-6');
  argv.push(to);
  const r = await lab.exec(fromNs, argv, { timeoutMs: Math.ceil(count * interval * 1000) + 10_000 });
  return parsePing(r.stdout + r.stderr);
}

export function parsePing(output: string): PingResult {
  const rttsMs: number[] = [];
  for (const m of output.matchAll(/time=([\d.]+) ms/g)) rttsMs.push(Number(m[1]));
  const s = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(output);
  return {
    sent: s ? Number(s[1]) : 0,
    received: s ? Number(s[2]) : rttsMs.length,
    rttsMs,
    output,
  };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}

function pingObserved(r: PingResult): string {
  const avg = r.rttsMs.length ? r.rttsMs.reduce((a, b) => a + b, 0) / r.rttsMs.length : Number.NaN;
  return `${r.received}/${r.sent} replies${r.rttsMs.length ? `, avg ${avg.toFixed(3)} ms` : ''}`;
}

/** Every pod pings every pod on the other nodes (at their IPv6 addresses with family 6). */
export async function pingAllPods(lab: Lab, count = 3, family: 4 | 6 = 4): Promise<CheckResult[]> {
  const pairs: [LabPod, LabPod][] = [];
  for (const a of lab.pods) for (const b of lab.pods) if (a.nodeIndex !== b.nodeIndex) pairs.push([a, b]);
  return mapLimit(pairs, 6, async ([a, b]) => {
    const to = family === 6 ? podEndpoint6(b).ip : b.ip;
    const r = await ping(lab, a.ns, to, { count });
    return {
      name: `ping ${a.name}(${family === 6 ? a.ip6 : a.ip}) -> ${b.name}(${to})`,
      ok: r.sent > 0 && r.received === r.sent,
      observed: pingObserved(r),
    };
  });
}

// ---- iperf3 -------------------------------------------------------------------------------

let nextPort = 5201;
function iperfPort(): number {
  const p = nextPort;
  nextPort = nextPort >= 5299 ? 5201 : nextPort + 1;
  return p;
}

export interface IperfResult {
  /** TCP: receiver's bits per second. UDP: bits per second the receiver got. */
  readonly bitsPerSecond: number;
  /** Bytes the receiver got. */
  readonly bytes: number;
  readonly seconds: number;
  /** The client address as the server's socket saw it (no-NAT evidence). */
  readonly remoteHostSeenByServer: string;
  /** TCP only. */
  readonly retransmits?: number;
  /** UDP only: datagrams the receiver got, and how many it counted as lost. */
  readonly packets?: number;
  readonly lostPackets?: number;
  readonly receivedPps?: number;
  readonly client: unknown;
  readonly server: unknown;
}

export interface IperfOptions {
  seconds?: number;
  streams?: number;
  /** UDP with this payload length and unlimited rate (-b 0). */
  udpLength?: number;
}

interface IperfJson {
  error?: string;
  start?: { connected?: { remote_host?: string; local_host?: string }[] };
  end?: {
    sum_received?: { bytes?: number; bits_per_second?: number; seconds?: number };
    sum_sent?: { retransmits?: number; bytes?: number; bits_per_second?: number };
    sum?: { bytes?: number; bits_per_second?: number; seconds?: number; packets?: number; lost_packets?: number };
  };
}

function parseJson(text: string): IperfJson {
  const i = text.indexOf('{');
  if (i < 0) return { error: text.trim() || 'no output' };
  try {
    return JSON.parse(text.slice(i)) as IperfJson;
  } catch {
    return { error: `unparsable iperf3 output: ${text.slice(0, 200)}` };
  }
}

/** iperf3 client in `client`'s namespace against a one-shot server in `server`'s. */
export async function iperf(lab: Lab, server: Endpoint, client: Endpoint, opts: IperfOptions = {}): Promise<IperfResult> {
  const seconds = opts.seconds ?? 2;
  const port = iperfPort();
  const srv = lab.spawn(server.ns, ['iperf3', '-s', '-1', '-J', '-B', server.ip, '-p', String(port)], (seconds + 20) * 1000);
  try {
    const argv = ['iperf3', '-c', server.ip, '-p', String(port), '-t', String(seconds), '-J', '--connect-timeout', '2000'];
    if (opts.streams !== undefined && opts.streams > 1) argv.push('-P', String(opts.streams));
    if (opts.udpLength !== undefined) argv.push('-u', '-l', String(opts.udpLength), '-b', '0');
    let cj: IperfJson = {};
    for (let attempt = 0; attempt < 15; attempt++) {
      if (!srv.running) {
        const why = parseJson(srv.stdout).error ?? (srv.stderr.trim() || 'no output');
        throw new Error(`iperf3 server in ${server.label} exited (${why}); client said: ${cj.error ?? 'nothing yet'}`);
      }
      const r = await lab.exec(client.ns, argv, { timeoutMs: (seconds + 15) * 1000 });
      cj = parseJson(r.stdout);
      if (!cj.error) break;
      if (!/refused|unable to connect|Cannot assign/i.test(cj.error)) {
        throw new Error(`iperf3 ${client.label} -> ${server.label}: ${cj.error}`);
      }
      await sleep(200);
    }
    if (cj.error) throw new Error(`iperf3 ${client.label} -> ${server.label}: ${cj.error}`);
    const sr = await srv.wait(10_000);
    const sj = parseJson(sr.stdout);
    const remote = sj.start?.connected?.[0]?.remote_host ?? '';
    if (opts.udpLength !== undefined) {
      // The server is the receiver: its end.sum counts what arrived and what it saw missing.
      const sum = sj.end?.sum ?? {};
      const packets = sum.packets ?? 0;
      const lost = sum.lost_packets ?? 0;
      const secs = sum.seconds ?? seconds;
      return {
        bitsPerSecond: sum.bits_per_second ?? 0,
        bytes: sum.bytes ?? 0,
        seconds: secs,
        remoteHostSeenByServer: remote,
        packets,
        lostPackets: lost,
        receivedPps: secs > 0 ? (packets - lost) / secs : 0,
        client: cj,
        server: sj,
      };
    }
    const recv = cj.end?.sum_received ?? {};
    return {
      bitsPerSecond: recv.bits_per_second ?? 0,
      bytes: recv.bytes ?? 0,
      seconds: recv.seconds ?? seconds,
      remoteHostSeenByServer: remote,
      retransmits: cj.end?.sum_sent?.retransmits ?? 0,
      client: cj,
      server: sj,
    };
  } finally {
    if (srv.running) await srv.stop('SIGKILL', 1000);
  }
}

export function formatBps(bps: number): string {
  if (bps >= 1e9) return `${(bps / 1e9).toFixed(2)} Gbit/s`;
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(1)} Mbit/s`;
  return `${(bps / 1e3).toFixed(1)} kbit/s`;
}

// ---- TCP peer address probe ---------------------------------------------------------------

const TCP_SERVER = `
const net = require('node:net');
const [host, port, ms] = process.argv.slice(1);
const t = setTimeout(() => { console.log('TIMEOUT'); process.exit(3); }, Number(ms));
const srv = net.createServer((s) => {
  console.log('PEER ' + s.remoteAddress + ' ' + s.remotePort);
  s.end('hello ' + s.remoteAddress + '\\n');
  srv.close(); clearTimeout(t);
});
srv.listen(Number(port), host, () => console.log('LISTENING'));`;

const TCP_CLIENT = `
const net = require('node:net');
const [host, port, ms] = process.argv.slice(1);
const t = setTimeout(() => { console.log('TIMEOUT'); process.exit(3); }, Number(ms));
const s = net.connect(Number(port), host);
let got = '';
s.on('data', (d) => (got += d));
s.on('end', () => { console.log('LOCAL ' + s.localAddress + ' GOT ' + got.trim()); clearTimeout(t); });
s.on('error', (e) => { console.log('ERROR ' + e.code); process.exit(2); });`;

export interface TcpPeerResult {
  /** Address the server's accepted socket reports as the peer. */
  readonly seenByServer: string;
  /** Address the client's socket was bound to. */
  readonly clientLocal: string;
}

/** A tiny TCP server in `server` prints the peer address of the one connection `clientNs` makes. */
export async function tcpPeerAddress(lab: Lab, server: Endpoint, clientNs: string, port = 7000): Promise<TcpPeerResult> {
  const srv = lab.spawn(server.ns, [process.execPath, '-e', TCP_SERVER, server.ip, String(port), '8000'], 12_000);
  try {
    for (let i = 0; i < 50 && !srv.stdout.includes('LISTENING') && srv.running; i++) await sleep(50);
    if (!srv.stdout.includes('LISTENING')) throw new Error(`TCP probe server did not start: ${srv.stderr}`);
    const c = await lab.exec(clientNs, [process.execPath, '-e', TCP_CLIENT, server.ip, String(port), '5000'], {
      timeoutMs: 10_000,
    });
    const res = await srv.wait(5000);
    const peer = /PEER (\S+)/.exec(res.stdout)?.[1];
    const local = /LOCAL (\S+)/.exec(c.stdout)?.[1];
    if (!peer || !local) throw new Error(`TCP probe ${clientNs} -> ${server.label}: client "${c.stdout.trim()}", server "${res.stdout.trim()}"`);
    return { seenByServer: peer.replace(/^::ffff:/, ''), clientLocal: local.replace(/^::ffff:/, '') };
  } finally {
    if (srv.running) await srv.stop('SIGKILL', 1000);
  }
}

// ---- the `vxnet lab test` suite ------------------------------------------------------------

/** Pick pod pairs on different nodes: first pod of node 1 and first pod of the last node. */
function crossPair(lab: Lab): [LabPod, LabPod] {
  const a = lab.podsOn(1)[0];
  const b = lab.podsOn(lab.nodes.length)[0];
  if (!a || !b || a.nodeIndex === b.nodeIndex) throw new Error('need pods on at least two nodes');
  return [a, b];
}

async function guard(name: string, f: () => Promise<CheckResult | CheckResult[]>): Promise<CheckResult[]> {
  try {
    const r = await f();
    return Array.isArray(r) ? r : [r];
  } catch (err) {
    return [{ name, ok: false, observed: (err as Error).message.split('\n').slice(0, 3).join(' | ') }];
  }
}

export async function iperfBothWays(lab: Lab, a: LabPod, b: LabPod, seconds = 2): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const [s, c] of [
    [b, a],
    [a, b],
  ] as const) {
    out.push(
      ...(await guard(`iperf3 TCP ${c.name} -> ${s.name}`, async () => {
        const r = await iperf(lab, podEndpoint(s), podEndpoint(c), { seconds });
        return {
          name: `iperf3 TCP ${c.name}(${c.ip}) -> ${s.name}(${s.ip})`,
          ok: r.bitsPerSecond > 0 && r.remoteHostSeenByServer === c.ip,
          observed: `${formatBps(r.bitsPerSecond)}, ${r.retransmits} retransmits, server saw client ${r.remoteHostSeenByServer}`,
        };
      })),
    );
  }
  return out;
}

/** Everything `vxnet lab test` checks, in order. */
export async function runChecks(lab: Lab, log: (r: CheckResult) => void = () => undefined): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const add = (rs: CheckResult[]): void => {
    for (const r of rs) {
      results.push(r);
      log(r);
    }
  };
  add(await guard('underlay is routed', () => underlayRouted(lab)));
  add(await guard('ping all pods', () => pingAllPods(lab)));
  if (lab.pods.length > 0 && lab.pods.every((p) => p.ip6 !== undefined)) {
    add(await guard('ping all pods over IPv6', () => pingAllPods(lab, 3, 6)));
  }
  const [a, b] = crossPair(lab);
  add(await iperfBothWays(lab, a, b));
  add(
    await guard('no NAT', async () => {
      const r = await tcpPeerAddress(lab, podEndpoint(b), a.ns);
      return {
        name: `no NAT: TCP ${a.name} -> ${b.name}, server sees client pod address`,
        ok: r.seenByServer === a.ip,
        observed: `server saw ${r.seenByServer}, client pod is ${a.ip}`,
      };
    }),
  );
  const n1 = lab.node(1);
  add(
    await guard('host network -> remote pod', async () => {
      const r = await ping(lab, n1.ns, b.ip);
      const t = await tcpPeerAddress(lab, podEndpoint(b), n1.ns, 7001);
      return {
        name: `host network node1 -> ${b.name}(${b.ip}) on node${b.nodeIndex}`,
        ok: r.received === r.sent && r.sent > 0 && t.seenByServer === t.clientLocal,
        observed: `${pingObserved(r)}; TCP from ${t.clientLocal}, server saw ${t.seenByServer}`,
      };
    }),
  );
  if (lab.outside) add(await guard('pod -> outside host', () => podToOutside(lab, a)));
  if (lab.service) add(await guard('pod -> Service ClusterIP', () => podToClusterIP(lab, a)));
  add(
    await guard('node -> own pods', () =>
      mapLimit(lab.podsOn(1), 4, async (p) => {
        const r = await ping(lab, n1.ns, p.ip);
        return { name: `node1 -> own pod ${p.name}(${p.ip})`, ok: r.sent > 0 && r.received === r.sent, observed: pingObserved(r) };
      }),
    ),
  );
  return results;
}

/**
 * A pod connects to the outside host (203.0.113.10, no route to any pod CIDR). With outbound
 * NAT (vxnet's ipMasq, flannel's --ip-masq on kernel nodes) the host sees the pod's node; a
 * data plane without it shows the pod address, and only answers if the network routes pods.
 */
export async function podToOutside(lab: Lab, pod: LabPod): Promise<CheckResult> {
  if (!lab.outside) throw new Error('the lab has no outside host (outside: true)');
  const node = lab.node(pod.nodeIndex);
  const want = backendOf(node.kind).masquerades ? node.underlayIP : pod.ip;
  const c = await probe(lab, { ns: lab.outside, ip: OUTSIDE_IP, port: 7100 }, pod.ns);
  return {
    name: `outside: TCP ${pod.name}(${pod.ip}) -> outside host ${OUTSIDE_IP}, which sees ${want === pod.ip ? 'the pod' : `its node ${node.name}`}`,
    ok: c.error === undefined && c.seenByServer === want,
    observed: describeConnection(c),
  };
}

/**
 * A pod connects to the lab Service's ClusterIP until both endpoints (pods on other nodes)
 * have answered: every connection is DNATed to an endpoint, the endpoint sees the client pod's
 * own address, and the reply is un-DNATed (the client stays connected to the ClusterIP).
 */
export async function podToClusterIP(lab: Lab, pod: LabPod): Promise<CheckResult> {
  const s = lab.service;
  if (!s) throw new Error('the lab has no Service (service: true)');
  const eps = s.endpoints.map((e) => ({ ns: lab.podsOn(e.node).find((p) => p.ip === e.ip)!.ns, ip: e.ip, port: e.port }));
  const r = await serviceRound(lab, pod.ns, { ip: s.clusterIP, port: s.port }, eps);
  const bad = r.connections.filter((c) => c.error !== undefined || c.remote !== s.clusterIP || c.seenByServer !== pod.ip);
  return {
    name: `Service: TCP ${pod.name} -> ClusterIP ${s.clusterIP}:${s.port} -> endpoints ${s.endpoints.map((e) => `${e.ip}(node${e.node})`).join(', ')}`,
    ok: bad.length === 0 && r.answeredBy.size === s.endpoints.length,
    observed: `${r.connections.length} connections, answered by ${[...r.answeredBy].join(' and ')}; ${describeConnection(bad[0] ?? r.connections[0] ?? { error: 'none made' })}`,
  };
}

/**
 * The underlay is routed, not bridged: nodes sit on different subnets, node1 reaches node2 via
 * the router, and after traffic between them node1's neighbour table still holds no entry for
 * node2's address (it never ARPed for it, because it is not on its link).
 */
export async function underlayRouted(lab: Lab): Promise<CheckResult> {
  if (lab.nodes.length < 2) return { name: 'underlay is routed', ok: true, observed: 'one node' };
  const n1 = lab.node(1);
  const n2 = lab.node(2);
  const route = await lab.execOk(n1.ns, ['ip', '-4', 'route', 'get', n2.underlayIP]);
  const p = await ping(lab, n1.ns, n2.underlayIP, { count: 2, intervalS: 0.1 });
  const neigh = await lab.execOk(n1.ns, ['ip', '-4', 'neigh', 'show']);
  const viaRouter = route.stdout.includes(`via ${n1.routerIP}`);
  const noNeighbour = !neigh.stdout.split('\n').some((l) => l.startsWith(`${n2.underlayIP} `));
  const differentSubnets = n1.underlayIP.split('.')[2] !== n2.underlayIP.split('.')[2];
  return {
    name: 'underlay is routed (no L2 adjacency between nodes)',
    ok: viaRouter && noNeighbour && differentSubnets && p.received > 0,
    observed: `route: "${route.stdout.trim()}"; node1 neighbours: [${neigh.stdout.trim().split('\n').join('; ')}]; ping node2 ${p.received}/${p.sent}`,
  };
}

export async function mapLimit<T, R>(items: readonly T[], limit: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
