// Moving states between threads (DESIGN.md §5): a state crosses a thread
// boundary as bytes, never as an object graph. A model may provide its own
// compact pack/unpack; the default is the structured-clone wire format of
// node:v8, which handles any plain data (objects, arrays, Maps, typed
// arrays), at 15-50 µs a state and 300-700 bytes; the mm model's own
// (models/mm/pack.ts) takes 2-5 µs and 40-100 bytes.
import { deserialize, serialize } from 'node:v8';
import type { Model } from './model.ts';

export function packState<S, A>(model: Model<S, A>, s: S): Uint8Array {
  return model.pack ? model.pack(s) : serialize(s);
}

/** packState for a caller that copies the bytes at once: the model's scratch buffer when it has one. */
export function packStateScratch<S, A>(model: Model<S, A>, s: S): Uint8Array {
  return model.packScratch ? model.packScratch(s) : packState(model, s);
}

export function unpackState<S, A>(model: Model<S, A>, buf: Uint8Array): S {
  return model.unpack ? model.unpack(buf) : (deserialize(buf) as S);
}

/**
 * Packed states appended into one growing byte buffer with offsets, so a
 * batch crosses threads as two transferable buffers.
 */
export class PackedList {
  bytes: Uint8Array;
  offsets: Uint32Array;
  length = 0;

  constructor(bytes = 1 << 14, count = 64) {
    this.bytes = new Uint8Array(bytes);
    this.offsets = new Uint32Array(count + 1);
  }

  get byteLength(): number {
    return this.offsets[this.length]!;
  }

  push(item: Uint8Array): void {
    const end = this.offsets[this.length]!;
    if (end + item.length > this.bytes.length) {
      let cap = this.bytes.length * 2;
      while (cap < end + item.length) cap *= 2;
      const b = new Uint8Array(cap);
      b.set(this.bytes.subarray(0, end));
      this.bytes = b;
    }
    if (this.length + 2 > this.offsets.length) {
      const o = new Uint32Array(this.offsets.length * 2);
      o.set(this.offsets);
      this.offsets = o;
    }
    // A state is tens of bytes: a loop beats the call overhead of set().
    if (item.length < 256) {
      const b = this.bytes;
      for (let k = 0; k < item.length; k++) b[end + k] = item[k]!;
    } else this.bytes.set(item, end);
    this.length++;
    this.offsets[this.length] = end + item.length;
  }

  /** The i-th item (a view, not a copy). */
  get(i: number): Uint8Array {
    return this.bytes.subarray(this.offsets[i]!, this.offsets[i + 1]!);
  }

  /** Exact-size copies of the bytes and offsets (to send or to store). */
  compact(): { bytes: Uint8Array; offsets: Uint32Array } {
    return { bytes: this.bytes.slice(0, this.byteLength), offsets: this.offsets.slice(0, this.length + 1) };
  }
}
