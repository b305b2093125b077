// Routers for the tests: a fresh cache directory each, quiet, configured from
// options only (the test machine's own UNDERSTUDY_* variables must not leak in),
// with the teacher as the remote and stories260K as the local model.
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRouter, type Router, type RouterOptions } from '../src/index.js';
import { storiesModel } from './helpers.js';
import type { Teacher } from './teacher.js';

export const API_KEY = 'sk-test-SECRET-0123456789abcdef';

export function freshDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `understudy-${name}-`));
}

export function routerFor(teacher: Teacher | undefined, options: RouterOptions = {}): Promise<Router> {
  return createRouter({
    model: storiesModel,
    cacheDir: freshDir('router'),
    quiet: true,
    shadowRate: 0,
    auditRate: 0,
    retryDelayMs: 10,
    sequences: 2,
    contextSize: 512,
    env: {},
    ...(teacher ? { apiBase: teacher.url, apiModel: 'teacher-1', apiKey: API_KEY } : { useApi: false }),
    ...options,
  });
}

export function ask(content: string, extra: Record<string, unknown> = {}) {
  return { task: 'qa', messages: [{ role: 'user', content }], maxTokens: 24, ...extra };
}

/** Every byte of every file under `dir`, for checking that a secret never reached disk. */
export function allBytes(dir: string): Buffer {
  const parts: Buffer[] = [];
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (statSync(path).isFile()) parts.push(readFileSync(path));
  }
  return Buffer.concat(parts);
}
