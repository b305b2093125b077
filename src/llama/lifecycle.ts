// Lifecycle helpers shared by Model, Context and LoraAdapter: the symbols that
// `using` / `await using` look for, and the weak list a model keeps of what it
// made, so that model.dispose() reaches every live child while a child that
// nobody references any more can still be garbage collected (its native side
// then frees its memory and threads).

/**
 * Symbol.asyncDispose. Node 20 defines it as Symbol.for('nodejs.asyncDispose');
 * the fallback keeps the same symbol where the global is missing.
 */
export const asyncDispose: typeof Symbol.asyncDispose =
  Symbol.asyncDispose ?? (Symbol.for('nodejs.asyncDispose') as typeof Symbol.asyncDispose);
/** Symbol.dispose, with the same fallback. */
export const syncDispose: typeof Symbol.dispose =
  Symbol.dispose ?? (Symbol.for('nodejs.dispose') as typeof Symbol.dispose);

/** A set of children held weakly: it never keeps one alive. */
export class WeakChildren<T extends object> {
  #refs = new Set<WeakRef<T>>();
  #registry = new FinalizationRegistry<WeakRef<T>>((ref) => this.#refs.delete(ref));

  /** Adds `child`; the returned function removes it (call it when the child is disposed). */
  add(child: T): () => void {
    const ref = new WeakRef(child);
    this.#refs.add(ref);
    this.#registry.register(child, ref, ref);
    return () => {
      this.#refs.delete(ref);
      this.#registry.unregister(ref);
    };
  }

  /** The children not yet collected or removed. */
  live(): T[] {
    const out: T[] = [];
    for (const ref of this.#refs) {
      const child = ref.deref();
      if (child) out.push(child);
    }
    return out;
  }
}

/** Settles with undefined either way: disposal must never leave an unhandled rejection. */
export function settled(promise: Promise<unknown> | undefined): Promise<void> {
  return Promise.resolve(promise).then(() => undefined, () => undefined);
}
