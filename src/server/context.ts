// What every route of one server shares: the router (maybe still loading),
// the calls in flight (for shutdown and metrics), the request timeout, and
// the redaction of the server's own key.
import type { FastifyReply } from 'fastify';
import { CallControl } from './call-control.js';
import type { RouterState } from './router-state.js';

export interface ServerContext {
  readonly state: RouterState;
  readonly calls: Set<CallControl>;
  readonly timeoutMs: number;
  readonly redact: (text: string) => string;
  /** Seconds since the epoch when the server started (the `created` of /v1/models). */
  readonly startedAt: number;
  /** Set by close(): requests that still arrive (on open keep-alive connections) get 503 CLOSED. */
  closing: boolean;
  /** Set by close(): told of every call made after it began (their connections are closed once idle). */
  onCall?: (call: CallControl) => void;
}

export function control(ctx: ServerContext, reply: FastifyReply): CallControl {
  const call = new CallControl(reply, ctx.timeoutMs, ctx.calls);
  ctx.onCall?.(call);
  return call;
}

/** Where an answer came from, on every answer (a stream: on its headers). */
export function answerHeaders(reply: FastifyReply, info: { route: string; task: string }): void {
  reply.header('x-understudy-route', info.route);
  reply.header('x-understudy-task', info.task);
}
