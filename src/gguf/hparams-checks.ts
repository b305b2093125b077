// Hyperparameter checks: values of <arch>.* keys that make llama.cpp abort
// (GGML_ASSERT) instead of refusing the file. Each rule cites where llama.cpp
// asserts. Values llama.cpp refuses by itself (a missing key, a wrong type, an
// array of the wrong length, a shape that does not match a tensor) are left to
// it: it throws, and the load fails with a coded error.
import { float32, invalidModel, perLayer, string, u32 } from './metadata.js';
import type { GgufFile } from './reader.js';

const MAX_LAYERS = 512; // LLAMA_MAX_LAYERS (llama-hparams.h)
const MAX_EXPERTS = 1024; // LLAMA_MAX_EXPERTS
const ROPE_SCALING = ['none', 'linear', 'yarn', 'longrope']; // LLAMA_ROPE_SCALING_TYPES
const MAX_POOLING = 4; // LLAMA_POOLING_TYPE_RANK
/**
 * Architectures whose graph builder (vendor/llama.cpp/src/models/<arch>.cpp)
 * asserts that attention keys and values have one head size
 * (GGML_ASSERT(n_embd_head == hparams.n_embd_head_k())).
 */
const SAME_HEAD_SIZE = new Set([
  'afmoe', 'apertus', 'arcee', 'arctic', 'baichuan', 'bailingmoe2', 'bert', 'bitnet', 'bloom', 'chameleon',
  'chatglm', 'codeshell', 'cogvlm', 'cohere2', 'cohere2moe', 'command-r', 'dbrx', 'deci', 'deepseek', 'dots1',
  'dream', 'eurobert', 'exaone', 'falcon', 'glm4', 'gpt2', 'gptneox', 'granite', 'grok', 'grovemoe', 'hunyuan-moe',
  'internlm2', 'jais', 'jais2', 'llada', 'llada-moe', 'llama', 'llama-embed', 'llama4', 'maincoder', 'mellum',
  'minimax-01', 'minimax-m2', 'mistral3', 'modern-bert', 'mpt', 'nanbeige', 'nemotron', 'neo-bert', 'olmo', 'olmo2',
  'olmoe', 'openelm', 'orion', 'phi2', 'phi3', 'plamo', 'qwen', 'qwen2', 'qwen2moe', 'qwen2vl', 'qwen3', 'qwen3moe',
  'qwen3vl', 'qwen3vlmoe', 'refact', 'smallthinker', 'smollm3', 'stablelm', 'starcoder', 'starcoder2', 'xverse',
]);

export function checkHyperparameters(file: GgufFile): void {
  const arch = string(file, 'general.architecture');
  if (arch === undefined) return; // llama.cpp refuses: "unknown model architecture"
  const key = (name: string) => `${arch}.${name}`;
  const count = (name: string) => u32(file, key(name));

  // llama_model_base::load_hparams: GGML_ASSERT(n_layer_all > 0 && n_layer_all <= LLAMA_MAX_LAYERS).
  const layers = count('block_count');
  if (layers === undefined) return; // required: llama.cpp refuses the file without it
  if (layers < 1 || layers > MAX_LAYERS) {
    throw invalidModel(`${key('block_count')} is ${layers}: llama.cpp supports 1 to ${MAX_LAYERS} layers`);
  }
  // GGML_ASSERT(n_layer_nextn <= n_layer_all), and the same for WavTokenizer's posnet and convnext blocks.
  for (const name of ['nextn_predict_layers', 'posnet.block_count', 'convnext.block_count']) {
    const n = count(name);
    if (n !== undefined && n > layers) throw invalidModel(`${key(name)} is ${n}, more than the ${layers} layers of ${key('block_count')}`);
  }
  checkExperts(file, key, layers);
  checkHeads(file, key, layers);

  checkRope(file, key, layers);

  // The CPU norm kernels assert GGML_ASSERT(eps >= 0.0f) (ggml-cpu/ops.cpp: norm, rms_norm,
  // group_norm) at the first decode; a NaN fails that comparison too.
  for (const name of ['attention.layer_norm_epsilon', 'attention.layer_norm_rms_epsilon', 'attention.group_norm_epsilon']) {
    const eps = float32(file, key(name));
    if (eps !== undefined && !(eps >= 0)) throw invalidModel(`${key(name)} is ${eps}: a norm's epsilon must be 0 or more`);
  }

  // The graph's pooling switch ends in GGML_ABORT("unknown pooling type") (llama-graph.cpp,
  // build_pooling), reached by the first embedding: enum llama_pooling_type has 0..4.
  const pooling = count('pooling_type');
  if (pooling !== undefined && pooling > MAX_POOLING) {
    throw invalidModel(`unknown ${key('pooling_type')} ${pooling} (llama.cpp knows 0 to ${MAX_POOLING})`);
  }

  // GGML_ASSERT(rope_scaling_type_train != LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED): an unknown name.
  const rope = string(file, key('rope.scaling.type'));
  if (rope !== undefined && !ROPE_SCALING.includes(rope)) {
    throw invalidModel(`unknown ${key('rope.scaling.type')} ${JSON.stringify(rope)} (expected one of ${ROPE_SCALING.join(', ')})`);
  }
}

/** The expert-routing asserts of load_hparams. */
function checkExperts(file: GgufFile, key: (name: string) => string, layers: number): void {
  const experts = u32(file, key('expert_count')) ?? 0;
  const used = Math.max(0, ...(perLayer(file, key('expert_used_count'), layers) ?? [0]));
  const groups = u32(file, key('expert_group_count')) ?? 0;
  const groupsUsed = u32(file, key('expert_group_used_count')) ?? 0;
  const fail = (what: string) => invalidModel(`inconsistent experts: ${what}`);
  if (experts > MAX_EXPERTS) throw fail(`${key('expert_count')} is ${experts}, more than llama.cpp's ${MAX_EXPERTS}`);
  if (used > experts) throw fail(`${key('expert_used_count')} ${used} is more than ${key('expert_count')} ${experts}`);
  if (experts > 0) {
    if (used === 0) throw fail(`${key('expert_count')} is ${experts} but ${key('expert_used_count')} is 0`);
    if (groups >= experts) throw fail(`${key('expert_group_count')} ${groups} is not below ${key('expert_count')} ${experts}`);
    if (groups > 1 && (experts % groups !== 0 || groupsUsed === 0 || groupsUsed >= groups)) {
      throw fail(`${experts} experts in ${groups} groups with ${groupsUsed} used`);
    }
  } else if (groups !== 0) {
    throw fail(`${key('expert_group_count')} is ${groups} without experts`);
  }
}

/**
 * Attention multiplies the query heads by the key heads (ggml_mul_mat, and
 * ggml_flash_attn_ext), which asserts that the query heads are a whole multiple
 * of the key/value heads; the graph builders of the llama family also assert
 * one head size for keys and values. Both fire at the first context, after the
 * file has loaded.
 */
function checkHeads(file: GgufFile, key: (name: string) => string, layers: number): void {
  const heads = perLayer(file, key('attention.head_count'), layers);
  const kvHeads = perLayer(file, key('attention.head_count_kv'), layers) ?? heads;
  if (heads !== undefined && kvHeads !== undefined) {
    for (let il = 0; il < layers; il++) {
      const h = heads[il]!, kv = kvHeads[il]!;
      if (kv > 0 && h % kv !== 0) {
        throw invalidModel(`layer ${il} has ${h} attention heads, not a multiple of its ${kv} key/value heads (${key('attention.head_count')}, ${key('attention.head_count_kv')})`);
      }
    }
  }
  const arch = key('').slice(0, -1);
  const k = u32(file, key('attention.key_length'));
  const v = u32(file, key('attention.value_length'));
  if (SAME_HEAD_SIZE.has(arch) && k !== undefined && v !== undefined && k !== v) {
    throw invalidModel(`${key('attention.key_length')} ${k} differs from ${key('attention.value_length')} ${v}, which the ${arch} architecture does not support`);
  }
}

/**
 * The rope kernel (ggml-cpu/ops.cpp, rope) asserts that it rotates an even
 * number of dimensions, no more than a head has (GGML_ASSERT(n_dims % 2 == 0),
 * GGML_ASSERT(n_dims <= ne0)), at the first decode. The head size is
 * attention.key_length, or the embedding width over the heads, as
 * load_hparams derives it.
 */
function checkRope(file: GgufFile, key: (name: string) => string, layers: number): void {
  const embd = u32(file, key('embedding_length'));
  const heads = perLayer(file, key('attention.head_count'), layers)?.[0];
  const headSize = u32(file, key('attention.key_length')) ?? (embd !== undefined && heads ? Math.floor(embd / heads) : undefined);
  for (const name of ['rope.dimension_count', 'rope.dimension_count_swa']) {
    const dims = u32(file, key(name));
    if (dims === undefined) continue;
    if (dims % 2 !== 0) throw invalidModel(`${key(name)} is ${dims}: rotary embeddings rotate pairs of dimensions, so it must be even`);
    if (headSize !== undefined && dims > headSize) throw invalidModel(`${key(name)} is ${dims}, more than the ${headSize} dimensions of an attention head`);
  }
}
