// The adapter manifest's format, and the check that a manifest read from disk
// has it. Anything the registry later relies on (version numbers, file names
// that stay inside the adapter folder, a current version that exists) is
// checked here, so a hand-edited or damaged manifest is set aside whole rather
// than half trusted.
import type { AdapterInfo } from '../router/learner.js';
import { isPlainObject } from '../validate.js';

export type TaskScores = AdapterInfo['tasks'][string];

/** An adapter as the manifest stores it: AdapterInfo without status (the registry derives it from the current version and rolledBackAt). */
export type AdapterEntry = Omit<AdapterInfo, 'status' | 'file'> & {
  /** Relative to the adapter folder ("v3.gguf"); AdapterInfo's is absolute. */
  file: string;
};

export interface ModelState {
  current: number | null;
  lastRowId: number;
  rounds: number;
}

/** In memory the models are a Map: a base key such as "__proto__" must stay an ordinary key. */
export interface Manifest {
  models: Map<string, ModelState>;
  adapters: AdapterEntry[];
}

export const MANIFEST_FORMAT = 1;

export function emptyManifest(): Manifest {
  return { models: new Map(), adapters: [] };
}

class ShapeError extends Error {}

function fail(where: string, expected: string): never {
  throw new ShapeError(`${where} is not ${expected}`);
}

function count(value: unknown, where: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) fail(where, min === 0 ? 'a non-negative integer' : 'a positive integer');
  return value;
}

function score(value: unknown, where: string): number | null {
  if (value === null) return null;
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(where, 'a number or null');
  return value;
}

function text(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.length === 0) fail(where, 'a non-empty string');
  return value;
}

function object(value: unknown, where: string): Record<string, unknown> {
  if (!isPlainObject(value)) fail(where, 'an object');
  return value;
}

/** A copy of one adapter entry with only the known fields; throws ShapeError naming the first bad one. */
function entry(value: unknown, where: string): AdapterEntry {
  const e = object(value, where);
  const version = count(e.version, `${where}.version`, 1);
  if (e.file !== `v${version}.gguf`) fail(`${where}.file`, `"v${version}.gguf"`);
  const tasks: Record<string, TaskScores> = {};
  for (const [task, t] of Object.entries(object(e.tasks, `${where}.tasks`))) {
    const at = `${where}.tasks[${JSON.stringify(task)}]`;
    const s = object(t, at);
    Object.defineProperty(tasks, task, {
      value: { trainRows: count(s.trainRows, `${at}.trainRows`), heldOutRows: count(s.heldOutRows, `${at}.heldOutRows`), before: score(s.before, `${at}.before`), after: score(s.after, `${at}.after`) },
      enumerable: true, writable: true, configurable: true,
    });
  }
  const heldOut = object(e.heldOut, `${where}.heldOut`);
  if (e.baseName !== null && typeof e.baseName !== 'string') fail(`${where}.baseName`, 'a string or null');
  if (e.rolledBackAt !== undefined) text(e.rolledBackAt, `${where}.rolledBackAt`);
  return {
    version,
    parent: e.parent === null ? null : count(e.parent, `${where}.parent`, 1),
    file: e.file,
    baseModel: text(e.baseModel, `${where}.baseModel`),
    baseName: e.baseName,
    rowsUsed: count(e.rowsUsed, `${where}.rowsUsed`),
    round: count(e.round, `${where}.round`, 1),
    tasks,
    heldOut: { before: score(heldOut.before, `${where}.heldOut.before`), after: score(heldOut.after, `${where}.heldOut.after`) },
    createdAt: text(e.createdAt, `${where}.createdAt`),
    ...(e.rolledBackAt === undefined ? {} : { rolledBackAt: e.rolledBackAt as string }),
  };
}

/** Checks a new entry the way a manifest read back will be checked: the reason it would be refused, or the copy. */
export function checkEntry(value: unknown): AdapterEntry | string {
  try {
    return entry(value, 'entry');
  } catch (err) {
    if (err instanceof ShapeError) return err.message;
    throw err;
  }
}

/** The manifest in `text`, or why it cannot be used. */
export function checkManifest(text: string): Manifest | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  try {
    const m = object(value, 'the manifest');
    if (m.format !== MANIFEST_FORMAT) fail('format', `${MANIFEST_FORMAT} (the only format this version reads)`);
    if (!Array.isArray(m.adapters)) fail('adapters', 'an array');
    const adapters = m.adapters.map((e, i) => entry(e, `adapters[${i}]`));
    const versions = new Set<number>();
    for (const e of adapters) {
      if (versions.has(e.version)) fail(`adapters: v${e.version}`, 'listed once');
      versions.add(e.version);
    }
    const models = new Map<string, ModelState>();
    for (const [key, s] of Object.entries(object(m.models, 'models'))) {
      const at = `models[${JSON.stringify(key)}]`;
      const state = object(s, at);
      const current = state.current === null ? null : count(state.current, `${at}.current`, 1);
      if (current !== null && !adapters.some((e) => e.version === current && e.baseModel === key)) {
        fail(`${at}.current`, `an adapter of that model (there is no v${current} for it)`);
      }
      models.set(key, { current, lastRowId: count(state.lastRowId, `${at}.lastRowId`), rounds: count(state.rounds, `${at}.rounds`) });
    }
    return { models, adapters };
  } catch (err) {
    if (err instanceof ShapeError) return `wrong shape: ${err.message}`;
    throw err;
  }
}
