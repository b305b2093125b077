// The server tests' fixture: a router over stories260K (rwkv-world template,
// see distill-fixture.ts for why) with the loopback teacher as its remote, and
// the server over it on 127.0.0.1, port 0. close() stops all three and removes
// the cache folder. Every line the router and the server log is kept, so the
// tests can look for keys in them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRouter, type Router, type RouterOptions } from '../src/index.js';
import { startServer, type ServerOptions, type UnderstudyServer } from '../src/server/app.js';
import { storiesModel, within } from './helpers.js';
import { startTeacher, type Teacher, type TeacherOptions } from './teacher.js';

/** The remote's key: it must never come back from the server. */
export const REMOTE_KEY = 'sk-remote-TEACHER-SECRET-5f3a9c0e7b21';
/** The server's own key, for the tests that turn auth on. */
export const SERVER_KEY = 'us-server-SECRET-key-8d4e2b6a1c09';

export interface ServerFixture {
  router: Router;
  teacher: Teacher;
  server: UnderstudyServer;
  /** http://127.0.0.1:PORT */
  url: string;
  routerLines: string[];
  serverLines: string[];
  close(): Promise<void>;
}

export interface FixtureOptions {
  router?: Partial<RouterOptions>;
  server?: ServerOptions;
  teacher?: TeacherOptions;
}

/** Router options of the fixture: fast failures, no background work, the teacher as remote. */
export function fixtureRouterOptions(teacher: Teacher, cacheDir: string, lines: string[], extra: Partial<RouterOptions> = {}): RouterOptions {
  return {
    model: storiesModel,
    cacheDir,
    quiet: true,
    log: (line: string) => lines.push(line),
    shadowRate: 0,
    auditRate: 0,
    retries: 0,
    // Faults in a row must not rest the remote: each test expects its own failure.
    cooldownAfter: 1_000_000,
    retryDelayMs: 10,
    sequences: 2,
    contextSize: 1024,
    threads: 1,
    chatTemplate: 'rwkv-world',
    trainLocal: false,
    env: {},
    apiBase: teacher.url,
    apiModel: 'teacher-1',
    apiKey: REMOTE_KEY,
    ...extra,
  };
}

export async function startServerFixture(options: FixtureOptions = {}): Promise<ServerFixture> {
  const teacher = await startTeacher(options.teacher);
  const cacheDir = mkdtempSync(join(tmpdir(), 'understudy-server-'));
  const routerLines: string[] = [];
  const serverLines: string[] = [];
  let router: Router | undefined;
  try {
    router = await createRouter(fixtureRouterOptions(teacher, cacheDir, routerLines, options.router));
    const server = await startServer(router, { port: 0, log: (line) => serverLines.push(line), ...options.server });
    const r = router;
    return {
      router: r, teacher, server, url: server.url, routerLines, serverLines,
      async close() {
        await server.close({ graceMs: 1000 });
        await r.close();
        await teacher.close();
        rmSync(cacheDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await router?.close();
    await teacher.close();
    rmSync(cacheDir, { recursive: true, force: true });
    throw err;
  }
}

/** A raw HTTP exchange: status, headers and the body parsed as JSON (or the text when it is not JSON). */
export async function http(url: string, init: { method?: string; body?: string | object; headers?: Record<string, string> } = {}) {
  const body = init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
  const res = await fetch(url, {
    method: init.method ?? (body === undefined ? 'GET' : 'POST'),
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
    ...(body !== undefined ? { body } : {}),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Polls `ready` every 20 ms until it holds; fails after `ms` (and stops polling), so a wait never hangs the run. */
export async function until(ready: () => boolean, what: string, ms = 30_000): Promise<void> {
  let stop = false;
  const poll = (async () => {
    while (!stop && !ready()) await new Promise((r) => setTimeout(r, 20));
  })();
  try {
    await within(poll, ms, what);
  } finally {
    stop = true;
  }
}
