import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { mapWithConcurrency } from '../core/concurrency';
import { abortError } from '../core/errors';
import { configuredResolverSettings } from '../dns/host-lookup';
import { joinShared, probeServedChain, type ProbeOptions, type ServedChain } from './probe-tls';

/**
 * Endpoint probes spread over worker threads, for a one-shot `check` of many endpoints.
 *
 * Why: probing is CPU-bound in the TLS client once the endpoints answer quickly. Profiles of
 * `check` over 1,000 endpoints on loopback showed the main thread busy for the whole run, most
 * of it inside OpenSSL's handshake (decoding and verifying the served certificates) and Node's
 * TLS socket code, while the rest of the machine sat partly idle. A bare Node client making the
 * same handshakes from two threads instead of one finished in about three quarters of the time
 * on a 2-CPU machine. Each thread runs probe-tls.ts, nothing else; this thread keeps the
 * schedule, the cancellation and the parsing of what comes back.
 *
 * What stays the same as probing in this thread: at most `concurrency` probes in flight in all,
 * results in input order, the same timeouts, cancellation through the shared and per-endpoint
 * signals (an aborted probe rejects at once, as in this thread), and name resolution through the
 * configured resolvers (each thread gets the same `dns.resolvers` settings, never the system
 * resolver when they are set). An unexpected error in a probe fails the whole call, as it does
 * in this thread. A thread that dies or cannot start (a thread limit, say) costs no result: its
 * probes in flight are made here instead, and later ones go to the threads still running, or
 * are made here when none is left.
 */

/**
 * Below this many endpoints per thread, starting threads costs more than it saves: measured
 * on 2 CPUs, 128 endpoints took 5 % longer with two threads and 256 took 14 % less.
 */
export const MIN_ENDPOINTS_PER_THREAD = 100;
/** More threads than this only add start-up time and memory for a check. */
export const MAX_PROBE_THREADS = 4;

/** The compiled worker entry. Absent when running from the TypeScript sources (ts-node, ts-jest). */
const WORKER_FILE = path.join(__dirname, 'probe-worker.js');

/** A probe that was lost with its thread: made again in this thread. */
class ThreadLost extends Error {}

/**
 * How many threads to probe `n` endpoints with; 0 or 1 means probe in this thread. One per
 * CPU, up to MAX_PROBE_THREADS, with at least MIN_ENDPOINTS_PER_THREAD endpoints and at least
 * one probe in flight each.
 */
export function probeThreadCount(n: number, concurrency: number, cpus = os.availableParallelism()): number {
  if (!existsSync(WORKER_FILE)) return 0;
  return Math.max(
    0,
    Math.min(cpus, MAX_PROBE_THREADS, Math.floor(n / MIN_ENDPOINTS_PER_THREAD), concurrency),
  );
}

/** Messages between this thread and a probe thread (probe-worker.ts). */
export type ToProbeThread =
  | { readonly type: 'probe'; readonly id: number; readonly opts: Omit<ProbeOptions, 'signal'> }
  | { readonly type: 'abort'; readonly id: number };
export type FromProbeThread =
  | { readonly type: 'result'; readonly id: number; readonly result: ServedChain }
  | {
      readonly type: 'error';
      readonly id: number;
      readonly error: { name: string; message: string; stack?: string };
    };
export interface ProbeThreadData {
  readonly resolvers?: ReturnType<typeof configuredResolverSettings>;
}

interface Pending {
  resolve(r: ServedChain): void;
  reject(e: Error): void;
}

class ProbeThread {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();
  private failure: Error | undefined;

  constructor(data: ProbeThreadData, file: string) {
    // Loaded here, when threads are started: deciding against them costs nothing.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Worker: WorkerThread } = require('node:worker_threads') as typeof import('node:worker_threads');
    this.worker = new WorkerThread(file, { workerData: data });
    this.worker.on('message', (m: FromProbeThread) => {
      const p = this.pending.get(m.id);
      if (!p) return; // aborted here already
      this.pending.delete(m.id);
      if (m.type === 'result') p.resolve(revive(m.result));
      else p.reject(Object.assign(new Error(m.error.message), { name: m.error.name, stack: m.error.stack }));
    });
    this.worker.on('error', (err) =>
      this.fail(new ThreadLost(`probe: a probe thread failed: ${err.message}`)),
    );
    this.worker.on('exit', (code) =>
      this.fail(new ThreadLost(`probe: a probe thread exited with code ${code}`)),
    );
  }

  get inFlight(): number {
    return this.pending.size;
  }

  get alive(): boolean {
    return this.failure === undefined;
  }

  probe(id: number, opts: ProbeOptions): Promise<ServedChain> {
    const { signal, ...plain } = opts;
    return new Promise<ServedChain>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      if (signal?.aborted) return reject(abortError('probe', signal));
      const onAbort = (): void => {
        if (!this.pending.delete(id)) return;
        this.post({ type: 'abort', id });
        reject(abortError('probe', signal));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => signal?.removeEventListener('abort', onAbort);
      this.pending.set(id, {
        resolve: (r) => (done(), resolve(r)),
        reject: (e) => (done(), reject(e)),
      });
      this.post({ type: 'probe', id, opts: plain });
    });
  }

  private post(m: ToProbeThread): void {
    this.worker.postMessage(m);
  }

  private fail(err: ThreadLost): void {
    this.failure ??= err;
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.reject(this.failure);
  }

  stop(): Promise<number> {
    // Nothing is waiting once the call has settled; an exit now is the one asked for.
    this.failure ??= new ThreadLost('probe: probe thread stopped');
    return this.worker.terminate();
  }
}

/** Buffers arrive as plain Uint8Arrays; the rest of ServedChain is plain data. */
function revive(r: ServedChain): ServedChain {
  return { ...r, ders: r.ders.map((d) => Buffer.from(d.buffer, d.byteOffset, d.byteLength)) };
}

/**
 * probeServedChain over `endpoints` in `threads` worker threads, at most `concurrency` in
 * flight in all, each new probe going to the thread with the fewest in flight. Results in input
 * order. The threads stop before this settles.
 */
export async function probeInThreads(
  endpoints: readonly ProbeOptions[],
  opts: {
    threads: number;
    concurrency: number;
    signal?: AbortSignal | undefined;
    /** The thread's entry; tests only (a thread that dies). */
    workerFile?: string;
  },
): Promise<ServedChain[]> {
  const data: ProbeThreadData = { resolvers: configuredResolverSettings() };
  const shared = opts.signal;
  // Probes made here after a thread was lost listen in their phases too.
  const join = joinShared(shared, opts.concurrency);
  const threads = Array.from(
    { length: opts.threads },
    () => new ProbeThread(data, opts.workerFile ?? WORKER_FILE),
  );
  try {
    return await mapWithConcurrency(
      endpoints,
      opts.concurrency,
      async (ep, i) => {
        const probe = join(ep);
        let least: ProbeThread | undefined;
        for (const t of threads) if (t.alive && (!least || t.inFlight < least.inFlight)) least = t;
        if (least) {
          try {
            return await least.probe(i, probe);
          } catch (err) {
            if (!(err instanceof ThreadLost)) throw err;
          }
        }
        return probeServedChain(probe);
      },
      shared,
      'probe',
    );
  } finally {
    await Promise.all(threads.map((t) => t.stop()));
  }
}
