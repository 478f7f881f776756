import { IssueList } from '../../src/config/issues';
import { readLeaves, schemaLeaves, type LeafTypes } from '../../src/config/schema';

/** Every typed leaf the section parsers read; a key missing here or in LeafTypes fails to compile. */
const TYPED: Record<keyof LeafTypes, true> = {
  'acme.directory': true,
  'acme.email': true,
  'acme.termsAgreed': true,
  'acme.eab.keyId': true,
  'acme.eab.hmacKey': true,
  'acme.eab.hmacKey_file': true,
  'acme.caBundle': true,
  'acme.preferredChain': true,
  'acme.caaIdentities': true,
  'acme.requestTimeout': true,
  'acme.fallback': true,
  'storage.stateDir': true,
  'storage.archiveDepth': true,
  'storage.backend': true,
  'storage.etcd': true,
  'defaults.keyType': true,
  'defaults.renewal.ratio': true,
  'defaults.renewal.shortLifetimeRatio': true,
  'defaults.renewal.shortLifetimeDays': true,
  'defaults.renewal.maxOrdersPerWeek': true,
  'defaults.concurrency': true,
  'daemon.checkInterval': true,
  'daemon.listen': true,
  'daemon.allowRemote': true,
  'daemon.heartbeat': true,
  'daemon.heartbeatTimeout': true,
  'daemon.silentAfter': true,
  'daemon.endpointInterval': true,
  'daemon.readinessInterval': true,
  'fleet.nodeName': true,
  'fleet.rollout': true,
  'fleet.canary': true,
  'fleet.stagger': true,
  'fleet.pollInterval': true,
  'daemon.redeployBackoff': true,
  'dns.resolvers': true,
  'dns.nameserverPort': true,
  'dns.queryTimeout': true,
  'dns.propagation.mode': true,
  'dns.propagation.unreachable': true,
  'dns.propagation.ipv6': true,
  'dns.propagation.wait': true,
  'dns.providers': true,
  certificates: true,
};

test('LeafTypes names exactly the schema leaves', () => {
  expect(
    schemaLeaves()
      .map((l) => l.path)
      .sort(),
  ).toEqual(Object.keys(TYPED).sort());
});

test('readLeaves: every leaf through its parser, each problem at its path, the environment variable named', () => {
  const merged: Record<string, unknown> = {
    'acme.directory': 'letsencrypt-staging',
    'acme.email': null,
    'acme.requestTimeout': 500,
    'defaults.concurrency': '4x',
    'daemon.listen': '',
    'dns.queryTimeout': '2s',
  };
  const issues = new IssueList();
  const values = readLeaves((p) => merged[p], { CERTPILOT_CONCURRENCY: '4x' }, issues);
  expect(values.get('acme.directory')).toBe('https://acme-staging-v02.api.letsencrypt.org/directory');
  expect(values.get('acme.email')).toBeUndefined();
  expect(values.get('daemon.listen')).toBeUndefined();
  expect(values.get('dns.queryTimeout')).toBe(2_000);
  const byPath = Object.fromEntries(issues.toArray().map((i) => [i.path, i.message]));
  expect(byPath['acme.requestTimeout']).toMatch(/^must be at least 1000 ms/);
  expect(byPath['defaults.concurrency']).toBe(
    'must be an integer, not a string (from $CERTPILOT_CONCURRENCY)',
  );
});
