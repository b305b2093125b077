// Which backend answers a call that the caches did not: the decision, and the
// reason it gives in the log.
import { UnderstudyError } from '../errors.js';
import type { Backend, BackendCall } from './backend.js';
import type { ReadinessState } from './readiness.js';
import type { RouteChoice } from './request.js';

export interface Decision {
  primary: 'local' | 'remote';
  /** The backend to try when the primary fails, if any. */
  fallback?: 'local' | 'remote';
  reason: string;
}

export interface PolicyInput {
  choice: RouteChoice;
  local?: Backend;
  remote?: Backend;
  /** Milliseconds left of the remote's cooldown. */
  remoteCoolingMs: number;
  readiness: ReadinessState;
  call: BackendCall;
}

export function decide(input: PolicyInput): Decision {
  const { choice, local, remote, readiness, call } = input;
  if (choice === 'local') {
    if (!local) throw new UnderstudyError('NO_BACKEND', 'route "local" was asked for but no local model is loaded: set UNDERSTUDY_MODEL or the model option');
    return { primary: 'local', reason: 'forced' };
  }
  if (choice === 'remote') {
    if (!remote) throw new UnderstudyError('NO_BACKEND', 'route "remote" was asked for but the remote API is off or not configured');
    return { primary: 'remote', reason: 'forced' };
  }
  if (!remote) {
    if (!local) throw new UnderstudyError('NO_BACKEND', 'neither a local model nor a remote API is configured');
    return { primary: 'local', reason: 'api off' };
  }
  if (!local) return { primary: 'remote', reason: 'no local model' };
  const fits = fitsLocally(local, call);
  if (readiness.ready && fits) return { primary: 'local', fallback: 'remote', reason: 'ready' };
  if (input.remoteCoolingMs > 0 && fits) return { primary: 'local', fallback: 'remote', reason: 'remote cooling down' };
  const reason = readiness.ready ? 'prompt does not fit the local context' : 'not ready';
  return { primary: 'remote', ...(fits ? { fallback: 'local' as const } : {}), reason };
}

/** Whether the local backend can take the call; a check that throws (say, an unsupported template) means no. */
export function fitsLocally(local: Backend, call: BackendCall): boolean {
  try {
    return local.fits?.(call) ?? true;
  } catch {
    return false;
  }
}
