// The one list of error codes, shared by the TypeScript side and the native
// addon (native/*.cpp raise these strings; test/hygiene-error-codes.test.ts
// checks that every code they use is listed here, and that the README lists
// the same ones). Add a code here first, then use it.
export const ERROR_CODES = [
  // Raised by the native addon (and by its TypeScript face).
  'INVALID_ARGUMENT',
  'MODEL_NOT_FOUND',
  'INVALID_MODEL_FILE',
  'CONTEXT_CREATION_FAILED',
  'CONTEXT_OVERFLOW',
  'DECODE_FAILED',
  'ABORTED',
  'DISPOSED',
  'BUSY',
  'QUEUE_FULL',
  'INVALID_ADAPTER',
  'INVALID_GRAMMAR',
  'TEMPLATE_MISSING',
  'TEMPLATE_UNSUPPORTED',
  'BINDING_NOT_FOUND',
  'OUT_OF_MEMORY',
  'NATIVE_ERROR',
  // Raised by LoRA training (native/trainer.cpp and src/llama/training-*.ts).
  'TRAINING_UNSUPPORTED',
  'INVALID_DATASET',
  // Raised by the router and the CLI.
  'INVALID_CONFIG',
  'NO_BACKEND',
  'CACHE_MISS',
  'REMOTE_UNAVAILABLE',
  'REMOTE_TIMEOUT',
  'REMOTE_REJECTED',
  'REMOTE_BAD_RESPONSE',
  'IO_ERROR',
  'CLOSED',
  // Raised by the distillation loop (src/train/).
  'NO_ADAPTER',
  // Raised by the HTTP server (src/server/).
  'NOT_READY',
  'UNAUTHORIZED',
  'NOT_FOUND',
  'PAYLOAD_TOO_LARGE',
  'TIMEOUT',
  // Raised by `understudy pull` (src/models/).
  'MODEL_HASH_MISMATCH',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];
