import type { ConfigIssue } from '../core/errors';

/**
 * Collects configuration problems so that a user sees every one of them in a single run
 * instead of fixing one, rerunning, and meeting the next.
 */
export class IssueList {
  private readonly list: ConfigIssue[] = [];

  add(path: string, message: string): void {
    // The same problem can be reached twice (e.g. convict and a later check); say it once.
    if (!this.list.some((i) => i.path === path && i.message === message)) this.list.push({ path, message });
  }

  /** True when a problem was recorded at `path` or below it. */
  hasAt(path: string): boolean {
    return this.list.some(
      (i) => i.path === path || i.path.startsWith(`${path}.`) || i.path.startsWith(`${path}[`),
    );
  }

  get size(): number {
    return this.list.length;
  }

  toArray(): readonly ConfigIssue[] {
    return [...this.list];
  }
}

/** Keys that are safe to print after a dot; anything else is quoted in brackets. */
const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `base.key`, `base["odd key"]` or `base[3]`, the path notation used in every message. */
export function childPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (PLAIN_KEY.test(key)) return base ? `${base}.${key}` : key;
  return `${base}[${JSON.stringify(key)}]`;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A short, safe description of a value's type for "must be X, got Y" messages. */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (isPlainObject(value)) return 'a mapping';
  return `a ${typeof value}`;
}
