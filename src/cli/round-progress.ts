// The progress of `understudy train --from-cache-dir` on stderr, from the
// router's 'training' events: a bar while the adapter trains on a terminal
// (cli-progress, as for file training), plain lines otherwise. A round has
// phases with no step count (the held-out answers before and after training),
// which get one line each, so a long evaluation never looks like a hang.
import cliProgress from 'cli-progress';
import type { TrainingProgress } from '../router/learner.js';
import { duration, STEP_LINE_INTERVAL_MS } from './train-progress.js';

export interface RoundProgress {
  update(event: TrainingProgress): void;
  /** A whole line outside the bar (the router's log lines come through here, so they never tear the bar). */
  note(line: string): void;
  /** Ends the display; later updates are ignored. Idempotent. */
  stop(): void;
}

/** What each phase is doing, said once when it starts. */
const PHASES: Partial<Record<TrainingProgress['phase'], string>> = {
  start: 'started',
  baseline: 'answering the held-out prompts with the current adapter',
  train: 'training the candidate adapter',
  evaluate: 'answering the held-out prompts with the candidate',
  aborted: 'aborted',
  failed: 'failed',
};

export function roundProgress(stream: NodeJS.WriteStream, quiet: boolean): RoundProgress {
  if (quiet) return { update() {}, note() {}, stop() {} };
  return stream.isTTY ? new BarProgress(stream) : new LineProgress(stream);
}

/** Seconds left at the pace of the steps so far (NaN before the first step). */
class Pace {
  #first: { step: number; at: number } | undefined;

  eta(step: number | undefined, steps: number | undefined): number {
    if (step === undefined || steps === undefined) return NaN;
    const now = performance.now();
    if (!this.#first) this.#first = { step, at: now };
    const done = step - this.#first.step;
    return done > 0 ? ((now - this.#first.at) / 1000 / done) * (steps - step) : NaN;
  }
}

abstract class PhaseProgress implements RoundProgress {
  #phase: string | undefined;
  protected stopped = false;

  update(event: TrainingProgress): void {
    if (this.stopped) return;
    if (event.phase !== this.#phase) {
      this.#phase = event.phase;
      const what = PHASES[event.phase];
      if (what) this.note(`[understudy] round ${event.round}: ${what}`);
    }
    if (event.phase === 'train' && event.step !== undefined && event.steps !== undefined) this.step(event);
  }

  protected abstract step(event: TrainingProgress): void;
  abstract note(line: string): void;
  abstract stop(): void;
}

class LineProgress extends PhaseProgress {
  #stream: NodeJS.WritableStream;
  #lastStepLine = -Infinity;
  #pace = new Pace();

  constructor(stream: NodeJS.WritableStream) {
    super();
    this.#stream = stream;
  }

  protected step(e: TrainingProgress): void {
    const eta = this.#pace.eta(e.step, e.steps);
    const now = performance.now();
    // The first step at once, the last always, and at most one line every few seconds between.
    if (now - this.#lastStepLine < STEP_LINE_INTERVAL_MS && e.step !== e.steps) return;
    this.#lastStepLine = now;
    this.#stream.write(`[understudy] round ${e.round}: ${stepText(e)}  ETA ${duration(eta)}\n`);
  }

  note(line: string): void {
    if (!this.stopped) this.#stream.write(`${line}\n`);
  }

  stop(): void {
    this.stopped = true;
  }
}

class BarProgress extends PhaseProgress {
  #stream: NodeJS.WriteStream;
  #bars: cliProgress.MultiBar;
  #bar: cliProgress.SingleBar | undefined;
  #pace = new Pace();

  constructor(stream: NodeJS.WriteStream) {
    super();
    this.#stream = stream;
    // Payload names differ from cli-progress's own ({eta}, {value}, ...), which would win over them.
    this.#bars = new cliProgress.MultiBar({
      stream,
      format: 'round {roundNow} [{bar}] step {value}/{total} | epoch {epochText} | loss {lossText} | ETA {etaText}',
      barsize: 24,
      hideCursor: false,
      autopadding: true,
      forceRedraw: true,
    }, cliProgress.Presets.shades_classic);
  }

  protected step(e: TrainingProgress): void {
    const payload = {
      roundNow: e.round,
      epochText: e.epoch !== undefined && e.epochs !== undefined ? `${e.epoch}/${e.epochs}` : '-',
      lossText: e.loss !== undefined ? e.loss.toFixed(4) : '-',
      etaText: duration(this.#pace.eta(e.step, e.steps)),
    };
    if (!this.#bar) this.#bar = this.#bars.create(e.steps!, e.step!, payload);
    else this.#bar.update(e.step!, payload);
  }

  note(line: string): void {
    if (this.stopped) return;
    // Before the bar exists nothing redraws, so nothing would print a logged line.
    if (this.#bar) this.#bars.log(`${line}\n`);
    else this.#stream.write(`${line}\n`);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (!this.#bar) return;
    // stop() draws the bar once more but does not print lines still waiting to be logged.
    this.#bars.update();
    this.#bars.stop();
  }
}

function stepText(e: TrainingProgress): string {
  const epoch = e.epoch !== undefined && e.epochs !== undefined ? `epoch ${e.epoch}/${e.epochs}  ` : '';
  const loss = e.loss !== undefined ? `  loss ${e.loss.toFixed(4)}` : '';
  return `${epoch}step ${e.step}/${e.steps}${loss}`;
}
