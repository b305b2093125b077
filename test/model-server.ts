// A loopback HTTP server that serves model files the ways real hosts do (and
// fail to): Range requests with ETag / If-Range, a server that ignores Range,
// one that drops the connection or stalls halfway, Hugging Face's redirect with
// x-linked-etag, 404. It records every request's headers for the tests to check.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Route {
  body: Buffer;
  /** Sent as ETag (quoted as given). */
  etag?: string;
  /** Answer a Range request with 206 (default true). */
  ranges?: boolean;
  /** Compare If-Range with the ETag, as RFC 9110 asks (default true). */
  ifRange?: boolean;
  /** The next N requests send this many bytes, then drop the connection ('drop') or go silent ('stall'). */
  cut?: { mode: 'drop' | 'stall'; at: number; times: number };
  /** Never answer (the request is read, no headers are sent). */
  hang?: boolean;
  /** Answer with this status and no body. */
  status?: number;
  /** Redirect here (a 302), with these extra headers. */
  redirect?: string;
  headers?: Record<string, string>;
}

export interface Seen {
  path: string;
  range?: string;
  ifRange?: string;
  authorization?: string;
  status: number;
}

export interface ModelServer {
  url: string;
  routes: Map<string, Route>;
  seen: Seen[];
  close(): Promise<void>;
}

export async function modelServer(): Promise<ModelServer> {
  const routes = new Map<string, Route>();
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => handle(req, res, routes, seen));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    routes,
    seen,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function handle(req: IncomingMessage, res: ServerResponse, routes: Map<string, Route>, seen: Seen[]): void {
  const path = new URL(req.url!, 'http://x').pathname;
  const route = routes.get(path);
  const record = (status: number) => seen.push({
    path, status,
    ...(req.headers.range ? { range: req.headers.range } : {}),
    ...(req.headers['if-range'] ? { ifRange: String(req.headers['if-range']) } : {}),
    ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
  });
  if (route?.hang) {
    record(0);
    return;
  }
  if (!route || route.status) {
    record(route?.status ?? 404);
    res.writeHead(route?.status ?? 404, { 'content-type': 'text/plain' }).end('no');
    return;
  }
  if (route.redirect) {
    record(302);
    res.writeHead(302, { location: route.redirect, ...route.headers }).end();
    return;
  }
  const { body } = route;
  const etag = route.etag === undefined ? {} : { etag: route.etag };
  let start = 0;
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const ifRangeOk = !req.headers['if-range'] || route.ifRange === false || req.headers['if-range'] === route.etag;
  if (range && route.ranges !== false && ifRangeOk) start = Number(range[1]);
  if (start >= body.length && range && route.ranges !== false) {
    record(416);
    res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
    return;
  }
  const status = start > 0 ? 206 : 200;
  record(status);
  res.writeHead(status, {
    'content-type': 'application/octet-stream',
    'content-length': String(body.length - start),
    'accept-ranges': 'bytes',
    ...etag,
    ...(status === 206 ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    ...route.headers,
  });
  const cut = route.cut;
  if (cut && cut.times > 0) {
    cut.times--;
    // The bytes before the cut reach the client before the connection goes.
    res.write(body.subarray(start, cut.at), () => {
      if (cut.mode === 'drop') setTimeout(() => res.socket?.destroy(), 100);
    });
    return;
  }
  res.end(body.subarray(start));
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
