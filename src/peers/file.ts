/**
 * Static peers from the config file (or its `peersFile`), re-read live.
 *
 * The file is watched through its directory, because editors replace files by rename and a
 * mounted ConfigMap changes by swapping its `..data` symlink, so neither shows up as an event for
 * the file's own name. A directory sees many events that are not ours (the agent's own log, if
 * it is written there, would otherwise make every log line a reload), so an event only leads to
 * a `stat` of each watched path, and then, when its identity, size or times changed, to a read of
 * its bytes. Only bytes that differ from the last ones read are parsed and checked: checking is
 * what costs (in proportion to the peer list), and the same bytes can only give the same answer.
 * `reload()`, which SIGHUP calls, skips the `stat` (a change inside one tick of a coarse file
 * clock leaves it the same) but not the comparison of bytes. At start-up the peers the agent has
 * just read are taken as they are, unless the bytes on disk are no longer the ones it read.
 *
 * Requests are coalesced: a burst of events or signals costs one look, and the next one waits at
 * least `minIntervalMs` and at least twice as long as the last one took, so a file rewritten in
 * a loop keeps the control plane below a third of a core. A re-read that yields the same peers
 * delivers nothing. A file that no longer parses or checks is reported once through `error`, and
 * the previous peers stay in force: a typo must never take the node off the network.
 */
import { statSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { samePeerList, type Peer, type PeerSource, type PeerSourceEvents } from './source.js';

/** What the agent already read at start-up, so `start` need not read and check it again. */
export interface InitialPeers {
  readonly peers: readonly Peer[];
  /** Fingerprints (`config-text.ts`) of the bytes that were read, by path. */
  readonly fingerprints: ReadonlyMap<string, string>;
}

export interface FilePeerSourceOptions {
  /** Least time between two looks at the file, ms (default 100). */
  readonly minIntervalMs?: number;
  readonly initial?: InitialPeers;
  /**
   * The fingerprint of a path's bytes, read as `read` reads them (bounded); throws when the
   * path cannot be read. Without it, every look whose `stat` changed, and every SIGHUP, reads
   * and checks the file.
   */
  readonly fingerprint?: (path: string) => string;
}

export class FilePeerSource implements PeerSource {
  readonly name: string;
  private watchers: FSWatcher[] = [];
  private events: PeerSourceEvents | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** A look is due whatever the stamps say (SIGHUP). */
  private forced = false;
  private failing = false;
  private failingSince = 0;
  private last: readonly Peer[] | undefined;
  private stamps = '';
  private prints = '';
  private nextAllowedAt = 0;
  private readonly minIntervalMs: number;
  private readonly initial: InitialPeers | undefined;
  private readonly fingerprintOf: ((path: string) => string) | undefined;
  private readonly counts = { reads: 0, requests: 0, skipped: 0 };

  /** `read` re-reads and checks the file, throwing an operator-readable error when it is bad. */
  constructor(private readonly paths: readonly string[], private readonly read: () => readonly Peer[], opts: FilePeerSourceOptions = {}) {
    this.name = `file:${paths.join(',')}`;
    this.minIntervalMs = opts.minIntervalMs ?? 100;
    this.initial = opts.initial;
    this.fingerprintOf = opts.fingerprint;
  }

  async start(events: PeerSourceEvents): Promise<void> {
    this.events = events;
    for (const dir of new Set(this.paths.map((p) => dirname(p)))) {
      try {
        const w = watch(dir, () => this.request(false));
        w.on('error', (err) => events.error(new Error(`watching ${dir}: ${err.message}; SIGHUP still reloads`)));
        this.watchers.push(w);
      } catch (err) {
        events.error(new Error(`cannot watch ${dir}: ${(err as Error).message}; send SIGHUP to reload`));
      }
    }
    // Stamps and fingerprints are taken after the watch starts, so no change can fall between.
    const started = Date.now();
    this.stamps = this.stampAll();
    const prints = this.printAll();
    const init = this.initial;
    if (init !== undefined && prints !== undefined && prints === this.paths.map((p) => init.fingerprints.get(p) ?? '').join('|')) {
      this.prints = prints ?? '';
      this.last = init.peers;
      events.snapshot(init.peers);
      return;
    }
    this.readNow(prints);
    this.spaceFrom(started);
  }

  /** Looks at the file soon, even if its `stat` is unchanged (SIGHUP); coalesced with other requests. */
  reload(): void {
    this.request(true);
  }

  /** Reads that were parsed and checked, requests (events and signals), and looks that found the same bytes. */
  stats(): { reads: number; requests: number; skipped: number } {
    return { ...this.counts };
  }

  private request(forced: boolean): void {
    if (!this.events) return;
    this.counts.requests++;
    this.forced ||= forced;
    if (this.timer) return;
    const wait = Math.max(0, this.nextAllowedAt - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const force = this.forced;
      this.forced = false;
      const started = Date.now();
      const stamps = this.stampAll();
      if (!force && stamps === this.stamps) return;
      this.stamps = stamps;
      const prints = this.printAll();
      if (prints !== undefined && prints === this.prints) this.counts.skipped++;
      else this.readNow(prints);
      this.spaceFrom(started);
    }, wait);
  }

  /** The next look waits at least minIntervalMs, and twice as long as this one took. */
  private spaceFrom(started: number): void {
    const now = Date.now();
    this.nextAllowedAt = now + Math.max(this.minIntervalMs, 2 * (now - started));
  }

  /** Parses and checks the file (`read`), whose bytes had fingerprints `prints` just before. */
  private readNow(prints: string | undefined): void {
    if (!this.events) return;
    this.counts.reads++;
    // The same bytes would give the same error: a bad file is not read again until it changes.
    this.prints = prints ?? '';
    try {
      const peers = this.read();
      this.failing = false;
      if (this.last === undefined || !samePeerList(peers, this.last)) {
        this.last = peers;
        this.events.snapshot(peers);
      }
    } catch (err) {
      if (!this.failing) this.failingSince = Date.now();
      this.failing = true;
      this.events.error(new Error(`peers not reloaded, keeping the previous ${this.last ? 'set' : '(empty) set'}: ${(err as Error).message}`));
    }
  }

  /** Identity, size and times of every watched path; a path that cannot be read stamps as its error. */
  private stampAll(): string {
    return this.paths.map((p) => {
      try {
        const s = statSync(p, { bigint: true });
        return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code ?? 'error';
      }
    }).join('|');
  }

  /** Fingerprints of every watched path's bytes; a path that cannot be read prints as its error. */
  private printAll(): string | undefined {
    const f = this.fingerprintOf;
    if (f === undefined) return undefined;
    return this.paths.map((p) => {
      try {
        return f(p);
      } catch (err) {
        return `error: ${(err as Error).message}`;
      }
    }).join('|');
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.watchers) w.close();
    this.watchers = [];
    this.events = undefined;
  }

  stale(): boolean { return this.failing; }
  staleSeconds(): number { return this.failing ? (Date.now() - this.failingSince) / 1000 : 0; }
}
