/** Values shared by the Route 53 definition and its provider (kept apart so neither imports the other). */
/** Throttling under load is normal for Route 53 (certbot#6982, acme.sh#1506): retry well past the SDK's 3 attempts. */
export const ROUTE53_DEFAULT_MAX_RETRIES = 8;
