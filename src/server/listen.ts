// Binding the server's port: a refusal (a taken port, an address not of this
// machine) is an IO_ERROR naming the address and why, and the half-made app is
// closed first so that nothing of it (hooks, metrics timers) outlives the failure.
import type { FastifyInstance } from 'fastify';
import { UnderstudyError } from '../errors.js';
import { errorText } from '../validate.js';

function why(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'EADDRINUSE' ? 'the port is in use'
    : code === 'EADDRNOTAVAIL' ? 'the address is not one of this machine\'s'
    : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)'
    : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'the host name does not resolve'
    : errorText(err);
}

export async function listenOrClose(app: FastifyInstance, host: string, port: number): Promise<void> {
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw new UnderstudyError('IO_ERROR', `cannot listen on ${host}:${port}: ${why(err)}`, { cause: err });
  }
}
