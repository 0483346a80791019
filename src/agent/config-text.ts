/**
 * From a file on disk to a plain value, with every input bounded: the first step of reading the
 * config file and the peers file (`config.ts` checks the value afterwards).
 *
 * The agent reads files that an operator, a ConfigMap or a tool wrote, and a wrong path must not
 * cost the node its memory or its stack. So: only regular files are read (a device such as
 * /dev/urandom or a FIFO is refused before it is opened); at most `MAX_FILE_BYTES` are read,
 * however large the file claims or turns out to be; and a parsed value may nest at most
 * `MAX_NESTING` levels, checked by a scan of the text (JSON) or an explicit stack (YAML) rather
 * than recursion. The limits sit far above any real config, even one listing tens of thousands
 * of peers, so hitting one means the wrong file, and the error says which file and which limit.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

/** The YAML parser, loaded when a YAML file is first read: it costs more to load than a large JSON
 * config costs to parse, and most configs (the ConfigMap, generated peer lists) are JSON. */
let yaml: typeof import('yaml') | undefined;
function yamlParse(text: string): unknown {
  yaml ??= createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yaml.parse(text);
}

/** Largest config or peers file the agent reads, in bytes. */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;
/** Deepest nesting of lists and objects a config or peers file may have. */
export const MAX_NESTING = 32;

/** A file that cannot be read or parsed: `reason` says why without the path; the message has both. */
export class TextFileError extends Error {
  override name = 'TextFileError';
  constructor(readonly path: string, readonly reason: string) {
    super(`${path}: ${reason}`);
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'something else';
}

function mib(bytes: number): string {
  return `${bytes / (1024 * 1024)} MiB`;
}

/** Reads a regular file as UTF-8, refusing anything larger than `limit` bytes. */
export function readBoundedText(path: string, limit = MAX_FILE_BYTES): string {
  return readBoundedBytes(path, limit).toString('utf8');
}

/** A short, exact name for a file's content: equal fingerprints, equal bytes. */
export function fingerprint(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64');
}

/** Reads a regular file's bytes, refusing anything larger than `limit` bytes. */
export function readBoundedBytes(path: string, limit = MAX_FILE_BYTES): Buffer {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (err) {
    throw new TextFileError(path, `cannot read: ${(err as Error).message}`);
  }
  if (!st.isFile()) throw new TextFileError(path, `${kindOf(st)}, not a regular file; give the path of a JSON or YAML file`);
  const tooLarge = (): TextFileError =>
    new TextFileError(path, `larger than ${mib(limit)} (${limit} bytes), the limit for a config or peers file; is it the right file?`);
  if (st.size > limit) throw tooLarge();
  let fd: number;
  try {
    // O_NONBLOCK: should the path have become a FIFO since the stat, open must not wait for a writer.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new TextFileError(path, `cannot read: ${(err as Error).message}`);
  }
  try {
    if (!fstatSync(fd).isFile()) throw new TextFileError(path, 'not a regular file; give the path of a JSON or YAML file');
    // The size may be 0 (procfs) or change while we read: read until EOF, never past the limit.
    let buf = Buffer.allocUnsafe(Math.min(Math.max(st.size, 64 * 1024), limit) + 1);
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        if (len > limit) throw tooLarge();
        const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, limit + 1));
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
    }
    if (len > limit) throw tooLarge();
    return buf.subarray(0, len);
  } catch (err) {
    if (err instanceof TextFileError) throw err;
    throw new TextFileError(path, `cannot read: ${(err as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Parses JSON (a name ending in `.json`, or text starting with `{`) or YAML 1.2, then checks
 * the nesting bound. `file` is only for the choice of format and for messages.
 */
export function parseConfigValue(text: string, file: string): unknown {
  const tooDeep = (): TextFileError => new TextFileError(file, `cannot parse: lists and objects nested deeper than ${MAX_NESTING} levels`);
  const json = file.endsWith('.json') || text.trimStart().startsWith('{');
  // JSON: a scan of the text, far cheaper than a walk of the parsed value. YAML: the walk, after
  // the parse (YAML's own nesting has more forms than brackets).
  if (json && jsonDeeperThan(text, MAX_NESTING)) throw tooDeep();
  let value: unknown;
  try {
    value = json ? JSON.parse(text) : yamlParse(text);
  } catch (err) {
    const msg = (err as Error).message;
    // The YAML composer recurses per level, and runs out of stack long before memory.
    if (/call stack/i.test(msg)) throw tooDeep();
    throw new TextFileError(file, `cannot parse: ${msg}`);
  }
  if (!json && nestedDeeperThan(value, MAX_NESTING)) throw tooDeep();
  return value;
}

/** True when the brackets of JSON text (outside strings) nest more than `max` deep. */
export function jsonDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Jump to the closing quote: the next one not escaped by an odd run of backslashes.
      for (;;) {
        const q = text.indexOf('"', i + 1);
        if (q < 0) return false;
        let b = q - 1;
        while (text.charCodeAt(b) === 0x5c) b--;
        i = q;
        if ((q - 1 - b) % 2 === 0) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/** True when `v` holds lists or objects more than `max` levels deep. Iterative: no recursion. */
export function nestedDeeperThan(v: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[v, 0]];
  while (stack.length > 0) {
    const [x, depth] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(x) ? x : Object.values(x)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}
