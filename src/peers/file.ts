/**
 * Static peers from the config file (or its `peersFile`), re-read live.
 *
 * The file is watched through its directory, because editors replace files by rename and a
 * mounted ConfigMap changes by swapping its `..data` symlink, so neither shows up as an event for
 * the file's own name. A directory sees many events that are not ours (the agent's own log, if
 * it is written there, would otherwise make every log line a reload), so an event only leads to
 * a `stat` of each watched path: the file is re-read when its identity, size or times changed.
 * `reload()`, which SIGHUP calls, re-reads even when they did not, unless the file was last
 * written well before the last read (then that read saw what is there now).
 *
 * A re-read costs time in proportion to the peer list, so re-reads are coalesced: a burst of events
 * or signals costs one, and the next one waits at least `minIntervalMs` and at least twice as
 * long as the last one took, so a file rewritten in a loop, or a storm of signals, keeps the
 * control plane below a third of a core. A re-read that yields the same peers delivers nothing.
 * A file that no longer parses or checks is reported once through `error`, and the previous
 * peers stay in force: a typo must never take the node off the network.
 */
import { statSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { samePeerList, type Peer, type PeerSource, type PeerSourceEvents } from './source.js';

/** What the agent already read at start-up, so `start` need not read and check it again. */
export interface InitialPeers {
  readonly peers: readonly Peer[];
  /** `Date.now()` just before the files were read. */
  readonly readAt: number;
}

export interface FilePeerSourceOptions {
  /** Least time between two re-reads, ms (default 100). */
  readonly minIntervalMs?: number;
  readonly initial?: InitialPeers;
}

/**
 * How far a file's mtime may lag the wall clock: the kernel stamps files from a clock that ticks
 * once per jiffy, and some filesystems store whole seconds. A file whose mtime is this close to
 * the initial read is read again at start, in case it was written just as it was being read.
 */
const MTIME_SLACK_MS = 2000;

export class FilePeerSource implements PeerSource {
  readonly name: string;
  private watchers: FSWatcher[] = [];
  private events: PeerSourceEvents | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** A re-read is due whatever the stamps say (SIGHUP). */
  private forced = false;
  private failing = false;
  private failingSince = 0;
  private last: readonly Peer[] | undefined;
  private stamps = '';
  private nextAllowedAt = 0;
  private lastReadAt = 0;
  private readonly minIntervalMs: number;
  private readonly initial: InitialPeers | undefined;
  private readonly counts = { reads: 0, requests: 0, skipped: 0 };

  /** `read` re-reads and checks the file, throwing an operator-readable error when it is bad. */
  constructor(private readonly paths: readonly string[], private readonly read: () => readonly Peer[], opts: FilePeerSourceOptions = {}) {
    this.name = `file:${paths.join(',')}`;
    this.minIntervalMs = opts.minIntervalMs ?? 100;
    this.initial = opts.initial;
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
    // Stamps are taken after the watch starts, so no change can fall between the two.
    const stamps = this.stampAll();
    const init = this.initial;
    if (init !== undefined && !this.modifiedSince(init.readAt - MTIME_SLACK_MS)) {
      this.stamps = stamps;
      this.lastReadAt = init.readAt;
      this.last = init.peers;
      events.snapshot(init.peers);
      return;
    }
    this.readNow();
  }

  /**
   * Re-reads the file soon (SIGHUP), even with the same stamp unless the file is provably
   * unchanged since the last read; coalesced with other requests.
   */
  reload(): void {
    this.request(true);
  }

  /** Re-reads that ran, requests (events and signals), and forced requests found needless. */
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
      if (this.stampAll() !== this.stamps) {
        this.readNow();
      } else if (force && !this.modifiedBefore(this.lastReadAt - MTIME_SLACK_MS)) {
        // Same stamp, but the file was written so close to the last read that a change in the
        // same clock tick could hide behind it: a forced read makes sure. Otherwise the content
        // read last time is provably current, and a storm of signals costs nothing more.
        this.readNow();
      } else {
        this.counts.skipped++;
      }
    }, wait);
  }

  private readNow(): void {
    if (!this.events) return;
    const started = Date.now();
    this.lastReadAt = started;
    // Stamp before reading: a change during the read shows up as a new stamp next time.
    this.stamps = this.stampAll();
    this.counts.reads++;
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
    } finally {
      const took = Date.now() - started;
      this.nextAllowedAt = Date.now() + Math.max(this.minIntervalMs, 2 * took);
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

  private modifiedSince(ms: number): boolean {
    return !this.modifiedBefore(ms);
  }

  /** True when every watched path exists and was last modified before `ms`. */
  private modifiedBefore(ms: number): boolean {
    return this.paths.every((p) => {
      try {
        return statSync(p).mtimeMs < ms;
      } catch {
        return false;
      }
    });
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
