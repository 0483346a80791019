/**
 * Static peers from the config file (or its `peersFile`), re-read live.
 *
 * The file is watched through its directory and re-read on any change there: editors replace
 * files by rename, and a mounted ConfigMap changes by swapping its `..data` symlink, so neither
 * shows up as an event for the file's own name. `reload()`, which the agent calls on SIGHUP,
 * re-reads too. Changes are debounced, and a re-read that yields the same peers is a no-op. A file that no longer parses or checks is
 * reported once through `error` and the previous peers stay in force: a typo must never take
 * the node off the network.
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Peer, PeerSource, PeerSourceEvents } from './source.js';

export class FilePeerSource implements PeerSource {
  readonly name: string;
  private watchers: FSWatcher[] = [];
  private events: PeerSourceEvents | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failing = false;
  private failingSince = 0;
  private last = '';

  /** `read` re-reads and checks the file, throwing an operator-readable error when it is bad. */
  constructor(private readonly paths: readonly string[], private readonly read: () => readonly Peer[], private readonly debounceMs = 100) {
    this.name = `file:${paths.join(',')}`;
  }

  async start(events: PeerSourceEvents): Promise<void> {
    this.events = events;
    this.reload();
    for (const dir of new Set(this.paths.map((p) => dirname(p)))) {
      try {
        const w = watch(dir, () => this.schedule());
        w.on('error', (err) => events.error(new Error(`watching ${dir}: ${err.message}; SIGHUP still reloads`)));
        this.watchers.push(w);
      } catch (err) {
        events.error(new Error(`cannot watch ${dir}: ${(err as Error).message}; send SIGHUP to reload`));
      }
    }
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reload(), this.debounceMs);
  }

  /** Re-reads the file now. */
  reload(): void {
    if (!this.events) return;
    try {
      const peers = this.read();
      const key = JSON.stringify(peers);
      this.failing = false;
      if (key === this.last) return;
      this.last = key;
      this.events.snapshot(peers);
    } catch (err) {
      if (!this.failing) this.failingSince = Date.now();
      this.failing = true;
      this.events.error(new Error(`peers not reloaded, keeping the previous ${this.last ? 'set' : '(empty) set'}: ${(err as Error).message}`));
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
    this.watchers = [];
    this.events = undefined;
  }

  stale(): boolean { return this.failing; }
  staleSeconds(): number { return this.failing ? (Date.now() - this.failingSince) / 1000 : 0; }
}
