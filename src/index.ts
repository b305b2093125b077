// understudy-llm: public API.
export { loadModel, Model } from './llama/model.js';
export type { LoadModelOptions, ModelInfo, TokenizeOptions, DetokenizeOptions } from './llama/model.js';
export { Context } from './llama/context.js';
export type { ContextOptions, Prompt, ChatOptions, EmbedOptions } from './llama/context.js';
export { LoraAdapter } from './llama/lora.js';
export type { ChatMessage, ChatTemplateOptions } from './llama/chat.js';
export { jsonSchemaToGrammar } from './llama/json-schema-grammar.js';
export { Generation } from './llama/generation.js';
export type { Completion, StopReason } from './llama/generation.js';
export type { GenerateOptions } from './llama/sampling.js';
export { systemInfo } from './llama/system.js';
export type { GpuLayers } from './llama/system.js';
export { setLogLevel } from './llama/binding.js';
export type { LogLevel, NativeSystemInfo as SystemInfo, NativeDevice as Device } from './llama/binding.js';
export { UnderstudyError } from './errors.js';
export type { ErrorCode } from './errors.js';
