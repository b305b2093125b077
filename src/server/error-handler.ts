// Every failure, whoever raised it (fastify's body parser and validation, a
// route, the router), leaves as OpenAI's error shape with its status
// (openai-errors.ts). Fastify's own errors are recognised by their codes.
import type { IncomingMessage } from 'node:http';
import type { FastifyError, FastifyInstance } from 'fastify';
import { HttpRequestError, httpError } from './openai-errors.js';
import { validationError } from './validation.js';

function known(err: FastifyError): unknown {
  if (err.validation) return validationError(err.validation as Parameters<typeof validationError>[0]);
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      // Not fastify's message: V8's quotes a piece of the body.
      return new HttpRequestError('INVALID_ARGUMENT', 'the request body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpRequestError('INVALID_ARGUMENT', 'Expected a JSON body (Content-Type: application/json)');
    default:
      // Other request errors of fastify's (a bad Content-Length, say) are the client's.
      if (err.code?.startsWith('FST_') && typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
        return new HttpRequestError('INVALID_ARGUMENT', err.message);
      }
      return err;
  }
}

/** Most bytes of a refused body read (and dropped) so that its client gets to read the 413. */
const drainCap = (bodyLimit: number) => Math.max(4 * bodyLimit, 64 * 1024 * 1024);

/**
 * Reads the rest of a request body and drops it. A 413 sent while the client
 * is still writing is lost: the socket closes under its upload (EPIPE, or a
 * connection reset instead of the status). Bounded by the cap (past it the
 * 413 goes out anyway) and by the server's time limit for receiving a request.
 */
function drain(raw: IncomingMessage, cap: number): Promise<void> {
  if (raw.complete || raw.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let seen = 0;
    const done = () => {
      raw.off('data', onData).off('end', done).off('error', done).off('close', done);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > cap) done();
    };
    raw.on('data', onData).once('end', done).once('error', done).once('close', done);
    raw.resume();
  });
}

export function installErrorHandling(app: FastifyInstance, redact: (text: string) => string, bodyLimit: number): void {
  app.setErrorHandler(async (err: FastifyError, request, reply) => {
    const tooLarge = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE';
    const mapped = tooLarge
      ? new HttpRequestError('PAYLOAD_TOO_LARGE', `the request body is larger than the server's limit of ${bodyLimit} bytes`)
      : known(err);
    if (tooLarge) await drain(request.raw, drainCap(bodyLimit));
    const { status, headers, body } = httpError(mapped, redact);
    return reply.code(status).headers(headers).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const { status, body } = httpError(new HttpRequestError('NOT_FOUND', `no route for ${request.method} ${path.slice(0, 200)}`), redact);
    return reply.code(status).send(body);
  });
}
