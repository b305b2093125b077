// The router flags every router command takes (`ask`, `dataset`, `serve`), and
// the router options they stand for. UNDERSTUDY_* variables configure the rest;
// a flag wins over its variable.
import { toNumber } from './usage.js';

export const ROUTER_FLAGS = {
  model: { type: 'string', short: 'm' },
  'cache-dir': { type: 'string' },
  offline: { type: 'boolean' },
  threads: { type: 'string', short: 't' },
  'chat-template': { type: 'string' },
} as const;

export function routerOptions(values: Record<string, unknown>) {
  return {
    ...(typeof values.model === 'string' ? { model: values.model } : {}),
    ...(typeof values['cache-dir'] === 'string' ? { cacheDir: values['cache-dir'] } : {}),
    ...(values.offline ? { useApi: false } : {}),
    ...(values.threads !== undefined ? { threads: toNumber(values.threads, '--threads', true) } : {}),
    ...(typeof values['chat-template'] === 'string' ? { chatTemplate: values['chat-template'] } : {}),
  };
}
