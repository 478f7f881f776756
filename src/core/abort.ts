import { abortError } from './errors';

/**
 * Cancellation helpers. Every I/O call in certpilot takes an AbortSignal; these combine a
 * caller's signal with a deadline and turn an abort into a typed error.
 */

/**
 * The timeout signal of each combined deadline. Node 20 holds the sources of AbortSignal.any
 * weakly and clears AbortSignal.timeout's timer once that signal is collected, so after a GC
 * the deadline would never fire (seen: a 2.5 s propagation wait ending only at the caller's
 * 20 s limit). Held here for as long as the combined signal lives.
 */
const deadlineTimeouts = new WeakMap<AbortSignal, AbortSignal>();

/** A signal that aborts when `parent` aborts or after `ms` milliseconds, whichever is first. */
export function withDeadline(parent: AbortSignal | undefined, ms: number): AbortSignal {
  const timeout = AbortSignal.timeout(ms);
  if (!parent) return timeout;
  const combined = AbortSignal.any([parent, timeout]);
  deadlineTimeouts.set(combined, timeout);
  return combined;
}

/** Throws a typed ABORTED/TIMEOUT error when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, component: string): void {
  if (signal?.aborted) throw abortError(component, signal);
}

/** Sleep that ends early (rejecting) when the signal aborts. Never used to wait for an event. */
export function sleep(ms: number, signal?: AbortSignal, component = 'sleep'): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(component, signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(component, signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Races a promise against a signal; the promise's own work is not stopped, only awaited no longer. */
export function raceSignal<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  component: string,
): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortError(component, signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(component, signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
