// Time as the router sees it: the wall clock, unless a test passes its own, so
// that expiry, cooldowns and retry waits can be tested without sleeping.
import { setTimeout as delay } from 'node:timers/promises';
import * as v from '../validate.js';

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`; rejects (with the signal's reason) when `signal` aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => delay(ms, undefined, signal ? { signal } : undefined),
};

/** A clock passed in an option: anything without now() and sleep() is INVALID_ARGUMENT. */
export function checkClock(value: unknown, name = 'clock'): Clock | undefined {
  if (value !== undefined && !(v.isPlainObject(value) && typeof value.now === 'function' && typeof value.sleep === 'function')) {
    v.fail('object with now() and sleep()', name, value);
  }
  return value as Clock | undefined;
}
