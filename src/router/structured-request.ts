// The parts of a call that shape its answer rather than its sampling: the
// response format and the tools. Checked here (for router calls and backend
// calls alike), copied to plain JSON so nothing of the caller's object leaks
// into keys or logs, and hashed into the cache key.
import { createHash } from 'node:crypto';
import { invalidArgument } from '../errors.js';
import * as v from '../validate.js';
import type { ToolChoice, ToolSpec } from './tool-calls.js';

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name?: string; schema: Record<string, unknown>; strict?: boolean };

/** What a call asks of its answer's shape; every field left out when not asked for. */
export interface Structure {
  responseFormat?: ResponseFormat;
  tools?: ToolSpec[];
  toolChoice?: ToolChoice;
}

/** Most tools one call may offer. */
export const MAX_TOOLS = 128;
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const FORMATS = new Set(['text', 'json_object', 'json_schema']);

/** A plain-JSON copy of a schema object (getters read once, undefined dropped), or INVALID_ARGUMENT naming it. */
function jsonObject(value: unknown, name: string): Record<string, unknown> {
  if (!v.isPlainObject(value)) v.fail('JSON schema object', name, value);
  let copy: unknown;
  try {
    copy = JSON.parse(JSON.stringify(value));
  } catch (err) {
    throw invalidArgument(`Expected JSON data for ${name} but it cannot be written as JSON (${v.errorText(err)})`);
  }
  return copy as Record<string, unknown>;
}

export function checkResponseFormat(value: unknown, name = 'responseFormat'): ResponseFormat | undefined {
  if (value === undefined) return undefined;
  if (!v.isPlainObject(value)) v.fail("{ type: 'text' | 'json_object' | 'json_schema' } object", name, value);
  const type: unknown = value.type;
  if (typeof type !== 'string' || !FORMATS.has(type)) v.fail("'text', 'json_object' or 'json_schema'", `${name}.type`, type);
  if (type !== 'json_schema') return { type: type as 'text' | 'json_object' };
  const schema = jsonObject(value.schema, `${name}.schema`);
  const formatName = value.name === undefined ? undefined : v.nonEmptyString(value.name, `${name}.name`);
  const strict = value.strict === undefined ? undefined : v.boolean(value.strict, `${name}.strict`, false);
  return {
    type: 'json_schema', schema,
    ...(formatName === undefined ? {} : { name: formatName }),
    ...(strict === undefined ? {} : { strict }),
  };
}

export function checkTools(value: unknown, name = 'tools'): ToolSpec[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) v.fail('array of { name, description?, parameters? } tools', name, value);
  if (value.length > MAX_TOOLS) throw invalidArgument(`Expected at most ${MAX_TOOLS} tools for ${name} but received an array of length ${value.length}`);
  const tools: ToolSpec[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < value.length; i++) {
    const t: unknown = value[i];
    const at = `${name}[${i}]`;
    if (!v.isPlainObject(t)) v.fail('{ name, description?, parameters? } tool', at, t);
    const toolName: unknown = t.name;
    if (typeof toolName !== 'string' || !TOOL_NAME.test(toolName)) v.fail('name of 1 to 64 letters, digits, _ or -', `${at}.name`, toolName);
    if (seen.has(toolName)) throw invalidArgument(`Expected unique tool names but ${at}.name repeats "${toolName}"`);
    seen.add(toolName);
    const description = t.description === undefined ? undefined : v.string(t.description, `${at}.description`);
    const parameters = t.parameters === undefined ? undefined : jsonObject(t.parameters, `${at}.parameters`);
    const strict = t.strict === undefined ? undefined : v.boolean(t.strict, `${at}.strict`, false);
    tools.push({
      name: toolName,
      ...(description === undefined ? {} : { description }),
      ...(parameters === undefined ? {} : { parameters }),
      ...(strict === undefined ? {} : { strict }),
    });
  }
  // No tools offered is the same call as none: one cache key, one prompt.
  return tools.length ? tools : undefined;
}

export function checkToolChoice(value: unknown, tools: ToolSpec[] | undefined, name = 'toolChoice'): ToolChoice | undefined {
  if (value === undefined) return undefined;
  if (value === 'auto' || value === 'none') return value;
  if (value === 'required') {
    if (!tools) throw invalidArgument(`Expected tools for ${name} 'required' but received none`);
    return value;
  }
  if (!v.isPlainObject(value)) v.fail("'auto', 'none', 'required' or { name } object", name, value);
  const tool: unknown = value.name;
  if (typeof tool !== 'string' || !tools?.some((t) => t.name === tool)) {
    v.fail(tools ? `name of one of the tools (${tools.map((t) => t.name).join(', ')})` : 'name of one of the tools (none were given)', `${name}.name`, tool);
  }
  return { name: tool };
}

/** The checked structure of a call (request or backend call), each field kept only when it matters. */
export function checkStructure(r: Record<string, unknown>, kind: 'chat' | 'complete'): Structure {
  const responseFormat = checkResponseFormat(r.responseFormat);
  if (kind === 'complete') {
    if (r.tools !== undefined) throw invalidArgument('Expected no tools for a complete call (tools are for chat calls) but received some');
    if (r.toolChoice !== undefined) throw invalidArgument('Expected no toolChoice for a complete call (tools are for chat calls) but received one');
  }
  const tools = checkTools(r.tools);
  const toolChoice = checkToolChoice(r.toolChoice, tools);
  return {
    // 'text' is what every call gets anyway: the same call as without it.
    ...(responseFormat && responseFormat.type !== 'text' ? { responseFormat } : {}),
    ...(tools ? { tools } : {}),
    // Without tools, 'auto' and 'none' change nothing.
    ...(toolChoice && tools ? { toolChoice } : {}),
  };
}

/** A hash of the structure for keys and signatures; null when the call asks for none. */
export function structureHash(s: Structure): string | null {
  if (!s.responseFormat && !s.tools && !s.toolChoice) return null;
  const canonical = JSON.stringify([s.responseFormat ?? null, s.tools ?? null, s.toolChoice ?? null]);
  return createHash('sha256').update(canonical).digest('base64url');
}
