// The worked example of kernel-semantics.md §9, driven through the syscall
// model (parseAction/next), with every anon_vma counter, link and chain
// order checked after each step against the digest's numbers.
import { describe, expect, it } from 'vitest';
import { checkProperties } from '../src/engine/model.ts';
import { createMmModel } from '../models/mm/model.ts';
import type { Id, State } from '../models/mm/state.ts';

type Name = 'R' | 'A1' | 'A2';
type VmaName = 'Vp' | 'V1' | 'V2' | 'V3';

interface AvExpect {
  children: number;
  active: number;
  ref: number;
  parent: Name;
  root: Name;
  freed: boolean;
  /** The interval tree in order, as VMA names. */
  tree: VmaName[];
}

interface VmaExpect {
  anonVma: Name;
  /** anon_vma_chain head -> tail as anon_vma names. */
  chain: Name[];
}

interface Expect {
  anonVmas: Partial<Record<Name, AvExpect>>;
  vmas: Partial<Record<VmaName, VmaExpect>>;
  /** Processes alive. */
  procs: number[];
}

/** VMA names by process: Vp is P0's, V1 P1's (C1), V2 P2's (C2), V3 P3's (C3). */
const VMA_OF_PROC: VmaName[] = ['Vp', 'V1', 'V2', 'V3'];

/**
 * The digest's names of the model's anon_vma ids, by creation order, kept
 * across steps. anon_vma_fork preallocates an anon_vma before cloning (§2.5
 * step 3) and puts it again on reuse: such an id first appears already
 * freed, is never part of the example, and is left unnamed.
 */
class Names {
  private readonly order: Name[] = ['R', 'A1', 'A2'];
  private readonly map = new Map<Id, Name>();
  readonly discarded = new Set<Id>();
  update(s: State): void {
    const ids = Object.keys(s.anonVmas)
      .map(Number)
      .sort((a, b) => a - b);
    for (const id of ids) {
      if (this.map.has(id) || this.discarded.has(id)) continue;
      if (s.anonVmas[id]!.freed) {
        this.discarded.add(id);
        continue;
      }
      const name = this.order[this.map.size];
      if (name === undefined) throw new Error(`an unexpected fourth live anon_vma ${id}`);
      this.map.set(id, name);
    }
  }
  get(id: Id): Name {
    const x = this.map.get(id);
    if (x === undefined) throw new Error(`anon_vma ${id} has no name`);
    return x;
  }
}

/** The anon_vma and VMA tables of s in the digest's names. */
function observe(s: State, n: Names): Expect {
  n.update(s);
  const nm = (id: Id): Name => n.get(id);
  const vmaName = (id: Id): VmaName => {
    const v = s.vmas[id]!;
    return VMA_OF_PROC[v.mm]!;
  };
  const anonVmas: Expect['anonVmas'] = {};
  for (const a of Object.values(s.anonVmas)) {
    if (n.discarded.has(a.id)) {
      // The put-back preallocation: freed with no reference, never linked.
      expect({ ref: a.refcount, children: a.numChildren, active: a.numActiveVmas, tree: a.tree }).toEqual({ ref: 0, children: 0, active: 0, tree: [] });
      continue;
    }
    anonVmas[nm(a.id)] = {
      children: a.numChildren,
      active: a.numActiveVmas,
      ref: a.refcount,
      parent: nm(a.parent),
      root: nm(a.root),
      freed: a.freed,
      tree: a.tree.map((avc) => vmaName(s.avcs[avc]!.vma)),
    };
  }
  const vmas: Expect['vmas'] = {};
  for (const m of Object.values(s.mms)) {
    for (const id of m.vmas) {
      const v = s.vmas[id]!;
      // Every VMA of the example is [0,4) with pgoff 0 (mmap at 0 sets pgoff = 0).
      expect([v.start, v.end, v.pgoff]).toEqual([0, 4, 0]);
      vmas[vmaName(id)] = { anonVma: nm(v.anonVma), chain: v.chain.map((avc) => nm(s.avcs[avc]!.anonVma)) };
    }
  }
  return { anonVmas, vmas, procs: Object.keys(s.mms).map(Number) };
}

const av = (children: number, active: number, ref: number, parent: Name, root: Name, tree: VmaName[], freed = false): AvExpect => ({
  children,
  active,
  ref,
  parent,
  root,
  freed,
  tree,
});

describe('kernel-semantics §9 worked example through the syscall model', () => {
  const model = createMmModel({ bounds: { procs: 4, pages: 8, maxLen: 4 } });

  const steps: { label: string; ops: string[]; expect: Expect }[] = [
    {
      label: 'step 1: P faults Vp -> root R{1,1,1}, Vp = [R]',
      ops: ['P0 mmap 0 4', 'P0 fault 0 w'],
      expect: {
        anonVmas: { R: av(1, 1, 1, 'R', 'R', ['Vp']) },
        vmas: { Vp: { anonVma: 'R', chain: ['R'] } },
        procs: [0],
      },
    },
    {
      label: 'step 2: P forks C1 -> new A1, V1 = [A1, R]',
      ops: ['P0 fork'],
      expect: {
        anonVmas: {
          R: av(2, 1, 2, 'R', 'R', ['Vp', 'V1']),
          A1: av(0, 1, 1, 'R', 'R', ['V1']),
        },
        vmas: { Vp: { anonVma: 'R', chain: ['R'] }, V1: { anonVma: 'A1', chain: ['A1', 'R'] } },
        procs: [0, 1],
      },
    },
    {
      label: 'step 3: C1 forks C2 -> new A2 (parent A1), V2 = [A2, R, A1]',
      ops: ['P1 fork'],
      expect: {
        anonVmas: {
          R: av(2, 1, 3, 'R', 'R', ['Vp', 'V1', 'V2']),
          A1: av(1, 1, 1, 'R', 'R', ['V1', 'V2']),
          A2: av(0, 1, 1, 'A1', 'R', ['V2']),
        },
        vmas: {
          Vp: { anonVma: 'R', chain: ['R'] },
          V1: { anonVma: 'A1', chain: ['A1', 'R'] },
          V2: { anonVma: 'A2', chain: ['A2', 'R', 'A1'] },
        },
        procs: [0, 1, 2],
      },
    },
    {
      label: 'step 4: C1 unmaps V1 -> nothing emptied, A1{1,0,1}',
      ops: ['P1 munmap 0 4'],
      expect: {
        anonVmas: {
          R: av(2, 1, 3, 'R', 'R', ['Vp', 'V2']),
          A1: av(1, 0, 1, 'R', 'R', ['V2']),
          A2: av(0, 1, 1, 'A1', 'R', ['V2']),
        },
        vmas: {
          Vp: { anonVma: 'R', chain: ['R'] },
          V2: { anonVma: 'A2', chain: ['A2', 'R', 'A1'] },
        },
        procs: [0, 1, 2],
      },
    },
    {
      label: 'step 5: C2 forks C3 -> A1 reused, V3 = [A1, R, A2], no new anon_vma',
      ops: ['P2 fork'],
      expect: {
        anonVmas: {
          R: av(2, 1, 3, 'R', 'R', ['Vp', 'V2', 'V3']),
          A1: av(1, 1, 1, 'R', 'R', ['V2', 'V3']),
          A2: av(0, 1, 1, 'A1', 'R', ['V2', 'V3']),
        },
        vmas: {
          Vp: { anonVma: 'R', chain: ['R'] },
          V2: { anonVma: 'A2', chain: ['A2', 'R', 'A1'] },
          V3: { anonVma: 'A1', chain: ['A1', 'R', 'A2'] },
        },
        procs: [0, 1, 2, 3],
      },
    },
    {
      label: 'step 6: C2 exits -> A2.active 1 -> 0, nothing emptied',
      ops: ['P2 exit'],
      expect: {
        anonVmas: {
          R: av(2, 1, 3, 'R', 'R', ['Vp', 'V3']),
          A1: av(1, 1, 1, 'R', 'R', ['V3']),
          A2: av(0, 0, 1, 'A1', 'R', ['V3']),
        },
        vmas: {
          Vp: { anonVma: 'R', chain: ['R'] },
          V3: { anonVma: 'A1', chain: ['A1', 'R', 'A2'] },
        },
        procs: [0, 1, 3],
      },
    },
    {
      label: 'step 7a: C1 exits (it has no VMA left): no anon_vma changes',
      ops: ['P1 exit'],
      expect: {
        anonVmas: {
          R: av(2, 1, 3, 'R', 'R', ['Vp', 'V3']),
          A1: av(1, 1, 1, 'R', 'R', ['V3']),
          A2: av(0, 0, 1, 'A1', 'R', ['V3']),
        },
        vmas: {
          Vp: { anonVma: 'R', chain: ['R'] },
          V3: { anonVma: 'A1', chain: ['A1', 'R', 'A2'] },
        },
        procs: [0, 3],
      },
    },
    {
      label: 'step 7: V3 unmapped while C2 and C1 are gone -> A1 and A2 freed, R{1,1,1}',
      ops: ['P3 munmap 0 4'],
      expect: {
        anonVmas: {
          R: av(1, 1, 1, 'R', 'R', ['Vp']),
          A1: av(0, 0, 0, 'R', 'R', [], true),
          A2: av(0, 0, 0, 'A1', 'R', [], true),
        },
        vmas: { Vp: { anonVma: 'R', chain: ['R'] } },
        procs: [0, 3],
      },
    },
  ];

  it('matches the digest exactly after every step, with no property violated', () => {
    let s = model.initial();
    const n = new Names();
    expect(checkProperties(model, s)).toEqual([]);
    for (const step of steps) {
      for (const text of step.ops) {
        s = model.next(s, model.parseAction(s, text));
        expect(checkProperties(model, s), `${step.label}: properties after "${text}"`).toEqual([]);
        expect(s.warnings, `${step.label}: kernel asserts after "${text}"`).toEqual([]);
        expect(s.uaf, `${step.label}: use-after-free after "${text}"`).toEqual([]);
      }
      n.update(s);
      expect(observe(s, n), step.label).toEqual(step.expect);
    }
  });

  it('step 5 reuses A1 for V3 (fork reuse, §2.4): same id, no anon_vma allocated', () => {
    let s = model.initial();
    for (const text of ['P0 mmap 0 4', 'P0 fault 0 w', 'P0 fork', 'P1 fork', 'P1 munmap 0 4']) s = model.next(s, model.parseAction(s, text));
    const before = Object.keys(s.anonVmas).map(Number).sort((a, b) => a - b);
    expect(before).toHaveLength(3);
    const [R, A1, A2] = before as [Id, Id, Id];
    const after = model.next(s, model.parseAction(s, 'P2 fork'));
    // The only new anon_vma is anon_vma_fork's preallocation, put back (freed) on reuse.
    const added = Object.keys(after.anonVmas)
      .map(Number)
      .filter((id) => !before.includes(id));
    expect(added).toHaveLength(1);
    expect(after.anonVmas[added[0]!]).toMatchObject({ freed: true, refcount: 0, numChildren: 0, numActiveVmas: 0, tree: [] });
    for (const id of before) expect(after.anonVmas[id]!.freed).toBe(false);
    const v3 = after.vmas[after.mms[3]!.vmas[0]!]!;
    expect(v3.anonVma).toBe(A1);
    expect(v3.chain.map((c) => after.avcs[c]!.anonVma)).toEqual([A1, R, A2]);
    expect(after.anonVmas[R]!.refcount).toBe(s.anonVmas[R]!.refcount);
  });
});
