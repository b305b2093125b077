// Generation options: their defaults (llama.cpp's own), their checks, and the
// plain object the native sampler reads.
import { randomInt } from 'node:crypto';
import * as v from '../validate.js';
import { invalidArgument } from '../errors.js';
import { checkGrammar } from './grammar-check.js';
import { jsonSchemaToGrammar } from './json-schema-grammar.js';

export interface GenerateOptions {
  /** Most tokens to generate (default 256). */
  maxTokens?: number;
  /** 0 picks the most likely token every time (greedy). Default 0.8. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  repeatLastN?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** Seed for sampling; random when left out. Same seed, same settings: same text. */
  seed?: number;
  /** Generation ends before the first of these strings; it is not part of the text. */
  stop?: string | string[];
  /** Keep going past end-of-generation tokens (for benchmarks). */
  ignoreEos?: boolean;
  /**
   * A GBNF grammar (root rule `root`) that the output must follow. Checked before
   * generation starts (INVALID_GRAMMAR, within GRAMMAR_LIMITS); parsed by llama.cpp
   * off the JS thread.
   */
  grammar?: string;
  /** A JSON schema the output must match; it becomes a grammar. */
  jsonSchema?: object;
  /** Render special tokens (such as `</s>`) into the text. */
  renderSpecial?: boolean;
  /** Add BOS/EOS around a string prompt as the model asks (default true). */
  addSpecial?: boolean;
  /** Read special-token text in a string prompt as special tokens (default false). */
  parseSpecial?: boolean;
  signal?: AbortSignal;
}

export interface NativeSampling {
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  repeatLastN: number;
  frequencyPenalty: number;
  presencePenalty: number;
  seed: number;
  stop: string[];
  ignoreEos: boolean;
  renderSpecial: boolean;
  grammar?: string;
}

export interface ParsedGenerateOptions {
  sampling: NativeSampling;
  addSpecial: boolean;
  parseSpecial: boolean;
  signal?: AbortSignal;
}

export function parseGenerateOptions(input: GenerateOptions | undefined): ParsedGenerateOptions {
  const o = v.options(input);
  return {
    sampling: {
      maxTokens: v.integer(o.maxTokens, 'maxTokens', 256, 1, 2 ** 31 - 1),
      temperature: v.number(o.temperature, 'temperature', 0.8, 0, 100),
      topK: v.integer(o.topK, 'topK', 40, 0, 2 ** 24),
      topP: v.number(o.topP, 'topP', 0.95, 0, 1),
      minP: v.number(o.minP, 'minP', 0.05, 0, 1),
      repeatPenalty: positivePenalty(o.repeatPenalty),
      repeatLastN: v.integer(o.repeatLastN, 'repeatLastN', 64, 0, 2 ** 24),
      frequencyPenalty: v.number(o.frequencyPenalty, 'frequencyPenalty', 0, -100, 100),
      presencePenalty: v.number(o.presencePenalty, 'presencePenalty', 0, -100, 100),
      seed: v.integer(o.seed, 'seed', o.seed === undefined ? randomInt(2 ** 32 - 1) : 0, 0, 2 ** 32 - 1),
      stop: v.stringArray(o.stop, 'stop'),
      ignoreEos: v.boolean(o.ignoreEos, 'ignoreEos', false),
      renderSpecial: v.boolean(o.renderSpecial, 'renderSpecial', false),
      grammar: grammarOf(o),
    },
    addSpecial: v.boolean(o.addSpecial, 'addSpecial', true),
    parseSpecial: v.boolean(o.parseSpecial, 'parseSpecial', false),
    signal: v.abortSignal(o.signal),
  };
}

// llama.cpp divides positive logits by the penalty: 0 would make them infinite,
// and sampling from NaN probabilities.
function positivePenalty(value: unknown): number {
  const penalty = v.number(value, 'repeatPenalty', 1, 0, 100);
  if (penalty === 0) v.fail('number greater than 0 and at most 100', 'repeatPenalty', value);
  return penalty;
}

function grammarOf(o: Partial<GenerateOptions>): string | undefined {
  if (o.grammar !== undefined && o.jsonSchema !== undefined) {
    throw invalidArgument('Expected one of grammar and jsonSchema but received both');
  }
  if (o.grammar !== undefined) {
    const grammar = v.nonEmptyString(o.grammar, 'grammar');
    checkGrammar(grammar);
    return grammar;
  }
  if (o.jsonSchema === undefined) return undefined;
  if (!v.isPlainObject(o.jsonSchema) && typeof o.jsonSchema !== 'boolean') v.fail('JSON schema object', 'jsonSchema', o.jsonSchema);
  let grammar: string;
  try {
    grammar = jsonSchemaToGrammar(o.jsonSchema);
  } catch (err) {
    throw invalidArgument(`jsonSchema: ${(err as Error).message}`);
  }
  // The same limits as a grammar given directly: a schema can ask for a huge one.
  checkGrammar(grammar);
  return grammar;
}
