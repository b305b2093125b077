// File mechanics of the adapter folder, each safe against a crash at any
// moment: a manifest written whole or not at all, an adapter moved into place
// without ever replacing an existing file, and the temporary files of
// processes that died cleaned up without touching a live process's.
import { randomBytes } from 'node:crypto';
import {
  closeSync, constants, copyFileSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync,
  readdirSync, renameSync, rmSync, unlinkSync, writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { UnderstudyError } from '../errors.js';
import { errorText } from '../validate.js';

export const CANDIDATE_PREFIX = '.candidate-';
export const MANIFEST_TEMP_PREFIX = '.manifest-';
/** A temporary file of ours, named with the process that made it: `.candidate-<pid>-<random>.gguf`. */
const TEMP_FILE = /^\.(?:candidate|manifest)-(?:(\d+)-)?/;
const VERSION_FILE = /^v([1-9]\d*)\.gguf$/;

export function ioError(message: string, err: unknown): UnderstudyError {
  return new UnderstudyError('IO_ERROR', `${message}: ${errorText(err)}`, { cause: err });
}

/** `<dir>/<prefix><pid>-<random><ext>`: the pid tells a later open whether its maker still runs. */
export function tempPath(dir: string, prefix: string, ext: string): string {
  return join(dir, `${prefix}${process.pid}-${randomBytes(6).toString('hex')}${ext}`);
}

export function names(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError(`cannot list the adapter folder ${dir}`, err);
  }
}

/** The highest N of the v<N>.gguf files in `dir` (0 when none), whether a manifest names them or not. */
export function highestVersionFile(dir: string): number {
  let max = 0;
  for (const name of names(dir)) {
    const match = VERSION_FILE.exec(name);
    if (match) max = Math.max(max, Number(match[1]));
  }
  return max;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // it exists, under another user
  }
}

/**
 * Removes candidate and manifest temporary files whose process is gone (or
 * that name none). A live process's file may be a round in progress (another
 * router on the same cache folder), so it is kept.
 */
export function removeDeadTemps(dir: string, warn: (message: string) => void): void {
  for (const name of names(dir)) {
    if (!name.startsWith(CANDIDATE_PREFIX) && !name.startsWith(MANIFEST_TEMP_PREFIX)) continue;
    const pid = TEMP_FILE.exec(name)?.[1];
    if (pid !== undefined && alive(Number(pid))) continue;
    try {
      rmSync(join(dir, name), { force: true });
    } catch (err) {
      warn(`cannot remove the leftover ${join(dir, name)}: ${errorText(err)}`);
    }
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

/**
 * Moves `candidate` to `<dir>/v<first>.gguf`, or the next free number, and
 * returns the number. A hard link fails rather than replace an existing file
 * (a rename would replace it silently); then the candidate's name is removed.
 * Where links are not possible, an exclusive copy does the same.
 */
export function placeVersion(candidate: string, dir: string, first: number, warn: (message: string) => void): number {
  for (let n = first; ; n++) {
    const target = join(dir, `v${n}.gguf`);
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
      warn(`cannot remove ${candidate} after copying it to ${target}: ${errorText(err)}`);
    }
    syncDir(dir);
    return n;
  }
}

/** Replaces `path` with `text`: a synced temporary file renamed over it, so readers see the old or the new, never half. */
export function writeAtomically(path: string, text: string, what: string): void {
  const dir = dirname(path);
  const temp = tempPath(dir, MANIFEST_TEMP_PREFIX, '.tmp');
  try {
    mkdirSync(dir, { recursive: true });
    const fd = openSync(temp, 'wx');
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw ioError(`cannot write ${what} ${path}`, err);
  }
  syncDir(dir);
}
