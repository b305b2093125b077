// Whether a tool call's arguments fit the tool's parameters schema. The local
// model on tool_choice 'auto' writes free text (no grammar), so a call parsed
// out of it may carry arguments its tool does not take; such an answer is not
// a tool call and stays text (the caller sees what the model wrote rather than
// a call its function would reject). Under 'required' or a named tool the
// grammar already holds the arguments to the schema; checking again is cheap.
import { Ajv, type ValidateFunction } from 'ajv';

// Callers' schemas carry keywords ajv does not know (OpenAI's `strict`, vendor
// extensions): not strict, and formats are left unchecked, as the grammar does.
const ajv = new Ajv({ strict: false, allErrors: false, validateFormats: false });
const compiled = new Map<string, ValidateFunction | null>();
// A server sees the same few tools again and again; the bound only keeps a
// stream of distinct schemas from growing the map (and ajv's own cache) for ever.
const MAX_COMPILED = 256;

/** The validator of `schema` (cached by its JSON text); null when ajv cannot compile it. */
function validator(schema: Record<string, unknown>): ValidateFunction | null {
  let text: string;
  try {
    text = JSON.stringify(schema);
  } catch {
    // Nested past the stack (thousands of levels): no check, as for a schema ajv cannot compile.
    return null;
  }
  let fn = compiled.get(text);
  if (fn !== undefined) {
    // Most recently used last.
    compiled.delete(text);
    compiled.set(text, fn);
    return fn;
  }
  try {
    fn = ajv.compile(schema);
  } catch {
    // A schema ajv cannot compile checks nothing here: the grammar (when there
    // is one) or the caller's own function is left to judge the arguments.
    fn = null;
  }
  compiled.set(text, fn);
  if (compiled.size > MAX_COMPILED) {
    const oldest = compiled.keys().next().value as string;
    const old = compiled.get(oldest);
    compiled.delete(oldest);
    if (old) ajv.removeSchema(old.schema as object);
  }
  return fn;
}

/** Whether `args` (a parsed arguments object) is valid for `parameters` (absent: any object). */
export function argumentsFit(parameters: Record<string, unknown> | undefined, args: unknown): boolean {
  if (parameters === undefined) return true;
  const fn = validator(parameters);
  if (fn === null) return true;
  try {
    return fn(args) === true;
  } catch {
    // The check itself overflowed (a deeply recursive schema or value): it says nothing either way.
    return true;
  }
}
