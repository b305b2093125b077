// The progress of `understudy pull` on stderr: a live bar (bytes, rate, ETA)
// on a terminal or when asked for, nothing otherwise (the command's final line
// says what was pulled).
import cliProgress from 'cli-progress';
import type { DownloadProgress } from '../models/download.js';
import { duration } from './train-progress.js';

export interface PullProgress {
  update(p: DownloadProgress): void;
  stop(): void;
}

export function pullProgress(stream: NodeJS.WriteStream, force: boolean): PullProgress {
  return stream.isTTY || force ? new BarProgress(stream) : { update() {}, stop() {} };
}

class BarProgress implements PullProgress {
  readonly #bar: cliProgress.SingleBar;
  #started = false;
  #since = 0;
  #from = 0;
  #stopped = false;

  constructor(stream: NodeJS.WriteStream) {
    // Payload names differ from cli-progress's own ({eta}, {value}, ...), which would win over them.
    this.#bar = new cliProgress.SingleBar({
      stream,
      format: '[{bar}] {percentText} | {doneText} / {totalText} | {rateText} | ETA {etaText}',
      barsize: 24,
      hideCursor: false,
      noTTYOutput: !stream.isTTY,
      // Off a terminal, a new line every second instead of redraws nobody sees.
      notTTYSchedule: 1000,
    }, cliProgress.Presets.shades_classic);
  }

  update(p: DownloadProgress): void {
    if (this.#stopped) return;
    const now = performance.now();
    if (!this.#started) {
      this.#since = now;
      this.#from = p.received;
    }
    // The rate counts this try's bytes only: a resumed part came for free.
    const seconds = (now - this.#since) / 1000;
    const rate = seconds > 0 ? (p.received - this.#from) / seconds : 0;
    const total = p.total ?? 0;
    const payload = {
      percentText: p.total ? `${Math.floor((100 * p.received) / p.total)}%` : '?%',
      doneText: bytes(p.received),
      totalText: p.total ? bytes(p.total) : '?',
      rateText: `${bytes(rate)}/s`,
      etaText: p.total && rate > 0 ? duration((p.total - p.received) / rate) : '?',
    };
    if (!this.#started) {
      this.#started = true;
      this.#bar.start(total || 1, p.received, payload);
    } else {
      if (total && total !== this.#bar.getTotal()) this.#bar.setTotal(total);
      this.#bar.update(p.received, payload);
    }
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#started) this.#bar.stop();
  }
}

/** 512 B, 3.4 KiB, 468.6 MiB, 1.2 GiB. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${units[unit]}`;
}
