// B2, CVE-2022-42703 (bug-corpus.md; digest §8): from 7a3ef208e662 (2015) to
// 2555283eb40d (2022) fork reuse was decided by one counter, degree = VMAs
// using the anon_vma + child anon_vmas (a root counting its self link): a
// fork adopted the oldest anon_vma in the source chain other than the
// source's own with degree < 2. degree == 1 cannot tell "no VMA, one child"
// from "one VMA, no child", so an anon_vma still in use could be adopted
// again. The counter is kept as the extra field `degree`; num_children and
// num_active_vmas stay maintained as the ground truth the properties check.
import { anonVmaBookkeeping, av, vma, type Ctx } from '../../mm/ctx.ts';
import { NIL, type Id } from '../../mm/state.ts';
import type { Variant } from '../registry.ts';
import { anon_vma_clone_6x, anon_vma_fork_6x, unlink_anon_vmas_6x } from './clone-6x.ts';

const bump = (c: Ctx, id: Id, by: number): void => {
  // A degree update on a freed anon_vma is not a kernel access in this model.
  const a = anonVmaBookkeeping(c, id);
  if (a !== undefined) a.ext = { ...a.ext, degree: (a.ext?.degree ?? 0) + by };
};
const degree = (c: Ctx, id: Id): number => c.s.anonVmas[id]?.ext?.degree ?? 0;

/** The 2015-2022 anon_vma family with `degree`; `reuse` decides adoption. */
function degreeVariant(name: string, description: string, reuse: (c: Ctx, src: Id, candidate: Id) => boolean): Variant {
  return {
    name,
    base: 'mainline',
    description,
    overrides: (base) => ({
      anon_vma_alloc(c) {
        const id = base.anon_vma_alloc(c);
        if (id !== NIL) av(c, id, 'anon_vma_alloc').ext = { degree: 1 };
        return id;
      },
      __anon_vma_prepare(c, vmaId) {
        const ret = base.__anon_vma_prepare(c, vmaId);
        const a = vma(c, vmaId).anonVma;
        if (ret === 0 && a !== NIL) bump(c, a, 1);
        return ret;
      },
      anon_vma_clone: (c, dst, src, op) =>
        anon_vma_clone_6x(c, dst, src, op, {
          reuse: (cc, _d, s, candidate) => reuse(cc, s, candidate),
          onEnomem: (cc, d) => {
            vma(cc, d).anonVma = NIL;
            cc.k.unlink_anon_vmas(cc, d);
          },
          onActive: (cc, a) => bump(cc, a, 1),
        }),
      anon_vma_fork: (c, v, p) => anon_vma_fork_6x(c, v, p, (cc, a) => bump(cc, av(cc, a, 'anon_vma_fork').parent, 1)),
      unlink_anon_vmas(c, vmaId) {
        const v = vma(c, vmaId);
        const own = v.anonVma;
        const linked = v.chain.map((id) => c.s.avcs[id]!.anonVma);
        unlink_anon_vmas_6x(c, vmaId);
        for (const a of linked) if (c.s.anonVmas[a]!.tree.length === 0) bump(c, c.s.anonVmas[a]!.parent, -1);
        if (own !== NIL) bump(c, own, -1);
      },
    }),
  };
}

export const b2DegreeBuggy = degreeVariant(
  'b2-degree',
  'B2, CVE-2022-42703: fork reuse by degree < 2 and not the source anon_vma (7a3ef208e662 .. 2555283eb40d)',
  (c, src, candidate) => candidate !== vma(c, src).anonVma && degree(c, candidate) < 2,
);

export const b2DegreeFixed = degreeVariant(
  'b2-degree-fixed',
  'B2 fixed (2555283eb40d): the 6.x clone with reuse iff num_active_vmas == 0 and num_children < 2',
  (c, _src, candidate) => c.s.anonVmas[candidate]!.numActiveVmas === 0 && c.s.anonVmas[candidate]!.numChildren < 2,
);
