// The router's events, by name, with the payload each carries. Router extends
// EventEmitter<RouterEventArgs>, so on/once/off/emit are checked against it.
import type { RoundReport, TrainingProgress } from './learner.js';
import type { CallEvent, FailureEvent, ReadinessChangeEvent, ShadowEvent } from './log.js';

export type { CallEvent, FailureEvent, ReadinessChangeEvent, ShadowEvent } from './log.js';

/** An adapter became current: promoted by a round, rolled back to, or loaded at start. */
export interface AdapterEvent {
  action: 'promoted' | 'rolled-back' | 'loaded';
  /** The adapter now current; null = the base model. */
  version: number | null;
  previous: number | null;
}

export interface DatasetEvent {
  id: number;
  task: string;
  source: 'call' | 'audit';
}

export interface RouterEvents {
  call: CallEvent;
  failure: FailureEvent;
  shadow: ShadowEvent;
  readiness: ReadinessChangeEvent;
  warning: string;
  dataset: DatasetEvent;
  training: TrainingProgress;
  round: RoundReport;
  adapter: AdapterEvent;
}

/** RouterEvents as EventEmitter's map of listener arguments. */
export type RouterEventArgs = { [K in keyof RouterEvents]: [RouterEvents[K]] };
