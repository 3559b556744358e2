// Parent links (DESIGN.md §5): for each distinct state index, the index of the
// state it was first reached from and the position of the action in
// model.actions(parent). A trace is the list of those positions from the
// root, rebuilt by re-running the model (cf. Stateright's checker/path.rs):
// 8 bytes per state instead of storing states or action objects.

export class ParentLinks {
  /** parent[i] = index of i's BFS parent; -1 for the root. */
  parent: Int32Array;
  /** step[i] = position of the action in model.actions(parent); -1 for the root. */
  step: Int32Array;
  length = 0;

  constructor(initialCapacity = 1 << 16) {
    const cap = Math.max(16, initialCapacity);
    this.parent = new Int32Array(cap);
    this.step = new Int32Array(cap);
  }

  /** Append the links of the next state index; returns that index. */
  push(parent: number, step: number): number {
    if (this.length === this.parent.length) this.grow();
    this.parent[this.length] = parent;
    this.step[this.length] = step;
    return this.length++;
  }

  /** Action positions from the root to state `index` (empty for the root). */
  path(index: number): number[] {
    if (index < 0 || index >= this.length) throw new RangeError(`no state with index ${index}`);
    const out: number[] = [];
    for (let i = index; this.parent[i]! !== -1; i = this.parent[i]!) out.push(this.step[i]!);
    return out.reverse();
  }

  get bytes(): number {
    return this.parent.byteLength + this.step.byteLength;
  }

  private grow(): void {
    const cap = this.parent.length * 2;
    const parent = new Int32Array(cap);
    parent.set(this.parent);
    const step = new Int32Array(cap);
    step.set(this.step);
    this.parent = parent;
    this.step = step;
  }
}
