/**
 * Who reaches whom, and as whom: TCP probes for the paths a cluster has besides pod to pod.
 * A pod to the internet (the outside host), a pod to another node's host network, a client to
 * a Service (ClusterIP, NodePort) or a hostPort. Each probe says what both ends saw: the
 * address the server's socket reports as its peer (so NAT shows), the address the client
 * connected to and the server's own address in its reply (so a DNAT that was not undone, or
 * an endpoint that answered from elsewhere, shows too).
 *
 * Servers live in a namespace for a bounded time and answer any number of connections; every
 * client connection has its own timer. Nothing here decides pass or fail: checks.ts and the
 * tests do, from what was observed.
 */
import type { Lab } from './lab.js';
import type { Background } from './exec.js';
import { sleep } from './exec.js';

const ECHO_SERVER = `
const net = require('node:net');
const [host, port, ms] = process.argv.slice(1);
setTimeout(() => process.exit(0), Number(ms));
net.createServer((s) => {
  console.log('PEER ' + s.remoteAddress);
  s.end('from ' + s.localAddress + ' to ' + s.remoteAddress + '\\n');
}).listen(Number(port), host, () => console.log('LISTENING'));`;

const CONNECT = `
const net = require('node:net');
const [host, port, ms] = process.argv.slice(1);
const t = setTimeout(() => { console.log(JSON.stringify({ error: 'TIMEOUT' })); process.exit(3); }, Number(ms));
const s = net.connect(Number(port), host);
let got = '';
s.on('data', (d) => (got += d));
s.on('end', () => { clearTimeout(t); console.log(JSON.stringify({ local: s.localAddress, remote: s.remoteAddress, reply: got.trim() })); });
s.on('error', (e) => { clearTimeout(t); console.log(JSON.stringify({ error: e.code || String(e) })); process.exit(2); });`;

/** A TCP echo server running in a lab namespace. */
export interface EchoServer {
  readonly ns: string;
  readonly ip: string;
  readonly port: number;
  readonly proc: Background;
}

/** What one client connection saw. */
export interface Connection {
  /** The client socket's own address. */
  readonly local?: string;
  /** The address the client socket is connected to (what it dialled, if DNAT was undone). */
  readonly remote?: string;
  /** The server's address as it answered, and the peer it saw: "from A to B". */
  readonly serverAddress?: string;
  readonly seenByServer?: string;
  readonly error?: string;
}

function unmap(a: string | undefined): string | undefined {
  return a?.replace(/^::ffff:/, '');
}

/** Starts an echo server on ip:port in `ns` (0.0.0.0 for every address) for at most `ms`. */
export async function echoServer(lab: Lab, ns: string, ip: string, port: number, ms = 30_000): Promise<EchoServer> {
  const proc = lab.spawn(ns, [process.execPath, '-e', ECHO_SERVER, ip, String(port), String(ms)], ms + 2000);
  for (let i = 0; i < 100 && !proc.stdout.includes('LISTENING') && proc.running; i++) await sleep(50);
  if (!proc.stdout.includes('LISTENING')) throw new Error(`echo server on ${ip}:${port} in ${ns} did not start: ${proc.stderr.trim()}`);
  return { ns, ip, port, proc };
}

/** Peers an echo server has seen so far, in order. */
export function peersSeen(server: EchoServer): string[] {
  return [...server.proc.stdout.matchAll(/^PEER (\S+)$/gm)].map((m) => unmap(m[1]) ?? '');
}

/** One TCP connection from `ns` to host:port; never throws for a failed connection. */
export async function connect(lab: Lab, ns: string, host: string, port: number, ms = 5000): Promise<Connection> {
  const r = await lab.exec(ns, [process.execPath, '-e', CONNECT, host, String(port), String(ms)], { timeoutMs: ms + 5000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    const o = JSON.parse(line) as { local?: string; remote?: string; reply?: string; error?: string };
    if (o.error) return { error: o.error };
    const m = /^from (\S+) to (\S+)$/.exec(o.reply ?? '');
    return {
      ...(o.local ? { local: unmap(o.local) } : {}),
      ...(o.remote ? { remote: unmap(o.remote) } : {}),
      ...(m ? { serverAddress: unmap(m[1]), seenByServer: unmap(m[2]) } : { error: `unexpected reply ${JSON.stringify(o.reply)}` }),
    };
  } catch {
    return { error: `no answer (${(r.stderr.trim() || line || `exit ${r.code}`).slice(0, 200)})` };
  }
}

/** One connection through an echo server started for it and stopped after. */
export async function probe(lab: Lab, server: { ns: string; ip: string; port: number }, clientNs: string, target?: { ip: string; port: number }): Promise<Connection> {
  const srv = await echoServer(lab, server.ns, server.ip, server.port, 15_000);
  try {
    return await connect(lab, clientNs, target?.ip ?? server.ip, target?.port ?? server.port);
  } finally {
    await srv.proc.stop('SIGKILL', 1000);
  }
}

export function describeConnection(c: Connection): string {
  if (c.error) return `failed: ${c.error}`;
  return `client ${c.local} connected to ${c.remote}; server ${c.serverAddress} saw ${c.seenByServer}`;
}

/** Services: connections from `clientNs` to ip:port until every endpoint has answered (or `max`). */
export async function serviceRound(
  lab: Lab,
  clientNs: string,
  target: { ip: string; port: number },
  endpoints: readonly { ns: string; ip: string; port: number }[],
  max = 24,
): Promise<{ connections: Connection[]; answeredBy: Set<string> }> {
  const servers = await Promise.all(endpoints.map((e) => echoServer(lab, e.ns, e.ip, e.port, 60_000)));
  try {
    const connections: Connection[] = [];
    const answeredBy = new Set<string>();
    while (connections.length < max && answeredBy.size < endpoints.length) {
      const c = await connect(lab, clientNs, target.ip, target.port);
      connections.push(c);
      if (c.serverAddress) answeredBy.add(c.serverAddress);
      if (c.error) break;
    }
    return { connections, answeredBy };
  } finally {
    await Promise.all(servers.map((s) => s.proc.stop('SIGKILL', 1000)));
  }
}
