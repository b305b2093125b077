// The adapters a distillation loop has promoted: `<cacheDir>/adapters/v<N>.gguf`
// and `manifest.json`, which says which one each base model uses, where each
// came from (its parent) and how it scored.
//
// Crash safety. Every manifest write goes to a temporary file that is synced
// and then renamed over the old one, so a reader sees the old manifest or the
// new one, never half of one. Promotion moves the candidate file to v<N>.gguf
// first and writes the manifest second: a crash in between leaves an orphan
// v<N>.gguf that no manifest entry names. Orphans are left alone (they are
// somebody's trained adapter), and version numbers skip past every v<N>.gguf in
// the folder, so no file is ever overwritten. A manifest that does not parse or
// has the wrong shape is set aside (renamed, never deleted) and the registry
// starts empty; the adapter files stay where they are.
//
// The manifest is read again at every call, so a second process (the CLI's
// `adapters rollback` next to a running router) sees the other's changes. The
// writes are not locked against each other: two processes mutating at the same
// moment can lose one change (each is still a whole manifest).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UnderstudyError } from '../errors.js';
import type { AdapterInfo } from '../router/learner.js';
import { CANDIDATE_PREFIX, highestVersionFile, ioError, placeVersion, removeDeadTemps, tempPath, writeAtomically } from './adapter-files.js';
import { checkEntry, checkManifest, emptyManifest, MANIFEST_FORMAT, type AdapterEntry, type Manifest, type ModelState } from './manifest.js';
import * as v from '../validate.js';

export type { AdapterEntry, AdapterInfo };

const MANIFEST = 'manifest.json';

export interface PromoteEntry {
  baseKey: string;
  baseName: string | null;
  /** The adapter the round started from; null = the base model. */
  parent: number | null;
  rowsUsed: number;
  round: number;
  tasks: AdapterInfo['tasks'];
  heldOut: AdapterInfo['heldOut'];
}

export class AdapterRegistry {
  /** `<cacheDir>/adapters`, absolute. */
  readonly dir: string;
  readonly #warn: (message: string) => void;
  readonly #manifest: string;
  /** Versions whose missing file was already reported: one warning each, not one per call. */
  readonly #missingReported = new Set<number>();

  private constructor(dir: string, warn: (message: string) => void) {
    this.dir = dir;
    this.#warn = warn;
    this.#manifest = join(dir, MANIFEST);
  }

  /**
   * Opens (and makes) `<cacheDir>/adapters`: removes temporary files that a
   * process no longer running left behind (a candidate of a round cut short, a
   * manifest write cut short) and sets aside a corrupt manifest.
   */
  static open(cacheDir: string, warn: (message: string) => void): AdapterRegistry {
    const dir = resolve(v.nonEmptyString(cacheDir, 'cacheDir'), 'adapters');
    if (typeof warn !== 'function') v.fail('function', 'warn', warn);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw ioError(`cannot make the adapter folder ${dir}`, err);
    }
    const registry = new AdapterRegistry(dir, warn);
    removeDeadTemps(dir, warn);
    registry.#read();
    return registry;
  }

  /** Adapters, newest first; of one base model when `baseKey` is given. */
  list(baseKey?: string): AdapterInfo[] {
    if (baseKey !== undefined) v.nonEmptyString(baseKey, 'baseKey');
    const m = this.#read();
    return m.adapters
      .filter((e) => baseKey === undefined || e.baseModel === baseKey)
      .sort((a, b) => b.version - a.version)
      .map((e) => this.#info(m, e));
  }

  /** The adapter `baseKey` uses; null = the base model (also when the adapter's file is gone). */
  current(baseKey: string): AdapterInfo | null {
    v.nonEmptyString(baseKey, 'baseKey');
    const m = this.#read();
    const version = m.models.get(baseKey)?.current ?? null;
    const entry = version === null ? undefined : m.adapters.find((e) => e.version === version);
    if (!entry) return null;
    const info = this.#info(m, entry);
    if (!existsSync(info.file)) {
      if (!this.#missingReported.has(entry.version)) {
        this.#missingReported.add(entry.version);
        this.#warn(`adapter v${entry.version}, current for ${label(m, baseKey)}, has no file at ${info.file}: using the base model`);
      }
      return null;
    }
    return info;
  }

  state(baseKey: string): { lastRowId: number; rounds: number } {
    v.nonEmptyString(baseKey, 'baseKey');
    const s = this.#read().models.get(baseKey);
    return { lastRowId: s?.lastRowId ?? 0, rounds: s?.rounds ?? 0 };
  }

  nextRound(baseKey: string): number {
    return this.state(baseKey).rounds + 1;
  }

  /** Where a round writes its candidate adapter (removed at the next open if the process dies). */
  candidatePath(): string {
    return tempPath(this.dir, CANDIDATE_PREFIX, '.gguf');
  }

  /**
   * Makes `candidateFile` adapter v<N> and the current one of its base model:
   * the file is moved first, the manifest written second (see the top of this file).
   */
  promote(candidateFile: string, entry: PromoteEntry): AdapterInfo {
    const candidate = resolve(v.nonEmptyString(candidateFile, 'candidateFile'));
    // Checked with a provisional version before the file moves; the stored entry gets the real one.
    const e = checkPromoteEntry(entry, 1, new Date().toISOString());
    const m = this.#read();
    if (e.parent !== null && !m.adapters.some((a) => a.version === e.parent && a.baseModel === e.baseModel)) {
      throw new UnderstudyError('INVALID_ARGUMENT', `Expected an adapter of base model ${e.baseModel} for parent but received ${e.parent} of type number`);
    }
    const version = placeVersion(candidate, this.dir, this.#nextVersion(m), this.#warn);
    const stored: AdapterEntry = { ...e, version, file: `v${version}.gguf` };
    m.adapters.push(stored);
    modelState(m, e.baseModel).current = version;
    // If this write fails, v<N>.gguf stays an orphan, which the next promotion skips past.
    this.#write(m);
    return this.#info(m, stored);
  }

  /** Records a finished round (promoted or not); returns its number. */
  finishRound(baseKey: string, lastRowId: number): number {
    v.nonEmptyString(baseKey, 'baseKey');
    v.integer(lastRowId, 'lastRowId', 0, 0);
    const m = this.#read();
    const s = modelState(m, baseKey);
    s.rounds += 1;
    // Rows only grow: a round that looked at fewer rows than an earlier one does not move the mark back.
    s.lastRowId = Math.max(s.lastRowId, lastRowId);
    this.#write(m);
    return s.rounds;
  }

  /** The versions `version` descends from, nearest first, ending with 0 (the base model): readiness's lineage. */
  lineage(version: number): number[] {
    const parents = new Map(this.#read().adapters.map((a) => [a.version, a.parent ?? null]));
    const out: number[] = [];
    for (let p = parents.get(version) ?? null; p !== null && !out.includes(p); p = parents.get(p) ?? null) out.push(p);
    out.push(0);
    return out;
  }

  /**
   * Goes back from the current adapter to its parent: the nearest ancestor
   * that was not rolled back itself and still has its file (null = the base
   * model). The adapter left is marked rolled back and never becomes current again.
   */
  rollback(baseKey: string): { from: AdapterInfo; to: AdapterInfo | null } {
    v.nonEmptyString(baseKey, 'baseKey');
    const m = this.#read();
    const { state, from, to } = this.#rollbackTarget(m, baseKey, true);
    from.rolledBackAt = new Date().toISOString();
    state.current = to?.version ?? null;
    this.#write(m);
    return { from: this.#info(m, from), to: to ? this.#info(m, to) : null };
  }

  /**
   * What rollback() would do, changing nothing: `from` is the manifest's
   * current adapter (also when its file is gone), `to` where it would go. A
   * caller can load `to` first and roll back only once it serves. Throws
   * NO_ADAPTER as rollback() does.
   */
  rollbackTarget(baseKey: string): { from: AdapterInfo; to: AdapterInfo | null } {
    v.nonEmptyString(baseKey, 'baseKey');
    const m = this.#read();
    const { from, to } = this.#rollbackTarget(m, baseKey, false);
    return { from: this.#info(m, from), to: to ? this.#info(m, to) : null };
  }

  #rollbackTarget(m: Manifest, baseKey: string, warn: boolean): { state: ModelState; from: AdapterEntry; to: AdapterEntry | null } {
    const state = m.models.get(baseKey);
    const from = state?.current == null ? undefined : m.adapters.find((e) => e.version === state.current);
    if (!state || !from) {
      throw new UnderstudyError('NO_ADAPTER', `no adapter to roll back: the base model is already in use for ${label(m, baseKey)}`);
    }
    for (let p = from.parent; p !== null;) {
      const e = m.adapters.find((a) => a.version === p);
      if (!e) {
        if (warn) this.#warn(`adapter v${from.version}'s ancestor v${p} is not in ${this.#manifest}: rolling back to the base model`);
        break;
      }
      const file = join(this.dir, e.file);
      if (e.rolledBackAt === undefined && existsSync(file)) return { state, from, to: e };
      if (warn && e.rolledBackAt === undefined) this.#warn(`adapter v${e.version} has no file at ${file}: skipped in the rollback`);
      p = e.parent;
    }
    return { state, from, to: null };
  }

  #info(m: Manifest, e: AdapterEntry): AdapterInfo {
    const status = m.models.get(e.baseModel)?.current === e.version ? 'current' : e.rolledBackAt !== undefined ? 'rolled-back' : 'previous';
    return {
      version: e.version, parent: e.parent, file: join(this.dir, e.file), baseModel: e.baseModel, baseName: e.baseName,
      rowsUsed: e.rowsUsed, round: e.round, tasks: structuredClone(e.tasks), heldOut: { ...e.heldOut },
      createdAt: e.createdAt, status, ...(e.rolledBackAt === undefined ? {} : { rolledBackAt: e.rolledBackAt }),
    };
  }

  /** One more than every version in the manifest and every v<N>.gguf in the folder (orphans included). */
  #nextVersion(m: Manifest): number {
    return Math.max(highestVersionFile(this.dir), ...m.adapters.map((e) => e.version)) + 1;
  }

  #read(): Manifest {
    let text: string;
    try {
      text = readFileSync(this.#manifest, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyManifest();
      throw ioError(`cannot read the adapter manifest ${this.#manifest}`, err);
    }
    const checked = checkManifest(text);
    if (typeof checked !== 'string') return checked;
    let aside = `${this.#manifest}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    if (existsSync(aside)) aside += `-${randomBytes(3).toString('hex')}`;
    try {
      renameSync(this.#manifest, aside);
    } catch (err) {
      throw ioError(`the adapter manifest ${this.#manifest} is unusable (${checked}) and cannot be set aside`, err);
    }
    this.#warn(`the adapter manifest ${this.#manifest} is unusable (${checked}): moved to ${aside}; starting with no adapters (the adapter files are kept)`);
    return emptyManifest();
  }

  #write(m: Manifest): void {
    const text = `${JSON.stringify({ format: MANIFEST_FORMAT, models: Object.fromEntries(m.models), adapters: m.adapters }, null, 2)}\n`;
    writeAtomically(this.#manifest, text, 'the adapter manifest');
  }
}

function modelState(m: Manifest, baseKey: string): ModelState {
  let s = m.models.get(baseKey);
  if (!s) m.models.set(baseKey, (s = { current: null, lastRowId: 0, rounds: 0 }));
  return s;
}

/** A base model as messages name it: its name from an adapter made for it, and the key. */
function label(m: Manifest, baseKey: string): string {
  const name = m.adapters.find((e) => e.baseModel === baseKey && e.baseName !== null)?.baseName;
  return name ? `${name} (${baseKey})` : `base model ${baseKey}`;
}

/** The entry as it will be stored, checked as a manifest read back is checked (so a bad entry never makes the manifest unreadable). */
function checkPromoteEntry(entry: PromoteEntry, version: number, createdAt: string): AdapterEntry {
  const e = v.options(entry, 'entry');
  const checked = checkEntry({
    version, parent: e.parent ?? null, file: `v${version}.gguf`, baseModel: v.nonEmptyString(e.baseKey, 'baseKey'),
    baseName: e.baseName ?? null, rowsUsed: e.rowsUsed, round: e.round, tasks: e.tasks, heldOut: e.heldOut, createdAt,
  });
  if (typeof checked === 'string') throw new UnderstudyError('INVALID_ARGUMENT', `invalid adapter entry: ${checked}`);
  return checked;
}
