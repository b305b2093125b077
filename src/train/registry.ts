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
import {
  closeSync, constants, copyFileSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync,
  readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { UnderstudyError } from '../errors.js';
import { checkEntry, checkManifest, emptyManifest, type AdapterEntry, type Manifest, type ModelState, type TaskScores } from './manifest.js';
import * as v from '../validate.js';

export type { AdapterEntry };

// TODO(helper C): import type { AdapterInfo } from '../router/learner.js' once helper A's file lands (same shape).
export interface AdapterInfo {
  version: number;
  parent: number | null;
  file: string;
  baseModel: string;
  baseName: string | null;
  rowsUsed: number;
  round: number;
  tasks: Record<string, TaskScores>;
  heldOut: { before: number | null; after: number | null };
  createdAt: string;
  status: 'current' | 'previous' | 'rolled-back';
  rolledBackAt?: string;
}

const MANIFEST = 'manifest.json';
const CANDIDATE_PREFIX = '.candidate-';
const MANIFEST_TEMP_PREFIX = '.manifest-';
/** A temporary file of ours, with the process that made it: `.candidate-<pid>-<random>.gguf`. */
const TEMP_FILE = /^\.(?:candidate|manifest)-(?:(\d+)-)?/;
const VERSION_FILE = /^v([1-9]\d*)\.gguf$/;

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

function ioError(message: string, err: unknown): UnderstudyError {
  return new UnderstudyError('IO_ERROR', `${message}: ${v.errorText(err)}`, { cause: err });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // it exists, under another user
  }
}

/** Syncs a folder, so a rename in it survives a power cut. Not possible everywhere (Windows): best effort. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // A folder that cannot be opened or synced: the rename is still atomic, only less durable.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
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
    registry.#removeLeftovers();
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
    return join(this.dir, `${CANDIDATE_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}.gguf`);
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
    const version = this.#place(candidate, this.#nextVersion(m));
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
    let max = 0;
    for (const e of m.adapters) max = Math.max(max, e.version);
    for (const name of this.#names()) {
      const match = VERSION_FILE.exec(name);
      if (match) max = Math.max(max, Number(match[1]));
    }
    return max + 1;
  }

  /**
   * Moves the candidate to v<version>.gguf, or the next free number: a hard
   * link fails rather than replace an existing file (a rename would replace it
   * silently), then the candidate's name is removed. Where links are not
   * possible, an exclusive copy does the same.
   */
  #place(candidate: string, version: number): number {
    for (let n = version; ; n++) {
      const target = join(this.dir, `v${n}.gguf`);
      try {
        try {
          linkSync(candidate, target);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
          copyFileSync(candidate, target, constants.COPYFILE_EXCL);
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !existsSync(candidate)) {
          throw new UnderstudyError('IO_ERROR', `cannot promote ${candidate}: the candidate adapter file does not exist`, { cause: err });
        }
        throw ioError(`cannot move ${candidate} to ${target}`, err);
      }
      try {
        unlinkSync(candidate);
      } catch (err) {
        this.#warn(`cannot remove ${candidate} after copying it to ${target}: ${v.errorText(err)}`);
      }
      syncDir(this.dir);
      return n;
    }
  }

  #names(): string[] {
    try {
      return readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw ioError(`cannot list the adapter folder ${this.dir}`, err);
    }
  }

  #removeLeftovers(): void {
    for (const name of this.#names()) {
      if (!name.startsWith(CANDIDATE_PREFIX) && !name.startsWith(MANIFEST_TEMP_PREFIX)) continue;
      const pid = TEMP_FILE.exec(name)?.[1];
      // A live process's file may be a round in progress (another router on this cache folder): kept.
      if (pid !== undefined && alive(Number(pid))) continue;
      try {
        rmSync(join(this.dir, name), { force: true });
      } catch (err) {
        this.#warn(`cannot remove the leftover ${join(this.dir, name)}: ${v.errorText(err)}`);
      }
    }
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
    const text = `${JSON.stringify({ format: 1, models: Object.fromEntries(m.models), adapters: m.adapters }, null, 2)}\n`;
    const temp = join(this.dir, `${MANIFEST_TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
    try {
      mkdirSync(this.dir, { recursive: true });
      const fd = openSync(temp, 'wx');
      try {
        writeSync(fd, text);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, this.#manifest);
    } catch (err) {
      rmSync(temp, { force: true });
      throw ioError(`cannot write the adapter manifest ${this.#manifest}`, err);
    }
    syncDir(this.dir);
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
