// sdk-everything.mjs — the official TypeScript SDK client against
// @modelcontextprotocol/server-everything (streamableHttp), first direct,
// then through `mcpr proxy run`: the same session both ways (initialize,
// tools, a long call with progress, resources, prompts, a server-initiated
// roots/list over the GET stream, sampling over the POST stream, DELETE),
// the two transcripts compared, then the proxy stopped (SIGTERM drains) and
// its store read back with the mcpr CLI.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { isDeepStrictEqual } from 'node:util';
import {
  attempt,
  check,
  finish,
  mcprJson,
  startEverything,
  startProxy,
  stop,
  waitFor,
  within,
  workdir,
} from './lib.mjs';

const CLIENT = { name: 'mcpr-interop-sdk', version: '1.2.3' };
const ROOT = { uri: 'file:///tmp/mcpr-interop-root', name: 'interop-root' };
const LONG = { duration: 2, steps: 4 }; // a progress notification every 500 ms
const CALL_MS = 30000;

/** Drops what legitimately differs between two runs (clock times). */
function normalize(v) {
  return JSON.parse(
    JSON.stringify(v).replace(/created at [^"\\]*/g, 'created at <time>'),
  );
}

/**
 * One whole client session against url. Returns the transcript (results
 * by step) and what the transport saw (HTTP requests, timestamps).
 */
async function session(url, label) {
  const t = { label, http: [], progress: [], logs: [], roots_asked: [], sampling: 0 };
  const fetchSpy = async (input, init) => {
    const method = init?.method || 'GET';
    const res = await fetch(input, init);
    t.http.push({ method, status: res.status, type: res.headers.get('content-type') || '' });
    return res;
  };
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: fetchSpy });
  const client = new Client(CLIENT, {
    capabilities: { roots: { listChanged: true }, sampling: {}, elicitation: {} },
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    t.roots_asked.push(Date.now());
    return { roots: [ROOT] };
  });
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    t.sampling++;
    return {
      role: 'assistant',
      content: { type: 'text', text: `sampled: ${req.params.messages[0].content.text}` },
      model: 'interop-model',
      stopReason: 'endTurn',
    };
  });
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'decline' }));
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => t.logs.push(n.params));

  const r = {};
  await within(`${label}: connect`, client.connect(transport), 15000);
  t.sessionId = transport.sessionId;
  r.server = client.getServerVersion();
  r.capabilities = client.getServerCapabilities();
  r.instructions = client.getInstructions();

  const opts = { timeout: CALL_MS };
  r.tools = (await client.listTools(undefined, opts)).tools;
  r.echo = await client.callTool({ name: 'echo', arguments: { message: 'hello mcpr' } }, undefined, opts);
  r.sum = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } }, undefined, opts);

  // The long call: progress must stream while the call runs, not arrive
  // bunched up with the result.
  const started = Date.now();
  let progressAtResult = -1;
  r.long = await client
    .callTool({ name: 'trigger-long-running-operation', arguments: LONG }, undefined, {
      ...opts,
      onprogress: (p) => t.progress.push({ at: Date.now() - started, ...p }),
    })
    .then((res) => {
      progressAtResult = t.progress.length;
      return res;
    });
  t.longMs = Date.now() - started;
  t.progressAtResult = progressAtResult;
  r.progress = t.progress.map(({ progress, total }) => ({ progress, total }));

  r.resources = (await client.listResources(undefined, opts)).resources;
  r.templates = (await client.listResourceTemplates(undefined, opts)).resourceTemplates;
  r.readStatic = await client.readResource({ uri: r.resources[0]?.uri }, opts);
  r.readDynamic = await client.readResource({ uri: 'demo://resource/dynamic/text/1' }, opts);
  r.prompts = (await client.listPrompts(undefined, opts)).prompts;
  r.simplePrompt = await client.getPrompt({ name: 'simple-prompt' }, opts);
  r.argsPrompt = await client.getPrompt({ name: 'args-prompt', arguments: { city: 'Lyon', state: 'ARA' } }, opts);

  // Server-initiated: server-everything asks roots/list ~350 ms after
  // notifications/initialized, tied to no request, so only the GET stream
  // can carry it; its answer goes back in a POST.
  await waitFor(`${label}: roots/list from the server`, () => t.roots_asked.length > 0, 10000);
  r.roots = await client.callTool({ name: 'get-roots-list', arguments: {} }, undefined, opts);
  // Server-initiated inside a call: sampling/createMessage on the call's
  // POST SSE stream, answered by a POST, then the call's result.
  r.sampled = await client.callTool(
    { name: 'trigger-sampling-request', arguments: { prompt: 'say hi', maxTokens: 10 } },
    undefined,
    opts,
  );
  r.ping = await client.ping(opts);

  // DELETE ends the session: the old id is refused afterwards.
  await within(`${label}: terminateSession`, transport.terminateSession(), 10000);
  const after = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': t.sessionId,
      'mcp-protocol-version': '2025-06-18',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/list' }),
  });
  await after.text();
  r.afterDeleteStatus = after.status;
  await client.close();
  t.result = normalize(r);
  return t;
}

function checkSession(t) {
  const L = t.label;
  const r = t.result;
  check(`${L}: initialize (server info, capabilities)`, r.server?.name === 'mcp-servers/everything' && !!r.capabilities?.tools, JSON.stringify(r.server));
  check(`${L}: session id issued`, typeof t.sessionId === 'string' && t.sessionId.length > 0);
  const names = r.tools.map((x) => x.name);
  check(`${L}: tools/list`, ['echo', 'get-sum', 'trigger-long-running-operation', 'get-roots-list', 'trigger-sampling-request'].every((n) => names.includes(n)), names.join(','));
  check(`${L}: tools/call echo`, r.echo.content?.[0]?.text === 'Echo: hello mcpr', JSON.stringify(r.echo));
  check(`${L}: tools/call get-sum`, /\b42\b/.test(r.sum.content?.[0]?.text || ''), JSON.stringify(r.sum));
  check(`${L}: long call result`, /completed/.test(r.long.content?.[0]?.text || ''), JSON.stringify(r.long));
  check(`${L}: long call progress (${LONG.steps} notifications, in order)`,
    isDeepStrictEqual(r.progress, Array.from({ length: LONG.steps }, (_, i) => ({ progress: i + 1, total: LONG.steps }))),
    JSON.stringify(r.progress));
  check(`${L}: progress arrives before the result`, t.progressAtResult >= 1, `progress seen when the result arrived: ${t.progressAtResult}`);
  // Streamed, not held back: the first step is sent at 500 ms, the result at
  // 2000 ms; the first must reach the client well before the result.
  const first = t.progress[0]?.at ?? Infinity;
  check(`${L}: progress streamed while the call runs`, first < 1300 && t.longMs - first >= 700,
    `first progress at ${first} ms, result at ${t.longMs} ms (${t.progress.map((p) => p.at).join(',')})`);
  check(`${L}: resources/list + templates`, r.resources.length > 0 && r.templates.length > 0);
  check(`${L}: resources/read static`, (r.readStatic.contents?.[0]?.text || '').length > 0);
  check(`${L}: resources/read template`, /Resource 1: This is a plaintext resource/.test(r.readDynamic.contents?.[0]?.text || ''));
  check(`${L}: prompts/list`, ['simple-prompt', 'args-prompt'].every((n) => r.prompts.some((p) => p.name === n)));
  check(`${L}: prompts/get`, /Lyon, ARA/.test(JSON.stringify(r.argsPrompt)) && r.simplePrompt.messages?.length > 0);
  const gets = t.http.filter((h) => h.method === 'GET');
  check(`${L}: GET stream opened`, gets.some((h) => h.status === 200 && h.type.includes('text/event-stream')), JSON.stringify(gets));
  check(`${L}: server-initiated roots/list over the GET stream`, t.roots_asked.length >= 1 && JSON.stringify(r.roots).includes(ROOT.uri), JSON.stringify(r.roots));
  check(`${L}: sampling/createMessage during a call`, t.sampling === 1 && JSON.stringify(r.sampled).includes('sampled: '), JSON.stringify(r.sampled).slice(0, 300));
  const deletes = t.http.filter((h) => h.method === 'DELETE');
  check(`${L}: DELETE ends the session`, deletes.length === 1 && deletes[0].status === 200 && r.afterDeleteStatus >= 400 && r.afterDeleteStatus < 500,
    `DELETE ${JSON.stringify(deletes)}, then a request with the old id: ${r.afterDeleteStatus}`);
}

/** Where two transcripts differ (first few paths). */
function diff(a, b, path = '', out = []) {
  if (out.length > 5) return out;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') {
    if (!isDeepStrictEqual(a, b)) out.push(`${path}: ${JSON.stringify(a)?.slice(0, 80)} vs ${JSON.stringify(b)?.slice(0, 80)}`);
    return out;
  }
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) diff(a[k], b[k], `${path}.${k}`, out);
  return out;
}

async function checkStore(proxy, t, proxyExit) {
  check('store: proxy exits 0 on SIGTERM (drained)', proxyExit === 0, `exit ${proxyExit}: ${proxy.child.err.slice(-500)}`);
  const logs = await mcprJson(proxy, ['proxy', 'logs', '--tail', '500', '--since', '1d']);
  const mine = logs.filter((l) => l.session_id === t.sessionId);
  const count = (m, tool) => mine.filter((l) => l.method === m && (tool === undefined || l.tool === tool)).length;
  // What the client sent as JSON-RPC requests in this session, by method.
  const expect = [
    ['initialize', undefined, 1],
    ['tools/list', undefined, 2], // the second: sent with the old id after DELETE
    ['tools/call', 'echo', 1],
    ['tools/call', 'get-sum', 1],
    ['tools/call', 'trigger-long-running-operation', 1],
    ['tools/call', 'get-roots-list', 1],
    ['tools/call', 'trigger-sampling-request', 1],
    ['resources/list', undefined, 1],
    ['resources/templates/list', undefined, 1],
    ['resources/read', undefined, 2],
    ['prompts/list', undefined, 1],
    ['prompts/get', undefined, 2],
    ['ping', undefined, 1],
  ];
  for (const [m, tool, n] of expect)
    check(`store: ${n} request row(s) ${m}${tool ? ` ${tool}` : ''}`, count(m, tool) === n,
      `found ${count(m, tool)}; rows of the session: ${mine.map((l) => l.method + (l.tool ? ':' + l.tool : '')).join(', ')}`);
  const reads = mine.filter((l) => l.method === 'resources/read').map((l) => l.resource_uri).sort();
  check('store: resources/read rows carry resource_uri', reads.includes('demo://resource/dynamic/text/1') && reads.every(Boolean), JSON.stringify(reads));
  const prompts = mine.filter((l) => l.method === 'prompts/get').map((l) => l.prompt_name).sort();
  check('store: prompts/get rows carry prompt_name', isDeepStrictEqual(prompts, ['args-prompt', 'simple-prompt']), JSON.stringify(prompts));
  const long = mine.find((l) => l.tool === 'trigger-long-running-operation');
  check('store: long call latency covers the whole call', long && long.latency_us >= 1_800_000 && long.status === 'ok', JSON.stringify(long));
  // The request sent after DELETE is refused by the server (HTTP 400, a
  // JSON-RPC error -32000 with no id, since the server never parsed the
  // body): it is an error, not a success.
  const rejected = mine.filter((l) => l.method === 'tools/list').sort((a, b) => a.ts - b.ts)[1];
  check('store: request refused after DELETE (HTTP 400, JSON-RPC error) is an error row',
    rejected?.status === 'error' && rejected?.error_code === '-32000', JSON.stringify(rejected));
  const others = mine.filter((l) => l !== rejected);
  check('store: every other row of the session is ok', others.length > 0 && others.every((l) => l.status === 'ok'),
    others.filter((l) => l.status !== 'ok').map((l) => `${l.method}:${l.status}:${l.error_code}`).join(', '));

  const sessions = await mcprJson(proxy, ['proxy', 'sessions', '--since', '1d']);
  const s = sessions.find((x) => x.session_id === t.sessionId);
  check('store: session row with the client name the SDK sent', s?.client_name === CLIENT.name && s?.client_version === CLIENT.version, JSON.stringify(s));
  check('store: session ended by the DELETE', s && s.ended_at !== null, JSON.stringify(s));
  check('store: session total_calls counts its requests', s && s.total_calls === mine.length, `total_calls ${s?.total_calls}, rows ${mine.length}`);

  const schema = await mcprJson(proxy, ['proxy', 'schema']);
  const methods = schema.map((x) => x.method);
  for (const m of ['initialize', 'tools/list', 'resources/list', 'prompts/list'])
    check(`store: schema captured for ${m}`, methods.includes(m), methods.join(','));
  const tl = schema.find((x) => x.method === 'tools/list');
  // mcpr prints payload as JSON (an object); a string would be accepted too.
  const payload = typeof tl?.payload === 'string' ? JSON.parse(tl.payload) : tl?.payload;
  const tools = payload?.tools?.map((x) => x.name) || [];
  check('store: captured tools/list payload is the server\'s tool list', isDeepStrictEqual([...tools].sort(), t.result.tools.map((x) => x.name).sort()), JSON.stringify(tools));
}

const dir = workdir('sdk-everything');
let direct, proxied;
await attempt('direct: session', async () => {
  const up = await startEverything(dir);
  direct = await session(up.url, 'direct');
  await stop(up.child);
});
if (direct) checkSession(direct);

await attempt('proxied: session', async () => {
  const up = await startEverything(dir);
  const proxy = await startProxy(dir, up.url);
  try {
    proxied = await session(proxy.url, 'proxied');
  } finally {
    const code = await stop(proxy.child, 15000);
    proxy.exit = code;
    await stop(up.child);
  }
  checkSession(proxied);
  if (direct) {
    const d = diff(direct.result, proxied.result);
    check('direct vs proxied: same results', d.length === 0, d.join(' ; '));
    // As multisets: the GET stream opens concurrently with the first POSTs.
    const statuses = (t) => t.http.map((h) => `${h.method} ${h.status}`).sort();
    check('direct vs proxied: same HTTP requests and statuses', isDeepStrictEqual(statuses(direct), statuses(proxied)),
      `${statuses(direct)} vs ${statuses(proxied)}`);
  }
  await attempt('store: read back', () => checkStore(proxy, proxied, proxy.exit));
});
finish();
