/**
 * One node alone in one network namespace, for tests and benches of a single agent: its config
 * checks, its metrics port, its reloads, its start-up at scale. The namespace holds loopback and
 * one veth pair (the underlay address sits on one end); nothing leaves it, and nothing is added
 * to the root namespace. It is named like a lab's (`vxl<id>-solo`), so `destroyLab` removes it and
 * every process in it, and it is removed on the way out even if the test process dies.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { background, inNs, run, runOk, waitFor, type Background, type RunResult } from '../../src/lab/exec.js';
import { defaultAgentCommand } from '../../src/lab/lab.js';
import { destroyLab, destroyLabSync, nsPrefix, randomLabId } from '../../src/lab/state.js';

export const SOLO_UNDERLAY = '172.16.0.1';

const live = new Set<Solo>();
function onExit(): void {
  for (const s of live) s.downSync();
}

export class Solo {
  private agent: Background | undefined;

  private constructor(readonly id: string, readonly ns: string, readonly dir: string) {}

  /** Creates the namespace: loopback up, veth u0/u1 up, SOLO_UNDERLAY/32 on u0. */
  static async up(): Promise<Solo> {
    const id = randomLabId();
    const s = new Solo(id, `${nsPrefix(id)}solo`, mkdtempSync(join(tmpdir(), 'vxnet-solo-')));
    if (live.size === 0) process.on('exit', onExit);
    live.add(s);
    try {
      await runOk(['ip', 'netns', 'add', s.ns]);
      const ip = (...a: string[]): Promise<RunResult> => runOk(['ip', '-n', s.ns, ...a]);
      await ip('link', 'set', 'lo', 'up');
      await ip('link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1');
      // No IPv6 link-local addresses (and so no duplicate address detection still running) and
      // carrier up before anyone looks: the namespace must be settled for before/after snapshots.
      for (const dev of ['u0', 'u1']) {
        await ip('link', 'set', dev, 'addrgenmode', 'none');
        await ip('link', 'set', dev, 'up');
      }
      await ip('addr', 'add', `${SOLO_UNDERLAY}/32`, 'dev', 'u0');
      await waitFor('the veth pair to come up', async () => {
        const r = await runOk(['ip', '-n', s.ns, '-o', 'link', 'show']);
        return /NO-CARRIER|LOWERLAYERDOWN/.test(r.stdout) ? undefined : true;
      }, 5000, 20);
    } catch (err) {
      await s.down();
      throw err;
    }
    return s;
  }

  /** Links, addresses and routes of the namespace (both families), for before/after comparisons. */
  async snapshot(): Promise<string> {
    const parts: string[] = [];
    for (const argv of [['-d', 'link', 'show'], ['addr', 'show'], ['route', 'show', 'table', 'all'], ['-6', 'route', 'show', 'table', 'all']]) {
      const r = await runOk(['ip', '-n', this.ns, ...argv]);
      parts.push(`$ ip ${argv.join(' ')}\n${r.stdout}`);
    }
    return parts.join('\n');
  }

  /**
   * Writes a config (an object as JSON, or text as given) into the node's directory; returns its
   * path. An object gets this node's own `runDir` unless it names one: the node lock lives there,
   * and agents in different namespaces must not share it.
   */
  writeConfig(name: string, config: unknown): string {
    const path = join(this.dir, name);
    writeFileSync(path, this.configText(config));
    return path;
  }

  /** A config as writeConfig writes it: text as given, an object as JSON with this node's runDir. */
  configText(config: unknown): string {
    if (typeof config === 'string') return config;
    const withRunDir = typeof config === 'object' && config !== null && !Array.isArray(config) && !('runDir' in config)
      ? { ...config, runDir: join(this.dir, 'run') } : config;
    return `${JSON.stringify(withRunDir)}\n`;
  }

  /** Runs the agent in the namespace until it exits by itself (bad configs), at most timeoutMs. */
  runAgent(configPath: string, timeoutMs = 20_000): Promise<RunResult> {
    return run(inNs(this.ns, [...defaultAgentCommand(), '--config', configPath]), { timeoutMs });
  }

  /** Starts the agent in the background, its log in `<dir>/agent.log`; at most maxLifetimeMs. */
  startAgent(configPath: string, maxLifetimeMs = 120_000): Background {
    this.agent = background(inNs(this.ns, [...defaultAgentCommand(), '--config', configPath]), {
      logFile: this.logPath, maxLifetimeMs,
    });
    return this.agent;
  }

  get logPath(): string {
    return join(this.dir, 'agent.log');
  }

  /** The agent's log lines, parsed. */
  logLines(): Array<Record<string, unknown> & { msg: string }> {
    let text = '';
    try {
      text = readFileSync(this.logPath, 'utf8');
    } catch {
      return [];
    }
    return text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown> & { msg: string });
  }

  /** CPU time the process has used so far, ms (user + system, all threads). */
  static cpuMs(pid: number): number {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of proc(5), 12 and 13 after the command name, in
    // clock ticks of USER_HZ, which is 100 on Linux.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  }

  /** Resident set size of a process, MiB. */
  static rssMiB(pid: number): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  }

  async down(): Promise<void> {
    if (this.agent?.running) await this.agent.stop('SIGTERM', 5000);
    await destroyLab(this.id, [this.ns]);
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
    if (live.size === 0) process.off('exit', onExit);
  }

  downSync(): void {
    destroyLabSync(this.id, [this.ns]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs f with a fresh Solo, always removing it; on failure prints the tail of the agent log. */
export async function withSolo<T>(f: (s: Solo) => Promise<T>): Promise<T> {
  const s = await Solo.up();
  try {
    return await f(s);
  } catch (err) {
    const tail = s.logLines().slice(-20).map((l) => JSON.stringify(l)).join('\n');
    if (tail) process.stderr.write(`--- agent log (tail) ---\n${tail}\n`);
    throw err;
  } finally {
    await s.down();
  }
}
