// The server section's HTTP client: node:http over one keep-alive Agent (no
// connection set-up per request, as a real client pool), JSON bodies in and
// out, and two ways to drive a server: one request after another (latency)
// and a fixed number in flight (throughput). Used alike for our server and
// llama-server, so both pay the same client costs.
import http from 'node:http';
import { pct, type Pct } from './router.js';

export interface JsonResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

export class BenchClient {
  readonly #agent: http.Agent;
  readonly #url: URL;

  /** `connections`: sockets kept open to the server (at least the requests in flight). */
  constructor(base: string, connections: number) {
    this.#url = new URL(base);
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  }

  request(method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: this.#url.hostname, port: this.#url.port, method, path, agent: this.#agent,
        headers: { ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}), ...headers },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON (a plain-text error page): kept as text
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

export interface LoadResult {
  /** Each request's time, ms. */
  ms: Pct;
  /** Requests per second over the whole run. */
  perSecond: number;
  requests: number;
  inFlight: number;
}

/**
 * `n` calls of `f`, `inFlight` at a time (1: one after another), after
 * `warmup` calls run the same way and not timed.
 */
export async function drive(n: number, warmup: number, inFlight: number, f: () => Promise<unknown>): Promise<LoadResult> {
  const run = async (count: number, times?: number[]) => {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const i = next++;
        const t0 = performance.now();
        await f();
        if (times) times[i] = performance.now() - t0;
      }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
  };
  await run(warmup);
  const times = new Array<number>(n);
  const start = performance.now();
  await run(n, times);
  const wall = performance.now() - start;
  return { ms: pct(times), perSecond: (n * 1000) / wall, requests: n, inFlight };
}

/** Waits until GET `path` answers 200, for up to `ms`. */
export async function waitHealthy(client: BenchClient, path: string, ms: number, alive: () => boolean): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (!alive()) throw new Error('the server exited before it was ready');
    try {
      if ((await client.request('GET', path)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`no 200 from ${path} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
