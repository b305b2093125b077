// The router's warnings: each is a line to the log sink and a 'warning' event,
// redacted. A warning raised while the router is being made (a broken cache
// set aside, the semantic cache left off) has no listener yet: its event waits
// for the first 'warning' listener, however long createRouter (or a layer
// over it, such as one that attaches a learner) takes to return.
import type { EventEmitter } from 'node:events';
import { warningLine } from './log.js';
import type { LogSink } from './log-sink.js';

export class Warnings {
  #emitter: EventEmitter;
  #sink: LogSink;
  #redact: (text: string) => string;
  #early: string[] = [];

  constructor(emitter: EventEmitter, sink: LogSink, redact: (text: string) => string) {
    this.#emitter = emitter;
    this.#sink = sink;
    this.#redact = redact;
  }

  warn(message: string): void {
    const safe = this.#redact(message);
    this.#sink(warningLine(safe));
    this.#emitter.emit('warning', safe);
  }

  /** A warning from the constructor: its line now, its event for the first listener. */
  warnSoon(message: string): void {
    const safe = this.#redact(message);
    this.#sink(warningLine(safe));
    if (this.#early.length === 0) {
      const onListener = (event: string | symbol) => {
        if (event !== 'warning') return;
        this.#emitter.off('newListener', onListener);
        // After the listener is added ('newListener' comes just before).
        queueMicrotask(() => {
          for (const w of this.#early.splice(0)) this.#emitter.emit('warning', w);
        });
      };
      this.#emitter.on('newListener', onListener);
    }
    this.#early.push(safe);
  }
}
