// A deterministic OpenAI-compatible "teacher" server on 127.0.0.1, for tests that
// drive the router through the real `openai` client. Answers come from a function
// (default: echo the last user message); `faults` is a queue of misbehaviours
// applied one per completion request: error statuses, delays, broken JSON,
// streams cut mid-way, dropped connections.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault =
  | { kind: 'status'; status: number; retryAfter?: string; body?: string }
  | { kind: 'delay'; ms: number }
  | { kind: 'malformed' }
  | { kind: 'cut-stream'; afterChunks: number }
  | { kind: 'drop' }
  /** Headers and the start of the body, then nothing: the socket stays open until close(). */
  | { kind: 'stall' }
  /** A stream of one-word pieces, one every `everyMs`, `pieces` of them (default: until the client leaves), then the end. */
  | { kind: 'trickle'; everyMs: number; pieces?: number };

export interface TeacherRequest {
  path: string;
  method: string;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  /** performance.now() when the request arrived. */
  receivedAt: number;
}

/** An answer that calls tools: arguments as objects (the teacher writes them as JSON text, as OpenAI does). */
export interface TeacherToolAnswer {
  toolCalls: { name: string; arguments: Record<string, unknown> }[];
}

export interface TeacherOptions {
  /** A string answers with text; `{ toolCalls }` answers with tool calls (finish_reason 'tool_calls'). */
  answer?: (req: { messages?: { role: string; content: string }[]; prompt?: string; model: string; body: any }) => string | TeacherToolAnswer;
  model?: string;
  chunkSize?: number;
}

export interface Teacher {
  url: string;
  port: number;
  requests: TeacherRequest[];
  faults: Fault[];
  setAnswer(fn: TeacherOptions['answer']): void;
  close(): Promise<void>;
}

// Fixed so that responses are byte-for-byte reproducible.
const CREATED = 1_700_000_000;

const words = (s: string): number => s.split(/\s+/).filter(Boolean).length;

/** The first `n` whitespace-separated words of `s`, original spacing kept. */
function firstWords(s: string, n: number): string {
  let end = 0;
  let count = 0;
  for (const m of s.matchAll(/\S+/g)) {
    if (count++ === n) break;
    end = m.index! + m[0].length;
  }
  return s.slice(0, end);
}

/** Message content may be a string or an array of parts ({type:'text', text}). */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p?.text === 'string' ? p.text : '')).join('');
  return '';
}

const defaultAnswer: NonNullable<TeacherOptions['answer']> = ({ messages, prompt }) => {
  const lastUser = messages?.filter((m) => m.role === 'user').at(-1);
  return `Answer: ${lastUser?.content ?? prompt ?? ''}`;
};

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function errorBody(status: number, message: string) {
  const type = status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  const code = status === 429 ? 'rate_limit_exceeded' : status === 404 ? 'not_found' : status >= 500 ? 'server_error' : 'bad_request';
  return { error: { message, type, code } };
}

export async function startTeacher(options: TeacherOptions = {}): Promise<Teacher> {
  const modelId = options.model ?? 'teacher-1';
  const chunkSize = Math.max(1, options.chunkSize ?? 8);
  let answer = options.answer ?? defaultAnswer;
  let counter = 0;
  const requests: TeacherRequest[] = [];
  const faults: Fault[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  /** Writes `data`, then destroys the socket once the write has been flushed. */
  const writeThenDestroy = (res: ServerResponse, data: string) => {
    res.write(data, () => res.socket?.destroy());
  };

  function complete(res: ServerResponse, kind: 'chat' | 'text', body: any, fault: Fault | undefined): void {
    const model = typeof body.model === 'string' ? body.model : modelId;
    const messages = Array.isArray(body.messages)
      ? body.messages.map((m: any) => ({ role: String(m?.role), content: contentText(m?.content) }))
      : undefined;
    const prompt = Array.isArray(body.prompt) ? body.prompt.join('\n') : typeof body.prompt === 'string' ? body.prompt : undefined;

    const given = answer({ messages, prompt, model, body });
    const calls = typeof given === 'object' && given !== null && kind === 'chat'
      ? given.toolCalls.map((c, i) => ({ id: `call_teacher_${counter + 1}_${i}`, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.arguments) } }))
      : undefined;
    let text = calls ? '' : String(given);
    let finish = calls ? 'tool_calls' : 'stop';
    const limit = body.max_completion_tokens ?? body.max_tokens;
    if (Number.isInteger(limit) && limit > 0 && words(text) > limit) {
      text = firstWords(text, limit);
      finish = 'length';
    }
    const promptTokens = messages ? messages.reduce((n: number, m: { content: string }) => n + words(m.content), 0) : words(prompt ?? '');
    const completionTokens = calls ? calls.length * 5 : words(text);
    const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-teacher-${++counter}`;
    const object = kind === 'chat' ? 'chat.completion' : 'text_completion';

    if (body.stream !== true) {
      const choice = kind === 'chat'
        ? { index: 0, message: { role: 'assistant', content: calls ? null : text, ...(calls ? { tool_calls: calls } : {}) }, finish_reason: finish, logprobs: null }
        : { index: 0, text, finish_reason: finish, logprobs: null };
      const json = JSON.stringify({ id, object, created: CREATED, model, choices: [choice], usage });
      if (fault?.kind === 'cut-stream') {
        // Announce the full length, send half: the client sees a truncated body.
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
        writeThenDestroy(res, json.slice(0, Math.floor(json.length / 2)));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
      res.end(json);
      return;
    }

    // Streaming: content pieces, a finishing chunk, optionally a usage chunk, then [DONE].
    const includeUsage = body.stream_options?.include_usage === true;
    const chunkObject = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    const extra = includeUsage ? { usage: null } : {};
    const chars = Array.from(text); // by code point, so no surrogate pair is split
    const pieces: string[] = [];
    for (let i = 0; i < chars.length; i += chunkSize) pieces.push(chars.slice(i, i + chunkSize).join(''));
    if (pieces.length === 0) pieces.push('');

    const events: unknown[] = calls
      // Tool calls stream as one delta holding them all, each with its index.
      ? [{
        id, object: chunkObject, created: CREATED, model, ...extra,
        choices: [{ index: 0, delta: { role: 'assistant', content: null, tool_calls: calls.map((c, i) => ({ index: i, ...c })) }, finish_reason: null, logprobs: null }],
      }]
      : pieces.map((piece, i) => ({
        id, object: chunkObject, created: CREATED, model, ...extra,
        choices: [kind === 'chat'
          ? { index: 0, delta: i === 0 ? { role: 'assistant', content: piece } : { content: piece }, finish_reason: null, logprobs: null }
          : { index: 0, text: piece, finish_reason: null, logprobs: null }],
      }));
    events.push({
      id, object: chunkObject, created: CREATED, model, ...extra,
      choices: [kind === 'chat' ? { index: 0, delta: {}, finish_reason: finish, logprobs: null } : { index: 0, text: '', finish_reason: finish, logprobs: null }],
    });
    if (includeUsage) events.push({ id, object: chunkObject, created: CREATED, model, choices: [], usage });

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const sse = (e: unknown) => `data: ${JSON.stringify(e)}\n\n`;
    if (fault?.kind === 'cut-stream') {
      // Destroying the socket leaves the chunked body unterminated, which the
      // client reports as an error; a clean end without [DONE] would not be one.
      writeThenDestroy(res, events.slice(0, Math.max(0, fault.afterChunks)).map(sse).join(''));
      return;
    }
    res.end(events.map(sse).join('') + 'data: [DONE]\n\n');
  }

  function handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
    const path = req.url ?? '/';
    const pathname = path.split('?')[0];
    let body: any = raw;
    let valid = true;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        valid = false;
      }
    } else {
      body = undefined;
    }
    requests.push({ path, method: req.method ?? 'GET', headers: { ...req.headers }, body, receivedAt: performance.now() });

    if (req.method === 'GET' && pathname === '/v1/models') {
      sendJson(res, 200, { object: 'list', data: [{ id: modelId, object: 'model', created: CREATED, owned_by: 'teacher' }] });
      return;
    }
    const kind = pathname === '/v1/chat/completions' ? 'chat' : pathname === '/v1/completions' ? 'text' : undefined;
    if (!kind || req.method !== 'POST') {
      sendJson(res, 404, errorBody(404, `no route for ${req.method} ${pathname}`));
      return;
    }

    const fault = faults.shift();
    const proceed = () => {
      if (!valid || body === null || typeof body !== 'object' || Array.isArray(body)) {
        sendJson(res, 400, errorBody(400, 'request body is not a JSON object'));
        return;
      }
      complete(res, kind, body, fault);
    };
    switch (fault?.kind) {
      case 'status': {
        const headers: Record<string, string> = fault.retryAfter !== undefined ? { 'retry-after': fault.retryAfter } : {};
        if (fault.body !== undefined) {
          res.writeHead(fault.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(fault.body), ...headers });
          res.end(fault.body);
        } else {
          sendJson(res, fault.status, errorBody(fault.status, `teacher fault: status ${fault.status}`), headers);
        }
        return;
      }
      case 'delay': {
        const timer = setTimeout(() => {
          timers.delete(timer);
          if (!res.destroyed && !res.socket?.destroyed) proceed();
        }, fault.ms);
        timers.add(timer);
        // The client gave up (timeout): no need to keep the timer.
        res.on('close', () => {
          clearTimeout(timer);
          timers.delete(timer);
        });
        return;
      }
      case 'malformed': {
        const broken = '{"id": "x", "choices": [';
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(broken) });
        res.end(broken);
        return;
      }
      case 'drop':
        req.socket.destroy();
        return;
      case 'stall':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 1000 });
        res.write('{"id": "stalled", ');
        return;
      case 'trickle': {
        const id = `chatcmpl-teacher-${++counter}`;
        const chunk = (choice: unknown) => `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: CREATED, model: modelId, choices: [choice] })}\n\n`;
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        let sent = 0;
        const timer = setInterval(() => {
          if (fault.pieces !== undefined && sent >= fault.pieces) {
            clearInterval(timer);
            timers.delete(timer);
            res.end(chunk({ index: 0, delta: {}, finish_reason: 'stop', logprobs: null }) + 'data: [DONE]\n\n');
            return;
          }
          res.write(chunk({ index: 0, delta: { content: 'drip ' }, finish_reason: null, logprobs: null }));
          sent++;
        }, fault.everyMs);
        timers.add(timer);
        res.on('close', () => {
          clearInterval(timer);
          timers.delete(timer);
        });
        return;
      }
      default:
        proceed(); // no fault, or cut-stream (handled while answering)
    }
  }

  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(parts).toString('utf8')));
    req.on('error', () => {}); // client went away mid-body: nothing to answer
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    faults,
    setAnswer(fn) {
      answer = fn ?? defaultAnswer;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      sockets.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A URL on 127.0.0.1 where nothing listens (bind port 0, note the port, close): for "connection refused". */
export async function refusedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/v1`;
}
