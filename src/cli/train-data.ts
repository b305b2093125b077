// The training data of `understudy train`: a JSONL file read line by line
// (files of hundreds of MB hold only the parsed examples, never the whole text),
// and the trainer's complaints about an example turned back into the file's
// line numbers, which is what a user can find in an editor.
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { UnderstudyError, abortedError } from '../errors.js';
import { errorText } from '../validate.js';
import { toolRowExample } from './train-tool-rows.js';

export interface TrainingData {
  /** The parsed lines, blank lines left out: what model.trainLora() takes. */
  examples: unknown[];
  /** The 1-based line of the file each example came from. */
  lines: number[];
}

/**
 * Reads FILE: one JSON value per line, blank lines skipped. Whether a value is
 * a usable example is the trainer's to judge; only text that is not JSON (or a
 * malformed tool line, train-tool-rows.ts) is refused here, naming its line. An abort (Ctrl-C) stops the reading of a large file.
 */
export async function readTrainingData(file: string, signal?: AbortSignal): Promise<TrainingData> {
  const examples: unknown[] = [];
  const lines: number[] = [];
  // Opened first, so a missing file or a folder is told apart before any reading.
  const handle = await open(file, 'r').catch((err: unknown) => {
    throw readError(file, err);
  });
  if (!(await handle.stat()).isFile()) {
    await handle.close();
    throw new UnderstudyError('IO_ERROR', `data path is not a file: ${file}`);
  }
  const input = handle.createReadStream({ encoding: 'utf8' });
  const reader = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const raw of reader) {
      n++;
      if (signal?.aborted) throw abortedError('reading the training data');
      // A byte-order mark (editors on Windows write one) is not part of the JSON.
      const text = n === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw new UnderstudyError('INVALID_DATASET', `${file} line ${n}: not valid JSON (${errorText(err)})`);
      }
      // OpenAI tool lines (dataset export's) become the prompt serving renders.
      examples.push(toolRowExample(value, `${file} line ${n}`));
      lines.push(n);
    }
  } catch (err) {
    if (err instanceof UnderstudyError) throw err;
    throw readError(file, err);
  } finally {
    reader.close();
    input.destroy();
  }
  if (examples.length === 0) {
    throw new UnderstudyError('INVALID_DATASET',
      `${file} has no examples: give one {"messages": [...]} or {"prompt": "...", "completion": "..."} object per line`);
  }
  return { examples, lines };
}

function readError(file: string, err: unknown): UnderstudyError {
  const code = (err as NodeJS.ErrnoException)?.code;
  const message = code === 'ENOENT' || code === 'ENOTDIR' ? `data file not found: ${file}`
    : `cannot read data file ${file}: ${errorText(err)}`;
  return new UnderstudyError('IO_ERROR', message, { cause: err });
}

/**
 * The trainer names a bad example by its index (`examples[7]: ...`); the user
 * knows it by its line. A missing chat template is told in the command's terms.
 * Any other error passes through unchanged.
 */
export function atLine(err: unknown, file: string, lines: number[]): unknown {
  if (err instanceof UnderstudyError && err.code === 'TEMPLATE_MISSING') {
    return new UnderstudyError('TEMPLATE_MISSING',
      `${file} has {"messages"} lines but the model has no chat template: pass --template NAME (such as chatml, llama3, gemma)`, { cause: err });
  }
  if (!(err instanceof UnderstudyError) || err.code !== 'INVALID_DATASET') return err;
  const match = /^examples\[(\d+)\]: /.exec(err.message);
  const line = match ? lines[Number(match[1])] : undefined;
  if (!match || line === undefined) return err;
  // The example's name may recur in the message ("... for examples[7] but received 5").
  const rest = err.message.slice(match[0].length).split(`examples[${match[1]}]`).join(`line ${line}`)
    // The API's option is the command's flag.
    .replace('raise the window option', 'raise --window');
  return new UnderstudyError('INVALID_DATASET', `${file} line ${line}: ${rest}`, { cause: err });
}
