/**
 * Makes an API server that listens on the root namespace's loopback reachable from inside lab
 * node namespaces, without giving the root namespace any address or route.
 *
 *   agent in node ns --TCP--> 127.0.0.1:6443 (socat, node ns) --unix socket--> this relay
 *     --TCP--> 127.0.0.1:<stand-in port> (root ns loopback)
 *
 * A Unix socket is a file, so it is reachable from every network namespace; each hop is
 * loopback or a file. The agents still speak real HTTP over TCP to what looks like an API server
 * at 127.0.0.1:6443, and the test keeps the stand-in in its own process, where it can add and
 * delete Nodes or take the API down.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import type { Lab } from './lab.js';

export const NODE_API_PORT = 6443;

export class ApiRelay {
  private readonly sockets = new Set<Socket>();

  private constructor(readonly path: string, private readonly server: Server) {}

  /** Listens on Unix socket `path` and forwards each connection to 127.0.0.1:`port`. */
  static async start(path: string, port: number): Promise<ApiRelay> {
    rmSync(path, { force: true });
    const relay: ApiRelay = new ApiRelay(path, createServer((client) => {
      const upstream = connect(port, '127.0.0.1');
      relay.sockets.add(client);
      relay.sockets.add(upstream);
      const close = (): void => {
        client.destroy();
        upstream.destroy();
        relay.sockets.delete(client);
        relay.sockets.delete(upstream);
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
      client.pipe(upstream);
      upstream.pipe(client);
    }));
    await new Promise<void>((resolve, reject) => {
      relay.server.once('error', reject);
      relay.server.listen(path, () => resolve());
    });
    return relay;
  }

  /** Starts the socat end in each of `namespaces` and waits until each one listens. */
  async intoNamespaces(lab: Lab, namespaces: readonly string[], maxLifetimeMs: number): Promise<void> {
    for (const ns of namespaces) {
      lab.spawn(ns, ['socat', `TCP-LISTEN:${NODE_API_PORT},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${this.path}`], maxLifetimeMs);
    }
    for (const ns of namespaces) {
      const deadline = Date.now() + 5000;
      for (;;) {
        const r = await lab.exec(ns, ['ss', '-Htln', `sport = :${NODE_API_PORT}`], { timeoutMs: 3000 });
        if (r.stdout.trim() !== '') break;
        if (Date.now() > deadline) throw new Error(`API relay in ${ns} did not start listening on ${NODE_API_PORT}`);
        await new Promise((res) => setTimeout(res, 50));
      }
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }
}
