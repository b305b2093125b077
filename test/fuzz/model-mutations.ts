// Seeded mutations of a valid GGUF model: case i of seed s is always the same
// file. Byte-level damage (flips, 0xff runs, truncation) hits the header, the
// metadata and the tensor index; structural damage (extreme or retyped values,
// duplicated tokens, changed tensor types, shapes and offsets, missing or
// repeated entries) is written through raw-gguf.ts.
import { GgufValueType } from '../../src/gguf/format.js';
import { cloneRaw, relayout, serializeRaw, type RawKv, type RawModel } from './raw-gguf.js';
import { Rng } from './rng.js';

export interface Mutation { description: string; bytes: Buffer }

const T = GgufValueType;
const EXTREMES: (number | bigint)[] = [0, -1, 1, 2 ** 31, 2 ** 31 - 1, 2 ** 32 - 1, 2n ** 63n, 2n ** 63n - 1n, 2n ** 64n - 1n];
// Every ggml type id, the removed ones and a few past the end.
const TENSOR_TYPES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 19, 20, 23, 24, 25, 26, 27, 28, 29, 30, 31, 34, 35, 36, 39, 40, 41, 42, 43, 99, 2 ** 31];
const EXTRA_KVS: [string, number, unknown][] = [
  ['llama.expert_count', T.UINT32, 8], ['llama.expert_used_count', T.UINT32, 2], ['llama.expert_count', T.UINT32, 2000],
  ['llama.expert_group_count', T.UINT32, 3], ['llama.nextn_predict_layers', T.UINT32, 9],
  ['llama.attention.key_length', T.UINT32, 16], ['llama.attention.value_length', T.UINT32, 4],
  ['llama.rope.scaling.type', T.STRING, 'bogus'], ['llama.rope.scaling.type', T.STRING, 'yarn'],
  ['llama.rope.freq_base', T.FLOAT32, Number.NaN], ['llama.rope.scaling.factor', T.FLOAT32, -1],
  ['llama.attention.layer_norm_rms_epsilon', T.FLOAT32, Number.POSITIVE_INFINITY],
  ['llama.attention.layer_norm_rms_epsilon', T.FLOAT32, -1], ['llama.attention.layer_norm_rms_epsilon', T.FLOAT32, Number.NaN],
  ['llama.rope.freq_base', T.FLOAT32, 0], ['llama.rope.freq_base', T.FLOAT32, -1], ['llama.rope.scaling.factor', T.FLOAT32, Number.NaN],
  ['llama.rope.scaling.type', T.STRING, 'longrope'], ['llama.attention.scale', T.FLOAT32, Number.NaN],
  ['llama.rope.scaling.original_context_length', T.UINT32, 0], ['llama.rope.scaling.yarn_ext_factor', T.FLOAT32, -5],
  ['llama.vocab_size', T.UINT32, 2 ** 31], ['llama.pooling_type', T.UINT32, 77], ['llama.pooling_type', T.UINT32, 4], ['llama.pooling_type', T.UINT32, 0], ['llama.attention.causal', T.BOOL, false],
  ['tokenizer.ggml.add_eos_token', T.BOOL, true], ['tokenizer.ggml.add_bos_token', T.BOOL, false],
  ['tokenizer.ggml.eos_token_id', T.UINT32, 600], ['tokenizer.ggml.eot_token_id', T.UINT32, 2 ** 31],
  ['tokenizer.ggml.model', T.STRING, 'none'], ['tokenizer.ggml.model', T.STRING, 'bert'], ['tokenizer.ggml.model', T.STRING, 't5'],
  ['tokenizer.ggml.model', T.STRING, 'gpt2'], ['tokenizer.ggml.model', T.STRING, 'rwkv'], ['tokenizer.ggml.model', T.STRING, 'plamo2'],
  ['tokenizer.ggml.pre', T.STRING, 'llama3'], ['tokenizer.chat_template', T.STRING, '{{ raise_exception("x") }}'],
  ['tokenizer.chat_template', T.STRING, '{% for m in messages %}{{ m.content }}'], ['general.alignment', T.UINT32, 3],
  ['general.alignment', T.UINT32, 64], ['llama.context_length', T.UINT32, 0], ['llama.embedding_length', T.UINT32, 0],
];

const setKv = (m: RawModel, key: string, type: number, value: unknown) => {
  const kv = m.kvs.find((k) => k.key === key);
  if (kv) Object.assign(kv, { type, value, count: undefined });
  else m.kvs.push({ key, type, value });
};
const numericKvs = (m: RawModel) => m.kvs.filter((k) => k.type !== T.ARRAY && k.type !== T.STRING);
const arrayKv = (m: RawModel, key: string) => m.kvs.find((k) => k.key === key && k.type === T.ARRAY) as (RawKv & { value: { itemType: number; items: unknown[] } }) | undefined;

/** One structural mutation of `m` (in place); returns what it did. */
/** Sets a u32 hyperparameter and reshapes the tensors it governs to match, so the file passes llama.cpp's shape checks. */
function consistent(m: RawModel, rng: Rng): string {
  const dims = (suffix: string, d: bigint[]) => m.tensors.filter((t) => t.name.endsWith(suffix)).forEach((t) => { t.dims = [...d]; });
  const how = rng.int(4);
  if (how === 0) {
    const ff = BigInt(rng.pick([0, 1, 3, 31, 2048]));
    setKv(m, 'llama.feed_forward_length', T.UINT32, Number(ff));
    dims('ffn_gate.weight', [64n, ff]); dims('ffn_up.weight', [64n, ff]); dims('ffn_down.weight', [ff, 64n]);
    return `feed_forward_length ${ff} with matching tensors`;
  }
  if (how === 1) {
    const [h, kv] = rng.pick([[1, 1], [16, 16], [64, 64], [2, 1], [4, 2], [3, 3], [5, 1]] as const);
    const hd = BigInt(Math.floor(64 / h));
    setKv(m, 'llama.attention.head_count', T.UINT32, h);
    setKv(m, 'llama.attention.head_count_kv', T.UINT32, kv);
    setKv(m, 'llama.rope.dimension_count', T.UINT32, Number(hd));
    dims('attn_q.weight', [64n, hd * BigInt(h)]); dims('attn_k.weight', [64n, hd * BigInt(kv)]);
    dims('attn_v.weight', [64n, hd * BigInt(kv)]); dims('attn_output.weight', [hd * BigInt(h), 64n]);
    return `${h} heads, ${kv} key/value heads with matching tensors`;
  }
  if (how === 2) {
    const layers = rng.pick([1, 2, 4]);
    setKv(m, 'llama.block_count', T.UINT32, layers);
    m.tensors = m.tensors.filter((t) => !/^blk\.(\d+)\./.test(t.name) || Number(/^blk\.(\d+)\./.exec(t.name)![1]) < layers);
    return `${layers} layers with matching tensors`;
  }
  const n = rng.pick([8, 16, 128]);
  const e = BigInt(n), hd = BigInt(n / 8);
  setKv(m, 'llama.embedding_length', T.UINT32, n);
  setKv(m, 'llama.rope.dimension_count', T.UINT32, n / 8);
  dims('token_embd.weight', [e, 512n]); dims('output.weight', [e, 512n]); dims('norm.weight', [e]);
  dims('attn_q.weight', [e, hd * 8n]); dims('attn_k.weight', [e, hd * 4n]); dims('attn_v.weight', [e, hd * 4n]);
  dims('attn_output.weight', [hd * 8n, e]); dims('ffn_gate.weight', [e, 172n]); dims('ffn_up.weight', [e, 172n]); dims('ffn_down.weight', [172n, e]);
  return `embedding_length ${n} with matching tensors`;
}

function structural(m: RawModel, rng: Rng): string {
  const kind = rng.int(16);
  if (kind >= 14) return consistent(m, rng);
  switch (kind) {
    case 0: { // a numeric value set to an extreme, keeping its type
      const kv = rng.pick(numericKvs(m));
      const v = rng.pick(EXTREMES);
      kv.value = v;
      return `${kv.key} = ${v}`;
    }
    case 1: { // a numeric value retyped to a 64-bit or signed type with an extreme
      const kv = rng.pick(numericKvs(m));
      kv.type = rng.pick([T.INT32, T.UINT64, T.INT64, T.FLOAT32, T.STRING, T.BOOL]);
      kv.value = kv.type === T.STRING ? '12' : kv.type === T.BOOL ? 1 : rng.pick(EXTREMES);
      return `${kv.key} retyped ${kv.type} = ${String(kv.value)}`;
    }
    case 2: { // a duplicated token (or an empty one that reads as "[EMPTY_i]")
      const tokens = arrayKv(m, 'tokenizer.ggml.tokens')!.value.items as string[];
      const i = rng.int(tokens.length), j = rng.int(tokens.length);
      if (rng.chance(0.2)) { tokens[i] = ''; tokens[j] = `[EMPTY_${i}]`; return `token ${i} empty, ${j} = [EMPTY_${i}]`; }
      tokens[j] = tokens[i]!;
      return `token ${j} = token ${i} (${JSON.stringify(tokens[i])})`;
    }
    case 3: { // a tensor's type changed
      const t = rng.pick(m.tensors);
      t.type = rng.pick(TENSOR_TYPES);
      return `tensor ${t.name} type ${t.type}`;
    }
    case 4: { // a tensor's shape changed
      const t = rng.pick(m.tensors);
      const d = rng.int(t.dims.length);
      const how = rng.int(5);
      if (how === 0) t.dims[d] = 0n;
      else if (how === 1) t.dims[d] = rng.pick([1n, 2n ** 31n, 2n ** 62n, 2n ** 64n - 1n]);
      else if (how === 2) t.dims.reverse();
      else if (how === 3) t.dims.push(rng.pick([1n, 2n, 0n]));
      else t.dims = t.dims.slice(0, -1).length ? t.dims.slice(0, -1) : [t.dims[0]! * 2n];
      return `tensor ${t.name} dims [${t.dims.join(', ')}]`;
    }
    case 5: { // a tensor's offset changed
      const t = rng.pick(m.tensors);
      t.offset = rng.pick([0n, 32n, 1n, BigInt(m.data.length), BigInt(m.data.length - 32), 2n ** 63n, t.offset + 32n]);
      return `tensor ${t.name} offset ${t.offset}`;
    }
    case 6: { // a tensor dropped, duplicated or renamed
      const i = rng.int(m.tensors.length);
      const how = rng.int(3);
      if (how === 0) { const [t] = m.tensors.splice(i, 1); return `tensor ${t!.name} dropped`; }
      if (how === 1) { m.tensors.push({ ...m.tensors[i]!, dims: [...m.tensors[i]!.dims] }); return `tensor ${m.tensors[i]!.name} duplicated`; }
      m.tensors[i]!.name = rng.pick(['blk.9.attn_q.weight', 'blk.0.attn_q.weight', 'x', '', 'blk.-1.ffn_up.weight']);
      return `tensor ${i} renamed ${m.tensors[i]!.name}`;
    }
    case 7: { // a metadata entry dropped or repeated
      const i = rng.int(m.kvs.length);
      if (rng.chance(0.5)) { const [kv] = m.kvs.splice(i, 1); return `kv ${kv!.key} dropped`; }
      m.kvs.push({ ...m.kvs[i]! });
      return `kv ${m.kvs[i]!.key} repeated`;
    }
    case 8: { // an entry added with an odd value
      const [key, type, value] = rng.pick(EXTRA_KVS);
      setKv(m, key, type, value);
      return `kv ${key} = ${String(value)}`;
    }
    case 9: { // an array whose declared length lies
      const kv = rng.pick(m.kvs.filter((k) => k.type === T.ARRAY));
      const n = BigInt((kv.value as { items: unknown[] }).items.length);
      kv.count = rng.pick([0n, n - 1n, n + 1n, 2n ** 32n, 2n ** 63n]);
      return `kv ${kv.key} count ${kv.count} (really ${n})`;
    }
    case 10: { // the vocabulary shrunk (its companions too, or not)
      const n = rng.pick([0, 1, 2, 3, 11, 100]);
      for (const key of ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type']) {
        const kv = arrayKv(m, key)!;
        if (key === 'tokenizer.ggml.tokens' || rng.chance(0.7)) kv.value = { itemType: kv.value.itemType, items: Array.from(kv.value.items).slice(0, n) };
      }
      return `vocabulary cut to ${n} tokens`;
    }
    case 11: { // token types set to odd values
      const types = arrayKv(m, 'tokenizer.ggml.token_type')!.value.items as unknown as Int32Array;
      const v = rng.pick([0, 6, 3, 4, -1, 2 ** 31 - 1]);
      for (let k = 0; k < 1 + rng.int(20); k++) types[rng.int(types.length)] = v;
      return `token types set to ${v}`;
    }
    case 12: { // per-layer arrays instead of scalars
      const key = rng.pick(['llama.attention.head_count', 'llama.attention.head_count_kv', 'llama.feed_forward_length']);
      const layers = rng.pick([5, 4, 6, 0]);
      const value = rng.pick([0, 1, 3, 8, 2 ** 31]);
      setKv(m, key, T.ARRAY, { itemType: rng.pick([T.INT32, T.UINT32, T.FLOAT32]), items: new Array(layers).fill(value) });
      return `kv ${key} = [${value} x ${layers}]`;
    }
    default: { // token texts with odd bytes
      const tokens = arrayKv(m, 'tokenizer.ggml.tokens')!.value.items as unknown[];
      const i = rng.int(tokens.length);
      tokens[i] = rng.pick([Buffer.from([0xff, 0xfe]), Buffer.from([0xc3]), '', 'a'.repeat(70000), '<0x0A>', '<0x']);
      return `token ${i} odd text`;
    }
  }
}

/** Case `index` of `seed`: a mutated copy of `source` (its bytes) and what was done. */
export function mutate(source: Buffer, raw: RawModel, seed: number, index: number): Mutation {
  const rng = new Rng(seed * 100_003 + index);
  const headerEnd = source.length - raw.data.length;
  const kind = rng.int(10);
  if (kind < 3) { // byte damage in the header, metadata and tensor index
    const bytes = Buffer.from(source);
    const parts: string[] = [];
    for (let f = 0; f < 1 + rng.int(4); f++) {
      const at = 4 + rng.int(headerEnd - 4);
      if (kind === 0) { bytes[at] = rng.int(256); parts.push(`byte ${at} = ${bytes[at]}`); }
      else if (kind === 1) { bytes.fill(0xff, at, at + 8); parts.push(`0xff x8 at ${at}`); }
      else { bytes[at] = bytes[at]! ^ (1 << rng.int(8)); parts.push(`bit flip at ${at}`); }
    }
    return { description: parts.join(', '), bytes };
  }
  if (kind === 3) { // truncation, mostly inside the header
    const at = rng.chance(0.7) ? rng.int(headerEnd + 64) : rng.int(source.length);
    return { description: `truncated to ${at} bytes`, bytes: source.subarray(0, at) };
  }
  const m = cloneRaw(raw);
  const parts: string[] = [];
  for (let k = 0; k < 1 + (rng.chance(0.3) ? rng.int(3) : 0); k++) parts.push(structural(m, rng));
  // Mostly re-laid out, so that changed types and shapes get past the offset
  // checks and reach the computation; a changed offset is kept as it is.
  if (!parts.some((p) => p.includes(' offset ')) && rng.chance(0.8)) {
    relayout(m);
    parts.push('relaid');
  }
  return { description: parts.join('; '), bytes: serializeRaw(m) };
}
