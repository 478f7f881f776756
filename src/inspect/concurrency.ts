/** Kept so inspection code and its tests import from their own folder; the helper lives in core. */
export { mapWithConcurrency } from '../core/concurrency';
