// lib.mjs — what every interop test shares: starting server-everything,
// the conformance reference server and `mcpr proxy run` on free loopback
// ports, each in a temporary HOME with its own store; reading the store
// back through the mcpr CLI; and reporting checks as PASS/FAIL lines that
// scripts/interop.sh counts.
//
// Every child is spawned in its own process group and its pid appended to
// $INTEROP_PIDS, so the children die with the test (exit, signal, uncaught
// error here; the script's trap kills the listed pids if node itself is
// killed). Every wait is bounded.
import { spawn, execFile } from 'node:child_process';
import { appendFileSync, mkdtempSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const NODE = process.execPath;
export const BUILD = resolve(process.env.MCPR_BUILD || join(HERE, '../../build'));
export const MCPR = join(BUILD, 'mcpr');
export const MODULES = join(HERE, 'node_modules');

// ---- checks -------------------------------------------------------------

let failures = 0;
/** Records one named check: PASS, or FAIL with the reason (never throws). */
export function check(name, ok, detail = '') {
  if (ok) console.log(`PASS ${name}`);
  else {
    failures++;
    console.log(`FAIL ${name}${detail ? ` — ${detail}` : ''}`);
  }
  return ok;
}
/** Runs fn; an exception is a FAIL of `name` with its message. */
export async function attempt(name, fn) {
  try {
    return await fn();
  } catch (e) {
    check(name, false, e?.stack?.split('\n').slice(0, 3).join(' | ') || String(e));
    return undefined;
  }
}
export function failureCount() {
  return failures;
}

// ---- processes ----------------------------------------------------------

const children = new Set();
function killAll() {
  for (const c of children) {
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {}
  }
  children.clear();
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
  process.on(sig, () => {
    console.log(`FAIL ${process.argv[1]?.split('/').pop()} — interrupted by ${sig}`);
    killAll();
    process.exit(1);
  });

/**
 * Spawns cmd in its own process group with stdout/stderr captured (kept in
 * .out/.err and written to logDir when given). The handle's .exited resolves
 * to the exit code.
 */
export function start(cmd, args, { env = {}, cwd, log } = {}) {
  const child = spawn(cmd, args, {
    cwd,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  if (process.env.INTEROP_PIDS) appendFileSync(process.env.INTEROP_PIDS, `${child.pid}\n`);
  child.out = '';
  child.err = '';
  child.stdout.on('data', (d) => {
    child.out += d;
    if (log) appendFileSync(`${log}.out`, d);
  });
  child.stderr.on('data', (d) => {
    child.err += d;
    if (log) appendFileSync(`${log}.err`, d);
  });
  child.exited = new Promise((res) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      res(code ?? 128 + (signal === 'SIGTERM' ? 15 : 9));
    }),
  );
  return child;
}

/** Stops a child: SIGTERM, then SIGKILL after graceMs. Resolves to its exit code. */
export async function stop(child, graceMs = 10000) {
  if (child.exitCode !== null || child.signalCode !== null) return child.exited;
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {}
  const t = setTimeout(() => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {}
  }, graceMs);
  const code = await child.exited;
  clearTimeout(t);
  return code;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits up to ms for fn() to return a truthy value; throws `what` on timeout. */
export async function waitFor(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Rejects after ms with `what`, else settles as p does. */
export function within(what, p, ms) {
  let t;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, rej) => {
      t = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** A fresh temporary directory for one test (HOME, store, logs). */
export function workdir(name) {
  const base = process.env.INTEROP_TMP || tmpdir();
  return mkdtempSync(join(base, `${name}-`));
}

// ---- servers ------------------------------------------------------------

async function startOnFreePort(what, args, env, dir, readyPattern) {
  for (let tries = 0; tries < 3; tries++) {
    const port = await freePort();
    const child = start(NODE, args, { env: { ...env, PORT: String(port) }, log: join(dir, what) });
    try {
      await waitFor(
        `${what} to listen`,
        () => {
          if (child.exitCode !== null) return 'exited';
          return readyPattern.test(child.out + child.err);
        },
        15000,
      );
    } catch (e) {
      await stop(child, 1000);
      throw e;
    }
    if (child.exitCode === null) return { child, url: `http://127.0.0.1:${port}/mcp`, port };
    // the port was taken between freePort() and listen(): try another
  }
  throw new Error(`${what} did not start (3 tries); see ${dir}`);
}

/** @modelcontextprotocol/server-everything in streamableHttp mode. */
export function startEverything(dir) {
  return startOnFreePort(
    'server-everything',
    [join(MODULES, '@modelcontextprotocol/server-everything/dist/index.js'), 'streamableHttp'],
    {},
    dir,
    /listening on port/,
  );
}

/** The conformance scenarios' reference server (conformance-server.mjs). */
export function startConformanceServer(dir) {
  return startOnFreePort('conformance-server', [join(HERE, 'conformance-server.mjs')], {}, dir, /listening on/);
}

/**
 * `mcpr proxy run` in front of upstream, with its own HOME (lock files),
 * config and store under dir. Returns {child, url, db, home, env}.
 */
export async function startProxy(dir, upstream, name = 'interop') {
  const home = join(dir, 'home');
  mkdirSync(home, { recursive: true });
  const db = join(dir, 'store.db');
  const config = join(dir, 'mcpr.toml');
  writeFileSync(
    config,
    [
      `name = "${name}"`,
      `mcp = "${upstream}"`,
      'admin_bind = "off"',
      'log_format = "json"',
      'drain_timeout = "10s"',
      'request_timeout = "60s"',
      '[store]',
      `path = "${db}"`,
      '',
    ].join('\n'),
  );
  const env = { HOME: home, MCPR_DB: db };
  const child = start(MCPR, ['proxy', 'run', '-c', config, '--listen', '127.0.0.1:0'], {
    env,
    cwd: dir,
    log: join(dir, 'proxy'),
  });
  const m = await waitFor(
    'mcpr proxy run to listen',
    () => {
      if (child.exitCode !== null) throw new Error(`mcpr proxy run exited ${child.exitCode}: ${child.err}`);
      return /listening on (http:\/\/\S+)/.exec(child.out);
    },
    15000,
  );
  return { child, url: m[1], db, home, env, config };
}

/** Runs `mcpr ARGS --json` against a store; resolves to the parsed JSON lines. */
export function mcprJson(proxy, args) {
  return new Promise((res, rej) => {
    execFile(
      MCPR,
      [...args, '--db', proxy.db, '--json'],
      { env: { ...process.env, ...proxy.env }, timeout: 20000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        if (err) return rej(new Error(`mcpr ${args.join(' ')}: ${err.message} ${stderr}`));
        try {
          res(
            stdout
              .split('\n')
              .filter((l) => l.trim())
              .map((l) => JSON.parse(l)),
          );
        } catch (e) {
          rej(new Error(`mcpr ${args.join(' ')}: not JSON lines: ${stdout.slice(0, 300)}`));
        }
      },
    );
  });
}

/** Runs a command to completion (bounded); resolves to {code, out, err}. */
export function run(cmd, args, { env = {}, cwd, timeoutMs = 60000 } = {}) {
  const child = start(cmd, args, { env, cwd });
  let timedOut = false;
  const t = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {}
  }, timeoutMs);
  return child.exited.then((code) => {
    clearTimeout(t);
    return { code, out: child.out, err: child.err, timedOut };
  });
}

export function readText(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Ends the test: exit code 1 when any check failed. */
export function finish() {
  killAll();
  process.exit(failures ? 1 : 0);
}
