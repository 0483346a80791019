/**
 * Process helpers for the lab. Every process the lab starts has a deadline: a foreground
 * command is killed when its timeout runs out, a background one when its owner stops it or
 * when the lab goes down (the lab kills every process left inside its namespaces). Commands in
 * a namespace are run as `ip netns exec NS argv...`; `ip` execs the command in place, so the
 * child's pid is the command's pid (the bench reads /proc/<pid> of the agent through it).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';

export interface RunOptions {
  /** Kill the process (SIGKILL) after this long. Required in spirit: default 10 s. */
  readonly timeoutMs?: number;
  /** Written to stdin, then stdin is closed. */
  readonly input?: string;
  /** Extra environment (merged over process.env). */
  readonly env?: Record<string, string>;
}

export interface RunResult {
  readonly argv: readonly string[];
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  readonly ms: number;
}

export class CommandError extends Error {
  constructor(readonly result: RunResult) {
    const why = result.timedOut
      ? `timed out after ${result.ms} ms`
      : result.signal !== null
        ? `killed by ${result.signal}`
        : `exited ${result.code}`;
    const out = (result.stderr.trim() || result.stdout.trim()).slice(-2000);
    super(`${result.argv.join(' ')}: ${why}${out ? `\n${out}` : ''}`);
    this.name = 'CommandError';
  }
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** Prefix that runs argv inside a named network namespace (or as is when ns is null). */
export function inNs(ns: string | null, argv: readonly string[]): string[] {
  return ns === null ? [...argv] : ['ip', 'netns', 'exec', ns, ...argv];
}

/** Run a command to completion; never throws for a non-zero exit (see runOk). */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const started = Date.now();
  return new Promise((resolve) => {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new Error('run: empty argv');
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      resolve({ argv, code, signal, stdout, stderr, timedOut, ms: Date.now() - started });
    };
    child.on('error', (err) => {
      stderr += String(err);
      finish(127, null);
    });
    child.on('close', finish);
  });
}

/** Run a command and throw a CommandError unless it exits 0. */
export async function runOk(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(argv, opts);
  if (r.code !== 0) throw new CommandError(r);
  return r;
}

export interface BackgroundOptions {
  readonly env?: Record<string, string>;
  /** Send stdout+stderr to this file instead of collecting them. */
  readonly logFile?: string;
  /** Start in its own process group and do not keep this process alive for it. */
  readonly detached?: boolean;
  /** Hard deadline: SIGKILL after this long even if nobody stops it. */
  readonly maxLifetimeMs?: number;
}

/** A process running in the background, stopped by `stop()` or its own end. */
export class Background {
  stdout = '';
  stderr = '';
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly exited: Promise<void>;
  private readonly deadline: NodeJS.Timeout | undefined;

  constructor(
    readonly argv: readonly string[],
    readonly child: ChildProcess,
    maxLifetimeMs: number | undefined,
  ) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => {
      child.on('error', (err) => {
        this.stderr += String(err);
        this.exitInfo ??= { code: 127, signal: null };
        resolve();
      });
      child.on('close', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve();
      });
    });
    if (maxLifetimeMs !== undefined) {
      this.deadline = setTimeout(() => child.kill('SIGKILL'), maxLifetimeMs);
      this.deadline.unref();
      void this.exited.then(() => clearTimeout(this.deadline));
    }
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exitInfo === null;
  }

  get exitCode(): number | null {
    return this.exitInfo?.code ?? null;
  }

  /** Wait for the process to end by itself; SIGKILL it after timeoutMs. */
  async wait(timeoutMs: number): Promise<RunResult> {
    const started = Date.now();
    let timedOut = false;
    if (this.running) {
      const t = setTimeout(() => {
        timedOut = true;
        this.child.kill('SIGKILL');
      }, timeoutMs);
      await this.exited;
      clearTimeout(t);
    }
    return {
      argv: this.argv,
      code: this.exitInfo?.code ?? null,
      signal: this.exitInfo?.signal ?? null,
      stdout: this.stdout,
      stderr: this.stderr,
      timedOut,
      ms: Date.now() - started,
    };
  }

  /** SIGTERM (or `signal`), then SIGKILL after graceMs. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 3000): Promise<RunResult> {
    if (this.running) this.child.kill(signal);
    return this.wait(graceMs);
  }
}

export function background(argv: readonly string[], opts: BackgroundOptions = {}): Background {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('background: empty argv');
  let fd: number | undefined;
  let stdio: StdioOptions = ['ignore', 'pipe', 'pipe'];
  if (opts.logFile !== undefined) {
    fd = openSync(opts.logFile, 'a');
    stdio = ['ignore', fd, fd];
  }
  const child = spawn(cmd, args, {
    stdio,
    detached: opts.detached ?? false,
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
  });
  if (fd !== undefined) closeSync(fd);
  if (opts.detached) child.unref();
  return new Background(argv, child, opts.maxLifetimeMs);
}

/** The last `lines` lines of a log file, or '' when it cannot be read. */
export function readTail(file: string, lines = 10): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `probe` every intervalMs until it returns a value other than undefined, or time runs out. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}
