/**
 * `vxnet bench --kube`: placeholder until the cluster bench lands (src/kube/bench.ts).
 */
export async function kubeBenchMain(_args: string[]): Promise<number> {
  process.stderr.write('vxnet bench --kube: not available in this build\n');
  return 1;
}
