/**
 * The file-system port of the log store. Every byte the store reads or writes
 * goes through a `LogFileSystem`, so tests can inject faults (ENOSPC, EIO,
 * short writes, a controlled `statfs`) without touching the real disk's
 * behaviour. The default, `nodeFileSystem`, is `node:fs/promises`.
 *
 * Contract: methods reject with node-style errors (an `Error` with an errno
 * `code` such as 'ENOSPC'); the store translates them with `fromFsError`.
 * `write` may write fewer bytes than asked (a short write) and returns the
 * count; callers loop.
 */
import { constants as fsConstants } from 'node:fs';
import * as fsp from 'node:fs/promises';

/** An open file. Positions are byte offsets from the start of the file. */
export interface LogFileHandle {
  /** Writes `length` bytes of `buffer` from `offset` at file `position`; returns the bytes actually written. */
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** Writes the buffers back to back at `position`; returns the bytes actually written (may be short). */
  writev(buffers: readonly Uint8Array[], position: number): Promise<number>;
  /** Reads up to `length` bytes at `position` into `buffer` at `offset`; returns the bytes read (0 at end of file). */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** fdatasync(2): data and the metadata needed to read it (size) reach the disk. */
  datasync(): Promise<void>;
  /** fsync(2). */
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  /** Current size in bytes. */
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface LogFileStat {
  size: number;
  mtimeMs: number;
  /** Creation time where the file system records it, else 0. */
  birthtimeMs: number;
  isFile: boolean;
  isDirectory: boolean;
}

export interface LogFileSystem {
  /**
   * Opens a file. Modes: 'read' (must exist, read only), 'readwrite' (must
   * exist), 'create' (read/write, created if missing, never truncated),
   * 'createExclusive' (read/write, fails with EEXIST if it exists).
   */
  open(path: string, mode: 'read' | 'readwrite' | 'create' | 'createExclusive'): Promise<LogFileHandle>;
  mkdir(path: string): Promise<void>;
  /** Entry names of a directory (not paths). */
  readdir(path: string): Promise<string[]>;
  stat(path: string): Promise<LogFileStat>;
  /** Free bytes available to this (unprivileged) process on the file system holding `path`. */
  statfs(path: string): Promise<{ freeBytes: number }>;
  rename(from: string, to: string): Promise<void>;
  /** link(2): a second name `to` for the file at `from`; fails with EEXIST if `to` exists (atomic). */
  link(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  readFile(path: string): Promise<Buffer>;
  /** fsync of a directory, so that created, renamed and deleted entries are durable. */
  fsyncDir(path: string): Promise<void>;
}

const MODES = {
  read: fsConstants.O_RDONLY,
  readwrite: fsConstants.O_RDWR,
  create: fsConstants.O_RDWR | fsConstants.O_CREAT,
  createExclusive: fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_EXCL,
} as const;

class NodeFileHandle implements LogFileHandle {
  constructor(private readonly fh: fsp.FileHandle) {}
  async write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const { bytesWritten } = await this.fh.write(buffer, offset, length, position);
    return bytesWritten;
  }
  async writev(buffers: readonly Uint8Array[], position: number): Promise<number> {
    if (buffers.length === 1) return this.write(buffers[0]!, 0, buffers[0]!.length, position);
    const { bytesWritten } = await this.fh.writev(buffers as Uint8Array[], position);
    return bytesWritten;
  }
  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const { bytesRead } = await this.fh.read(buffer, offset, length, position);
    return bytesRead;
  }
  datasync(): Promise<void> {
    return this.fh.datasync();
  }
  sync(): Promise<void> {
    return this.fh.sync();
  }
  truncate(length: number): Promise<void> {
    return this.fh.truncate(length);
  }
  async size(): Promise<number> {
    return (await this.fh.stat()).size;
  }
  close(): Promise<void> {
    return this.fh.close();
  }
}

/** The real file system (node:fs/promises). */
export const nodeFileSystem: LogFileSystem = Object.freeze({
  async open(path: string, mode: 'read' | 'readwrite' | 'create' | 'createExclusive'): Promise<LogFileHandle> {
    return new NodeFileHandle(await fsp.open(path, MODES[mode], 0o644));
  },
  async mkdir(path: string): Promise<void> {
    await fsp.mkdir(path, { recursive: true });
  },
  readdir(path: string): Promise<string[]> {
    return fsp.readdir(path);
  },
  async stat(path: string): Promise<LogFileStat> {
    const s = await fsp.stat(path);
    return { size: s.size, mtimeMs: s.mtimeMs, birthtimeMs: s.birthtimeMs, isFile: s.isFile(), isDirectory: s.isDirectory() };
  },
  async statfs(path: string): Promise<{ freeBytes: number }> {
    const s = await fsp.statfs(path);
    return { freeBytes: s.bavail * s.bsize };
  },
  rename(from: string, to: string): Promise<void> {
    return fsp.rename(from, to);
  },
  link(from: string, to: string): Promise<void> {
    return fsp.link(from, to);
  },
  unlink(path: string): Promise<void> {
    return fsp.unlink(path);
  },
  readFile(path: string): Promise<Buffer> {
    return fsp.readFile(path);
  },
  async fsyncDir(path: string): Promise<void> {
    const fh = await fsp.open(path, fsConstants.O_RDONLY);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
});

/**
 * Writes a whole file crash-safely: `<path>.tmp` is written and fsynced,
 * renamed over `path`, and the directory is fsynced. After a crash either
 * the old or the new content is there, never a mix.
 */
export async function writeFileAtomic(fs: LogFileSystem, dir: string, name: string, data: Uint8Array): Promise<void> {
  const path = `${dir}/${name}`;
  const tmp = `${path}.tmp`;
  const fh = await fs.open(tmp, 'create');
  try {
    await fh.truncate(0);
    let written = 0;
    while (written < data.length) {
      const n = await fh.write(data, written, data.length - written, written);
      if (n <= 0) throw Object.assign(new Error(`short write to ${tmp}`), { code: 'EIO' });
      written += n;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, path);
  await fs.fsyncDir(dir);
}

/** Writes all of `buffers` at `position`, looping over short writes. A write that makes no progress is EIO. */
export async function writeFully(fh: LogFileHandle, buffers: readonly Uint8Array[], position: number, total: number): Promise<void> {
  let written = await fh.writev(buffers, position);
  if (written === total) return;
  // Short write: finish byte range by byte range.
  let pos = position + written;
  let skip = written;
  for (const buf of buffers) {
    if (skip >= buf.length) {
      skip -= buf.length;
      continue;
    }
    let off = skip;
    skip = 0;
    while (off < buf.length) {
      const n = await fh.write(buf, off, buf.length - off, pos);
      if (n <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
      off += n;
      pos += n;
      written += n;
    }
  }
}
