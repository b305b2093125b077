// `understudy serve`: the OpenAI-compatible server over the training router.
// The server listens before the router has loaded (GET /health says 503
// "loading" until then), so a supervisor sees the process up at once; the
// "listening" line comes when requests can be answered. The first SIGINT or
// SIGTERM stops taking requests, lets those in flight finish for up to --grace
// ms, then closes the router (its caches and dataset written out) and exits 0;
// a second one exits 130 at once.
import { UnderstudyError } from '../errors.js';
import { MIN_KEY_LENGTH } from '../router/redact.js';
import type { Router } from '../router/router.js';
import { startServer, type ServerOptions } from '../server/app.js';
import { createRouter } from '../train/attach.js';
import { isDecimal, showValue } from '../validate.js';
import { ROUTER_FLAGS, routerOptions } from './router-flags.js';
import { parse, UsageError } from './usage.js';

const SERVE_FLAGS = {
  ...ROUTER_FLAGS,
  host: { type: 'string' },
  port: { type: 'string', short: 'p' },
  'api-key': { type: 'string' },
  'body-limit': { type: 'string' },
  'request-timeout': { type: 'string' },
  grace: { type: 'string' },
} as const;

const DEFAULT_GRACE_MS = 10_000;
/** The largest body limit, request timeout and grace startServer takes (a Node timer's limit). */
const MAX_INT32 = 2 ** 31 - 1;

type Env = Record<string, string | undefined>;

/** What the flags and variables ask for, checked before anything is loaded. */
export function serveOptions(argv: string[], env: Env = process.env) {
  const { values, positionals } = parse(argv, SERVE_FLAGS);
  if (positionals.length > 0) throw new UsageError(`serve takes no arguments, got ${showValue(positionals[0])}`);
  const host = stringSetting(values.host, '--host', env, 'UNDERSTUDY_HOST') ?? '127.0.0.1';
  const port = integerSetting(values.port, '--port', env, 'UNDERSTUDY_PORT', 0, 65535) ?? 8080;
  const apiKey = keySetting(values['api-key'], env);
  // The bounds are startServer's own, so a value it would refuse is a usage error naming the flag.
  const bodyLimit = integerSetting(values['body-limit'], '--body-limit', {}, '', 1, MAX_INT32);
  const requestTimeoutMs = integerSetting(values['request-timeout'], '--request-timeout', {}, '', 1, MAX_INT32);
  const graceMs = integerSetting(values.grace, '--grace', {}, '', 0, MAX_INT32) ?? DEFAULT_GRACE_MS;
  const server: ServerOptions = {
    host,
    port,
    ...(apiKey !== undefined ? { apiKey } : {}),
    ...(bodyLimit !== undefined ? { bodyLimit } : {}),
    ...(requestTimeoutMs !== undefined ? { requestTimeoutMs } : {}),
  };
  return { server, graceMs, router: routerOptions(values) };
}

export async function serveCommand(argv: string[]): Promise<number> {
  const options = serveOptions(argv);
  const stop = stopOnSignal();
  try {
    // The server gets the router's promise before the router starts loading: a port
    // that is taken then costs no model load (and leaves no load running).
    let provide!: (router: Promise<Router>) => void;
    const promised = new Promise<Router>((resolve) => (provide = resolve));
    let quiet = false;
    // A port that cannot be bound is startServer's IO_ERROR, naming the address and why.
    const server = await startServer(promised, { ...options.server, log: (line) => quiet || process.stderr.write(`${line}\n`) });
    if (!options.server.apiKey && !isLoopback(options.server.host!)) {
      process.stderr.write(`understudy: warning: listening on ${options.server.host} without a key: anyone who can reach this address can use the server ` +
        'and spend the remote\'s budget; set UNDERSTUDY_SERVER_KEY\n');
    }
    // Rounds run in the background as the router's settings say (UNDERSTUDY_TRAIN_EVERY...).
    const loading = createRouter(options.router);
    // Awaited below; until then a failure to load must not be an unhandled rejection.
    loading.catch(() => undefined);
    provide(loading);
    let router: Router | undefined;
    try {
      router = await Promise.race([loading, stop.signalled.then(() => undefined)]);
      if (router) {
        quiet = router.settings.quiet;
        process.stderr.write(`understudy: listening on ${server.url}\n`);
        await stop.signalled;
      }
    } finally {
      // Also when the router failed to load: the port is given back before the error is reported.
      await server.close({ graceMs: options.graceMs });
    }
    // A signal during loading: the load cannot be cut short, and what it opened must be closed.
    router ??= await loading;
    await router.close();
    return 0;
  } finally {
    stop.remove();
  }
}

/** Whether `host` only takes connections from this machine. */
function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** The first SIGINT/SIGTERM settles `signalled`; a second exits at once. */
function stopOnSignal(): { signalled: Promise<void>; remove(): void } {
  let stopped = false;
  let settle!: () => void;
  const signalled = new Promise<void>((resolve) => (settle = resolve));
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopped) {
      process.stderr.write(`understudy: ${signal} again: exiting without waiting\n`);
      process.exit(130);
    }
    stopped = true;
    process.stderr.write(`understudy: ${signal}: stopping (requests in flight may finish; ${signal} again exits at once)\n`);
    settle();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signalled,
    remove() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** A flag wins over its variable; an empty flag is a usage error, an empty variable is unset. */
function stringSetting(flag: unknown, name: string, env: Env, variable: string): string | undefined {
  if (typeof flag === 'string') {
    if (flag.trim() === '') throw new UsageError(`${name} expects a non-empty value, got ${showValue(flag)}`);
    return flag.trim();
  }
  const raw = env[variable]?.trim();
  return raw ? raw : undefined;
}

function integerSetting(flag: unknown, name: string, env: Env, variable: string, min: number, max: number): number | undefined {
  const expected = max >= Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`;
  const check = (raw: string) => {
    const n = Number(raw);
    return isDecimal(raw) && Number.isInteger(n) && n >= min && n <= max ? n : undefined;
  };
  if (typeof flag === 'string') {
    const n = check(flag);
    if (n === undefined) throw new UsageError(`${name} expects ${expected}, got ${showValue(flag)}`);
    return n;
  }
  const raw = variable ? env[variable]?.trim() : undefined;
  if (!raw) return undefined;
  const n = check(raw);
  if (n === undefined) throw new UnderstudyError('INVALID_CONFIG', `${variable} must be ${expected}, got ${showValue(raw)}`);
  return n;
}

/** The server's own key (not the remote's): --api-key, else UNDERSTUDY_SERVER_KEY. Never shown. */
function keySetting(flag: unknown, env: Env): string | undefined {
  const short = (source: string, key: string) =>
    `${source} is ${key.length} characters long; a key needs at least ${MIN_KEY_LENGTH} (leave it unset for a server that takes no key)`;
  if (typeof flag === 'string') {
    // Trimmed as a client's presented key is (auth.ts), or a pasted key with a newline could never match.
    const key = flag.trim();
    if (key.length < MIN_KEY_LENGTH) throw new UsageError(short('--api-key', key));
    return key;
  }
  const key = env.UNDERSTUDY_SERVER_KEY?.trim();
  if (!key) return undefined;
  if (key.length < MIN_KEY_LENGTH) throw new UnderstudyError('INVALID_CONFIG', short('UNDERSTUDY_SERVER_KEY', key));
  return key;
}
