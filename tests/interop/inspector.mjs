// inspector.mjs — the @modelcontextprotocol/inspector CLI
// (`inspector --cli URL --transport http --method …`) through
// `mcpr proxy run` in front of server-everything: tools/list, tools/call,
// resources and prompts succeed, and the store has their rows.
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { MODULES, NODE, attempt, check, finish, mcprJson, run, startEverything, startProxy, stop, workdir } from './lib.mjs';

const LAUNCHER = join(MODULES, '@modelcontextprotocol/inspector/clients/launcher/build/index.js');
const dir = workdir('inspector');
const home = join(dir, 'inspector-home'); // its catalog and secrets go under HOME
mkdirSync(home);

async function inspector(url, args) {
  const r = await run(NODE, [LAUNCHER, '--cli', url, '--transport', 'http', ...args], {
    env: { HOME: home, NO_COLOR: '1' },
    timeoutMs: 60000,
  });
  let json;
  try {
    json = JSON.parse(r.out);
  } catch {}
  return { ...r, json, why: `exit ${r.code}${r.timedOut ? ' (timed out)' : ''}: ${(r.out + r.err).slice(0, 400)}` };
}

await attempt('inspector: run', async () => {
  const up = await startEverything(dir);
  const proxy = await startProxy(dir, up.url, 'inspector');
  try {
    let r = await inspector(proxy.url, ['--method', 'tools/list']);
    check('inspector proxied: tools/list', r.code === 0 && r.json?.tools?.some((t) => t.name === 'echo'), r.why);
    r = await inspector(proxy.url, ['--method', 'tools/call', '--tool-name', 'echo', '--tool-arg', 'message=through mcpr']);
    check('inspector proxied: tools/call echo', r.code === 0 && r.json?.content?.[0]?.text === 'Echo: through mcpr', r.why);
    r = await inspector(proxy.url, ['--method', 'tools/call', '--tool-name', 'get-sum', '--tool-arg', 'a=20', 'b=22']);
    check('inspector proxied: tools/call get-sum', r.code === 0 && /\b42\b/.test(r.json?.content?.[0]?.text || ''), r.why);
    r = await inspector(proxy.url, ['--method', 'resources/list']);
    check('inspector proxied: resources/list', r.code === 0 && r.json?.resources?.length > 0, r.why);
    r = await inspector(proxy.url, ['--method', 'prompts/get', '--prompt-name', 'args-prompt', '--prompt-args', 'city=Lyon']);
    check('inspector proxied: prompts/get', r.code === 0 && /Lyon/.test(JSON.stringify(r.json)), r.why);
  } finally {
    proxy.exit = await stop(proxy.child, 15000);
    await stop(up.child);
  }
  check('inspector: proxy exits 0 on SIGTERM', proxy.exit === 0, `exit ${proxy.exit}`);
  const logs = await mcprJson(proxy, ['proxy', 'logs', '--tail', '500', '--since', '1d']);
  const calls = logs.filter((l) => l.method === 'tools/call').map((l) => l.tool).sort();
  check('inspector store: tools/call rows for echo and get-sum', JSON.stringify(calls) === '["echo","get-sum"]', JSON.stringify(calls));
  check('inspector store: one initialize per CLI run', logs.filter((l) => l.method === 'initialize').length === 5,
    `${logs.filter((l) => l.method === 'initialize').length} initialize rows`);
  const sessions = await mcprJson(proxy, ['proxy', 'sessions', '--since', '1d']);
  const names = [...new Set(sessions.map((s) => s.client_name))];
  console.log(`INFO inspector client name in the store: ${names.join(', ')}`);
  check('inspector store: its sessions carry its client name', sessions.length === 5 && names.length === 1 && /inspector/i.test(names[0] || ''),
    `${sessions.length} sessions, names ${JSON.stringify(names)}`);
});
finish();
