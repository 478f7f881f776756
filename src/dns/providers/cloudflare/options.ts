/** Values shared by the Cloudflare definition and its provider (kept apart so neither imports the other). */
export const CLOUDFLARE_API_BASE = 'https://api.cloudflare.com/client/v4';
/** The API allows 1200 requests per 5 minutes; a 429 is rare and short. */
export const CLOUDFLARE_DEFAULT_MAX_RETRIES = 5;
