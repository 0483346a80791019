/**
 * The version this agent was built as: package.json's `version`, read once from the file that
 * ships next to `dist/` (the image copies it too), so there is one place to bump it. A missing
 * or unreadable file gives "unknown" rather than a failed start: the version is for operators,
 * not for the data path.
 */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' && pkg.version !== '' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export const VERSION = readVersion();
