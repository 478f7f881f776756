import type { IssueList } from './issues';
import { validateProviders, type ProvidersResult } from './providers';
import type { LeafValues } from './schema';
import type { DnsSettings } from './types';

/**
 * The `dns:` section: resolvers, nameserver port, query timeout and the propagation policy
 * (`dns.propagation`) are schema leaves;
 * `dns.providers`, an open map of instances, is parsed by providers.ts.
 */
export async function parseDns(
  values: LeafValues,
  env: NodeJS.ProcessEnv,
  issues: IssueList,
): Promise<{ settings: DnsSettings; providers: ProvidersResult }> {
  const providers = await validateProviders(values.get('dns.providers'), env, issues);
  return {
    settings: {
      resolvers: values.get('dns.resolvers') ?? [],
      nameserverPort: values.get('dns.nameserverPort') ?? 0,
      queryTimeoutMs: values.get('dns.queryTimeout') ?? 0,
      propagation: {
        mode: values.get('dns.propagation.mode') ?? 'authoritative',
        unreachable: values.get('dns.propagation.unreachable') ?? 'fail',
        ipv6: values.get('dns.propagation.ipv6') ?? 'on',
        waitMs: values.get('dns.propagation.wait') ?? 60_000,
      },
      providers: providers.instances,
    },
    providers,
  };
}
