/**
 * The data planes a lab node can run, by `--kind` name. Adding one is a new module exporting a
 * `Backend` and one line here.
 */
import type { Backend } from './backend.js';
import { vxnet } from './vxnet.js';
import { kernel } from './kernel.js';
import { direct } from './direct.js';
import { socat } from './socat.js';
import { openvpn } from './openvpn.js';

export const BACKENDS = { vxnet, kernel, direct, socat, openvpn } as const satisfies Record<string, Backend>;

export type NodeKind = keyof typeof BACKENDS;

export const NODE_KINDS = Object.keys(BACKENDS) as NodeKind[];

export function isNodeKind(k: string): k is NodeKind {
  return Object.hasOwn(BACKENDS, k);
}

export function backendOf(kind: NodeKind): Backend {
  return BACKENDS[kind];
}
