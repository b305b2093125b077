// One line per routed call (to the router's log sink, stderr by default), and the same facts as events:
//   [understudy] remote  task=summarize  812 ms  sim=0.64
import type { Route } from './request.js';

export interface CallEvent {
  task: string;
  route: Route;
  latencyMs: number;
  /** Semantic-cache similarity, or the task's readiness when one is known. */
  similarity?: number;
  /** Set when the chosen backend failed and the other one answered. */
  fallbackFrom?: 'local' | 'remote';
  /** Why the route was taken. */
  reason: string;
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
  /** The adapter version that answered, on local answers when one is applied. */
  adapter?: number;
}

export interface FailureEvent {
  /** The task, when the call named one. */
  task?: string;
  code: string;
  message: string;
  latencyMs: number;
}

export interface ShadowEvent {
  task: string;
  /** 'heldout' comparisons enter in bulk when an adapter is adopted and are not emitted one by one. */
  kind: 'shadow' | 'audit' | 'heldout';
  similarity: number;
  readiness: number | null;
  comparisons: number;
  ready: boolean;
}

export interface ReadinessChangeEvent {
  task: string;
  ready: boolean;
  readiness: number | null;
  comparisons: number;
  threshold: number;
  /** Comparisons a task needs before it can be ready (readinessMin). */
  min: number;
}

export function callLine(e: CallEvent): string {
  const parts = [`[understudy] ${e.route.padEnd(6)}`, `task=${e.task}`, `${Math.round(e.latencyMs)} ms`];
  if (e.similarity !== undefined) parts.push(`sim=${e.similarity.toFixed(2)}`);
  if (e.adapter !== undefined) parts.push(`adapter=v${e.adapter}`);
  if (e.fallbackFrom) parts.push(`(fallback: ${e.fallbackFrom} failed)`);
  return parts.join('  ');
}

export function failureLine(e: FailureEvent): string {
  return `[understudy] failed  task=${e.task ?? '-'}  ${Math.round(e.latencyMs)} ms  ${e.code}: ${e.message}`;
}

export function shadowLine(e: ShadowEvent): string {
  const readiness = e.readiness === null ? '-' : e.readiness.toFixed(2);
  return `[understudy] ${e.kind.padEnd(6)}  task=${e.task}  sim=${e.similarity.toFixed(2)}  readiness=${readiness} over ${e.comparisons}`;
}

export function readinessLine(e: ReadinessChangeEvent): string {
  const readiness = e.readiness === null ? '-' : e.readiness.toFixed(2);
  return e.ready
    ? `[understudy] task=${e.task} is now served locally: readiness ${readiness} ≥ ${e.threshold} over ${e.comparisons} comparisons`
    : e.comparisons < e.min
      ? `[understudy] task=${e.task} goes back to remote: only ${e.comparisons} comparisons (needs ${e.min}), readiness ${readiness}`
      : `[understudy] task=${e.task} goes back to remote: readiness ${readiness} < ${e.threshold} over ${e.comparisons} comparisons`;
}

export function warningLine(message: string): string {
  return `[understudy] warning: ${message}`;
}
