/**
 * Lists every Node, decoding the response as it streams in (kube-list-decode.ts) instead of
 * through the generated CoreV1Api, whose typed decoding of a large list costs seconds and
 * hundreds of MB (docs/kubernetes.md, "Big clusters").
 *
 * The request itself is the client's: `KubeConfig.applySecurityAuthentication` sets the
 * credentials, client certificate, CA and proxy from the kubeconfig, and the client's own
 * `IsomorphicFetchHttpLibrary` sends it, as its `Watch` does for watches. So a kubeconfig that
 * works for the other calls works here, exec and token-file credentials included.
 */
import { ApiException, HttpMethod, IsomorphicFetchHttpLibrary, KubeConfig, RequestContext } from '@kubernetes/client-node';
import type { NodeLike } from './kube-node.js';
import { NodeListDecoder } from './kube-list-decode.js';
import { errorMessage, KubeApiError } from './kube-client.js';

export interface NodeListResult {
  /** The list's resourceVersion: where a watch continues from. */
  readonly resourceVersion: string;
  readonly nodes: number;
  /** Bytes of JSON received. */
  readonly bytes: number;
}

/** An error body is a Status object of a few hundred bytes; more than this is not read. */
const MAX_ERROR_BODY = 64 << 10;

/**
 * GET /api/v1/nodes with `query`, calling `onNode` for each Node in list order. Rejects with an
 * ApiException on an HTTP error (so `toKubeApiError` phrases it like any other call), with a
 * NodeListDecodeError on a broken body, and with a KubeApiError when the whole list has not
 * arrived within `timeoutMs` (the request is aborted then, not left streaming).
 */
export async function listNodes(
  kc: KubeConfig,
  query: Readonly<Record<string, string>>,
  onNode: (node: NodeLike) => void,
  timeoutMs: number,
): Promise<NodeListResult> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeApiError('list nodes: the kubeconfig has no current cluster');
  const url = new URL(`${cluster.server.replace(/\/+$/, '')}/api/v1/nodes`);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const ctx = new RequestContext(url.toString(), HttpMethod.GET);
  ctx.setHeaderParam('Accept', 'application/json');
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  ctx.setSignal(abort.signal);
  try {
    await kc.applySecurityAuthentication(ctx);
    const res = await new IsomorphicFetchHttpLibrary().send(ctx).toPromise();
    const body = res.body.stream();
    if (res.httpStatusCode !== 200) {
      const text = body ? await readSome(body, MAX_ERROR_BODY) : '';
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not a Status object; keep the text
      }
      throw new ApiException(res.httpStatusCode, `HTTP-Code: ${res.httpStatusCode}`, parsed, {});
    }
    if (!body) throw new KubeApiError('list nodes: the API server answered 200 with no body');
    const decoder = new NodeListDecoder(onNode);
    try {
      for await (const chunk of body) decoder.push(chunk);
    } catch (err) {
      if (abort.signal.aborted || !isStreamError(err)) throw err;
      // The answer started: this is a connection that broke, not an API that never answered.
      throw new KubeApiError(`list nodes: the connection broke after ${decoder.bytes} bytes and ${decoder.nodes} Nodes of the list: ${errorMessage(err)}`);
    }
    const top = decoder.end();
    return { resourceVersion: top.resourceVersion, nodes: decoder.nodes, bytes: decoder.bytes };
  } catch (err) {
    if (abort.signal.aborted) throw new KubeApiError(`list nodes: the whole list did not arrive within ${timeoutMs / 1000} s`);
    throw err;
  } finally {
    clearTimeout(timer);
    abort.abort(); // releases the connection if we stopped early (a decode error)
  }
}

/** An error of the response stream itself (undici), as opposed to one thrown by the decoder or onNode. */
function isStreamError(err: unknown): boolean {
  return err instanceof TypeError || (err instanceof Error && (err.name === 'AbortError' || (err as { code?: unknown }).code !== undefined));
}

async function readSome(stream: ReadableStream<Uint8Array>, limit: number): Promise<string> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    parts.push(chunk);
    size += chunk.length;
    if (size >= limit) break;
  }
  return Buffer.concat(parts).toString('utf8', 0, Math.min(size, limit));
}
