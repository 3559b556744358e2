// Checkpoints of the level-synchronous search (src/engine/levels.ts: the
// thread pool's and the Redis coordinator's), taken at a
// level boundary: everything needed to expand the next level as if the run
// had never stopped (visited set, parent links, the frontier's packed
// states, counters, violations found). One file: a JSON header, then the
// arrays, each 8-byte aligned. Written to a temporary file, synced, then
// renamed over the old one, so a Ctrl-C or a crash leaves the previous
// checkpoint or the new one, never half of one.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Coverage, Found } from './explorer.ts';

const MAGIC = 'mmcheck-checkpoint-1';

export interface Checkpoint {
  /** The caller's description of the run (model, bounds, options); opaque here. */
  meta: unknown;
  stopAtFirst: boolean;
  fromPrefix: number;
  /** Levels expanded (the frontier is level `level`). */
  level: number;
  /** Index of the frontier's first state. */
  levelStart: number;
  levelSizes: number[];
  generated: number;
  coverage: Record<string, Coverage>;
  found: Found[];
  /** Properties not violated yet (--continue); null when stopping at the first. */
  remaining: string[] | null;
  /** Milliseconds of search before this checkpoint (all sessions). */
  elapsedMs: number;
  visitedSize: number;
  keys: Uint32Array;
  parent: Int32Array;
  step: Int32Array;
  frontierBytes: Uint8Array;
  frontierOffsets: Uint32Array;
}

type Arrays = Pick<Checkpoint, 'keys' | 'parent' | 'step' | 'frontierBytes' | 'frontierOffsets'>;
const ARRAYS = ['keys', 'parent', 'step', 'frontierBytes', 'frontierOffsets'] as const;
const pad8 = (n: number): number => (n + 7) & ~7;

export function writeCheckpoint(path: string, c: Checkpoint): void {
  mkdirSync(dirname(path), { recursive: true });
  const { keys, parent, step, frontierBytes, frontierOffsets, ...rest } = c;
  const arrays: Arrays = { keys, parent, step, frontierBytes, frontierOffsets };
  const header = Buffer.from(JSON.stringify({ magic: MAGIC, ...rest, lengths: ARRAYS.map((k) => arrays[k].length) }));
  const lead = Buffer.alloc(8);
  lead.writeUInt32LE(header.length, 0);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, lead);
    writeSync(fd, header);
    writeSync(fd, Buffer.alloc(pad8(header.length) - header.length));
    for (const k of ARRAYS) {
      const a = arrays[k];
      const b = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      // writeSync may write less than asked for large buffers.
      for (let off = 0; off < b.length; ) off += writeSync(fd, b, off, b.length - off);
      writeSync(fd, Buffer.alloc(pad8(b.length) - b.length));
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export function readCheckpoint(path: string): Checkpoint {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new CheckpointError(`cannot read checkpoint ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const hl = buf.length >= 8 ? buf.readUInt32LE(0) : 0;
  let header: Omit<Checkpoint, keyof Arrays> & { magic: string; lengths: number[] };
  try {
    header = JSON.parse(buf.subarray(8, 8 + hl).toString('utf8'));
  } catch {
    throw new CheckpointError(`${path} is not an mmcheck checkpoint`);
  }
  if (header.magic !== MAGIC) throw new CheckpointError(`${path} is not an mmcheck checkpoint`);
  let off = 8 + pad8(hl);
  const take = <T>(n: number, bytesPer: number, make: (b: ArrayBuffer) => T): T => {
    const len = n * bytesPer;
    if (off + len > buf.length) throw new CheckpointError(`${path} is truncated`);
    // Copy into a fresh, aligned buffer.
    const ab = new ArrayBuffer(len);
    new Uint8Array(ab).set(buf.subarray(off, off + len));
    off += pad8(len);
    return make(ab);
  };
  const [nk, np, ns, nb, no] = header.lengths as [number, number, number, number, number];
  const keys = take(nk, 4, (b) => new Uint32Array(b));
  const parent = take(np, 4, (b) => new Int32Array(b));
  const step = take(ns, 4, (b) => new Int32Array(b));
  const frontierBytes = take(nb, 1, (b) => new Uint8Array(b));
  const frontierOffsets = take(no, 4, (b) => new Uint32Array(b));
  const { magic: _m, lengths: _l, ...rest } = header;
  return { ...rest, keys, parent, step, frontierBytes, frontierOffsets };
}
