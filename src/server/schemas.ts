// JSON schemas of the request bodies, checked by fastify (ajv) before a route
// runs. They check types and ranges only; unknown fields pass, as OpenAI's
// clients send new ones all the time, and null is the same as left out
// (some clients send every field). `description` is what a failure says was
// expected (validation.ts reads it), where ajv's own words would
// not help ("must match a schema in anyOf").
const nullable = (type: string, extra: Record<string, unknown> = {}) => ({ type: [type, 'null'], ...extra });

const stringOrStrings = {
  description: 'string or array of strings',
  anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }, { type: 'null' }],
};

const textPart = {
  type: 'object',
  required: ['type', 'text'],
  properties: { type: { const: 'text', description: '"text" (only text content parts are supported)' }, text: { type: 'string' } },
};

const toolCall = {
  type: 'object',
  required: ['id', 'function'],
  properties: {
    id: { type: 'string' },
    type: { const: 'function' },
    function: {
      type: 'object',
      required: ['name', 'arguments'],
      properties: { name: { type: 'string', minLength: 1 }, arguments: { type: 'string' } },
    },
  },
};

const message = {
  type: 'object',
  required: ['role'],
  properties: {
    role: { enum: ['system', 'developer', 'user', 'assistant', 'tool'] },
    content: {
      description: 'string, array of text parts or null',
      anyOf: [{ type: 'string' }, { type: 'array', items: textPart }, { type: 'null' }],
    },
    name: nullable('string'),
    tool_calls: nullable('array', { items: toolCall }),
    tool_call_id: nullable('string'),
  },
};

const tool = {
  type: 'object',
  required: ['type', 'function'],
  properties: {
    type: { const: 'function', description: '"function" (the only tool type supported)' },
    function: {
      type: 'object',
      required: ['name'],
      properties: {
        name: { type: 'string', minLength: 1 },
        description: nullable('string'),
        parameters: nullable('object'),
        strict: nullable('boolean'),
      },
    },
  },
};

const toolChoice = {
  description: '"auto", "none", "required" or {"type": "function", "function": {"name"}}',
  anyOf: [
    { enum: ['auto', 'none', 'required'] },
    {
      type: 'object',
      required: ['function'],
      properties: { type: { const: 'function' }, function: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } },
    },
    { type: 'null' },
  ],
};

const responseFormat = {
  type: ['object', 'null'],
  required: ['type'],
  properties: {
    type: { enum: ['text', 'json_object', 'json_schema'] },
    json_schema: {
      type: 'object',
      required: ['schema'],
      properties: { name: nullable('string'), description: nullable('string'), schema: { type: 'object' }, strict: nullable('boolean') },
    },
  },
  if: { properties: { type: { const: 'json_schema' } } },
  then: { required: ['type', 'json_schema'] },
};

/** Sampling fields chat and completions share. */
const sampling = {
  model: nullable('string'),
  max_tokens: nullable('integer', { minimum: 1 }),
  temperature: nullable('number', { minimum: 0, maximum: 2 }),
  top_p: nullable('number', { minimum: 0, maximum: 1 }),
  stop: stringOrStrings,
  seed: nullable('integer', { minimum: 0, maximum: 0xffffffff }),
  n: nullable('integer', { minimum: 1 }),
  stream: nullable('boolean'),
  stream_options: nullable('object', { properties: { include_usage: nullable('boolean') } }),
  metadata: nullable('object', { properties: { task: nullable('string') } }),
};

export const chatBodySchema = {
  type: 'object',
  required: ['messages'],
  properties: {
    ...sampling,
    messages: { type: 'array', minItems: 1, items: message },
    max_completion_tokens: nullable('integer', { minimum: 1 }),
    response_format: responseFormat,
    tools: nullable('array', { items: tool }),
    tool_choice: toolChoice,
  },
};

export const completionBodySchema = {
  type: 'object',
  required: ['prompt'],
  properties: {
    ...sampling,
    prompt: { description: 'string or array of one string', anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 1 }] },
    response_format: responseFormat,
    echo: nullable('boolean'),
    suffix: { type: 'null', description: 'null (suffix is not supported)' },
  },
};

export const embeddingBodySchema = {
  type: 'object',
  required: ['input'],
  properties: {
    model: nullable('string'),
    input: {
      description: 'string or array of strings',
      anyOf: [{ type: 'string' }, { type: 'array', minItems: 1, items: { type: 'string' } }],
    },
    encoding_format: nullable('string', { enum: ['float', 'base64', null] }),
    dimensions: nullable('integer', { minimum: 1 }),
  },
};
