/**
 * Named points of a renewal that something outside the normal flow may want to observe.
 *
 * Production registers no listener: reaching a checkpoint walks an empty set. The crash-safety
 * tests preload a module into the real CLI (`node -r test/helpers/fault-preload.js`) that
 * registers a listener killing the process with SIGKILL at the point it is told, which is how
 * they reproduce a power cut or the OOM killer at each stage without any test code, or any
 * test-only environment variable, in the shipped modules.
 */
export const CHECKPOINTS = [
  'after-txt-written',
  'after-challenge-answered',
  'after-finalize',
  'mid-store-write',
  'during-deploy-hook',
  // `certpilot account rollover`: the new key is on disk; the CA has accepted it.
  'account-key-written',
  'account-key-changed',
] as const;

export type Checkpoint = (typeof CHECKPOINTS)[number];
export type CheckpointListener = (point: Checkpoint) => void;

// Process-wide on purpose: a preload has no other way to reach code it does not construct.
const listeners = new Set<CheckpointListener>();

/** Tells the registered listeners (none in production) that `point` was reached. Synchronous. */
export function checkpoint(point: Checkpoint): void {
  for (const listener of listeners) listener(point);
}

/** Registers a listener; returns the function that removes it. */
export function onCheckpoint(listener: CheckpointListener): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}
