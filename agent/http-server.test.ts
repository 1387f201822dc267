import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../test/support/browser.ts';
import { startHttpServer, type HttpServer } from './http-server.ts';
import { createMetrics } from './metrics.ts';
import { computeHealth, RecentValues, type AgentStatus } from './status.ts';

/** A status source whose numbers move like a live agent's: each call stores a few more readings. */
function movingStatus() {
  let stored = 0;
  let degraded = false;
  const recent = new RecentValues(['temp_celcius']);
  const status = (): AgentStatus => {
    stored += 7;
    const now = Date.now();
    for (const s of ['aa-101', 'aa-102']) recent.add(s, now, { temp_celcius: 20 + Math.sin(stored / 10) * 3 + (s === 'aa-102' ? 2 : 0) });
    const base = {
      gateway: 'gw-test', version: '0.1.0', pid: process.pid, startedAt: now - 65_000, now, state: 'running' as const,
      components: [{ name: 'log', state: 'running' as const, restarts: 0, lastError: null }],
      sources: [{ source: 'line1', device: 'line1', kind: 'mqtt', state: degraded ? 'backoff' : 'connected', connected: !degraded,
        lastReadingAt: now - 1000, readings: stored, decodeErrors: 1, deadLetters: 2, errors: 0, lastError: degraded ? 'ECONNREFUSED' : null, clockSkewMs: null }],
      topics: [{ name: 'widgets', partitions: [{ partition: 0, earliestOffset: 0, endOffset: stored, bytes: stored * 150 }], ratePerS: 7, endOffsetTotal: stored, bytes: stored * 150 }],
      ruleProblems: [],
      rules: [{ name: 'widgets_red', file: 'widgets.sql', state: 'running', lag: 3, recordsIn: stored, recordsOut: 2, recordsLate: 0, lastError: null }],
      replication: { enabled: true, partitions: [{ topic: 'widgets', partition: 0, position: stored - 5, endOffset: stored, lagRecords: 5, lagSeconds: 0.4, state: 'running', lastError: null }] },
      recent: recent.snapshot(),
      rssBytes: 50 << 20,
    };
    return { ...base, health: computeHealth(base) };
  };
  return { status, setDegraded: (d: boolean) => (degraded = d) };
}

describe('HTTP endpoints', () => {
  let server: HttpServer;
  const source = movingStatus();
  beforeAll(async () => {
    server = await startHttpServer({ host: '127.0.0.1', port: 0, status: source.status, metrics: createMetrics(source.status) });
  });
  afterAll(async () => {
    await server.close();
  });

  it('/healthz says ok, then degraded with the reason and 503', async () => {
    let res = await fetch(new URL('/healthz', server.url));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok\n');
    source.setDegraded(true);
    res = await fetch(new URL('/healthz', server.url));
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('degraded\n- source line1 device line1 backoff: ECONNREFUSED\n');
    source.setDegraded(false);
  });

  it('/metrics is Prometheus text with the agent figures', async () => {
    const res = await fetch(new URL('/metrics', server.url));
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toMatch(/^# TYPE millstream_source_readings_total counter$/m);
    expect(text).toMatch(/^millstream_source_readings_total\{source="line1",device="line1",kind="mqtt"\} \d+$/m);
    expect(text).toMatch(/^millstream_log_records_total\{topic="widgets",partition="0"\} \d+$/m);
    expect(text).toMatch(/^millstream_replication_lag_records\{topic="widgets",partition="0"\} 5$/m);
    expect(text).toMatch(/^millstream_rule_lag_records\{rule="widgets_red"\} 3$/m);
    expect(text).toMatch(/^# TYPE millstream_log_fsync_seconds histogram$/m);
    expect(text).toMatch(/^millstream_rss_bytes \d+$/m);
    expect(text).toMatch(/^millstream_process_resident_memory_bytes \d+$/m);
  });

  it('/api/status is the status model; unknown paths 404, POST 405', async () => {
    const body = (await (await fetch(new URL('/api/status', server.url))).json()) as AgentStatus;
    expect(body.gateway).toBe('gw-test');
    expect(body.topics[0]!.name).toBe('widgets');
    expect((await fetch(new URL('/nope', server.url))).status).toBe(404);
    expect((await fetch(new URL('/api/status', server.url), { method: 'POST' })).status).toBe(405);
  });
});

describe('status page in headless Chromium', () => {
  let server: HttpServer;
  let browser: Browser;
  beforeAll(async () => {
    const source = movingStatus();
    server = await startHttpServer({ host: '127.0.0.1', port: 0, status: source.status, metrics: createMetrics(source.status) });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('loads, shows live numbers that change, and draws the chart', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
    await page.getByTestId('gateway').filter({ hasText: 'gw-test' }).waitFor();
    const first = await page.getByTestId('stored').textContent();
    expect(Number(first!.replace(/,/g, ''))).toBeGreaterThan(0);
    // Live: the number moves as the agent stores more.
    await page.waitForFunction(`document.querySelector('[data-testid="stored"]').textContent !== ${JSON.stringify(first)}`);
    expect(await page.getByTestId('health').textContent()).toBe('ok');
    expect(await page.locator('[data-testid="sources"] tbody tr td').nth(0).textContent()).toBe('line1');
    expect(await page.locator('[data-testid="rules"] tbody tr td').nth(0).textContent()).toBe('widgets_red');
    // The chart: two series, points plotted, and non-background pixels on the canvas.
    await page.waitForFunction(`Number(document.querySelector('[data-testid="chart"]').dataset.points) >= 4`);
    expect(await page.getByTestId('chart').getAttribute('data-series')).toBe('2');
    // Count coloured (non-grey) pixels: the axes are grey, the series lines are not.
    const inked = await page.evaluate<number>(`(() => {
      const c = document.querySelector('[data-testid="chart"]');
      const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let coloured = 0;
      for (let i = 0; i < px.length; i += 4) if (px[i + 3] > 0 && (px[i] !== px[i + 1] || px[i + 1] !== px[i + 2])) coloured++;
      return coloured;
    })()`);
    expect(inked).toBeGreaterThan(100);
    expect(await page.getByTestId('field').inputValue()).toBe('temp_celcius');
    expect(errors).toEqual([]);
  });
});
