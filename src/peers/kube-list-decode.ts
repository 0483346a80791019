/**
 * A streaming decoder for the API server's NodeList JSON that keeps only what a peer needs.
 *
 * Why not JSON.parse and the client's typed decoding. A kubelet's Node carries labels,
 * managedFields, conditions, nodeInfo and the images on the node: several KB each, of which vxnet
 * reads a few hundred bytes. Decoding a big cluster's list whole builds every one of those objects
 * (and the client's ObjectSerializer then copies them into typed models), which made start-up
 * CPU-bound in the decoder and the garbage collector, and made the peak memory several times the
 * list's size: more than the DaemonSet's memory limit at 15,000 Nodes. docs/kubernetes.md has the
 * numbers.
 *
 * How. Bytes are fed as they arrive. One pass over them walks the JSON: the fields a peer needs
 * are decoded with JSON.parse on their own bytes; everything else is skipped by a byte loop that
 * only follows string quotes and bracket depth (UTF-8 continuation bytes are never `"`, `\`, or a
 * bracket), without building a value. A step that runs out of bytes (a Node cut by a chunk
 * boundary) is taken again from its first byte once more bytes have come, so memory holds one
 * Node and one chunk. To keep a huge value from being re-walked on every chunk, a retry waits
 * until the bytes waiting have doubled: each byte is walked a bounded number of times.
 *
 * What is kept (the `NodeLike` shape): metadata.name, metadata.resourceVersion,
 * metadata.annotations, spec.podCIDR, spec.podCIDRs, status.addresses. The list's own top-level
 * fields (kind, apiVersion, metadata) are decoded whole.
 *
 * Bad input is an error, never a crash or a hang: malformed JSON, an `items` element that is not
 * an object, a value larger than `maxValueBytes`, or a stream that ends early each throw a
 * `NodeListDecodeError` that says what was expected where.
 */
import type { NodeLike } from './kube-node.js';

/** A NodeList that cannot be decoded. */
export class NodeListDecodeError extends Error {
  override readonly name = 'NodeListDecodeError';
}

/**
 * etcd refuses objects over 1.5 MiB, so no real Node comes close; a larger value is a broken
 * stream, and holding it would defeat the point of streaming.
 */
export const MAX_VALUE_BYTES = 8 << 20;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const LETTER_N = 0x6e;

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/** Thrown by a Cursor that reached the end of the bytes it has: not an error, a "wait for more". */
const INCOMPLETE: unique symbol = Symbol('incomplete');

/** Where the top-level walk is: between the tokens of `{"kind":…,"metadata":{…},"items":[…]}`. */
const State = {
  BeforeObject: 0,
  KeyOrEnd: 1, // after {
  KeyAfterComma: 2,
  CommaOrEnd: 3,
  ItemOrEnd: 4, // after "items":[
  ItemAfterComma: 5,
  ItemCommaOrEnd: 6,
  Done: 7,
} as const;
type State = (typeof State)[keyof typeof State];

/**
 * Feed it the response body chunk by chunk; it calls `onNode` for each Node of `items`, in order,
 * and `end()` checks the list was complete and returns its top-level fields.
 */
export class NodeListDecoder {
  private state: State = State.BeforeObject;
  private readonly top: Record<string, unknown> = {};
  /** Bytes received but not consumed: the start of a step that ran out of bytes. */
  private pending: Buffer = Buffer.alloc(0);
  /** Do not retry the waiting step before this many bytes wait (see the module comment). */
  private retryAt = 0;
  /** Stream offset of `pending[0]`, for messages. */
  private consumed = 0;
  private received = 0;
  private count = 0;

  constructor(
    private readonly onNode: (node: NodeLike) => void,
    private readonly maxValueBytes = MAX_VALUE_BYTES,
  ) {}

  /** Nodes delivered so far. */
  get nodes(): number {
    return this.count;
  }

  /** Bytes received so far. */
  get bytes(): number {
    return this.received;
  }

  push(chunk: Uint8Array): void {
    this.received += chunk.length;
    const data = this.pending.length === 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.concat([this.pending, chunk]);
    if (data.length < this.retryAt) {
      this.pending = data;
      return;
    }
    const c = new Cursor(data, this.consumed);
    let mark = 0;
    try {
      for (;;) {
        c.ws();
        if (c.atEnd()) break;
        this.step(c);
        mark = c.pos;
      }
      this.retryAt = 0;
    } catch (err) {
      if (err !== INCOMPLETE) throw err;
      const waiting = data.length - mark;
      if (waiting > this.maxValueBytes) {
        throw new NodeListDecodeError(`a value in the NodeList is larger than ${this.maxValueBytes} bytes (from byte ${this.consumed + mark}); the stream is broken`);
      }
      // Never wait past the limit: at the limit the retry either completes or refuses the value.
      this.retryAt = Math.min(Math.max(2 * waiting, waiting + 65_536), this.maxValueBytes + 1);
    }
    // Copy what waits, so the chunk it came from is not held (and may be reused by the stream).
    this.pending = Buffer.from(data.subarray(mark));
    this.consumed += mark;
  }

  /** Checks that the whole list arrived; returns its top-level fields (not `items`). */
  end(): { resourceVersion: string; kind: unknown } {
    if (this.pending.length > 0 && this.state !== State.Done) {
      this.retryAt = 0;
      this.push(new Uint8Array(0));
    }
    if (this.state !== State.Done) {
      throw new NodeListDecodeError(`the API server's NodeList ended early, after ${this.received} bytes and ${this.count} Nodes`);
    }
    const rv = (this.top['metadata'] as { resourceVersion?: unknown } | undefined)?.resourceVersion;
    return { resourceVersion: typeof rv === 'string' ? rv : '', kind: this.top['kind'] };
  }

  /** One token or one whole value of the top level; throws INCOMPLETE without having changed state. */
  private step(c: Cursor): void {
    switch (this.state) {
      case State.BeforeObject:
        c.want(LBRACE, 'the NodeList to start with {');
        this.state = State.KeyOrEnd;
        return;
      case State.KeyOrEnd:
      case State.KeyAfterComma: {
        if (this.state === State.KeyOrEnd && c.peek() === RBRACE) {
          c.pos++;
          this.state = State.Done;
          return;
        }
        const key = c.key();
        if (key === 'items' && c.peek() === LBRACKET) {
          c.pos++;
          this.state = State.ItemOrEnd;
          return;
        }
        this.top[key] = c.json();
        this.state = State.CommaOrEnd;
        return;
      }
      case State.CommaOrEnd:
        this.state = c.peek() === RBRACE ? State.Done : State.KeyAfterComma;
        c.want(this.state === State.Done ? RBRACE : COMMA, ', or } in the NodeList');
        return;
      case State.ItemOrEnd:
      case State.ItemAfterComma:
        if (this.state === State.ItemOrEnd && c.peek() === RBRACKET) {
          c.pos++;
          this.state = State.CommaOrEnd;
          return;
        }
        if (c.peek() !== LBRACE) throw c.error('a Node object in items');
        this.count++;
        try {
          this.onNode(extractNode(c));
        } catch (err) {
          if (err === INCOMPLETE) this.count--;
          throw err;
        }
        this.state = State.ItemCommaOrEnd;
        return;
      case State.ItemCommaOrEnd:
        this.state = c.peek() === RBRACKET ? State.CommaOrEnd : State.ItemAfterComma;
        c.want(this.state === State.CommaOrEnd ? RBRACKET : COMMA, ', or ] after a Node');
        return;
      case State.Done:
        throw c.error('nothing after the end of the NodeList');
    }
  }
}

// ---- one Node ----

/**
 * The fields a peer needs, by section of the Node, each with its reader: the `NodeLike` shape.
 * Any other key, at any depth, is skipped without being decoded.
 */
const FIELDS: Readonly<Record<string, Readonly<Record<string, (c: Cursor) => unknown>>>> = {
  metadata: { name: (c) => c.string(), resourceVersion: (c) => c.string(), annotations: (c) => stringMap(c.json()) },
  spec: { podCIDR: (c) => c.string(), podCIDRs: (c) => strings(c.json()) },
  status: { addresses: (c) => addresses(c.json()) },
};

/** Reads the fields a peer needs from the Node object at the cursor and moves past it. */
function extractNode(c: Cursor): NodeLike {
  const node: Record<string, Record<string, unknown>> = {};
  c.object((section) => {
    const readers = FIELDS[section];
    if (readers === undefined) return c.skip();
    const out: Record<string, unknown> = {};
    node[section] = out;
    c.object((key) => {
      const read = readers[key];
      if (read === undefined) c.skip();
      else out[key] = read(c);
    });
  });
  return node as NodeLike;
}

/** Decodes one Node's JSON text (complete), for tests and for callers holding a whole Node. */
export function decodeNode(text: string): NodeLike {
  const c = new Cursor(Buffer.from(text), 0);
  try {
    const node = extractNode(c);
    c.ws();
    if (!c.atEnd()) throw c.error('nothing after the Node');
    return node;
  } catch (err) {
    if (err === INCOMPLETE) throw new NodeListDecodeError('a Node is not valid JSON: it ends early');
    throw err;
  }
}

// The API server validates Nodes, so these never drop anything there; they keep a broken or
// hostile stand-in from handing the converter shapes it would trip over.

function stringMap(v: unknown): Record<string, string> | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
}

function addresses(v: unknown): Array<{ type: string; address: string }> | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.filter((a): a is { type: string; address: string } => a !== null && typeof a === 'object' && typeof a.type === 'string' && typeof a.address === 'string');
}

/**
 * A read position in the bytes received so far. Methods throw INCOMPLETE when they need bytes
 * that have not arrived, and NodeListDecodeError when the bytes are not JSON.
 */
class Cursor {
  pos = 0;
  constructor(
    private readonly buf: Buffer,
    /** Stream offset of buf[0], for messages. */
    private readonly base: number,
  ) {}

  atEnd(): boolean {
    return this.pos >= this.buf.length;
  }

  ws(): void {
    const buf = this.buf;
    while (this.pos < buf.length && isSpace(buf[this.pos]!)) this.pos++;
  }

  peek(): number {
    this.ws();
    if (this.pos >= this.buf.length) throw INCOMPLETE;
    return this.buf[this.pos]!;
  }

  want(b: number, what: string): void {
    if (this.peek() !== b) throw this.error(what);
    this.pos++;
  }

  /** An object key and its colon. */
  key(): string {
    if (this.peek() !== QUOTE) throw this.error('a key');
    const start = this.pos;
    this.skipString();
    const key = decodeKey(this.buf, start, this.pos);
    if (key === undefined) {
      this.pos = start;
      throw this.error('a valid key');
    }
    this.want(COLON, ':');
    return key;
  }

  /** Calls `onKey` at each key of an object (none for `null`); `onKey` must consume the value. */
  object(onKey: (key: string) => void): void {
    if (this.peek() === LETTER_N) {
      if (this.json() !== null) throw this.error('an object or null');
      return;
    }
    this.want(LBRACE, '{');
    if (this.peek() === RBRACE) {
      this.pos++;
      return;
    }
    for (;;) {
      onKey(this.key());
      const b = this.peek();
      this.pos++;
      if (b === RBRACE) return;
      if (b !== COMMA) {
        this.pos--;
        throw this.error(', or }');
      }
    }
  }

  /** A string or null value. */
  string(): string | undefined {
    const v = this.json();
    if (v === null) return undefined;
    if (typeof v !== 'string') throw this.error('a string');
    return v;
  }

  /** Any value, decoded with JSON.parse on its own bytes. */
  json(): unknown {
    this.ws();
    const start = this.pos;
    this.skip();
    try {
      return JSON.parse(this.buf.toString('utf8', start, this.pos));
    } catch (err) {
      this.pos = start;
      throw this.error(`a JSON value (${(err as Error).message})`);
    }
  }

  /** Moves past one value without building it. */
  skip(): void {
    const b = this.peek();
    if (b === QUOTE) {
      this.skipString();
      return;
    }
    const buf = this.buf;
    const n = buf.length;
    let i = this.pos;
    if (b !== LBRACE && b !== LBRACKET) {
      // A number, true, false or null: up to the next delimiter, which must have arrived.
      while (i < n) {
        const x = buf[i]!;
        if (x === COMMA || x === RBRACE || x === RBRACKET || x === COLON || isSpace(x)) break;
        if (x === QUOTE || x === LBRACE || x === LBRACKET) throw this.error('a delimiter after a scalar');
        i++;
      }
      if (i >= n) throw INCOMPLETE;
      this.pos = i;
      return;
    }
    // The hot loop: every skipped byte passes here once. Strings get their own tight loop.
    let depth = 0;
    while (i < n) {
      let x = buf[i++]!;
      if (x === QUOTE) {
        for (;;) {
          if (i >= n) throw INCOMPLETE;
          x = buf[i++]!;
          if (x === QUOTE) break;
          if (x === BACKSLASH) i++;
        }
      } else if (x === LBRACE || x === LBRACKET) {
        depth++;
      } else if (x === RBRACE || x === RBRACKET) {
        if (--depth === 0) {
          this.pos = i;
          return;
        }
        if (depth < 0) throw this.error('balanced brackets');
      }
    }
    throw INCOMPLETE;
  }

  private skipString(): void {
    const buf = this.buf;
    const n = buf.length;
    let i = this.pos + 1;
    while (i < n) {
      const x = buf[i++]!;
      if (x === QUOTE) {
        this.pos = i;
        return;
      }
      if (x === BACKSLASH) i++;
    }
    throw INCOMPLETE;
  }

  error(want: string): NodeListDecodeError {
    return new NodeListDecodeError(`the API server's NodeList is not valid JSON: expected ${want} at byte ${this.base + this.pos}`);
  }
}

/**
 * An object key: its raw bytes when they hold no escape or non-ASCII (Go escapes only <, >, &
 * and control characters), else JSON.parse; undefined when it is not a valid JSON string.
 */
function decodeKey(buf: Buffer, start: number, end: number): string | undefined {
  for (let i = start + 1; i < end - 1; i++) {
    const b = buf[i]!;
    if (b === BACKSLASH || b >= 0x80 || b < 0x20) {
      try {
        return JSON.parse(buf.toString('utf8', start, end)) as string;
      } catch {
        return undefined;
      }
    }
  }
  return buf.toString('latin1', start + 1, end - 1);
}
