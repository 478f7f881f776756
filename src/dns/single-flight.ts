import { abortError } from '../core/errors';

/**
 * One piece of work awaited by several callers (a zone lookup shared by concurrent appends).
 * It must not die with the first caller's signal, nor outlive all of them: it runs under its
 * own deadline and is cancelled once every caller has stopped waiting.
 */
export class SharedJob<T> {
  readonly promise: Promise<T>;
  private readonly controller = new AbortController();
  private waiters = 0;
  private settled = false;

  constructor(run: (signal: AbortSignal) => Promise<T>, deadlineMs: number) {
    this.promise = run(AbortSignal.any([this.controller.signal, AbortSignal.timeout(deadlineMs)]));
    // Registered first, so `settled` is true before any waiter's callback runs.
    this.promise.then(
      () => (this.settled = true),
      () => (this.settled = true),
    );
  }

  /** True once the job was cancelled because nobody waited any more: do not hand it out again. */
  get abandoned(): boolean {
    return this.controller.signal.aborted;
  }

  wait(signal: AbortSignal, component: string): Promise<T> {
    if (signal.aborted) return Promise.reject(abortError(component, signal));
    this.waiters++;
    return new Promise<T>((resolve, reject) => {
      let left = false;
      const leave = (): void => {
        if (left) return;
        left = true;
        signal.removeEventListener('abort', onAbort);
        if (--this.waiters === 0 && !this.settled) this.controller.abort();
      };
      const onAbort = (): void => {
        leave();
        reject(abortError(component, signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.promise.then(
        (v) => {
          leave();
          resolve(v);
        },
        (e: unknown) => {
          leave();
          reject(e);
        },
      );
    });
  }
}

/**
 * Lookups shared by concurrent callers and remembered for a while (zone ids of API providers:
 * apex and wildcard, or many names of one order, ask for the same zone at the same moment).
 * Failures and abandoned lookups are not remembered: the next call asks again.
 */
export class SharedLookupCache<T> {
  private readonly entries = new Map<string, { at: number; job: SharedJob<T> }>();

  constructor(
    private readonly run: (key: string, signal: AbortSignal) => Promise<T>,
    /** Deadline of one lookup, independent of any caller's signal. */
    private readonly deadlineMs: number,
    /** How long a result is reused. */
    private readonly ttlMs: number,
    private readonly component: string,
  ) {}

  get(key: string, signal: AbortSignal): Promise<T> {
    const cached = this.entries.get(key);
    if (cached && !cached.job.abandoned && Date.now() - cached.at < this.ttlMs) {
      return cached.job.wait(signal, this.component);
    }
    const job = new SharedJob((s) => this.run(key, s), this.deadlineMs);
    this.entries.set(key, { at: Date.now(), job });
    job.promise.catch(() => {
      if (this.entries.get(key)?.job === job) this.entries.delete(key);
    });
    return job.wait(signal, this.component);
  }
}
