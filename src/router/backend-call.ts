// A BackendCall as LocalBackend and RemoteBackend take it from anyone: the
// router builds good ones, but the backends are public, and a call of the wrong
// shape must fail with INVALID_ARGUMENT, not a TypeError from deep inside. The
// ranges are those of a router request (request.ts).
import { checkMessages } from '../llama/chat.js';
import * as v from '../validate.js';
import type { BackendCall } from './backend.js';
import type { Params } from './request.js';
import { checkStructure } from './structured-request.js';

/** A checked copy of `call` (read once: a getter is not asked twice). */
export function checkCall(call: unknown): BackendCall {
  if (!v.isPlainObject(call)) v.fail('call object', 'call', call);
  const kind: unknown = call.kind;
  if (kind !== 'chat' && kind !== 'complete') v.fail("'chat' or 'complete'", 'kind', kind);
  const task = v.nonEmptyString(call.task, 'task');
  const messages = kind === 'chat' ? checkMessages(call.messages) : undefined;
  const prompt = kind === 'complete' ? v.string(call.prompt, 'prompt') : undefined;
  const raw: unknown = call.params;
  if (!v.isPlainObject(raw)) v.fail('object', 'params', raw);
  const seed = raw.seed === undefined ? undefined : v.integer(raw.seed, 'params.seed', 0, 0, 0xffffffff);
  const params: Params = {
    temperature: v.number(raw.temperature, 'params.temperature', 0, 0, 2),
    maxTokens: v.integer(raw.maxTokens, 'params.maxTokens', 256, 1, 1 << 20),
    topP: v.number(raw.topP, 'params.topP', 1, 0, 1),
    stop: v.stringArray(raw.stop, 'params.stop'),
    ...(seed === undefined ? {} : { seed }),
  };
  const signal = v.abortSignal(call.signal);
  const onText = v.fn<(text: string) => void>(call.onText, 'onText');
  const structure = checkStructure(call, kind);
  return {
    kind, task, params, ...structure,
    ...(messages ? { messages } : {}),
    ...(prompt !== undefined ? { prompt } : {}),
    ...(signal ? { signal } : {}),
    ...(onText ? { onText } : {}),
  };
}
