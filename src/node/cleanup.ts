/**
 * `vxnet cleanup`: removes from a node what the agent created on it, and nothing else, so that an
 * uninstalled node is as it was before vxnet.
 *
 *   the TUN device    by its configured name, and any other TUN device carrying vxnet's alias (a
 *                     device an agent created under an earlier `device` name); its addresses and
 *                     routes go with it. A device of that name that is not a TUN device is not
 *                     ours: it is left, and said so.
 *   nftables          the table `inet vxnet`, when the node has it.
 *   the CNI conflist  <cniConfDir>/10-vxnet.conflist, and temporary files of an interrupted write.
 *   the run directory the hand-over socket an agent killed with SIGKILL left, the lock file,
 *                     then the directory if it is empty and not a mount point (in
 *                     a pod it is the kubelet's hostPath mount, which stays, empty).
 *
 * The Node object (annotations, condition) is the CLI's part, with the Kubernetes client.
 * Cleanup takes the node lock first and refuses while a live agent holds it: removing the device
 * under a running agent would only make it re-create it. Every step is idempotent: on a clean
 * node it reports that there was nothing to remove, and exits 0.
 */
import { existsSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { CONFLIST_NAME } from '../agent/cni-conflist.js';
import { DEVICE_ALIAS } from './device-spec.js';
import { acquireNodeLock, RunDir } from './lock.js';
import { encodeDelLink, encodeDumpLinks, parseLink } from './netlink/rtnetlink.js';
import { NetlinkSocket } from './netlink/socket.js';
import { removeVxnetTable, TABLE_FAMILY, TABLE_NAME } from '../netfilter/masquerade.js';
import { nft, NftError, NftMissingError, type NftOptions } from '../netfilter/nft.js';

export interface CleanupOptions {
  readonly device: string;
  readonly runDir: string;
  readonly cniConfDir?: string | undefined;
  /** How nft is run (default: `nft` on PATH). */
  readonly nft?: NftOptions;
}

/** What cleanup found, item by item: removed, not there, or left in place and why. */
export interface CleanupReport {
  readonly removed: string[];
  readonly absent: string[];
  readonly kept: string[];
}

export async function cleanupNode(o: CleanupOptions): Promise<CleanupReport> {
  const report: CleanupReport = { removed: [], absent: [], kept: [] };
  const runDir = new RunDir(o.runDir);
  // Taking the lock creates the directory; on a clean node that is not something to report.
  const hadRunDir = existsSync(runDir.path);
  const hadLock = existsSync(runDir.lock);
  const lock = acquireNodeLock(runDir, { role: 'cleanup', device: o.device });
  try {
    removeDevices(o.device, report);
    await removeNftTable(o.nft ?? {}, report);
    if (o.cniConfDir) removeConflist(o.cniConfDir, report);
    // A stopped agent removes its hand-over socket; a killed one leaves it (nobody listens).
    if (existsSync(runDir.handoverSocket)) {
      unlinkSync(runDir.handoverSocket);
      report.removed.push(`hand-over socket ${runDir.handoverSocket}`);
    }
    lock.unlink();
    if (hadLock) report.removed.push(`lock file ${runDir.lock}`);
  } finally {
    lock.release();
  }
  removeRunDir(runDir, hadRunDir ? report : undefined);
  return report;
}

function removeDevices(device: string, report: CleanupReport): void {
  const nl = NetlinkSocket.open();
  try {
    const links = nl.dump('list links', (seq) => encodeDumpLinks(seq)).map(parseLink).filter((l) => l !== undefined);
    const named = links.find((l) => l.name === device);
    if (named && named.kind !== 'tun') {
      report.kept.push(`device ${device}: it is ${named.kind ? `a ${named.kind} device` : 'not a TUN device'}, not one vxnet created`);
    }
    const ours = links.filter((l) => l.kind === 'tun' && (l.name === device || l.alias === DEVICE_ALIAS));
    for (const l of ours) {
      nl.request(`delete device ${l.name}`, encodeDelLink(nl.nextSeq(), l.index));
      report.removed.push(`device ${l.name} (with its addresses and routes)`);
    }
    if (!named) report.absent.push(`device ${device}`);
  } finally {
    nl.close();
  }
}

async function removeNftTable(opts: NftOptions, report: CleanupReport): Promise<void> {
  const table = `${TABLE_FAMILY} ${TABLE_NAME}`;
  try {
    await nft(['list', 'table', TABLE_FAMILY, TABLE_NAME], '', opts);
  } catch (err) {
    if (err instanceof NftMissingError) report.absent.push(`nftables table ${table} (nft is not installed, so the agent cannot have made one)`);
    else if (err instanceof NftError) report.absent.push(`nftables table ${table}`);
    else throw err;
    return;
  }
  await removeVxnetTable(opts);
  report.removed.push(`nftables table ${table}`);
}

function removeConflist(dir: string, report: CleanupReport): void {
  const path = join(dir, CONFLIST_NAME);
  if (existsSync(path)) {
    unlinkSync(path);
    report.removed.push(`CNI config ${path}`);
  } else {
    report.absent.push(`CNI config ${path}`);
  }
  // What an interrupted write leaves (cni-conflist.ts writes <name>.tmp-<pid>, then renames).
  const partial = existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith(`${CONFLIST_NAME}.tmp-`)) : [];
  for (const f of partial) {
    unlinkSync(join(dir, f));
    report.removed.push(`partial CNI config ${join(dir, f)}`);
  }
}

/** Removes the run directory if it is empty; `report` undefined: cleanup made it, say nothing. */
function removeRunDir(runDir: RunDir, report: CleanupReport | undefined): void {
  if (!existsSync(runDir.path)) return;
  try {
    rmdirSync(runDir.path);
    report?.removed.push(`run directory ${runDir.path}`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // EBUSY: a mount point (in a pod, the hostPath the kubelet made: it stays, empty).
    if (!report || code === 'EBUSY') return;
    report.kept.push(`run directory ${runDir.path} (${code === 'ENOTEMPTY' ? `holds files vxnet did not write: ${readdirSync(runDir.path).join(', ')}` : code})`);
  }
}
