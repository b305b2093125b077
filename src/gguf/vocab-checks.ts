// Vocabulary checks: the states of tokenizer.ggml.* that make llama.cpp
// (src/llama-vocab.cpp) abort instead of refusing the file. They hold for
// vocab-only loads too, since the vocabulary is read either way.
import { GgufValueType } from './format.js';
import { array, bool, invalidModel, string, u32 } from './metadata.js';
import type { GgufFile } from './reader.js';

/** Token type 6 (LLAMA_TOKEN_TYPE_BYTE): a token that renders as one raw byte. */
const BYTE_TOKEN = 6;

/**
 * What llama_vocab::impl::load sets up for each tokenizer model before the
 * file's keys override it: the default special-token ids (-1: none) and
 * whether tokenizing with special tokens adds BOS/EOS/SEP. `undefined` for a
 * flag means it depends on the pre-tokenizer; taken as true, so the check errs
 * on the safe side (it only matters when the special token resolves to none).
 */
interface TokenizerDefaults { bos: number; eos: number; sep: number; addBos?: boolean; addEos?: boolean; addSep?: boolean }
const DEFAULTS: Record<string, TokenizerDefaults> = {
  llama: { bos: 1, eos: 2, sep: -1, addBos: true, addEos: false, addSep: false }, // SPM
  bert: { bos: 101, eos: -1, sep: 102, addBos: true, addEos: false, addSep: true }, // WPM: BOS and SEP always, see below
  t5: { bos: -1, eos: 1, sep: -1, addBos: false, addEos: true, addSep: false }, // UGM
  gpt2: { bos: 11, eos: 11, sep: -1, addSep: false }, // BPE
  hybriddna: { bos: 11, eos: 11, sep: -1, addSep: false },
  whitespace: { bos: 11, eos: 11, sep: -1, addSep: false },
  gemma4: { bos: -1, eos: -1, sep: -1, addSep: false }, // BPE; llama.cpp forces add_bos on for Gemma 4
  plamo2: { bos: 1, eos: 2, sep: -1, addSep: false },
};

export function checkVocabulary(file: GgufFile): void {
  const model = string(file, 'tokenizer.ggml.model');
  // Missing or mistyped, llama.cpp refuses the file itself ("key not found").
  if (model === undefined) return;
  if (model === 'none' || model === 'no_vocab') {
    // llama.cpp loads it, then aborts (GGML_ASSERT(type != LLAMA_VOCAB_TYPE_NONE))
    // in every call that looks at a token.
    throw invalidModel(`the model has no vocabulary (tokenizer.ggml.model is "${model}"): Understudy needs one to turn text into tokens`);
  }
  const list = array(file, 'tokenizer.ggml.tokens', GgufValueType.STRING);
  if (list === undefined) return; // llama.cpp refuses: "cannot find tokenizer vocab" / "invalid gguf type"
  const tokens = list.items as readonly string[];
  if (tokens.length === 0) throw invalidModel('the vocabulary (tokenizer.ggml.tokens) is empty');
  checkUnique(tokens);
  checkSpecialTokens(file, model, tokens.length);
  if (model === 'bert') checkNoByteTokens(file);
  if (model === 'llama') checkByteFallback(tokens);
  if (model === 'plamo2') checkSuffixes(tokens);
}

/** What the PLaMo-2 tokenizer may spend on token suffixes, in characters. */
const SUFFIX_BUDGET = 50_000_000;

/**
 * The PLaMo-2 tokenizer stores every suffix of every token in a table
 * (llm_tokenizer_plamo2's constructor), which costs the square of a token's
 * length in time and memory: one token of 70,000 characters kept the load busy
 * for minutes on 2.5 GB of strings. Real vocabularies need a few million.
 */
function checkSuffixes(tokens: readonly string[]): void {
  let total = 0;
  for (let id = 0; id < tokens.length; id++) {
    const n = tokens[id]!.length; // UTF-16 units: at least the code points counted by llama.cpp
    total += (n * (n + 1)) / 2;
    if (total > SUFFIX_BUDGET) {
      throw invalidModel(`the PLaMo-2 tokenizer would build more than ${SUFFIX_BUDGET} characters of token suffixes (token ${id} is ${n} characters long)`);
    }
  }
}

/**
 * The SPM tokenizer spells a piece it has no token for byte by byte, through
 * the tokens "<0xXX>" (or, failing those, the byte itself as a token), looked
 * up with token_to_id.at() (llama_vocab::byte_to_token), which throws out of
 * the tokenizer for a byte without one. Every byte must have a token.
 */
function checkByteFallback(tokens: readonly string[]): void {
  const texts = new Set(tokens);
  for (let b = 0; b < 256; b++) {
    const hex = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
    if (!texts.has(hex) && !(b < 0x80 && texts.has(String.fromCharCode(b)))) {
      throw invalidModel(`the SPM vocabulary has no token for the byte ${hex}, which it needs to spell text it has no token for`);
    }
  }
}

/**
 * llama.cpp maps each token text to its id and asserts that no two ids share a
 * text (GGML_ASSERT(id_to_token.size() == token_to_id.size())). An empty text
 * is stored as "[EMPTY_<id>]" first, so that is the text compared. A text with
 * U+FFFD may have been invalid UTF-8 that the reader replaced, so two such
 * texts can be equal here and differ in the file: they are not compared.
 */
function checkUnique(tokens: readonly string[]): void {
  const seen = new Map<string, number>();
  for (let id = 0; id < tokens.length; id++) {
    const text = tokens[id] === '' ? `[EMPTY_${id}]` : tokens[id]!;
    if (text.includes('\ufffd')) continue;
    const first = seen.get(text);
    if (first !== undefined) {
      const shown = text.length > 40 ? `${JSON.stringify(text.slice(0, 40))}...` : JSON.stringify(text);
      throw invalidModel(`token ${id} of the vocabulary repeats token ${first} (${shown}): every token text must be unique`);
    }
    seen.set(text, id);
  }
}

/**
 * Tokenizing with special tokens asserts that the BOS (and EOS, SEP) token the
 * model asks for exists (GGML_ASSERT(special_bos_id != LLAMA_TOKEN_NULL)). An id
 * resolves as llama.cpp resolves it: the file's tokenizer.ggml.<name>_token_id
 * if it is inside the vocabulary, else the tokenizer's default if that is, else
 * none.
 */
function checkSpecialTokens(file: GgufFile, model: string, size: number): void {
  const defaults = DEFAULTS[model];
  if (defaults === undefined) return; // rwkv, test, or unknown (llama.cpp refuses unknown ones)
  const resolve = (name: string, fallback: number) => {
    const id = u32(file, `tokenizer.ggml.${name}_token_id`);
    if (id !== undefined && id < size) return id;
    return fallback >= 0 && fallback < size ? fallback : -1;
  };
  const flag = (name: string, fallback: boolean | undefined) => bool(file, `tokenizer.ggml.add_${name}_token`) ?? fallback ?? true;
  const wpm = model === 'bert'; // the WPM tokenizer adds BOS and SEP whenever special tokens are on
  const needs: [string, number, boolean][] = [
    ['bos', resolve('bos', defaults.bos), wpm || model === 'gemma4' || flag('bos', defaults.addBos)],
    ['eos', resolve('eos', defaults.eos), !wpm && flag('eos', defaults.addEos)],
    ['seperator', resolve('seperator', defaults.sep), wpm],
  ];
  for (const [name, id, added] of needs) {
    if (added && id < 0) {
      const label = name === 'seperator' ? 'separator' : name.toUpperCase();
      throw invalidModel(`the ${model} tokenizer adds a ${label} token, but tokenizer.ggml.${name}_token_id names none inside the ${size}-token vocabulary`);
    }
  }
}

/** A WPM (bert) vocabulary cannot render byte tokens: llama.cpp aborts in token_to_byte. */
function checkNoByteTokens(file: GgufFile): void {
  const types = array(file, 'tokenizer.ggml.token_type', GgufValueType.INT32);
  if (types === undefined) return;
  const id = Array.prototype.indexOf.call(types.items, BYTE_TOKEN);
  if (id >= 0) throw invalidModel(`token ${id} is a byte token (type ${BYTE_TOKEN}), which a WPM (bert) vocabulary cannot render`);
}
