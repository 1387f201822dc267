/**
 * The systemd packaging, tested without systemd: install.sh lays files into a
 * temporary root (twice: it must be idempotent and keep an operator's config),
 * uninstall.sh removes the application but keeps config and data, and the unit
 * passes `systemd-analyze verify` and the hardening target where
 * systemd-analyze is installed.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../agent/config.ts';

const run = promisify(execFile);
const repo = new URL('..', import.meta.url).pathname;
const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

async function install(root: string) {
  return run('bash', [join(repo, 'systemd/install.sh'), '--root', root, '--no-deps', '--no-systemctl']);
}

const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));

describe('systemd/install.sh', () => {
  it('lays out the application, config, rules, schemas and unit under a root', async () => {
    const root = await mkdtemp(join(tmpdir(), 'millstream-install-'));
    roots.push(root);
    await install(root);
    for (const f of ['opt/millstream/bin/millstream.js', 'opt/millstream/agent/cli.ts', 'opt/millstream/package-lock.json',
      'etc/millstream/millstream.yaml', 'etc/millstream/rules/widgets.sql', 'etc/millstream/schemas/widget.schema.json',
      'etc/systemd/system/millstream.service']) {
      await expect(access(join(root, f)), f).resolves.toBeUndefined();
    }
    expect(existsSync(join(root, 'opt/millstream/agent/config.test.ts'))).toBe(false);
    // The installed config is valid as installed.
    const yaml = await readFile(join(root, 'etc/millstream/millstream.yaml'), 'utf8');
    expect(parseConfig(yaml, join(root, 'etc/millstream/millstream.yaml')).gateway.id).toBe('gw-hall3-01');
  });

  it('is idempotent and never overwrites an operator-edited config', async () => {
    const root = await mkdtemp(join(tmpdir(), 'millstream-install-'));
    roots.push(root);
    await install(root);
    const cfg = join(root, 'etc/millstream/millstream.yaml');
    await writeFile(cfg, 'gateway: {id: edited-by-operator}\n');
    const { stdout } = await install(root);
    expect(await readFile(cfg, 'utf8')).toBe('gateway: {id: edited-by-operator}\n');
    expect(stdout).toContain('kept');
    expect(existsSync(`${cfg}.example`)).toBe(true);
    // A third run changes nothing more and still succeeds.
    await install(root);
    expect(await readFile(cfg, 'utf8')).toBe('gateway: {id: edited-by-operator}\n');
  });

  it('uninstall removes the application and unit but keeps config; --purge removes config', async () => {
    const root = await mkdtemp(join(tmpdir(), 'millstream-install-'));
    roots.push(root);
    await install(root);
    await run('bash', [join(repo, 'systemd/uninstall.sh'), '--root', root, '--no-systemctl']);
    expect(existsSync(join(root, 'opt/millstream'))).toBe(false);
    expect(existsSync(join(root, 'etc/systemd/system/millstream.service'))).toBe(false);
    expect(existsSync(join(root, 'etc/millstream/millstream.yaml'))).toBe(true);
    await run('bash', [join(repo, 'systemd/uninstall.sh'), '--root', root, '--no-systemctl', '--purge']);
    expect(existsSync(join(root, 'etc/millstream'))).toBe(false);
  });
});

describe('systemd/millstream.service', () => {
  it('declares notify, watchdog, restart, state/config directories, dialout and a stop budget above the agent\'s', async () => {
    const unit = await readFile(join(repo, 'systemd/millstream.service'), 'utf8');
    const kv = new Map<string, string[]>();
    for (const line of unit.split('\n')) {
      const m = /^([A-Za-z]+)=(.*)$/.exec(line);
      if (m) kv.set(m[1]!, [...(kv.get(m[1]!) ?? []), m[2]!]);
    }
    expect(kv.get('Type')).toEqual(['notify']);
    expect(kv.get('WatchdogSec')?.[0]).toMatch(/^\d+s$/);
    expect(kv.get('Restart')).toEqual(['on-failure']);
    expect(kv.get('StateDirectory')).toEqual(['millstream']);
    expect(kv.get('ConfigurationDirectory')).toEqual(['millstream']);
    expect(kv.get('SupplementaryGroups')).toEqual(['dialout']);
    for (const k of ['ProtectSystem', 'ProtectHome', 'PrivateTmp', 'NoNewPrivileges', 'RestrictAddressFamilies', 'SystemCallFilter']) {
      expect(kv.has(k), k).toBe(true);
    }
    const stopS = Number(/^(\d+)s$/.exec(kv.get('TimeoutStopSec')![0]!)![1]);
    const defaults = parseConfig('{}', '/etc/millstream/millstream.yaml');
    expect(stopS * 1000).toBeGreaterThan(defaults.shutdown.timeoutMs);
  });

  it.skipIf(!analyze)('passes systemd-analyze verify', async () => {
    const { stderr } = await run(analyze!, ['verify', join(repo, 'systemd/millstream.service')]);
    expect(stderr).not.toMatch(/error|invalid|unknown/i);
  });

  it.skipIf(!analyze)('has an exposure level of at most 2.0 in systemd-analyze security', async () => {
    const { stdout } = await run(analyze!, ['security', '--offline=true', join(repo, 'systemd/millstream.service')]).catch(
      (e: { stdout: string }) => ({ stdout: e.stdout }),
    );
    const m = /Overall exposure level for millstream\.service: ([\d.]+)/.exec(stdout);
    expect(m, stdout.slice(-500)).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(2.0);
  });
});
