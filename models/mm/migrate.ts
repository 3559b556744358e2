// mm/migrate.c, the part of migration an rmap walker sees (kernel-semantics
// §1.3, §2.12): the walk of remove_migration_ptes. The rest of migration
// (the walker in walkers.ts: folio lock, folio_get_anon_vma, the sleep,
// put_anon_vma) is not a kernel function a variant would replace here.
//
// Not modelled: migration entries and moving the folio's contents.
// try_to_migrate's walk, which would replace each PTE by a migration entry,
// is left out; the PTEs stay as they are and stand for those entries, and
// remove_migration_ptes finds them where the migration entries would be.
// So a migrate walker changes no PTE, no mapcount and no content.
import { vmaR, type Ctx } from './ctx.ts';
import { pte_lock, pte_unlock } from './locks.ts';
import type { Id } from './state.ts';

/**
 * remove_migration_pte (migrate.c; §2.12): the rmap_one of
 * remove_migration_ptes on one VMA. page_vma_mapped_walk under the VMA's
 * PTL finds the folio's entries at vma_address; the kernel would restore
 * each as a PTE of the new folio. Returns the pages found, by address.
 */
export function remove_migration_pte(c: Ctx, folioId: Id, vmaId: Id): number[] {
  const mmId = vmaR(c, vmaId).mm;
  pte_lock(c, mmId);
  const found = c.k.page_vma_mapped_walk(c, folioId, vmaId);
  pte_unlock(c, mmId);
  return found;
}
