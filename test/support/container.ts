/**
 * Runs a process the way a container runtime runs a container of the DaemonSet, without a
 * container engine, so a lab test can hold the agent to the manifest's constraints.
 *
 * The command is `unshare -m` (a mount namespace for this one child, private propagation) and a
 * shell script inside it that builds the container's file system view and then execs the
 * process under `setpriv`:
 *
 *   root          an overlay of the machine's / with its writable layer on a tmpfs, remounted
 *                 read-only once the mount points exist (readOnlyRootFilesystem: the image
 *                 stands in for itself; nothing is ever written to the machine's /)
 *   /proc         the machine's, with /proc/sys bound read-only over it, as runtimes mount it
 *                 for a container that is not privileged; /sys read-only
 *   /dev, /run    fresh tmpfs with null, zero, full, random, urandom and tty only (/run empty)
 *   volumes       every volumeMount of the container, at its mountPath, read-only where the
 *                 manifest says so: hostPaths from where the lab keeps that host path, ConfigMaps
 *                 from a directory of their files
 *   process       chroot into that root, then setpriv: the container's uid, its capabilities as
 *                 the bounding, permitted and effective set and nothing inheritable or ambient,
 *                 no_new_privs when allowPrivilegeEscalation is false
 *
 * Everything is read from the manifest (test/support/deploy.ts), so the test cannot drift from
 * what `kubectl apply -f deploy/` installs. When the process exits its mount namespace goes, and
 * every mount with it.
 */
import type { ContainerView } from './deploy.js';

export interface ContainerRun {
  readonly container: ContainerView;
  /**
   * Where each host path the manifest mounts is, for this run (a node's /etc/cni/net.d is a
   * directory of the lab node). A value may use $NODE_DIR, the directory of the file passed as
   * the script's second argument (the lab passes `--config <node dir>/agent.json`).
   */
  readonly hostPaths: Readonly<Record<string, string>>;
  /** ConfigMap name -> for each key, the file it is copied from ($NODE_DIR allowed). */
  readonly configMaps: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** The image's entrypoint as it exists here: the container's args follow it. */
  readonly entrypoint: readonly string[];
}

/** The capability names of a manifest ("NET_ADMIN") as setpriv's bounding-set argument. */
export function boundingSet(caps: readonly string[]): string {
  return ['-all', ...caps.map((c) => `+${c.toLowerCase().replace(/^cap_/, '')}`)].join(',');
}

function q(s: string): string {
  if (/['\n]/.test(s)) throw new Error(`cannot quote ${JSON.stringify(s)} for sh`);
  return `'${s}'`;
}

/** A path that may start with $NODE_DIR, quoted for sh with the variable left to expand. */
function qPath(s: string): string {
  return s.startsWith('$NODE_DIR') ? `"$NODE_DIR"${q(s.slice('$NODE_DIR'.length))}` : q(s);
}

/** The argv that runs the container's process; append `--config <node dir>/<file>` (ignored but for $NODE_DIR). */
export function containerArgv(r: ContainerRun): string[] {
  const c = r.container;
  const lines: string[] = [
    'set -eu',
    'NODE_DIR=$(dirname "$2")',
    'S="$NODE_DIR/container"',
    'mkdir -p "$S"',
    'mount -t tmpfs -o mode=755 vxnet-scratch "$S"',
    'mkdir "$S/upper" "$S/work" "$S/root"',
    'R="$S/root"',
    'mount -t overlay vxnet-root -o lowerdir=/,upperdir="$S/upper",workdir="$S/work" "$R"',
    // Kernel file systems as a runtime gives them to an unprivileged container.
    'mount --rbind /proc "$R/proc"',
    'mount --bind /proc/sys "$R/proc/sys"',
    'mount -o remount,bind,ro "$R/proc/sys"',
    'mount --rbind /sys "$R/sys"',
    'mount -o remount,bind,ro "$R/sys"',
    'mount -t tmpfs -o mode=755 vxnet-dev "$R/dev"',
    'for d in null zero full random urandom tty; do touch "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done',
    'mount -t tmpfs -o mode=755 vxnet-run "$R/run"',
  ];
  for (const m of c.mounts) {
    const target = `"$R"${q(m.mountPath)}`;
    if (m.hostPath) {
      const src = r.hostPaths[m.hostPath.path];
      if (src === undefined) throw new Error(`container ${c.name} mounts host path ${m.hostPath.path}: say where this run keeps it (hostPaths)`);
      if (m.hostPath.type === 'CharDevice' || m.hostPath.type === 'File') {
        lines.push(`mkdir -p "$(dirname ${target})"`, `touch ${target}`);
      } else {
        lines.push(`mkdir -p ${qPath(src)} ${target}`);
      }
      lines.push(`mount --bind ${qPath(src)} ${target}`);
    } else if (m.configMap) {
      const files = r.configMaps[m.configMap];
      if (!files) throw new Error(`container ${c.name} mounts ConfigMap ${m.configMap}: give its files (configMaps)`);
      const dir = `"$S"${q(`/configmap-${m.configMap}`)}`;
      lines.push(`mkdir -p ${dir} ${target}`);
      for (const [key, from] of Object.entries(files)) lines.push(`cp ${qPath(from)} ${dir}/${q(key)}`);
      lines.push(`mount --bind ${dir} ${target}`);
    } else {
      throw new Error(`container ${c.name}: volume at ${m.mountPath} is neither a hostPath nor a ConfigMap`);
    }
    if (m.readOnly) lines.push(`mount -o remount,bind,ro ${target}`);
  }
  if (c.readOnlyRootFilesystem) lines.push('mount -o remount,bind,ro "$R/run"', 'mount -o remount,bind,ro "$R"');
  if (c.runAsUser === undefined) throw new Error(`container ${c.name} sets no runAsUser; this runner needs one`);
  const setpriv = [
    'setpriv', `--reuid=${c.runAsUser}`, `--regid=${c.runAsUser}`, '--clear-groups',
    `--bounding-set=${boundingSet(c.capabilities)}`, '--inh-caps=-all', '--ambient-caps=-all',
    ...(c.noNewPrivileges ? ['--no-new-privs'] : []),
    '--', ...r.entrypoint, ...c.args,
  ];
  lines.push(`cd "$R"`, `exec chroot "$R" ${setpriv.map(q).join(' ')}`);
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', lines.join('\n'), 'vxnet-container'];
}
