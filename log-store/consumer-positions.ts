/**
 * Durable committed positions of named consumers: one small JSON file per
 * consumer, `<dataDir>/consumers/<name>.json`:
 *
 *   {"version":1,"positions":{"widgets":{"0":1200,"1":980}}}
 *
 * Each commit rewrites the file crash-safely: `<name>.json.tmp` is written
 * and fsynced, renamed over the old file, and the directory is fsynced. After
 * a crash the file holds either every position of the last commit or every
 * position of the one before: all or none.
 *
 * Why a file and not SQLite: the log store must not depend on a native
 * module (it is the foundation, opened by CLI tools and crash tests alike);
 * positions are a few dozen numbers per consumer, rewritten whole in one
 * write; temp + fsync + rename is the same crash-safety discipline the store
 * uses for topics.json, and costs two fsyncs per commit, which callers
 * (the replicator, rules) batch anyway. Rules keep their own SQLite
 * checkpoint, where state and offsets must change together.
 */
import { LogError, fromFsError } from './errors.ts';
import { writeFileAtomic, type LogFileSystem } from './file-system.ts';
import { validateName } from './topic-config.ts';
import type { ConsumerPositions } from './types.ts';

export const CONSUMERS_DIR = 'consumers';

export class FileConsumerPositions implements ConsumerPositions {
  private positions = new Map<string, Map<number, number>>();
  private chain: Promise<void> = Promise.resolve();
  private dirReady = false;

  private constructor(
    readonly name: string,
    private readonly fs: LogFileSystem,
    private readonly dir: string,
    private readonly readOnly: boolean,
    private readonly checkOpen: () => void,
  ) {}

  static async open(fs: LogFileSystem, dataDir: string, name: string, readOnly: boolean, checkOpen: () => void): Promise<FileConsumerPositions> {
    validateName('consumer', name);
    const dir = `${dataDir}/${CONSUMERS_DIR}`;
    const c = new FileConsumerPositions(name, fs, dir, readOnly, checkOpen);
    const file = `${dir}/${name}.json`;
    let text: string | null = null;
    try {
      text = (await fs.readFile(file)).toString('utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromFsError(err, 'read', { file });
    }
    if (text !== null) {
      let parsed: { version?: number; positions?: Record<string, Record<string, number>> };
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        throw new LogError('LOG_CORRUPT', `${file} is not valid JSON`, { file }, err);
      }
      if (parsed?.version !== 1 || typeof parsed.positions !== 'object' || parsed.positions === null)
        throw new LogError('LOG_CORRUPT', `${file}: expected {"version":1,"positions":{...}}`, { file });
      for (const [topic, parts] of Object.entries(parsed.positions)) {
        const m = new Map<number, number>();
        for (const [p, off] of Object.entries(parts)) if (Number.isSafeInteger(off)) m.set(Number(p), off);
        c.positions.set(topic, m);
      }
    }
    return c;
  }

  get(topic: string, partition: number): number | undefined {
    return this.positions.get(topic)?.get(partition);
  }

  all(): Record<string, Record<number, number>> {
    const out: Record<string, Record<number, number>> = {};
    for (const [topic, parts] of this.positions) out[topic] = Object.fromEntries(parts);
    return out;
  }

  commit(positions: ReadonlyArray<{ topic: string; partition: number; offset: number }>): Promise<void> {
    this.checkOpen();
    if (this.readOnly) return Promise.reject(new LogError('LOG_INVALID_ARGUMENT', 'the store was opened readOnly', { consumer: this.name }));
    for (const p of positions) {
      if (typeof p?.topic !== 'string' || !Number.isSafeInteger(p.partition) || p.partition < 0 || !Number.isSafeInteger(p.offset) || p.offset < 0)
        return Promise.reject(new LogError('LOG_INVALID_ARGUMENT', `bad position ${JSON.stringify(p)}`, { consumer: this.name }));
    }
    // Commits are serialized; each writes the whole map as it stands after it.
    const run = this.chain.then(async () => {
      const next = new Map<string, Map<number, number>>();
      for (const [t, parts] of this.positions) next.set(t, new Map(parts));
      for (const p of positions) {
        let m = next.get(p.topic);
        if (!m) next.set(p.topic, (m = new Map()));
        m.set(p.partition, p.offset);
      }
      const body: Record<string, Record<string, number>> = {};
      for (const [t, parts] of next) body[t] = Object.fromEntries(parts);
      const file = `${this.dir}/${this.name}.json`;
      try {
        if (!this.dirReady) {
          // The consumers/ entry itself must survive a crash: fsync the data directory once after creating it.
          await this.fs.mkdir(this.dir);
          await this.fs.fsyncDir(this.dir.slice(0, this.dir.length - CONSUMERS_DIR.length - 1));
          this.dirReady = true;
        }
        await writeFileAtomic(this.fs, this.dir, `${this.name}.json`, Buffer.from(JSON.stringify({ version: 1, positions: body })));
      } catch (err) {
        throw fromFsError(err, 'commit positions to', { file, consumer: this.name });
      }
      this.positions = next;
    });
    this.chain = run.catch(() => {});
    return run;
  }
}
