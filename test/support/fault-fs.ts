/**
 * A fault-injecting LogFileSystem for tests: wraps the real file system
 * (real files on disk) and, by rule, fails chosen operations with an errno
 * (ENOSPC, EIO...), optionally after writing part of the bytes for real
 * (a torn write), or returns short writes. `statfs` can be overridden to
 * report any free space. Counts every operation, so tests can assert e.g.
 * how many fdatasyncs a group commit cost.
 */
import { nodeFileSystem, type LogFileHandle, type LogFileStat, type LogFileSystem } from '../../log-store/file-system.ts';

export type FaultOp = 'open' | 'write' | 'read' | 'datasync' | 'sync' | 'truncate' | 'rename' | 'link' | 'unlink' | 'fsyncDir' | 'statfs' | 'readFile' | 'mkdir';

export interface FaultRule {
  op: FaultOp;
  /** Only paths containing this string. Default: any path. */
  path?: string;
  /** errno to throw. Omitted with `shortBytes` on a write: a short write without error. */
  code?: string;
  /** For writes: write this many bytes for real first (then fail with `code`, or return the short count). */
  shortBytes?: number;
  /** How many matching calls to fail. Default 1; Infinity for every call. */
  times?: number;
}

function errnoError(code: string, op: string, path: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: injected fault, ${op} '${path}'`) as NodeJS.ErrnoException;
  err.code = code;
  err.syscall = op;
  err.path = path;
  return err;
}

export class FaultFileSystem implements LogFileSystem {
  /** When set, statfs reports this many free bytes. */
  freeBytes: number | null = null;
  readonly counts: Record<string, number> = {};
  /** Handles open right now, per path. */
  readonly openHandles = new Map<string, number>();
  /** Bytes read through open handles, per path. */
  readonly bytesRead = new Map<string, number>();
  private rules: Array<Required<Pick<FaultRule, 'op' | 'times'>> & FaultRule> = [];

  constructor(private readonly inner: LogFileSystem = nodeFileSystem) {}

  inject(rule: FaultRule): void {
    this.rules.push({ ...rule, times: rule.times ?? 1 });
  }

  clearFaults(): void {
    this.rules = [];
  }

  count(op: FaultOp): number {
    return this.counts[op] ?? 0;
  }

  /** Returns the rule matching this call (consuming one of its `times`), or null. */
  match(op: FaultOp, path: string): FaultRule | null {
    this.counts[op] = (this.counts[op] ?? 0) + 1;
    for (const r of this.rules) {
      if (r.op !== op || r.times <= 0) continue;
      if (r.path !== undefined && !path.includes(r.path)) continue;
      r.times--;
      return r;
    }
    return null;
  }

  private check(op: FaultOp, path: string): void {
    const r = this.match(op, path);
    if (r?.code) throw errnoError(r.code, op, path);
  }

  async open(path: string, mode: 'read' | 'readwrite' | 'create' | 'createExclusive'): Promise<LogFileHandle> {
    this.check('open', path);
    const handle = new FaultHandle(this, path, await this.inner.open(path, mode));
    this.openHandles.set(path, (this.openHandles.get(path) ?? 0) + 1);
    return handle;
  }
  async mkdir(path: string): Promise<void> {
    this.check('mkdir', path);
    return this.inner.mkdir(path);
  }
  readdir(path: string): Promise<string[]> {
    return this.inner.readdir(path);
  }
  stat(path: string): Promise<LogFileStat> {
    return this.inner.stat(path);
  }
  async statfs(path: string): Promise<{ freeBytes: number }> {
    this.check('statfs', path);
    if (this.freeBytes !== null) return { freeBytes: this.freeBytes };
    return this.inner.statfs(path);
  }
  async rename(from: string, to: string): Promise<void> {
    this.check('rename', to);
    return this.inner.rename(from, to);
  }
  async link(from: string, to: string): Promise<void> {
    this.check('link', to);
    return this.inner.link(from, to);
  }
  async unlink(path: string): Promise<void> {
    this.check('unlink', path);
    return this.inner.unlink(path);
  }
  async readFile(path: string): Promise<Buffer> {
    this.check('readFile', path);
    return this.inner.readFile(path);
  }
  async fsyncDir(path: string): Promise<void> {
    this.check('fsyncDir', path);
    return this.inner.fsyncDir(path);
  }
}

class FaultHandle implements LogFileHandle {
  constructor(
    private readonly fs: FaultFileSystem,
    private readonly path: string,
    private readonly inner: LogFileHandle,
  ) {}

  private async faultyWrite(bytes: Buffer, position: number): Promise<number> {
    const r = this.fs.match('write', this.path);
    if (r === null) return this.inner.write(bytes, 0, bytes.length, position);
    const part = Math.min(r.shortBytes ?? 0, bytes.length);
    if (part > 0) await this.inner.write(bytes, 0, part, position);
    if (r.code) throw errnoError(r.code, 'write', this.path);
    return part;
  }

  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return this.faultyWrite(Buffer.from(buffer.buffer, buffer.byteOffset + offset, length), position);
  }
  writev(buffers: readonly Uint8Array[], position: number): Promise<number> {
    return this.faultyWrite(Buffer.concat(buffers), position);
  }
  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const r = this.fs.match('read', this.path);
    if (r?.code) throw errnoError(r.code, 'read', this.path);
    const n = await this.inner.read(buffer, offset, length, position);
    this.fs.bytesRead.set(this.path, (this.fs.bytesRead.get(this.path) ?? 0) + n);
    return n;
  }
  async datasync(): Promise<void> {
    const r = this.fs.match('datasync', this.path);
    if (r?.code) throw errnoError(r.code, 'fdatasync', this.path);
    return this.inner.datasync();
  }
  async sync(): Promise<void> {
    const r = this.fs.match('sync', this.path);
    if (r?.code) throw errnoError(r.code, 'fsync', this.path);
    return this.inner.sync();
  }
  async truncate(length: number): Promise<void> {
    const r = this.fs.match('truncate', this.path);
    if (r?.code) throw errnoError(r.code, 'ftruncate', this.path);
    return this.inner.truncate(length);
  }
  size(): Promise<number> {
    return this.inner.size();
  }
  async close(): Promise<void> {
    await this.inner.close();
    const left = (this.fs.openHandles.get(this.path) ?? 1) - 1;
    if (left > 0) this.fs.openHandles.set(this.path, left);
    else this.fs.openHandles.delete(this.path);
  }
}
