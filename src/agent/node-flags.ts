/**
 * The Node.js flags the agent runs under, in one place. The image's ENTRYPOINT, the `vxnet`
 * bin's shebang and the lab all start the agent with them (test/kube/manifests.test.ts and
 * test/unit/agent/node-flags.test.ts keep the copies equal), because they cannot be set from
 * inside a running process: each sizes something created before the first line of ours runs.
 *
 * Each trades a little start-up work for memory. None changes the data path: the workers'
 * hot loops allocate nothing per packet and are compiled by the optimising tier either way.
 * Measured (docs/performance.md, "Memory"): agent peak RSS 98–100 MB without them, 92–93 MB
 * with them, after single- and four-stream TCP in the lab; throughput and RTT within noise.
 *
 *   --v8-pool-size=1          one V8 platform thread instead of one per core: background
 *                             compilation and GC helpers, each with its own stack and malloc
 *                             arena (8 threads → 5).
 *   --max-semi-space-size=1   the main thread's young generation at 1 MB per semi-space; the
 *                             main thread only runs the control plane (workers set their own
 *                             limits in datapath/engine.ts).
 *   --no-maglev               no mid-tier compiler: its code and metadata are pages the
 *                             process would otherwise touch; hot functions still reach
 *                             TurboFan.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--v8-pool-size=1', '--max-semi-space-size=1', '--no-maglev'];
