/**
 * Structured logs: one JSON object per line on stderr, with a timestamp, a level and a message,
 * plus fields. Control-plane events only; the data path never logs per packet (it counts).
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;
export type LogFn = (level: Level, msg: string, fields?: Fields) => void;

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function makeLogger(min: Level = (process.env.VXNET_LOG_LEVEL as Level) || 'info', out: NodeJS.WritableStream = process.stderr): LogFn {
  const floor = ORDER[min] ?? ORDER.info;
  return (level, msg, fields) => {
    if (ORDER[level] < floor) return;
    out.write(`${JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
}
