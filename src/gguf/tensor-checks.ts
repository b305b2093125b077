// Tensor checks: storage types and shapes that llama.cpp loads without
// complaint and then aborts on, at the first context or the first decode.
//
// llama.cpp checks each tensor's shape against the hyperparameters, and asks
// the backend whether it supports the tensor's operation; but the CPU backend
// answers yes for nearly every type (ggml-cpu.cpp, supports_op), and its
// kernels then abort on the types they lack. What each operation accepts on
// the CPU, from vendor/llama.cpp/ggml/src/ggml-cpu:
// - matrix products (weights: attn_q, ffn_up, output, LoRA tensors, ...): a
//   type with a dot product (type_traits_cpu[type].vec_dot); the integer types,
//   F64, Q8_1 and Q8_K have none.
// - embedding look-ups (token_embd, ...): ggml_compute_forward_get_rows, F16,
//   BF16, F32, and the quantized types that can be dequantized
//   (type_traits[type].to_float): not Q8_1 (its case calls a null to_float) nor
//   Q8_K. I32 rows are looked up as I32 (ggml_get_rows keeps the type), which
//   no backend can then normalize: the scheduler asserts (cur_backend_id != -1).
// - norms and biases are multiplied or added to F32 activations (binary_op),
//   which only has an F32 x F32 kernel for them: F32 only.
// - RoPE frequency factors: F32 (an assert in ggml_rope_impl).
// Which operation a tensor feeds follows llama.cpp's table of tensor names
// (LLM_TENSOR_INFOS in llama-arch.cpp); tensors not named here are not checked.
import { ggmlTypeName } from './format.js';
import { invalidModel } from './metadata.js';
import type { GgufFile } from './reader.js';

const T = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9, Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13,
  Q6_K: 14, Q8_K: 15, IQ2_XXS: 16, IQ2_XS: 17, IQ3_XXS: 18, IQ1_S: 19, IQ4_NL: 20, IQ3_S: 21, IQ2_S: 22,
  IQ4_XS: 23, IQ1_M: 29, BF16: 30, TQ1_0: 34, TQ2_0: 35, MXFP4: 39, NVFP4: 40, Q1_0: 41, Q2_0: 42,
} as const;

const QUANTIZED_WITH_DOT = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K,
  T.IQ2_XXS, T.IQ2_XS, T.IQ3_XXS, T.IQ1_S, T.IQ4_NL, T.IQ3_S, T.IQ2_S, T.IQ4_XS, T.IQ1_M, T.TQ1_0, T.TQ2_0,
  T.MXFP4, T.NVFP4, T.Q1_0, T.Q2_0];
const MATMUL = new Set<number>([T.F32, T.F16, T.BF16, ...QUANTIZED_WITH_DOT]);
const GET_ROWS = new Set<number>([T.F32, T.F16, T.BF16, ...QUANTIZED_WITH_DOT]);
const F32_ONLY = new Set<number>([T.F32]);

interface Role { types: ReadonlySet<number>; why: string }
const ROLES: Record<string, Role> = {
  matmul: { types: MATMUL, why: 'a type llama.cpp cannot multiply matrices in (its CPU backend has no dot product for it)' },
  getRows: { types: GET_ROWS, why: 'a type llama.cpp cannot look embeddings up in' },
  elementwise: { types: F32_ONLY, why: 'but llama.cpp applies norm and bias weights only in F32' },
  rope: { types: F32_ONLY, why: 'but llama.cpp reads RoPE frequency factors only in F32' },
};

const LAYER = String.raw`(?:(?:blk|enc\.blk|dec\.blk|posnet|convnext)\.\d+\.)?`;
const MATMUL_NAME = new RegExp(String.raw`^${LAYER}(?:` + [
  String.raw`attn_(?:q|k|v|o|qkv|output|gate|q_a|q_b|kv|kv_a_mqa|kv_b|k_b|v_b|output_a|output_b)`,
  String.raw`cross_attn_[qkvo]`,
  String.raw`ffn_(?:gate|down|up|gate_inp|gate_inp_shexp|gate_shexp|down_shexp|up_shexp|gate_up)(?:_exps|_chexps)?`,
  String.raw`ssm_(?:in|out|x|dt)`,
  String.raw`(?:time_mix|channel_mix)_(?:key|value|receptance|output|gate)`,
  String.raw`output|cls|cls\.output|pw[12]`,
].join('|') + String.raw`)\.weight(?:\.lora_[ab])?$`);
const GET_ROWS_NAME = /^(?:token_embd|position_embd|token_types|per_layer_token_embd)\.weight$/;
const ROPE_NAME = /^(?:blk\.\d+\.)?(?:rope_freqs|rope_factors_long|rope_factors_short)\.weight$/;
// A norm's name ends in a segment that says so (attn_norm, ffn_norm_exps, ssm_b_norm, nextn.enorm, ...).
const ELEMENTWISE_NAME = /(?:norm[^.]*\.weight|\.bias)$/;

function roleOf(name: string, tiedOutput: boolean): Role[] {
  if (ROPE_NAME.test(name)) return [ROLES.rope!];
  if (ELEMENTWISE_NAME.test(name)) return [ROLES.elementwise!];
  // Without an output.weight, llama.cpp multiplies by the token embeddings to get the logits.
  if (name === 'token_embd.weight' && tiedOutput) return [ROLES.getRows!, ROLES.matmul!];
  if (GET_ROWS_NAME.test(name)) return [ROLES.getRows!];
  if (MATMUL_NAME.test(name)) return [ROLES.matmul!];
  return [];
}

/**
 * Throws INVALID_MODEL_FILE for a tensor that llama.cpp would load but could
 * not compute with: a storage type its operation lacks on the CPU, or an empty
 * dimension (a hyperparameter of 0 with tensors to match, such as
 * feed_forward_length 0: a row of length 0 has a row stride of 0, which
 * ggml_mul_mat takes for a transposed matrix and asserts against).
 */
export function checkTensors(file: GgufFile): void {
  const names = new Set(file.tensors.map((t) => t.name));
  const tiedOutput = !names.has('output.weight');
  for (const t of file.tensors) {
    if (t.dims.some((d) => d === 0)) throw invalidModel(`tensor "${t.name}" has shape [${t.dims.join(', ')}]: no dimension may be 0`);
    for (const role of roleOf(t.name, tiedOutput)) {
      if (!role.types.has(t.type)) throw invalidModel(`tensor "${t.name}" is stored as ${ggmlTypeName(t.type)}, ${role.why}`);
    }
  }
}
