import type { LeafValues } from './schema';
import type { StorageSettings } from './types';

/** The `storage:` section: schema leaves only (validated by readLeaves). */
export function parseStorage(values: LeafValues): StorageSettings {
  return {
    stateDir: values.get('storage.stateDir') ?? '',
    archiveDepth: values.get('storage.archiveDepth') ?? 0,
  };
}
