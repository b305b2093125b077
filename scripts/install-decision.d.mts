// Types of install-decision.mjs, for the TypeScript tests that import it.
export interface InstallFacts {
  fromSource: boolean;
  checkout: boolean;
  prebuilt: string | null;
  missing: string[];
  platform: string;
}
export declare function platformPackageNames(platform?: string, arch?: string, libc?: 'glibc' | 'musl' | null): string[];
export declare function currentLibc(): 'glibc' | 'musl' | null;
export declare function findPrebuilt(root: string, names?: string[]): string | null;
export declare function isSourceCheckout(root: string): boolean;
export declare function missingTools(env?: Record<string, string | undefined>): string[];
export declare function installDecision(facts: InstallFacts): { action: 'skip' | 'build' | 'fail'; message: string };
