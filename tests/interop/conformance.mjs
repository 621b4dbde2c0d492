// conformance.mjs — the server scenarios of @modelcontextprotocol/conformance
// (its active suite), run against a server directly and then through
// `mcpr proxy run`: every scenario that passes direct must pass proxied.
// Two servers: the scenarios' reference server (conformance-server.mjs,
// which must pass all of them direct) and server-everything (which passes
// only some; the rule is the same). One PASS/FAIL line per scenario run
// through the proxy, so a known proxy bug can be listed by scenario.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  MODULES,
  NODE,
  attempt,
  check,
  finish,
  mcprJson,
  run,
  startConformanceServer,
  startEverything,
  startProxy,
  stop,
  workdir,
} from './lib.mjs';

const CLI = join(MODULES, '@modelcontextprotocol/conformance/dist/index.js');

/** Runs the active server suite against url; resolves to Map scenario → {pass, detail}. */
async function suite(url, outDir, label) {
  const r = await run(NODE, [CLI, 'server', '--url', url, '-o', outDir], { timeoutMs: 180000 });
  if (r.timedOut) throw new Error(`${label}: conformance suite timed out`);
  const results = new Map();
  for (const d of existsSync(outDir) ? readdirSync(outDir) : []) {
    const m = /^server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z$/.exec(d);
    if (!m) continue;
    const checks = JSON.parse(readFileSync(join(outDir, d, 'checks.json'), 'utf8'));
    const failed = checks.filter((c) => c.status === 'FAILURE');
    results.set(m[1], {
      pass: checks.length > 0 && failed.length === 0,
      detail: failed.map((c) => `${c.id}: ${c.errorMessage ?? ''}`.slice(0, 300)).join('; '),
    });
  }
  // Every scenario the summary names must have a result directory.
  const summary = [...r.out.matchAll(/^[✓✗] (\S+): /gm)].map((x) => x[1]);
  for (const s of summary) if (!results.has(s)) results.set(s, { pass: false, detail: 'no checks.json' });
  if (results.size === 0) throw new Error(`${label}: no scenario ran (exit ${r.code}): ${r.out.slice(-500)} ${r.err.slice(-500)}`);
  return results;
}

async function againstServer(label, startServer, mustPassAll) {
  const dir = workdir(`conformance-${label}`);
  let direct;
  await attempt(`conformance ${label}: direct run`, async () => {
    const up = await startServer(dir);
    try {
      direct = await suite(up.url, join(dir, 'direct'), `${label} direct`);
    } finally {
      await stop(up.child);
    }
  });
  if (!direct) return;
  const passing = [...direct].filter(([, v]) => v.pass).map(([k]) => k);
  console.log(`INFO conformance ${label}: ${passing.length}/${direct.size} scenarios pass direct`);
  if (mustPassAll)
    check(`conformance ${label}: every scenario passes direct`, passing.length === direct.size,
      [...direct].filter(([, v]) => !v.pass).map(([k, v]) => `${k} (${v.detail})`).join(' ; '));

  await attempt(`conformance ${label}: proxied run`, async () => {
    const up = await startServer(dir);
    const proxy = await startProxy(dir, up.url, `conf-${label}`);
    let proxied;
    try {
      proxied = await suite(proxy.url, join(dir, 'proxied'), `${label} proxied`);
    } finally {
      proxy.exit = await stop(proxy.child, 15000);
      await stop(up.child);
    }
    const proxiedPassing = [...proxied].filter(([, v]) => v.pass).length;
    const onlyProxied = [...proxied].filter(([k, v]) => v.pass && !direct.get(k)?.pass).map(([k]) => k);
    console.log(`INFO conformance ${label}: ${proxiedPassing}/${proxied.size} scenarios pass proxied` +
      (onlyProxied.length ? ` (passing only through the proxy: ${onlyProxied.join(', ')})` : ''));
    check(`conformance ${label}: same scenarios run direct and proxied`, proxied.size === direct.size,
      `${direct.size} direct, ${proxied.size} proxied`);
    for (const s of passing) {
      const p = proxied.get(s);
      check(`conformance ${label} proxied: ${s}`, p?.pass === true, p ? p.detail : 'did not run');
    }
    check(`conformance ${label}: proxy exits 0 on SIGTERM`, proxy.exit === 0, `exit ${proxy.exit}`);
    // The store saw the suite: a tools/call row per tool the scenarios call
    // (the reference server's tools are all test_* or json_schema_*).
    const logs = await mcprJson(proxy, ['proxy', 'logs', '--tail', '5000', '--since', '1d']);
    check(`conformance ${label}: requests recorded in the store`, logs.length > 0 && logs.some((l) => l.method === 'initialize'),
      `${logs.length} rows`);
    if (mustPassAll) {
      const tools = new Set(logs.filter((l) => l.method === 'tools/call').map((l) => l.tool));
      const want = ['test_simple_text', 'test_tool_with_progress', 'test_sampling', 'test_elicitation', 'test_error_handling'];
      check(`conformance ${label}: tools/call rows name each tool`, want.every((t) => tools.has(t)), [...tools].join(','));
      const sessions = await mcprJson(proxy, ['proxy', 'sessions', '--since', '1d', '--limit', '1000']);
      check(`conformance ${label}: sessions recorded with the suite's client name`,
        sessions.length > 0 && sessions.some((s) => s.client_name === 'conformance-test-client'),
        `${sessions.length} sessions; names ${[...new Set(sessions.map((s) => s.client_name))].join(',')}`);
    }
  });
}

await againstServer('reference', startConformanceServer, true);
await againstServer('server-everything', startEverything, false);
finish();
