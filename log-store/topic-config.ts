/**
 * Topic settings: defaults, validation, and the `topics.json` registry.
 *
 * `topics.json` (in the data directory) is the list of topics and their
 * settings; it is rewritten whole, crash-safely (temp file + fsync + rename
 * + directory fsync), on every create or change:
 *
 *   {"version":1,"topics":{"widgets":{"partitions":3,"retentionMs":604800000,...}}}
 */
import { LogError } from './errors.ts';
import { writeFileAtomic, type LogFileSystem } from './file-system.ts';
import type { TopicConfig } from './types.ts';

export const TOPIC_DEFAULTS: Readonly<TopicConfig> = Object.freeze({
  partitions: 1,
  retentionMs: 604_800_000,
  retentionBytes: -1,
  segmentBytes: 67_108_864,
  segmentMs: 604_800_000,
  flushIntervalMs: 0,
  flushBytes: 1_048_576,
  fsync: 'always',
  indexIntervalBytes: 4096,
});

export const TOPICS_FILE = 'topics.json';

/** Kafka's rule: 1 to 249 of [a-zA-Z0-9._-], not '.' or '..'. */
export function validateName(kind: 'topic' | 'consumer', name: unknown): string {
  if (typeof name !== 'string' || !/^[a-zA-Z0-9._-]{1,249}$/.test(name) || name === '.' || name === '..')
    throw new LogError('LOG_INVALID_ARGUMENT', `invalid ${kind} name ${JSON.stringify(name)}: use 1-249 of [a-zA-Z0-9._-]`, { [kind]: name });
  return name;
}

function int(name: keyof TopicConfig, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max)
    throw new LogError('LOG_INVALID_ARGUMENT', `topic setting ${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`, { key: name });
  return value;
}

/** Applies the defaults (TOPIC_DEFAULTS, then `base`) to a partial config, validates it, and freezes it. */
export function resolveTopicConfig(partial: Partial<TopicConfig> = {}, base: Partial<TopicConfig> = {}): Readonly<TopicConfig> {
  const c = { ...TOPIC_DEFAULTS, ...stripUndefined(base), ...stripUndefined(partial) };
  const fsync = c.fsync;
  if (fsync !== 'always' && fsync !== 'never')
    throw new LogError('LOG_INVALID_ARGUMENT', `topic setting fsync must be 'always' or 'never', got ${JSON.stringify(fsync)}`, { key: 'fsync' });
  return Object.freeze({
    partitions: int('partitions', c.partitions, 1, 10_000),
    retentionMs: int('retentionMs', c.retentionMs, -1),
    retentionBytes: int('retentionBytes', c.retentionBytes, -1),
    // Positions in the offset index are uint32.
    segmentBytes: int('segmentBytes', c.segmentBytes, 1024, 2 ** 31),
    segmentMs: int('segmentMs', c.segmentMs, 1),
    flushIntervalMs: int('flushIntervalMs', c.flushIntervalMs, 0),
    flushBytes: int('flushBytes', c.flushBytes, 1),
    fsync,
    indexIntervalBytes: int('indexIntervalBytes', c.indexIntervalBytes, 1),
  });
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

export async function readTopicsFile(fs: LogFileSystem, dataDir: string): Promise<Map<string, Readonly<TopicConfig>>> {
  const topics = new Map<string, Readonly<TopicConfig>>();
  let text: string;
  try {
    text = (await fs.readFile(`${dataDir}/${TOPICS_FILE}`)).toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return topics;
    throw new LogError('LOG_IO', `read ${dataDir}/${TOPICS_FILE}: ${(err as Error).message}`, { file: `${dataDir}/${TOPICS_FILE}` }, err);
  }
  let parsed: { version?: number; topics?: Record<string, Partial<TopicConfig>> };
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new LogError('LOG_CORRUPT', `${dataDir}/${TOPICS_FILE} is not valid JSON: ${(err as Error).message}`, { file: `${dataDir}/${TOPICS_FILE}` }, err);
  }
  if (parsed?.version !== 1 || typeof parsed.topics !== 'object' || parsed.topics === null)
    throw new LogError('LOG_CORRUPT', `${dataDir}/${TOPICS_FILE}: expected {"version":1,"topics":{...}}`, { file: `${dataDir}/${TOPICS_FILE}` });
  for (const [name, cfg] of Object.entries(parsed.topics)) topics.set(validateName('topic', name), resolveTopicConfig(cfg));
  return topics;
}

export async function writeTopicsFile(fs: LogFileSystem, dataDir: string, topics: ReadonlyMap<string, Readonly<TopicConfig>>): Promise<void> {
  const body = { version: 1, topics: Object.fromEntries([...topics].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) };
  await writeFileAtomic(fs, dataDir, TOPICS_FILE, Buffer.from(`${JSON.stringify(body, null, 2)}\n`));
}
