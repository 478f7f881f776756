import { DEFAULT_KEY_TYPE } from './defaults';
import type { LeafValues } from './schema';
import type { KeyType, RenewalPolicy } from './types';

/** The `defaults:` section: key type, renewal policy and concurrency; schema leaves only. */
export interface DefaultsSection {
  readonly defaultKeyType: KeyType;
  readonly renewal: RenewalPolicy;
  readonly concurrency: number;
}

type NumberLeaf =
  | 'defaults.renewal.ratio'
  | 'defaults.renewal.shortLifetimeRatio'
  | 'defaults.renewal.shortLifetimeDays'
  | 'defaults.renewal.maxOrdersPerWeek'
  | 'defaults.concurrency';

export function parseDefaults(values: LeafValues): DefaultsSection {
  // An invalid leaf is reported and yields 0: the configuration is rejected anyway.
  const num = (p: NumberLeaf): number => values.get(p) ?? 0;
  return {
    defaultKeyType: values.get('defaults.keyType') ?? DEFAULT_KEY_TYPE,
    renewal: {
      renewRatio: num('defaults.renewal.ratio'),
      shortLifetimeRatio: num('defaults.renewal.shortLifetimeRatio'),
      shortLifetimeDays: num('defaults.renewal.shortLifetimeDays'),
      maxOrdersPerWeek: num('defaults.renewal.maxOrdersPerWeek'),
    },
    concurrency: num('defaults.concurrency'),
  };
}
