import { readSync } from 'node:fs';

/**
 * The contents of an open file whose fstat the caller already has, read with synchronous calls:
 * `size` bytes (fewer if the file ends sooner), or, when fstat says 0 (some pseudo files, and an
 * empty file), whatever it holds up to its end. readFileSync(fd) would fstat it again.
 */
export function readOpenFileSync(fd: number, size: number): Buffer {
  let buf = Buffer.allocUnsafe(size > 0 ? size : 8192);
  let length = 0;
  for (;;) {
    if (length === buf.length) {
      if (size > 0) break;
      const bigger = Buffer.allocUnsafe(buf.length * 2);
      buf.copy(bigger, 0, 0, length);
      buf = bigger;
    }
    const n = readSync(fd, buf, length, buf.length - length, null);
    if (n === 0) break;
    length += n;
  }
  return length === buf.length ? buf : buf.subarray(0, length);
}
