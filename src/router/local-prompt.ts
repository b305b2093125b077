// What the local model sees of a call that uses tools or asks for a shape:
// the conversation in plain { role, content } turns a chat template can take
// (tools described in the system turn, tool calls as their canonical text,
// tool results as user turns), and the grammar that holds the answer to the
// shape. Serving (local-backend.ts) and training (src/train/examples.ts) both
// build the prompt here, so the adapter learns on the prompt it will serve.
import type { ChatMessage } from '../llama/chat.js';
import { checkGrammar } from '../llama/grammar-check.js';
import { jsonSchemaToGrammar } from '../llama/json-schema-grammar.js';
import type { ResponseFormat } from './structured-request.js';
import { callPositions, toolCallText, toolsActive, type ToolChoice, type ToolSpec } from './tool-calls.js';

/** The parts of a call the local prompt depends on. */
export interface LocalPromptInput {
  messages: readonly ChatMessage[];
  tools?: readonly ToolSpec[];
  toolChoice?: ToolChoice;
}

/** The tools, described for a model that has no tool template of its own. */
export function toolsPrompt(tools: readonly ToolSpec[], choice: ToolChoice | undefined): string {
  const lines = ['You can call these tools:'];
  for (const t of tools) {
    lines.push(`- ${t.name}${t.description ? `: ${t.description}` : ''}`);
    lines.push(`  arguments (JSON schema): ${JSON.stringify(t.parameters ?? { type: 'object' })}`);
  }
  const form = 'answer with only a JSON object {"name": <tool name>, "arguments": {...}}';
  if (choice === 'required') lines.push(`Call one of them: ${form}.`);
  else if (typeof choice === 'object') lines.push(`Call ${choice.name}: ${form}.`);
  else lines.push(`To call a tool, ${form}; otherwise answer in plain text.`);
  return lines.join('\n');
}

/**
 * The conversation as the local model gets it, in plain { role, content } turns.
 * Without tools in play and tool fields in the messages, the same turns as given.
 */
export function localMessages(call: LocalPromptInput): { role: string; content: string }[] {
  const names = new Map<string, string>();
  // A result names its call by position ("call 1"), never by its random id (callPositions).
  const positions = callPositions(call.messages);
  const out = call.messages.map((m) => {
    if (m.toolCalls?.length) {
      for (const c of m.toolCalls) names.set(c.id, c.name);
      const text = toolCallText(m.toolCalls);
      return { role: m.role, content: m.content ? `${m.content}\n${text}` : text };
    }
    if (m.role === 'tool') {
      const name = m.name ?? (m.toolCallId ? names.get(m.toolCallId) : undefined) ?? 'a tool';
      const position = m.toolCallId === undefined ? undefined : positions.get(m.toolCallId);
      return { role: 'user', content: `Result of ${name}${position === undefined ? '' : ` (call ${position + 1})`}: ${m.content}` };
    }
    return { role: m.role, content: m.content };
  });
  if (!toolsActive(call.tools as ToolSpec[] | undefined, call.toolChoice)) return out;
  const described = toolsPrompt(call.tools!, call.toolChoice);
  if (out[0]?.role === 'system') return [{ role: 'system', content: `${out[0].content}\n\n${described}` }, ...out.slice(1)];
  return [{ role: 'system', content: described }, ...out];
}

/** The JSON schema of an answer that calls one of `tools`: {"name": <const>, "arguments": <its parameters>}. */
export function toolCallSchema(tools: readonly ToolSpec[]): Record<string, unknown> {
  const one = (t: ToolSpec) => ({
    type: 'object',
    properties: { name: { const: t.name }, arguments: t.parameters ?? { type: 'object' } },
    required: ['name', 'arguments'],
  });
  return tools.length === 1 ? one(tools[0]!) : { anyOf: tools.map(one) };
}

/**
 * The grammar a local answer must follow, or undefined for free text:
 * a required or named tool choice → a call of those tools; otherwise the
 * response format's (json_schema → its schema, json_object → any object).
 * With tools on 'auto' and no format, the answer is free and parsed
 * afterwards. Throws INVALID_ARGUMENT (a schema the converter cannot express)
 * or INVALID_GRAMMAR (a grammar past the limits).
 */
export function localGrammar(call: { responseFormat?: ResponseFormat; tools?: readonly ToolSpec[]; toolChoice?: ToolChoice }): string | undefined {
  const choice = call.toolChoice;
  let schema: unknown;
  if (call.tools?.length && (choice === 'required' || typeof choice === 'object')) {
    schema = toolCallSchema(typeof choice === 'object' ? call.tools.filter((t) => t.name === choice.name) : call.tools);
  } else if (call.responseFormat?.type === 'json_schema') {
    schema = call.responseFormat.schema;
  } else if (call.responseFormat?.type === 'json_object') {
    schema = { type: 'object' };
  } else {
    return undefined;
  }
  const grammar = jsonSchemaToGrammar(schema);
  checkGrammar(grammar);
  return grammar;
}
