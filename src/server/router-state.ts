// The router the server answers with, which may still be loading: the server
// listens at once, and until the router's promise settles every route but
// /health answers 503 NOT_READY (a load that failed: 503 with its reason).
import { UnderstudyError } from '../errors.js';
import type { Router } from '../index.js';
import { errorText } from '../validate.js';
import { HttpRequestError, LOADING_RETRY_AFTER_SECONDS } from './openai-errors.js';

export class RouterState {
  #router: Router | undefined;
  #failure: UnderstudyError | undefined;

  constructor(router: Router | Promise<Router>, redact: (text: string) => string) {
    if (!(router instanceof Promise)) {
      this.#router = router;
      return;
    }
    router.then(
      (r) => (this.#router = r),
      (err: unknown) => {
        const message = redact(err instanceof UnderstudyError ? `${err.code}: ${err.message}` : errorText(err));
        this.#failure = new UnderstudyError('NOT_READY', `the router failed to start: ${message}`);
      },
    );
  }

  /** The router once loaded; undefined while loading or after a failed load. */
  get current(): Router | undefined {
    return this.#router;
  }

  get status(): 'loading' | 'ready' | 'failed' {
    return this.#router ? 'ready' : this.#failure ? 'failed' : 'loading';
  }

  /** The router, or NOT_READY saying why there is none. */
  get(): Router {
    if (this.#router) return this.#router;
    throw this.#failure ?? new HttpRequestError('NOT_READY', 'the router is still loading: try again shortly', null, undefined, LOADING_RETRY_AFTER_SECONDS);
  }

  get failure(): UnderstudyError | undefined {
    return this.#failure;
  }
}
