import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const DEPLOY = join(import.meta.dirname, '../../deploy');
const ALERTS = join(DEPLOY, 'prometheus/alerts.yml');
const DASHBOARD = join(DEPLOY, 'grafana/latchkey.json');

const promtool = (...args: string[]) =>
  execFileSync('promtool', args, { cwd: join(DEPLOY, 'prometheus'), encoding: 'utf8' });

/** The latchkey_ metric names a PromQL text reads. */
const namesIn = (promql: string) => [...promql.matchAll(/\blatchkey_[a-z0-9_]+/g)].map((m) => m[0]);

/** Every series name a scrape can hold: each metric's, with a histogram's _bucket, _sum, _count. */
function exportedNames(scrape: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of scrape.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name!);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name! + s);
  }
  return names;
}

describe('the alerting rules', () => {
  it('pass promtool check rules', () => {
    expect(promtool('check', 'rules', ALERTS)).toContain('SUCCESS: 8 rules found');
  });

  it('fire as their unit tests say (promtool test rules)', () => {
    // promtool exits non-zero (execFileSync throws) when a test fails.
    promtool('test', 'rules', 'alerts.test.yml');
  });

  it('have a unit test for each alert', () => {
    const alerts = [...readFileSync(ALERTS, 'utf8').matchAll(/- alert: (\S+)/g)].map((m) => m[1]);
    const tests = readFileSync(join(DEPLOY, 'prometheus/alerts.test.yml'), 'utf8');
    expect(alerts.filter((a) => !tests.includes(`alertname: ${a}`))).toEqual([]);
  });
});

describe('the dashboard and the alerts against a real scrape', () => {
  let server: TestServer;
  let exported: Set<string>;

  beforeAll(async () => {
    server = await startTestServer({ ...(await storageEnv('embedded')), METRICS_PORT: '0' });
    exported = exportedNames(await (await fetch(server.metricsUrl!)).text());
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('the dashboard parses and every query names a metric the server exports', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(20);
    for (const expr of exprs) expect(namesIn(expr).length, expr).toBeGreaterThan(0);
    const unknown = exprs.flatMap(namesIn).filter((name) => !exported.has(name));
    expect(unknown).toEqual([]);
  });

  it('every alert reads a metric the server exports', () => {
    const unknown = namesIn(readFileSync(ALERTS, 'utf8')).filter((name) => !exported.has(name));
    expect(unknown).toEqual([]);
  });
});
