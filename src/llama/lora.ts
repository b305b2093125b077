// LoraAdapter: a LoRA adapter loaded for one model (native/lora.cpp). Apply it to
// a context with context.setLora(adapter, scale); the model stays unchanged.
import type { NativeLoraAdapter } from './binding.js';
import { disposedError } from '../errors.js';
import { asyncDispose, settled, syncDispose } from './lifecycle.js';

export class LoraAdapter {
  readonly path: string;
  #native: NativeLoraAdapter | undefined;
  #onDispose: () => Promise<void>;
  #disposal: Promise<void> | undefined;

  /** @internal Use model.loadLora(). `onDispose` stops applying it in the model's contexts. */
  constructor(native: NativeLoraAdapter, path: string, onDispose: () => Promise<void> = async () => {}) {
    this.#native = native;
    this.path = path;
    this.#onDispose = onDispose;
  }

  /** The adapter's GGUF metadata (general.type, adapter.lora.alpha, ...). */
  get metadata(): Record<string, string> {
    return this._native().metadata();
  }

  get disposed(): boolean {
    return this.#native === undefined;
  }

  /**
   * Stops applying the adapter in every context of its model (after the calls
   * running there) and frees it. The promise resolves once its native memory
   * is released; it never rejects, and calling dispose() again returns it again.
   */
  dispose(): Promise<void> {
    if (!this.#disposal) {
      const native = this.#native;
      this.#native = undefined;
      this.#disposal = settled(Promise.all([settled(this.#onDispose()), native?.dispose()]));
    }
    return this.#disposal;
  }

  /** For `using`: starts disposal without waiting for it. */
  [syncDispose](): void {
    void this.dispose();
  }

  /** For `await using`: disposal, awaited. */
  [asyncDispose](): Promise<void> {
    return this.dispose();
  }

  /** @internal */
  _native(): NativeLoraAdapter {
    if (!this.#native) throw disposedError('LoRA adapter');
    return this.#native;
  }
}
