/**
 * The CNI network configuration the agent writes for its node: Debian's real `bridge` plugin
 * (bridge `cni0` as the pods' gateway, no masquerading: pod addresses must reach other pods
 * unchanged), `host-local` IPAM over the node's pod CIDR, and `portmap` for hostPort. The bridge
 * MTU is the overlay MTU, so pods never send a packet the tunnel has to fragment. With a
 * podCIDR6 (dual stack), host-local gets a second range, so every pod gets one address of each
 * family and the bridge becomes the IPv6 gateway too (`<podCIDR6>::1`).
 *
 * The container runtime (or the lab's tiny CNI runtime) reads it; the file is written to a
 * temporary name and renamed, so a runtime never reads half a file.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const CONFLIST_NAME = '10-vxnet.conflist';

export interface ConflistOptions {
  readonly podCIDR: string;
  /** The node's IPv6 pod CIDR; when set, pods get an IPv6 address too. */
  readonly podCIDR6?: string | undefined;
  readonly mtu: number;
  readonly bridge?: string;
  readonly name?: string;
  /** host-local's state directory; default /var/lib/cni/networks. */
  readonly ipamDataDir?: string;
}

export function buildConflist(o: ConflistOptions): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name: o.name ?? 'vxnet',
    plugins: [
      {
        type: 'bridge',
        bridge: o.bridge ?? 'cni0',
        isGateway: true,
        isDefaultGateway: true,
        ipMasq: false,
        hairpinMode: true,
        mtu: o.mtu,
        ipam: {
          type: 'host-local',
          ranges: o.podCIDR6 ? [[{ subnet: o.podCIDR }], [{ subnet: o.podCIDR6 }]] : [[{ subnet: o.podCIDR }]],
          ...(o.ipamDataDir ? { dataDir: o.ipamDataDir } : {}),
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

export function writeConflist(dir: string, o: ConflistOptions): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, CONFLIST_NAME);
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(buildConflist(o), null, 2)}\n`);
  renameSync(tmp, path);
  return path;
}
