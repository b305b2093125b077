// understudy-llm: public API.
export { loadModel, Model } from './llama/model.js';
export type { LoadModelOptions, ModelInfo, TokenizeOptions, DetokenizeOptions } from './llama/model.js';
export { Context } from './llama/context.js';
export type { ContextOptions, Prompt, ChatOptions, EmbedOptions } from './llama/context.js';
export { LoraAdapter } from './llama/lora.js';
export { LoraTrainer } from './llama/lora-trainer.js';
export { TrainingJob } from './llama/training-job.js';
export type { TrainingEvent, TrainingStepEvent, TrainingEpochEvent, TrainingResult } from './llama/training-job.js';
export type { TrainingExample } from './llama/training-data.js';
export type { LoraTrainerOptions, TrainingRunOptions, TrainLoraOptions } from './llama/training-options.js';
export { DEFAULT_TARGETS } from './llama/lora-plan.js';
export type { ChatMessage, ChatTemplateOptions, MessageToolCall } from './llama/chat.js';
export { jsonSchemaToGrammar } from './llama/json-schema-grammar.js';
export { Generation } from './llama/generation.js';
export type { Completion, StopReason } from './llama/generation.js';
export type { GenerateOptions } from './llama/sampling.js';
export { cpuCode, systemInfo } from './llama/system.js';
export type { CpuCode, GpuLayers } from './llama/system.js';
export { setLogLevel } from './llama/binding.js';
export type { LogLevel, NativeSystemInfo as SystemInfo, NativeDevice as Device } from './llama/binding.js';
export { UnderstudyError } from './errors.js';
export type { ErrorCode } from './errors.js';
export { Router } from './router/router.js';
// The router with the distillation loop attached when it can run (src/train/attach.ts).
export { createRouter } from './train/attach.js';
export type { TrainingRouterOptions } from './train/attach.js';
export type { DistillOptions } from './train/options.js';
export type { RoundReport, TaskRoundReport, AdapterInfo, TrainingProgress, Learner, LearnerHooks } from './router/learner.js';
export type { RouterOptions, RouterResult } from './router/router.js';
export type { RouterSettings, Device as RouterDevice } from './router/config.js';
export type {
  ChatRequest, CompleteRequest, Route, RouteChoice, ResponseFormat, ToolSpec, ToolChoice, ToolCall, FinishReason,
} from './router/request.js';
export { toolCallText, parseToolCalls } from './router/tool-calls.js';
export type { EmbedResult } from './router/router-embed.js';
export type { Backend, BackendCall, BackendAnswer, Health, Usage, RetryInfo, TrainingSource } from './router/backend.js';
export { MockBackend } from './router/mock-backend.js';
export type { MockBackendOptions } from './router/mock-backend.js';
export { LocalBackend } from './router/local-backend.js';
export { RemoteBackend } from './router/remote-backend.js';
export type { RouterStream, StreamInfo } from './router/stream.js';
export type {
  RouterEvents, CallEvent, FailureEvent, ShadowEvent, ReadinessChangeEvent, DatasetEvent, AdapterEvent,
} from './router/events.js';
// The router's own answer scoring, so a threshold can be calibrated with what readiness uses.
export { answerSimilarity, answerSimilarities } from './router/similarity.js';
export type { EmbedFunction } from './router/embedder.js';
export type { ReadinessState } from './router/readiness.js';
export type { DatasetRow } from './router/dataset.js';
// The OpenAI-compatible HTTP server over a router (`understudy serve`).
export { startServer } from './server/app.js';
export type { ServerOptions, UnderstudyServer } from './server/app.js';
