import { CertpilotError } from '../../src/core/errors';
import type { DnsProvider, TxtRecord } from '../../src/dns/provider';

/**
 * The DnsProvider contract (src/dns/provider.ts) as a reusable suite. Each provider's test file
 * calls `runProviderConformance` with a setup that returns a provider, a zone it may write and
 * an independent way to read the TXT values the zone serves (for rfc2136: dig against BIND).
 */
export interface ConformanceTarget {
  readonly provider: DnsProvider;
  /** Lower-case FQDN of a zone the provider may write. */
  readonly zone: string;
  /** The TXT values currently at `fqdn`, read without going through the provider. */
  readValues(fqdn: string): Promise<string[]>;
  teardown(): Promise<void>;
}

const CALL_TIMEOUT_MS = 15_000;

export function runProviderConformance(name: string, setup: () => Promise<ConformanceTarget>): void {
  describe(`${name}: DnsProvider conformance`, () => {
    let t: ConformanceTarget;
    let counter = 0;
    // Every test works on its own name, so tests do not see each other's values.
    const label = (): string => `_acme-challenge.c${counter++}-${process.pid}`;
    const fqdn = (rel: string): string => (rel === '@' ? t.zone : `${rel}.${t.zone}`);
    const rec = (rel: string, value: string): TxtRecord => ({ name: rel, value, ttl: 60 });
    const signal = (): AbortSignal => AbortSignal.timeout(CALL_TIMEOUT_MS);
    const sorted = async (f: string): Promise<string[]> => (await t.readValues(f)).sort();

    beforeAll(async () => {
      t = await setup();
    });
    afterAll(async () => {
      await t?.teardown();
    });

    test('append adds values and keeps the values already there', async () => {
      const n = label();
      await t.provider.appendRecords(t.zone, [rec(n, 'first')], signal());
      const returned = await t.provider.appendRecords(t.zone, [rec(n, 'second'), rec(n, 'third')], signal());
      expect(returned.map((r) => r.value).sort()).toEqual(['second', 'third']);
      expect(await sorted(fqdn(n))).toEqual(['first', 'second', 'third']);
    });

    test('appending a value that is already present succeeds and leaves one copy', async () => {
      const n = label();
      await t.provider.appendRecords(t.zone, [rec(n, 'same')], signal());
      await t.provider.appendRecords(t.zone, [rec(n, 'same')], signal());
      expect(await t.readValues(fqdn(n))).toEqual(['same']);
    });

    test('concurrent appends of different values to the same name all survive', async () => {
      const n = label();
      const values = ['c1', 'c2', 'c3', 'c4', 'c5'];
      await Promise.all(values.map((v) => t.provider.appendRecords(t.zone, [rec(n, v)], signal())));
      expect(await sorted(fqdn(n))).toEqual(values);
    });

    test('delete removes exactly the given values', async () => {
      const n = label();
      const other = label();
      await t.provider.appendRecords(
        t.zone,
        [rec(n, 'keep'), rec(n, 'drop1'), rec(n, 'drop2'), rec(other, 'drop1')],
        signal(),
      );
      const returned = await t.provider.deleteRecords(t.zone, [rec(n, 'drop1'), rec(n, 'drop2')], signal());
      expect(returned.map((r) => r.value).sort()).toEqual(['drop1', 'drop2']);
      expect(await t.readValues(fqdn(n))).toEqual(['keep']);
      expect(await t.readValues(fqdn(other))).toEqual(['drop1']);
    });

    test('deleting an absent value, or at a name with no records, succeeds', async () => {
      const n = label();
      await t.provider.appendRecords(t.zone, [rec(n, 'present')], signal());
      await t.provider.deleteRecords(t.zone, [rec(n, 'absent')], signal());
      await t.provider.deleteRecords(t.zone, [rec(label(), 'absent')], signal());
      expect(await t.readValues(fqdn(n))).toEqual(['present']);
    });

    test('works at the zone apex ("@") without touching other apex records', async () => {
      const value = `apex-${process.pid}`;
      await t.provider.appendRecords(t.zone, [rec('@', value)], signal());
      expect(await t.readValues(t.zone)).toContain(value);
      await t.provider.deleteRecords(t.zone, [rec('@', value)], signal());
      expect(await t.readValues(t.zone)).not.toContain(value);
    });

    test('an already cancelled signal rejects with ABORTED and writes nothing', async () => {
      const n = label();
      const ac = new AbortController();
      ac.abort();
      await expect(t.provider.appendRecords(t.zone, [rec(n, 'never')], ac.signal)).rejects.toMatchObject({
        code: 'ABORTED',
      });
      await expect(t.provider.deleteRecords(t.zone, [rec(n, 'never')], ac.signal)).rejects.toMatchObject({
        code: 'ABORTED',
      });
      expect(await t.readValues(fqdn(n))).toEqual([]);
    });

    test('cancelling during a call rejects it with ABORTED', async () => {
      const ac = new AbortController();
      const call = t.provider.appendRecords(t.zone, [rec(label(), 'maybe')], ac.signal);
      ac.abort();
      const err: unknown = await call.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CertpilotError);
      expect(err).toMatchObject({ code: 'ABORTED' });
    });
  });
}
