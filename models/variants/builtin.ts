// The built-in variants: importing this module registers them (registry.ts).
import { registerVariant } from './registry.ts';
import { b1aPrepareReuse2010, seed001AnonVmaMerge, seed001MergeDropsChain } from './corpus/b1a-prepare-reuse-2010.ts';
import { b2DegreeBuggy, b2DegreeFixed } from './corpus/b2-degree.ts';
import { b3bCloneEnomemBuggy, b3bCloneEnomemFixed } from './corpus/b3b-clone-enomem.ts';
import { b5aMremapNoRmapLocks } from './corpus/b5a-mremap-no-rmap-locks.ts';
import { vl1VmaLinkUnlocked } from './corpus/vl1-vma-link-unlocked.ts';
import { b8ePutRootFirst } from './corpus/b8e-put-root-first.ts';
import { seed000CleanupNoReset } from './corpus/seed000-cleanup-no-reset.ts';
import { uv1ForkCopyNoData, uv2MergeAbortKeepsDup } from './corpus/uv-contents.ts';
import { relocateChildrenOnly, relocateRfcV2, relocateV3 } from './relocate/relocate-anon.ts';

for (const v of [
  b1aPrepareReuse2010,
  seed001MergeDropsChain,
  seed001AnonVmaMerge,
  b2DegreeBuggy,
  b2DegreeFixed,
  b3bCloneEnomemBuggy,
  b3bCloneEnomemFixed,
  b5aMremapNoRmapLocks,
  vl1VmaLinkUnlocked,
  b8ePutRootFirst,
  seed000CleanupNoReset,
  uv1ForkCopyNoData,
  uv2MergeAbortKeepsDup,
  relocateRfcV2,
  relocateChildrenOnly,
  relocateV3,
])
  registerVariant(v);
