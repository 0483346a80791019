/**
 * Packet capture inside a lab namespace with tshark, decoded to fields.
 *
 * tshark decodes UDP 4789 as VXLAN by itself; any other port (flannel's 8472) needs a
 * decode-as rule, which `vxlanPorts` adds. Capture starts before the caller sends anything:
 * `startCapture` resolves only once tshark reports that it is capturing.
 */
import type { Lab } from './lab.js';
import type { Background } from './exec.js';
import { sleep } from './exec.js';

export interface CaptureOptions {
  /** Interface inside the namespace. */
  readonly iface: string;
  /** BPF capture filter, e.g. "udp port 8472". */
  readonly filter?: string;
  /** Display fields (-e), e.g. ["vxlan.vni", "eth.src"]. */
  readonly fields: readonly string[];
  /** UDP ports to decode as VXLAN. */
  readonly vxlanPorts?: readonly number[];
  /** Hard stop after this many seconds (tshark -a duration). */
  readonly seconds: number;
  /** Stop after this many packets (tshark -c), to keep a capture of bulk traffic small. */
  readonly count?: number;
}

/** One packet: for each field, every occurrence in the packet (outer first, then inner). */
export type CapturedPacket = Record<string, string[]>;

export class Capture {
  constructor(
    private readonly proc: Background,
    private readonly fields: readonly string[],
  ) {}

  /** Packets decoded so far (tshark -l writes one line per packet as it goes). */
  get count(): number {
    return this.proc.stdout.split('\n').filter((l) => l.trim() !== '').length;
  }

  /**
   * Stop capturing and return the decoded packets. tshark trails the wire a little (dumpcap
   * hands it packets through a pipe), so first wait up to waitMs for `atLeast` packets; then
   * SIGINT, which lets it flush.
   */
  async stop(atLeast = 0, waitMs = 3000): Promise<CapturedPacket[]> {
    const deadline = Date.now() + waitMs;
    while (this.proc.running && this.count < atLeast && Date.now() < deadline) await sleep(50);
    await sleep(200);
    const r = await this.proc.stop('SIGINT', 5000);
    return parseFields(r.stdout, this.fields);
  }
}

const SEP = '|';

export function parseFields(text: string, fields: readonly string[]): CapturedPacket[] {
  const out: CapturedPacket[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const cols = line.split(SEP);
    const pkt: CapturedPacket = {};
    fields.forEach((f, i) => {
      const v = cols[i] ?? '';
      pkt[f] = v === '' ? [] : v.split(',');
    });
    out.push(pkt);
  }
  return out;
}

export async function startCapture(lab: Lab, ns: string, opts: CaptureOptions): Promise<Capture> {
  const argv = ['tshark', '-n', '-l', '-i', opts.iface, '-a', `duration:${opts.seconds}`];
  if (opts.count !== undefined) argv.push('-c', String(opts.count));
  if (opts.filter) argv.push('-f', opts.filter);
  for (const p of opts.vxlanPorts ?? []) argv.push('-d', `udp.port==${p},vxlan`);
  argv.push('-T', 'fields', '-E', `separator=${SEP}`, '-E', 'occurrence=a', '-E', 'aggregator=,');
  for (const f of opts.fields) argv.push('-e', f);
  const proc = lab.spawn(ns, argv, (opts.seconds + 10) * 1000);
  for (let i = 0; i < 200 && proc.running && !/Capturing on/.test(proc.stderr); i++) await sleep(50);
  if (!/Capturing on/.test(proc.stderr)) {
    await proc.stop('SIGKILL', 1000);
    throw new Error(`tshark did not start capturing on ${opts.iface} in ${ns}: ${proc.stderr.trim()}`);
  }
  // tshark announces the capture when it has started dumpcap, a moment before dumpcap's socket
  // is attached; packets in that moment are missed.
  await sleep(800);
  return new Capture(proc, opts.fields);
}
