/**
 * The Kubernetes part of `vxnet cleanup`: what the agent published on its Node.
 */
import type { LogFn } from '../agent/log.js';

export interface NodeObjectCleanup { readonly node: string; readonly kubeconfig: string | undefined; readonly annotationPrefix: string }

export async function cleanupNodeObject(_o: NodeObjectCleanup, _log: LogFn): Promise<{ removed: string[]; absent: string[] }> {
  throw new Error('not implemented yet');
}
