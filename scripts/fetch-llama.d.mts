// Types of fetch-llama.mjs, for the TypeScript tests that import it.
export declare const PIN: { package: string; sha256: string; commit: string };
export declare const TRIM: number;
export declare function stampIsCurrent(text: string): boolean;
export declare function fetchLlama(options?: { force?: boolean }): string;
export declare function patchList(): Array<{ file: string; sha256: string }>;
