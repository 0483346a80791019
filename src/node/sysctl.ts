/**
 * The two sysctls vxnet cares about and does not set through netlink, both IPv6, both read from
 * /proc/sys (which a container may read even where it is mounted read-only):
 *
 * - net.ipv6.conf.all.forwarding, which IPv6 pods need. A node setting: the agent checks it and
 *   warns, never changes it (on a node that takes its own IPv6 route from router advertisements,
 *   turning forwarding on stops it from accepting them).
 * - net.ipv6.conf.<device>.disable_ipv6. A new device inherits it from `default`, and IPv6 has no
 *   netlink attribute to change it (unlike IPv4's devconf). Where it is 0, as on nearly every
 *   node, nothing is written. Where a node disables IPv6 on new devices, the agent tries the
 *   write and, on a read-only /proc/sys, stops with what to change on the node instead; the
 *   DaemonSet does not mount the host's /proc/sys/net writable for this one case (that would
 *   let the agent change every network setting of the host).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { KernelSetupError } from './errors.js';

const PROC_SYS = '/proc/sys';

function read(key: string): string | undefined {
  try {
    return readFileSync(`${PROC_SYS}/${key}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Whether the node forwards IPv6 (net.ipv6.conf.all.forwarding), which IPv6 pods need. */
export function ipv6ForwardingEnabled(): boolean {
  return read('net/ipv6/conf/all/forwarding') === '1';
}

/** Makes sure IPv6 is on for `device`; throws with the node setting to change when it cannot. */
export function ensureIpv6Enabled(device: string): void {
  const key = `net/ipv6/conf/${device}/disable_ipv6`;
  const now = read(key);
  if (now === undefined) {
    throw new KernelSetupError(`enable IPv6 on ${device}`, `${PROC_SYS}/${key} does not exist: this kernel has no IPv6 (booted with ipv6.disable=1?)`,
      'IPv6 pods (clusterCIDR6) need a kernel with IPv6; remove clusterCIDR6 to run IPv4 pods only');
  }
  if (now === '0') return;
  try {
    writeFileSync(`${PROC_SYS}/${key}`, '0');
  } catch (err) {
    throw new KernelSetupError(`enable IPv6 on ${device} (sysctl net.ipv6.conf.${device}.disable_ipv6=0)`, (err as Error).message,
      'this node disables IPv6 on new devices and /proc/sys is read-only here, as in a container; set net.ipv6.conf.default.disable_ipv6=0 on the node (sysctl.d), then restart the agent');
  }
}
