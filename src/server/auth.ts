// The server's key: with one set, every route but /health needs
// `Authorization: Bearer KEY` or `X-Api-Key: KEY`. Keys are compared as
// sha256 digests with timingSafeEqual, so neither the time taken nor the
// length of what was sent says anything about the key. No message repeats
// what the client sent.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { HttpRequestError } from './openai-errors.js';

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** The key a request presents, if any. */
function presented(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1]!.trim();
  }
  const header = request.headers['x-api-key'];
  const key = Array.isArray(header) ? header[0] : header;
  return typeof key === 'string' ? key.trim() : undefined;
}

/** A check that throws UNAUTHORIZED (401) unless the request presents the server's key. */
export type Auth = (request: FastifyRequest) => void;

/** The check for `key`; none when there is no key. */
export function makeAuth(key: string | undefined): Auth | undefined {
  if (key === undefined) return undefined;
  const expected = digest(key);
  return (request) => {
    const given = presented(request);
    if (given === undefined) {
      throw new HttpRequestError('UNAUTHORIZED', 'Missing API key: send it as "Authorization: Bearer KEY" or "X-Api-Key: KEY"');
    }
    if (!timingSafeEqual(digest(given), expected)) throw new HttpRequestError('UNAUTHORIZED', 'Incorrect API key provided');
  };
}
