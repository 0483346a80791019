/**
 * `vxnet install-cni`: puts the CNI plugins our conflist names into the node's plugin directory,
 * from the copies the image carries (Debian's containernetworking-plugins). The DaemonSet runs it
 * as an init container, before the agent.
 *
 * The directory belongs to the node. A plugin that is already there is kept, whatever its
 * version: the node's package manager or the cluster installer put it there, and other networks
 * on the node may depend on exactly that build. Only missing plugins are copied, and every copy
 * goes to a temporary name in the same directory first and is linked into place only once it is
 * complete and executable, so the container runtime never runs half a binary. link(2) refuses
 * to replace a file, so a plugin that appears in the meantime is kept too; filesystems without
 * hard links fall back to rename(2).
 *
 * The list of plugins is derived from the conflist builder (every `type`, IPAM included) plus
 * `loopback`, which container runtimes call for every pod's `lo`; the two cannot drift apart.
 *
 * The conflist itself is not written here: it carries the node's pod CIDR and the overlay MTU,
 * known only to the agent, and its presence is what makes the runtime report the network ready.
 * The agent writes it once it forwards (docs/kubernetes.md, "What the init container does").
 */
import {
  closeSync, constants, copyFileSync, fchmodSync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync,
} from 'node:fs';
import { join } from 'node:path';
import { buildConflist, CONFLIST_NAME } from './cni-conflist.js';

/** Where Debian's containernetworking-plugins puts the plugins (and so where the image has them). */
export const DEBIAN_CNI_DIR = '/usr/lib/cni';
/** The plugin directory of containerd and CRI-O unless configured otherwise. */
export const DEFAULT_CNI_BIN_DIR = '/opt/cni/bin';

/** Every plugin type our conflist names, IPAM included, then loopback (the runtime's own). */
export function requiredPlugins(): string[] {
  const conf = buildConflist({ podCIDR: '10.244.0.0/24', podCIDR6: 'fd00::/64', mtu: 1450 });
  const types = new Set<string>();
  for (const p of conf.plugins as Array<{ type: string; ipam?: { type: string } }>) {
    types.add(p.type);
    if (p.ipam) types.add(p.ipam.type);
  }
  types.add('loopback');
  return [...types];
}

export class CniInstallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CniInstallError';
  }
}

export interface InstallOptions {
  /** Directory the plugins are copied from. */
  readonly from: string;
  /** The node's plugin directory (in the DaemonSet, a hostPath). */
  readonly to: string;
  /** Default: requiredPlugins(). */
  readonly plugins?: readonly string[];
}

export interface InstallReport {
  /** Copied in by this run. */
  readonly installed: string[];
  /** Already there (the node's own, or from an earlier run), left alone. */
  readonly kept: string[];
  /** Kept plugins that do not look runnable: "<name>: <why>". */
  readonly suspicious: string[];
}

const TMP_MARK = '.vxnet-tmp-';

export function installCniPlugins(o: InstallOptions): InstallReport {
  const plugins = o.plugins ?? requiredPlugins();
  try {
    mkdirSync(o.to, { recursive: true });
  } catch (err) {
    throw fsError(err, `create the plugin directory ${o.to}`, o.to);
  }
  removeStaleTemporaries(o.to);

  const missing = plugins.filter((p) => !present(join(o.to, p)));
  // Every source is checked before anything is copied: a broken image installs nothing.
  for (const p of missing) {
    const src = join(o.from, p);
    let st;
    try {
      st = statSync(src);
    } catch {
      throw new CniInstallError(
        `plugin "${p}" is missing from ${o.to} and there is no ${src} to copy: the image must carry Debian's containernetworking-plugins in ${o.from} ` +
        `(or pass --from DIR); alternatively install ${missing.join(', ')} on the node yourself`);
    }
    if (!st.isFile() || (st.mode & 0o111) === 0) throw new CniInstallError(`${src} is not an executable file; rebuild the image`);
  }

  const installed: string[] = [];
  const kept = plugins.filter((p) => !missing.includes(p));
  for (const p of missing) (copyIn(join(o.from, p), o.to, p) ? installed : kept).push(p);
  return { installed, kept, suspicious: kept.flatMap((p) => suspicion(join(o.to, p), p)) };
}

/**
 * Conflists in `confDir` that the container runtime would pick before ours: it uses the first
 * `.conf`, `.conflist` or `.json` file in name order.
 */
export function precedingNetworkConfigs(confDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(confDir);
  } catch {
    return []; // no directory yet: nothing competes
  }
  return names.filter((n) => /\.(conf|conflist|json)$/.test(n) && n < CONFLIST_NAME).sort();
}

/** True when something (a file, a link, even a dangling one) holds the name. */
function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw fsError(err, `look at ${path}`, path);
  }
}

function suspicion(path: string, name: string): string[] {
  try {
    const st = statSync(path);
    if (!st.isFile()) return [`${name}: not a regular file`];
    if ((st.mode & 0o111) === 0) return [`${name}: not executable (mode ${(st.mode & 0o777).toString(8)})`];
    if (st.size === 0) return [`${name}: empty`];
    return [];
  } catch (err) {
    return [`${name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (a dangling link?)`];
  }
}

/** A copy interrupted by a crash (or a killed init container) leaves a temporary file behind. */
function removeStaleTemporaries(dir: string): void {
  try {
    for (const n of readdirSync(dir)) {
      if (n.startsWith('.') && n.includes(TMP_MARK)) rmSync(join(dir, n), { force: true });
    }
  } catch (err) {
    throw fsError(err, `remove a temporary file an interrupted run left in ${dir}`, dir);
  }
}

/** Copies src to dir/name without ever exposing a partial file; false if name appeared meanwhile. */
function copyIn(src: string, dir: string, name: string): boolean {
  const target = join(dir, name);
  const tmp = join(dir, `.${name}${TMP_MARK}${process.pid}`);
  try {
    copyFileSync(src, tmp, constants.COPYFILE_EXCL);
    const fd = openSync(tmp, 'r');
    try {
      fchmodSync(fd, 0o755);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK') throw err;
      if (present(target)) return false;
      renameSync(tmp, target);
    }
    return true;
  } catch (err) {
    if (err instanceof CniInstallError) throw err;
    throw fsError(err, `install ${name} into ${dir}`, dir);
  } finally {
    rmSync(tmp, { force: true });
  }
}

function fsError(err: unknown, what: string, dir: string): CniInstallError {
  const e = err as NodeJS.ErrnoException;
  const hint: Record<string, string> = {
    EROFS: `${dir} is read-only: mount the node's CNI plugin directory read-write into the init container (the hostPath in deploy/03-daemonset.yaml)`,
    EACCES: 'permission denied: the init container must run as root (runAsUser: 0)',
    EPERM: 'operation not permitted: the init container must run as root (runAsUser: 0)',
    ENOSPC: 'the node\'s disk is full',
    ENOTDIR: `${dir} is not a directory`,
    EEXIST: `${dir} exists and is not a directory`,
  };
  const more = (e.code && hint[e.code]) ?? 'check the node\'s CNI plugin directory';
  return new CniInstallError(`cannot ${what}: ${e.message}; ${more}`);
}
