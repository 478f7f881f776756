import { throwIfAborted } from './abort';

/**
 * Runs `fn` over `items` with at most `concurrency` calls in flight and returns the results in
 * input order. A fixed pool of workers pulling from a shared index keeps memory and open file
 * descriptors flat for large inputs (1,000 files, endpoints or certificates) instead of starting
 * every call at once.
 *
 * When `signal` aborts or a call rejects, no further items are started and the first rejection
 * is returned; calls already running get the caller's signal themselves and end on their own.
 *
 * The one bounded-concurrency helper: renew (orders), inspection (files, probes) and check use it.
 */
export async function mapWithConcurrency<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<R>,
  signal?: AbortSignal,
  component = 'inspect',
): Promise<R[]> {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`${component}: concurrency must be a positive integer, got ${concurrency}`);
  }
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      throwIfAborted(signal, component);
      const index = next++;
      try {
        results[index] = await fn(items[index] as T, index);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, () => worker()));
  return results;
}

/**
 * mapWithConcurrency for callers that pass a configured limit: a limit below 1 (or a fraction)
 * still runs one call at a time rather than throwing.
 */
export function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  const n = Number.isFinite(limit) ? Math.max(1, Math.floor(limit)) : 1;
  return mapWithConcurrency(items, n, fn, signal, 'concurrency');
}
