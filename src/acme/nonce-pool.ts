/**
 * Nonces handed out by the CA in earlier responses, per origin. RFC 8555 §7.2: every response
 * carries a fresh Replay-Nonce that the next request may use. acme-client asks newNonce (a HEAD)
 * before every signed request, which doubles the requests to the CA; its HEADs are answered
 * from this pool when it has one. A stale nonce costs one badNonce retry, which acme-client
 * makes with the nonce from the error response.
 *
 * One pool per adapter instance: two accounts or two CAs in one process never share nonces.
 */
export class NoncePool {
  private readonly byOrigin = new Map<string, string[]>();

  /** Nonces expire on the CA's side; a handful per origin is plenty for concurrent orders. */
  constructor(private readonly sizePerOrigin = 8) {}

  take(url: string): string | undefined {
    const origin = originOf(url);
    return origin ? this.byOrigin.get(origin)?.pop() : undefined;
  }

  keep(url: string, nonce: string | undefined): void {
    const origin = originOf(url);
    if (!origin || !nonce) return;
    const pool = this.byOrigin.get(origin) ?? [];
    pool.push(nonce);
    if (pool.length > this.sizePerOrigin) pool.shift();
    this.byOrigin.set(origin, pool);
  }
}

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}
