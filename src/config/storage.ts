import type { LeafValues } from './schema';
import type { StorageSettings } from './types';

/** The `storage:` section: schema leaves only (validated by readLeaves). */
export function parseStorage(values: LeafValues): StorageSettings {
  return {
    stateDir: (values.get('storage.stateDir') as string | undefined) ?? '',
    archiveDepth: (values.get('storage.archiveDepth') as number | undefined) ?? 0,
  };
}
