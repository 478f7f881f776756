import { startAriProxy, type AriProxy } from './ari-proxy';
import type { Pebble } from './pebble';

/**
 * A CA with ACME profiles, for tests: Pebble 2.4 has none, so this puts test/helpers/ari-proxy.ts
 * (the same HTTPS reverse proxy: requests forwarded unchanged, the directory rewritten, every
 * newOrder JWS payload decoded and recorded) in front of a real Pebble, with `meta.profiles` in
 * the directory and ARI switched off (a test of profiles should not also poll renewalInfo).
 *
 * The proxy cannot re-sign a payload and need not: Pebble decodes newOrder with Go's
 * encoding/json, which ignores the unknown `profile` field, so what the client asked for is
 * read from the recorded payload (`profilesAsked`) and the lifetime Pebble issues is its
 * `certificateValidityPeriod` whatever the profile (which is how a test makes a CA give
 * another lifetime than the profile promised).
 */
export interface ProfileProxy {
  /** The directory URL to configure as `acme.directory`. */
  readonly directoryUrl: string;
  /** Sets the profiles the directory offers (name -> description); undefined: none at all. */
  setProfiles(profiles: Record<string, string> | undefined): void;
  /** newOrder requests seen so far (whatever Pebble answered). */
  orderCount(): number;
  /** The `profile` field of each newOrder payload since `from` (undefined: the order had none). */
  profilesAsked(from?: number): (string | undefined)[];
  /** newOrder payloads since `from`, decoded. */
  payloads(from?: number): Record<string, unknown>[];
  stop(): Promise<void>;
}

export async function startProfileProxy(
  pebble: Pebble,
  profiles?: Record<string, string>,
): Promise<ProfileProxy> {
  const proxy: AriProxy = await startAriProxy(pebble);
  proxy.setAriEnabled(false);
  proxy.setProfiles(profiles);
  return {
    directoryUrl: proxy.directoryUrl,
    setProfiles: (p) => proxy.setProfiles(p),
    orderCount: () => proxy.orders.length,
    profilesAsked: (from = 0) =>
      proxy.orders.slice(from).map((o) => {
        const p = o.payload.profile;
        return typeof p === 'string' ? p : undefined;
      }),
    payloads: (from = 0) => proxy.orders.slice(from).map((o) => o.payload),
    stop: () => proxy.stop(),
  };
}
