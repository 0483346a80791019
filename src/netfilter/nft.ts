/**
 * The one way vxnet talks to netfilter: the `nft` command (Debian's `nftables` package), fed a
 * script on stdin with `nft -f -`. A script is one transaction, so the kernel applies all of it
 * or none of it: a ruleset is never half replaced, and a failed update leaves the old one.
 *
 * The command is a parameter (default `nft`) so the same code runs in a network namespace
 * (`ip netns exec NS nft`, for the lab) or against a stand-in that fails on purpose (tests).
 * A missing binary is its own error type, because the agent treats it differently from a
 * refused ruleset: it is a node without nftables, not a bug.
 */
import { spawn } from 'node:child_process';

export interface NftOptions {
  /** argv prefix that runs nft; default ['nft']. */
  readonly command?: readonly string[];
  /** Kill nft after this long; default 10 s. */
  readonly timeoutMs?: number;
}

/** nft is not installed (or not on PATH). */
export class NftMissingError extends Error {
  constructor(command: string) {
    super(`${command} not found: install nftables (Debian/Ubuntu: apt-get install nftables)`);
    this.name = 'NftMissingError';
  }
}

/** nft ran and refused: its own message, with the script line it names. */
export class NftError extends Error {
  constructor(readonly args: readonly string[], readonly stderr: string, readonly code: number | null) {
    super(`nft ${args.join(' ')} failed (${code === null ? 'timed out' : `exit ${code}`}): ${stderr.trim() || 'no message'}`);
    this.name = 'NftError';
  }
}

/** Runs nft with `args`, `input` on stdin; resolves to its stdout. */
export function nft(args: readonly string[], input = '', opts: NftOptions = {}): Promise<string> {
  const argv = [...(opts.command ?? ['nft']), ...args];
  const [cmd, ...rest] = argv as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, rest, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 10_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(err.code === 'ENOENT' ? new NftMissingError(cmd) : err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new NftError(args, stderr, code));
    });
  });
}
