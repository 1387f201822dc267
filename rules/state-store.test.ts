import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStateStore } from './state-store.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'millstream-state-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('state store', () => {
  it('refuses a file that is not an SQLite database, naming it', async () => {
    const file = join(dir, 'r.sqlite');
    await writeFile(file, 'not a database, but long enough to have a header of one: '.repeat(20));
    await expect(openStateStore(file)).rejects.toMatchObject({ code: 'RULES_STATE', context: { file } });
    await expect(openStateStore(file)).rejects.toThrow(/^cannot open state file: .*not a database/);
  });

  it('is empty at first, then returns exactly what was committed after a reopen', async () => {
    const file = join(dir, 'r.sqlite');
    let store = await openStateStore(file);
    expect(await store.load()).toBeNull();
    await store.commit({
      signature: 'sig-1',
      streamTime: -Infinity,
      seq: 0,
      batch: 0,
      positions: [[0, 0], [1, 5]],
      outputs: [['out', 0, 0], ['out_late', 0, 0]],
      upserts: [],
      deletes: [],
    });
    await store.commit({
      signature: 'sig-1',
      streamTime: 1_581_682_767_000,
      seq: 42,
      batch: 1,
      positions: [[0, 20]],
      outputs: [['out', 0, 3]],
      upserts: [['w1', '[["aa-101"],[[3]]]'], ['w2', '"text with \\"quotes\\""'], ['k\u0000weird', '[1]']],
      deletes: [],
    });
    await store.commit({
      signature: 'sig-1',
      streamTime: 1_581_682_768_000,
      seq: 43,
      batch: 2,
      positions: [],
      outputs: [],
      upserts: [['w1', '[["aa-101"],[[4]]]']],
      deletes: ['w2', 'never-existed'],
    });
    await store.close();
    await store.close(); // idempotent
    store = await openStateStore(file);
    const cp = await store.load();
    expect(cp).toEqual({
      signature: 'sig-1',
      streamTime: 1_581_682_768_000,
      seq: 43,
      batch: 2,
      positions: new Map([[0, 20], [1, 5]]),
      outputs: new Map([['out', new Map([[0, 3]])], ['out_late', new Map([[0, 0]])]]),
      windows: new Map([['w1', '[["aa-101"],[[4]]]'], ['k\u0000weird', '[1]']]),
    });
    await store.clear();
    expect(await store.load()).toBeNull();
    await store.close();
  });

  it('concurrent commits are serialised, each one whole', async () => {
    const store = await openStateStore(join(dir, 'c.sqlite'));
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.commit({ signature: 's', streamTime: i, seq: i, batch: i, positions: [[0, i]], outputs: [], upserts: [[`w${i}`, `[${i}]`]], deletes: [] }),
      ),
    );
    const cp = (await store.load())!;
    expect(cp.batch).toBe(19);
    expect(cp.positions.get(0)).toBe(19);
    expect(cp.windows.size).toBe(20);
    await store.close();
  });

  it('a commit of many rows (written in chunks) is whole: later rows for an id win, deletes across chunks apply', async () => {
    const file = join(dir, 'big.sqlite');
    let store = await openStateStore(file);
    const upserts: Array<[string, string]> = Array.from({ length: 5003 }, (_, i) => [`w${i}`, `[${i}]`]);
    upserts.push(['w7', '["again"]'], ['w4999', '["last"]']);
    await store.commit({ signature: 's', streamTime: 1, seq: 1, batch: 1, positions: [[0, 9]], outputs: [], upserts, deletes: [] });
    const deletes = Array.from({ length: 4500 }, (_, i) => `w${i + 10}`);
    await store.commit({ signature: 's', streamTime: 2, seq: 2, batch: 2, positions: [], outputs: [], upserts: [['w3', '[3.5]']], deletes });
    await store.close();
    store = await openStateStore(file);
    const cp = (await store.load())!;
    const expected = new Map<string, string>();
    for (const [id, v] of upserts) expected.set(id, v);
    for (const id of deletes) expected.delete(id);
    expected.set('w3', '[3.5]');
    expect(cp.windows).toEqual(expected);
    expect(cp.windows.get('w7')).toBe('["again"]');
    expect(cp.windows.size).toBe(5003 - 4500);
    await store.close();
  });

  it('keeps texts SQL would read as syntax (quotes, ?, ;, comments) and a commit of several MB sent to SQLite in parts', async () => {
    const file = join(dir, 'quotes.sqlite');
    let store = await openStateStore(file);
    // NUL ends a quoted SQL literal: a group key holding one (with a quote, or non-ASCII) goes as bytes
    const odd = ["o'brien", "''", '?', "'; DROP TABLE windows; --", '/* x */', '"\\', 'grün 😀', "?'?", "x'\u0000y", 'ü\u0000', '\u0000'];
    const upserts: Array<[string, string]> = odd.map((t, i) => [`${t}#${i}`, JSON.stringify([t])]);
    // about 6 MB of rows: more than one text to SQLite
    for (let i = 0; i < 3000; i++) upserts.push([`big${i}'`, JSON.stringify(["'".repeat(1000) + i])]);
    await store.commit({ signature: "it's", streamTime: 5, seq: 1, batch: 1, positions: [[0, 1]], outputs: [["o'ut", 0, 2]], upserts, deletes: [] });
    await store.commit({ signature: "it's", streamTime: 6, seq: 2, batch: 2, positions: [], outputs: [], upserts: [], deletes: [`${odd[3]}#3`, "big7'"] });
    await store.close();
    store = await openStateStore(file);
    const cp = (await store.load())!;
    expect(cp.signature).toBe("it's");
    expect(cp.outputs).toEqual(new Map([["o'ut", new Map([[0, 2]])]]));
    const expected = new Map(upserts);
    expected.delete(`${odd[3]}#3`);
    expected.delete("big7'");
    expect(cp.windows).toEqual(expected);
    await store.close();
  });
});
