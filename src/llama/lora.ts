// LoraAdapter: a LoRA adapter loaded for one model (native/lora.cpp). Apply it to
// a context with context.setLora(adapter, scale); the model stays unchanged.
import type { NativeLoraAdapter } from './binding.js';
import { disposedError } from '../errors.js';

export class LoraAdapter {
  readonly path: string;
  #native: NativeLoraAdapter | undefined;

  /** @internal Use model.loadLora(). */
  constructor(native: NativeLoraAdapter, path: string) {
    this.#native = native;
    this.path = path;
  }

  /** The adapter's GGUF metadata (general.type, adapter.lora.alpha, ...). */
  get metadata(): Record<string, string> {
    return this._native().metadata();
  }

  get disposed(): boolean {
    return this.#native === undefined;
  }

  /** Frees the adapter once no context applies it any more. */
  dispose(): void {
    this.#native?.dispose();
    this.#native = undefined;
  }

  /** @internal */
  _native(): NativeLoraAdapter {
    if (!this.#native) throw disposedError('LoRA adapter');
    return this.#native;
  }
}
