/**
 * The DaemonSet in deploy/ as a test that runs the agent under its constraints needs it: per
 * container, the command line, the user, the capabilities, no_new_privs, the read-only root, and
 * every mount with what backs it (a host path and its type, a ConfigMap). Read from the manifest
 * itself, so a test built on this cannot drift from what `kubectl apply -f deploy/` installs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAllYaml, type V1Container, type V1DaemonSet, type V1PodSpec } from '@kubernetes/client-node';

export const DEPLOY_DIR = fileURLToPath(new URL('../../../deploy/', import.meta.url));

export interface MountView {
  /** Where the container sees it. */
  readonly mountPath: string;
  readonly readOnly: boolean;
  /** A hostPath volume: the node's path and the kubelet's type check (CharDevice, DirectoryOrCreate, …). */
  readonly hostPath?: { readonly path: string; readonly type: string | undefined };
  /** A ConfigMap volume: its name. */
  readonly configMap?: string;
}

export interface ContainerView {
  readonly name: string;
  readonly image: string | undefined;
  readonly args: readonly string[];
  readonly runAsUser: number | undefined;
  /** Capabilities after the runtime applies drop, then add (drop ALL leaves only `add`). */
  readonly capabilities: readonly string[];
  /** no_new_privs. */
  readonly noNewPrivileges: boolean;
  readonly readOnlyRootFilesystem: boolean;
  readonly privileged: boolean;
  readonly mounts: readonly MountView[];
  /** The raw container, for anything not above. */
  readonly raw: V1Container;
}

export interface DaemonSetView {
  readonly ds: V1DaemonSet;
  readonly pod: V1PodSpec;
  readonly initContainers: readonly ContainerView[];
  readonly containers: readonly ContainerView[];
}

/** The one DaemonSet among deploy/*.yaml (subdirectories are not applied, so not read). */
export function loadDaemonSet(dir = DEPLOY_DIR): DaemonSetView {
  const docs = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => loadAllYaml(readFileSync(join(dir, f), 'utf8')) as Array<{ kind?: string }>)
    .filter((d) => d.kind === 'DaemonSet');
  if (docs.length !== 1) throw new Error(`want exactly one DaemonSet in ${dir}, found ${docs.length}`);
  const ds = docs[0] as V1DaemonSet;
  const pod = ds.spec!.template.spec!;
  const view = (c: V1Container): ContainerView => {
    const sc = c.securityContext ?? {};
    const drop = sc.capabilities?.drop ?? [];
    const add = sc.capabilities?.add ?? [];
    if (!drop.includes('ALL')) throw new Error(`container ${c.name} keeps the runtime's default capabilities; this view only describes drop: ["ALL"]`);
    return {
      name: c.name,
      image: c.image,
      args: c.args ?? [],
      runAsUser: sc.runAsUser,
      capabilities: add,
      noNewPrivileges: sc.allowPrivilegeEscalation === false,
      readOnlyRootFilesystem: sc.readOnlyRootFilesystem === true,
      privileged: sc.privileged === true,
      mounts: (c.volumeMounts ?? []).map((m): MountView => {
        const v = pod.volumes?.find((x) => x.name === m.name);
        if (!v) throw new Error(`container ${c.name} mounts volume ${m.name}, which the pod does not define`);
        return {
          mountPath: m.mountPath,
          readOnly: m.readOnly ?? false,
          ...(v.hostPath ? { hostPath: { path: v.hostPath.path, type: v.hostPath.type } } : {}),
          ...(v.configMap ? { configMap: v.configMap.name } : {}),
        };
      }),
      raw: c,
    };
  };
  return { ds, pod, initContainers: (pod.initContainers ?? []).map(view), containers: pod.containers.map(view) };
}

/** The mount of `c` backed by the node's `hostPath`, or undefined. */
export function hostMount(c: ContainerView, hostPath: string): MountView | undefined {
  return c.mounts.find((m) => m.hostPath?.path === hostPath);
}

/** The value after `flag` in an argument list. */
export function flagValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}
