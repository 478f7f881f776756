import { parentPort, workerData } from 'node:worker_threads';
import { useResolversForConnections } from '../dns/host-lookup';
import type { FromProbeThread, ProbeThreadData, ToProbeThread } from './probe-threads';
import { probeServedChain } from './probe-tls';

/**
 * A probe thread (see probe-threads.ts): probes the endpoints it is sent with probeServedChain
 * and sends each served chain back. It resolves names exactly as the thread that started it:
 * through the same `dns.resolvers`, or the system resolver when none are set.
 */

const port = parentPort;
if (!port) throw new Error('probe-worker: not started as a worker thread');
const data = workerData as ProbeThreadData;
if (data.resolvers) useResolversForConnections(data.resolvers);

const running = new Map<number, AbortController>();

port.on('message', (m: ToProbeThread) => {
  if (m.type === 'abort') {
    running.get(m.id)?.abort();
    running.delete(m.id);
    return;
  }
  const controller = new AbortController();
  running.set(m.id, controller);
  const reply = (message: FromProbeThread): void => {
    // An aborted probe has been answered already, by the thread that aborted it.
    if (running.delete(m.id)) port.postMessage(message);
  };
  probeServedChain({ ...m.opts, signal: controller.signal }).then(
    (result) => reply({ type: 'result', id: m.id, result }),
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      reply({ type: 'error', id: m.id, error: { name: e.name, message: e.message, stack: e.stack } });
    },
  );
});
