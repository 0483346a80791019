export async function runBench(_o: { outDir: string; quick: boolean; log: (m: string) => void }): Promise<void> {}
