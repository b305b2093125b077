// A body that fails its schema (schemas.ts) becomes one INVALID_ARGUMENT in the
// house style, naming the parameter as the client spelled it:
//   Expected number <= 2 for temperature but received 3 of type number
// ajv runs with `verbose`, so each error carries the value and its schema.
import { describeValue } from '../validate.js';
import { HttpRequestError } from './openai-errors.js';

interface AjvError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
  data?: unknown;
  parentSchema?: { description?: string };
}

/** '/messages/0/role' → 'messages[0].role'. */
export function paramPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(part) ? `[${part}]` : out ? `.${part}` : part;
  }
  return out;
}

function expected(e: AjvError): string {
  if (e.parentSchema?.description) return e.parentSchema.description;
  const p = e.params;
  switch (e.keyword) {
    case 'type': {
      const types = (Array.isArray(p.type) ? p.type : String(p.type).split(',')).filter((t) => t !== 'null');
      return types.join(' or ');
    }
    case 'minimum': return `number >= ${String(p.limit)}`;
    case 'maximum': return `number <= ${String(p.limit)}`;
    case 'minItems': return `array of at least ${String(p.limit)} item${p.limit === 1 ? '' : 's'}`;
    case 'maxItems': return `array of at most ${String(p.limit)} item${p.limit === 1 ? '' : 's'}`;
    case 'minLength': return 'non-empty string';
    case 'enum': return `one of ${(p.allowedValues as unknown[]).filter((x) => x !== null).map((x) => JSON.stringify(x)).join(', ')}`;
    case 'const': return JSON.stringify(p.allowedValue);
    default: return e.message ?? 'a valid value';
  }
}

/** The error for a failed validation: the outermost anyOf that failed, else ajv's first error. */
export function validationError(errors: readonly AjvError[]): HttpRequestError {
  const pick = errors.findLast((e) => e.keyword === 'anyOf') ?? errors[0];
  if (!pick) return new HttpRequestError('INVALID_ARGUMENT', 'the request body is invalid');
  if (pick.keyword === 'required') {
    const param = paramPath(`${pick.instancePath}/${String(pick.params.missingProperty)}`);
    return new HttpRequestError('INVALID_ARGUMENT', `Missing required parameter: ${param}`, param);
  }
  const param = paramPath(pick.instancePath) || 'body';
  return new HttpRequestError('INVALID_ARGUMENT', `Expected ${expected(pick)} for ${param} but received ${describeValue(pick.data)}`, param);
}
