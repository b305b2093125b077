// `understudy chat`: a conversation at the terminal, streamed. Each line you type
// is a user turn; Ctrl-C stops an answer, Ctrl-D (or /exit) ends the chat. With
// stdin not a terminal, each input line is a turn and only the answers print.
import { createInterface } from 'node:readline';
import type { ChatMessage } from '../llama/chat.js';
import { loadModel } from '../llama/model.js';
import { applyLoras, parseLoraFlags } from './lora-flag.js';
import { parse, requireModel, toNumber, UsageError } from './usage.js';

export async function chatCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    model: { type: 'string', short: 'm' },
    system: { type: 'string' },
    template: { type: 'string' },
    'max-tokens': { type: 'string', short: 'n' },
    temperature: { type: 'string' },
    seed: { type: 'string' },
    'context-size': { type: 'string', short: 'c' },
    threads: { type: 'string', short: 't' },
    lora: { type: 'string', multiple: true },
  });
  if (positionals.length > 0) throw new UsageError('chat takes no positional arguments: type your messages once it starts');
  const loras = parseLoraFlags(values.lora);
  const model = await loadModel(requireModel(values.model));
  const interactive = Boolean(process.stdin.isTTY);
  try {
    const context = await model.createContext({
      contextSize: toNumber(values['context-size'], '--context-size', true),
      threads: toNumber(values.threads, '--threads', true),
    });
    await applyLoras(model, context, loras);
    const template = values.template as string | undefined;
    const history: ChatMessage[] = values.system ? [{ role: 'system', content: String(values.system) }] : [];
    // Fail before the first prompt if there is no usable template.
    model.applyChatTemplate([...history, { role: 'user', content: 'hi' }], { template });
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: interactive });
    let answering: AbortController | undefined;
    rl.on('SIGINT', () => (answering ? answering.abort() : rl.close()));
    const answer = async (messages: ChatMessage[]): Promise<string> => {
      answering = new AbortController();
      const generation = context.chat(messages, {
        template,
        maxTokens: toNumber(values['max-tokens'], '--max-tokens', true) ?? 512,
        temperature: toNumber(values.temperature, '--temperature', false),
        seed: toNumber(values.seed, '--seed', true),
        signal: answering.signal,
      });
      let text = '';
      try {
        for await (const chunk of generation) {
          text += chunk;
          process.stdout.write(chunk);
        }
      } catch (err) {
        if (!answering.signal.aborted) throw err;
      } finally {
        answering = undefined;
      }
      process.stdout.write('\n');
      return text;
    };
    if (interactive) process.stderr.write('understudy chat: Ctrl-C stops an answer, Ctrl-D or /exit leaves.\n');
    // The line iterator buffers input that arrives while an answer is streaming.
    if (interactive) {
      rl.setPrompt('> ');
      rl.prompt();
    }
    for await (const line of rl) {
      if (line.trim() === '/exit') break;
      if (line.trim() !== '') {
        history.push({ role: 'user', content: line });
        history.push({ role: 'assistant', content: await answer(history) });
      }
      if (interactive) rl.prompt();
    }
    rl.close();
    return 0;
  } finally {
    model.dispose();
  }
}
