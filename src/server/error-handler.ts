// Every failure, whoever raised it (fastify's body parser and validation, a
// route, the router), leaves as OpenAI's error shape with its status
// (openai-errors.ts). Fastify's own errors are recognised by their codes.
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

export function installErrorHandling(app: FastifyInstance, redact: (text: string) => string, bodyLimit: number): void {
  app.setErrorHandler((err: FastifyError, _request, reply) => {
    const mapped = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
      ? new HttpRequestError('PAYLOAD_TOO_LARGE', `the request body is larger than the server's limit of ${bodyLimit} bytes`)
      : known(err);
    const { status, headers, body } = httpError(mapped, redact);
    return reply.code(status).headers(headers).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const { status, body } = httpError(new HttpRequestError('NOT_FOUND', `no route for ${request.method} ${path.slice(0, 200)}`), redact);
    return reply.code(status).send(body);
  });
}
