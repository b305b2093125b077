// The progress of `understudy train` on stderr: a live bar on a terminal
// (cli-progress), plain lines otherwise, so that a log file or a pipe gets a
// few readable lines instead of a stream of redraws.
import cliProgress from 'cli-progress';
import type { TrainingEpochEvent, TrainingEvent, TrainingStepEvent } from '../llama/training-job.js';

export interface TrainingProgress {
  update(event: TrainingEvent): void;
  /** A line outside the bar (the bar is redrawn under it). */
  note(text: string): void;
  /** Ends the display; later updates are ignored. Idempotent. */
  stop(): void;
}

/** Plain lines: one per epoch, and a step line at most this often (the first step at once). */
export const STEP_LINE_INTERVAL_MS = 5000;

export function trainingProgress(stream: NodeJS.WriteStream): TrainingProgress {
  return stream.isTTY ? new BarProgress(stream) : new LineProgress(stream);
}

class LineProgress implements TrainingProgress {
  #stream: NodeJS.WritableStream;
  #lastStepLine = -Infinity;
  #stopped = false;

  constructor(stream: NodeJS.WritableStream) {
    this.#stream = stream;
  }

  update(event: TrainingEvent): void {
    if (this.#stopped) return;
    if (event.type === 'epoch') {
      this.#stream.write(`[understudy] ${epochLine(event)}\n`);
      return;
    }
    const now = performance.now();
    if (now - this.#lastStepLine < STEP_LINE_INTERVAL_MS) return;
    this.#lastStepLine = now;
    this.#stream.write(`[understudy] ${stepLine(event)}\n`);
  }

  note(text: string): void {
    if (!this.#stopped) this.#stream.write(`[understudy] ${text}\n`);
  }

  stop(): void {
    this.#stopped = true;
  }
}

class BarProgress implements TrainingProgress {
  #stream: NodeJS.WriteStream;
  #bars: cliProgress.MultiBar;
  #bar: cliProgress.SingleBar | undefined;
  #stopped = false;

  constructor(stream: NodeJS.WriteStream) {
    this.#stream = stream;
    // Payload names differ from cli-progress's own ({eta}, {value}, ...), which would win over them.
    this.#bars = new cliProgress.MultiBar({
      stream,
      format: 'epoch {epochNow}/{epochAll} [{bar}] step {value}/{total} | loss {lossText} | {speedText} tokens/s | ETA {etaText}',
      barsize: 24,
      hideCursor: false,
      autopadding: true,
      // A logged line (an epoch's losses) clears the bar; without this it stays away until the next step.
      forceRedraw: true,
    }, cliProgress.Presets.shades_classic);
  }

  update(event: TrainingEvent): void {
    if (this.#stopped) return;
    const payload = {
      epochNow: event.epoch, epochAll: event.epochs,
      lossText: (event.type === 'step' ? event.loss : event.trainLoss).toFixed(4),
      speedText: Math.round(event.tokensPerSecond).toString(), etaText: duration(event.etaSeconds),
    };
    if (!this.#bar) this.#bar = this.#bars.create(event.steps, event.step, payload);
    else this.#bar.update(event.step, payload);
    if (event.type === 'epoch') this.#bars.log(`${epochLine(event)}\n`);
  }

  note(text: string): void {
    if (this.#stopped) return;
    // Before the bar exists nothing redraws, so nothing would print a logged line
    // (and forcing a redraw would start a second redraw timer once the bar starts).
    if (this.#bar) this.#bars.log(`${text}\n`);
    else this.#stream.write(`${text}\n`);
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (!this.#bar) return;
    // stop() draws the bar once more but does not print lines still waiting to be logged.
    this.#bars.update();
    this.#bars.stop();
  }
}

function stepLine(e: TrainingStepEvent): string {
  return `epoch ${e.epoch}/${e.epochs}  step ${e.step}/${e.steps}  loss ${e.loss.toFixed(4)}  ` +
    `${Math.round(e.tokensPerSecond)} tokens/s  ETA ${duration(e.etaSeconds)}`;
}

function epochLine(e: TrainingEpochEvent): string {
  const evalLoss = e.evalLoss === null ? '-' : e.evalLoss.toFixed(4);
  return `epoch ${e.epoch}/${e.epochs} done  step ${e.step}/${e.steps}  train loss ${e.trainLoss.toFixed(4)}  ` +
    `eval loss ${evalLoss}  ${Math.round(e.tokensPerSecond)} tokens/s  ETA ${duration(e.etaSeconds)}`;
}

/** 42s, 3m05s, 2h07m. */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
