/**
 * What a lab leaves behind, and how to take it away again.
 *
 * Every lab records itself in /run/vxnet-lab/<id>.json *before* it creates anything, so a lab
 * whose creator died (crash, SIGKILL, CI timeout) can still be removed with `vxnet lab down`.
 * Teardown trusts the namespaces, not recorded pids: it kills whatever runs inside the lab's own
 * namespaces (`ip netns pids`), which cannot be anyone else's process, then deletes the
 * namespaces, which takes every veth, bridge, TUN and vxlan device in them along. Nothing of a
 * lab lives in the root namespace except files under /run/vxnet-lab.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run, sleep } from './exec.js';

export const STATE_ROOT = '/run/vxnet-lab';

/** Every namespace of lab `id` starts with this; short so derived names stay readable. */
export function nsPrefix(id: string): string {
  return `vxl${id}-`;
}

/** Five lower-case base-36 characters: unique enough for parallel labs on one machine. */
export function randomLabId(): string {
  const b = randomBytes(5);
  let s = '';
  for (const x of b) s += (x % 36).toString(36);
  return s;
}

export function isValidLabId(id: string): boolean {
  return /^[a-z0-9]{1,8}$/.test(id);
}

export interface LabState {
  readonly id: string;
  readonly dir: string;
  readonly createdAt: string;
  /** Namespaces this lab created or is about to create. */
  namespaces: string[];
  /** Free-form description for `vxnet lab up` users (nodes, pods, addresses). */
  summary?: unknown;
}

export function statePath(id: string): string {
  return join(STATE_ROOT, `${id}.json`);
}

export function labDir(id: string): string {
  return join(STATE_ROOT, id);
}

export function writeState(state: LabState): void {
  mkdirSync(STATE_ROOT, { recursive: true });
  writeFileSync(statePath(state.id), JSON.stringify(state, null, 2) + '\n');
}

export function readState(id: string): LabState | null {
  try {
    return JSON.parse(readFileSync(statePath(id), 'utf8')) as LabState;
  } catch {
    return null;
  }
}

export function listLabIds(): string[] {
  if (!existsSync(STATE_ROOT)) return [];
  return readdirSync(STATE_ROOT)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .filter(isValidLabId);
}

/** Namespaces that exist now and belong to lab `id` (by recorded name or by prefix). */
export function existingNamespaces(id: string, recorded: readonly string[] = []): string[] {
  let out = '';
  try {
    out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 5000 });
  } catch {
    return [];
  }
  const prefix = nsPrefix(id);
  const names = out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
  return names.filter((n) => n.startsWith(prefix) || recorded.includes(n));
}

function pidsIn(ns: string): number[] {
  try {
    const out = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 5000 });
    return out
      .split('\n')
      .map((l) => Number.parseInt(l, 10))
      .filter((p) => Number.isInteger(p) && p > 1 && p !== process.pid);
  } catch {
    return [];
  }
}

function killAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/**
 * Remove lab `id` completely: processes in its namespaces (SIGTERM, then SIGKILL), the
 * namespaces, its directory and its state file. Safe to call twice and on a half-built lab.
 */
export async function destroyLab(id: string, recorded: readonly string[] = []): Promise<string[]> {
  const nss = existingNamespaces(id, recorded);
  const term = nss.flatMap(pidsIn);
  killAll(term, 'SIGTERM');
  for (let i = 0; i < 30 && nss.flatMap(pidsIn).length > 0; i++) await sleep(100);
  killAll(nss.flatMap(pidsIn), 'SIGKILL');
  for (let i = 0; i < 20 && nss.flatMap(pidsIn).length > 0; i++) await sleep(50);
  for (const ns of nss) await run(['ip', 'netns', 'del', ns], { timeoutMs: 5000 });
  if (process.env['VXNET_LAB_KEEP'] !== '1') rmSync(labDir(id), { recursive: true, force: true });
  rmSync(statePath(id), { force: true });
  return nss;
}

/** The same, synchronously, for `process.on('exit')` where nothing async runs any more. */
export function destroyLabSync(id: string, recorded: readonly string[] = []): void {
  const nss = existingNamespaces(id, recorded);
  killAll(nss.flatMap(pidsIn), 'SIGKILL');
  for (const ns of nss) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { timeout: 5000, stdio: 'ignore' });
    } catch {
      /* best effort on the way out */
    }
  }
  if (process.env['VXNET_LAB_KEEP'] !== '1') rmSync(labDir(id), { recursive: true, force: true });
  rmSync(statePath(id), { force: true });
}
