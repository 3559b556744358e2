// Issue 17: threads within a process, per-VMA locks, rwsem wait queues and
// waiting inside a step. Every scenario runs at lock granularity.
import { describe, expect, it } from 'vitest';
import { createMmModel, type Bounds, type MmModel } from '../models/mm/model.ts';
import { loadModel } from '../models/variants/load.ts';
import { formatOp, parseOp, splitOps } from '../models/mm/ops.ts';
import { syscallThread, threadOf, vmaWriteLocked, type State } from '../models/mm/state.ts';
import { ParseError } from '../src/engine/model.ts';
import { explore, replayTexts } from '../src/engine/explorer.ts';
import { ALL_PROPERTIES } from '../properties/index.ts';
import { runCli } from './run-cli.ts';

const THREADS: Partial<Bounds> = { granularity: 'lock', threads: 2, procs: 1, pages: 4, maxLen: 1 };

function model(bounds: Partial<Bounds> = {}, only?: string[], kernel?: { name: string; kernel: MmModel['kernel'] }): MmModel {
  return createMmModel({
    ...(kernel ?? {}),
    bounds: { ...THREADS, ...bounds },
    ...(only ? { properties: ALL_PROPERTIES.filter((p) => only.includes(p.id)) } : {}),
  });
}

function run(m: MmModel, ops: string): State {
  const r = replayTexts(m, m.initial(), splitOps(ops));
  return r.states[r.states.length - 1]!;
}

/** The reason `ops` is refused after `prefix`, or '' when it runs. */
function refusal(m: MmModel, prefix: string, op: string): string {
  try {
    run(m, `${prefix}; ${op}`);
    return '';
  } catch (e) {
    if (e instanceof ParseError) return e.message;
    throw e;
  }
}

const folios = (s: State): number => Object.keys(s.folios).length;

describe('threads within a process', () => {
  it('P0.1 names thread 1 of P0, in the syntax and in steps; P0 stays thread 0', () => {
    const op = parseOp('P0.1 fault 1 w');
    expect(op).toMatchObject({ kind: 'fault', proc: 0, thread: 1 });
    expect(formatOp(op)).toBe('P0.1 fault 1 w');
    expect(parseOp('P0 fault 1 w')).not.toHaveProperty('thread');
    expect(parseOp('P0.1 step')).toMatchObject({ kind: 'step', proc: syscallThread(0, 1) });
    expect(formatOp(parseOp('P2.3 step'))).toBe('P2.3 step');
  });

  it('two threads fault the same page: both allocate, the one that takes the PTE lock second frees its folio', () => {
    const m = model();
    // Page 1's fault prepares the VMA's anon_vma first (three steps: prepare, allocate, map).
    const prepared = 'P0 mmap 0 2; P0 fault 1 w; P0 step; P0 step';
    const mid = run(m, `${prepared}; P0 fault 0 w; P0.1 fault 0 w`);
    // Both wait at the PTE lock inside their faults, each holding the VMA for read, each with a folio.
    expect(threadOf(mid, syscallThread(0, 0))!.pc).toBe('do_anonymous_page_map');
    expect(threadOf(mid, syscallThread(0, 1))!.pc).toBe('do_anonymous_page_map');
    expect(Object.values(mid.vmas)[0]!.readers).toBe(2);
    expect(folios(mid)).toBe(3);
    const end = run(m, `${prepared}; P0 fault 0 w; P0.1 fault 0 w; P0.1 step; P0 step`);
    expect(folios(end)).toBe(2);
    expect(Object.values(end.vmas)[0]!.readers).toBe(0);
    expect(end.mms[0]!.ptes[0]!.writable).toBe(true);
  });

  it('two threads prepare the same VMA: both allocate an anon_vma before the lock; the second sees it set and frees its own', () => {
    const m = model();
    const p = 'P0 mmap 0 1; P0 fault 0 w; P0.1 fault 0 w';
    const mid = run(m, p);
    for (const tid of [syscallThread(0, 0), syscallThread(0, 1)]) {
      const t = threadOf(mid, tid)!;
      expect(t.pc).toBe('__anon_vma_prepare_locked');
      // Under the VMA lock, with the mmap lock trylocked for read (vmf_anon_prepare).
      expect(t.held.map((h) => h.cls)).toEqual(['vma_lock', 'mmap_lock']);
    }
    expect(Object.values(mid.anonVmas).filter((a) => !a.freed)).toHaveLength(2);
    const end = run(m, `${p}; P0 step; P0.1 step; P0 step; P0.1 step`);
    const live = Object.values(end.anonVmas).filter((a) => !a.freed);
    expect(live).toHaveLength(1);
    expect(Object.values(end.vmas)[0]!.anonVma).toBe(live[0]!.id);
    expect(Object.values(end.avcs)).toHaveLength(1);
    expect(end.mms[0]!.mmapLock).toEqual({ writer: -1, readers: 0 });
  });

  it('with one thread a process has no second thread to race, and a fault is one step', () => {
    const m = model({ threads: 1 });
    const s = run(m, 'P0 mmap 0 1; P0 fault 0 w');
    expect(threadOf(s, 0)).toBeUndefined();
    expect(refusal(m, 'P0 mmap 0 1', 'P0.1 fault 0 w')).toMatch(/P0\.1 is beyond --threads 1/);
  });

  it('a write fault that finds the page mapped by another thread meanwhile retries, as the CPU re-runs the store', () => {
    const m = model();
    // P0.1's read fault maps the zero page while P0's write fault waits at the PTE lock.
    const p = 'P0 mmap 0 2; P0 fault 1 w; P0 step; P0 step; P0 fault 0 w; P0.1 fault 0 r; P0 step';
    const s = run(m, p);
    const t = threadOf(s, 0)!;
    expect(t.pc).toBe('issued');
    expect(s.result).toBeUndefined();
    // The retry is a write to the zero page: do_wp_page copies it, and the store lands.
    const end = run(m, `${p}; P0 step`);
    expect(threadOf(end, 0)).toBeUndefined();
    expect(end.mms[0]!.ptes[0]!.writable).toBe(true);
    expect(end.mms[0]!.user[0]).toBe(end.folios[end.mms[0]!.ptes[0]!.folio]!.data[0]);
  });

  it('an mmap issued over a range another thread maps first fails with EEXIST (MAP_FIXED_NOREPLACE) and changes nothing', () => {
    const m = model({ pages: 2, ops: ['mmap', 'munmap'] });
    // P0.1's mmap was issued while P0's munmap had the range detached, and queued on the read lock.
    const s = run(m, 'P0 mmap 0 1; P0 munmap 0 1; P0.1 mmap 0 1; P0 step; P0 step; P0 mmap 0 1; P0.1 step');
    expect(s.result).toEqual({ proc: 0, ret: -17 });
    expect(Object.values(s.vmas).filter((v) => v.attached)).toHaveLength(1);
  });

  it('exit waits for the other threads of the process', () => {
    const m = model();
    expect(refusal(m, 'P0 mmap 0 1; P0 fault 0 w', 'P0.1 exit')).toMatch(/has a syscall in flight on another thread/);
  });
});

describe('per-VMA locks', () => {
  // P0 moves [1,2) to 3 and sits between steps holding the mmap lock for
  // write, with the VMAs the move split write-locked; [0,1) was mapped apart.
  const prefix = 'P0 mmap 0 1 nomerge; P0 fault 0 w; P0 step; P0 step; P0 mmap 1 2; P0 fault 1 w; P0 step; P0 step; P0 mremap 2 1 3 1 maymove,fixed';

  it('a fault on a VMA nobody write-locked runs under its VMA lock while another thread holds the mmap lock for write', () => {
    const m = model();
    const s = run(m, prefix);
    expect(threadOf(s, 0)).toBeDefined();
    expect(s.mms[0]!.mmapLock.writer).toBe(0);
    // A writer of the same mm queues behind P0's write lock.
    expect(threadOf(run(m, `${prefix}; P0.1 mprotect 0 1 r`), syscallThread(0, 1))!.queued).toEqual({ cls: 'mmap_lock', id: 0 });
    // Page 0's VMA is not write-locked: the fault (a COW of nothing: the page is writable) runs.
    const v0 = Object.values(s.vmas).find((v) => v.start === 0)!;
    expect(vmaWriteLocked(v0, s.mms[0]!)).toBe(false);
    expect(refusal(m, prefix, 'P0.1 fault 0 r')).toBe('');
  });

  it('a fault on a write-locked VMA falls back to the mmap read lock and waits for the writer', () => {
    const m = model();
    const s = run(m, prefix);
    const v1 = Object.values(s.vmas).find((v) => v.start === 1 && v.attached)!;
    expect(vmaWriteLocked(v1, s.mms[0]!)).toBe(true);
    expect(refusal(m, prefix, 'P0.1 fault 1 r')).toMatch(/blocked: waits for mmap_lock of P0$/);
  });

  it('a fault that must prepare the anon_vma under the VMA lock trylocks the mmap lock, and retries under it (VM_FAULT_RETRY)', () => {
    const m = model();
    // [4,5) has no anon_vma yet and nobody write-locked it; mmap_read_trylock fails against the writer.
    const p = 'P0 mmap 0 1 nomerge; P0 fault 0 w; P0 step; P0 step; P0 mmap 4 1 nomerge; P0 mmap 1 2; P0 fault 1 w; P0 step; P0 step; P0 mremap 2 1 3 1 maymove,fixed';
    expect(refusal(model({ pages: 5 }), p, 'P0.1 fault 4 w')).toMatch(/blocked: waits for mmap_lock of P0$/);
    // Without the writer the same fault prepares the anon_vma under the read lock it trylocked.
    const s = run(model({ pages: 5 }), 'P0 mmap 4 1; P0.1 fault 4 w; P0.1 step; P0.1 step');
    expect(Object.values(s.vmas)[0]!.anonVma).not.toBe(-1);
    expect(s.mms[0]!.mmapLock).toEqual({ writer: -1, readers: 0 });
    void m;
  });

  it('munmap waits in vma_start_write for a fault holding the VMA for read, and goes on once it is done', () => {
    const m = model();
    // P0.1's fault (the anon_vma prepared by page 1's) waits at the PTE lock holding the VMA alone.
    const p = 'P0 mmap 0 2; P0 fault 1 w; P0 step; P0 step; P0.1 fault 0 w';
    expect(threadOf(run(m, p), syscallThread(0, 1))!.held).toEqual([{ cls: 'vma_lock', id: 0, write: false }]);
    // munmap takes the mmap lock, splits [0,2), and must write-lock the VMA: the whole step waits.
    expect(refusal(m, p, 'P0 munmap 0 1')).toMatch(/blocked: waits for VMA lock of V0/);
    expect(refusal(m, `${p}; P0.1 step`, 'P0 munmap 0 1')).toBe('');
  });
});

describe('rwsem wait queues', () => {
  // P0 is between munmap's steps, downgraded to the mmap read lock.
  const prefix = 'P0 mmap 0 1; P0 mmap 2 1 nomerge; P0 munmap 0 1';

  it('a writer that finds the lock held queues; a new reader and a trylock then wait behind it', () => {
    const m = model({ threads: 3, pages: 5 });
    const s = run(m, `${prefix}; P0.1 mmap 4 1`);
    expect(threadOf(s, syscallThread(0, 1))!.queued).toEqual({ cls: 'mmap_lock', id: 0 });
    // P0.2's fault needs an anon_vma: mmap_read_trylock fails on the queued writer, and the retry's mmap_read_lock waits behind it.
    expect(refusal(m, `${prefix}; P0.1 mmap 4 1`, 'P0.2 fault 2 w')).toMatch(/waits for mmap_lock of P0 \(behind the queued writer P0\.1\)/);
    // Without the queued writer the same fault runs beside munmap's read lock.
    expect(refusal(m, prefix, 'P0.1 fault 2 w')).toBe('');
  });

  it('the queued writer gets the lock once the reader is gone, and leaves the queue', () => {
    const m = model({ pages: 5 });
    const s = run(m, `${prefix}; P0.1 mmap 4 1; P0 step; P0 step; P0.1 step`);
    expect(threadOf(s, syscallThread(0, 1))).toBeUndefined();
    expect(Object.values(s.vmas).some((v) => v.start === 4 && v.attached)).toBe(true);
  });
});

describe('deadlocks of each shape', () => {
  const only = ['no-deadlock'];

  it('reader-writer-reader: a path that takes the mmap read lock again deadlocks with a writer queued between', async () => {
    const loaded = await loadModel('test/fixtures/unmap-rereads-mmap-lock.ts');
    const m = model({ ops: ['mmap', 'munmap'], pages: 3 }, only, loaded);
    const r = explore(m, { depth: 4 });
    expect(r.outcome).toBe('violation');
    expect(r.violations[0]!.detail).toBe(
      'deadlock: P0 at unmap_vmas holds mmap_lock of P0 (read) and waits for mmap_lock of P0 (behind the queued writer P0.1), held by P0.1; P0.1 at issued holds nothing and waits for mmap_lock of P0, held by P0 (read)',
    );
    // P0.1 maps the range P0 is unmapping: it is free once detached, and the mmap queues on P0's read lock.
    expect(r.violations[0]!.traceText).toEqual(['P0 mmap 0 1', 'P0 munmap 0 1', 'P0.1 mmap 0 1']);
  });

  it('ABBA inside one step: move_ptes taking the rmap lock under the PTE lock deadlocks with a walker, found by letting the move sleep inside its step', async () => {
    const loaded = await loadModel('test/fixtures/move-ptes-rmap-lock-under-ptl.ts');
    const m = model({ threads: 1, pages: 3, ops: ['mmap', 'fault', 'mremap'], walkers: 1 }, only, loaded);
    const r = explore(m, { depth: 6 });
    expect(r.outcome).toBe('violation');
    const v = r.violations[0]!;
    expect(v.detail).toMatch(/^deadlock inside a step: P0 at move_page_tables holds mmap_lock of P0, PTE lock of P0 and waits for anon_vma->root->rwsem of A\d, held by W0 \(read\); W0 at \w+ holds folio lock of F\d, anon_vma->root->rwsem of A\d \(read\) and waits for PTE lock of P0, held by P0$/);
    // In the state itself every step can still run: the move, all or nothing, is only not enabled yet.
    expect(m.actions(v.state).length).toBeGreaterThan(0);
  });

  it('mainline has no deadlock of any shape with two threads, walkers and the syscalls that take the locks across steps', () => {
    const m = model({ threads: 2, pages: 3, ops: ['mmap', 'fault', 'munmap', 'mremap'], walkers: 1 }, only);
    const r = explore(m, { depth: 6 });
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('depth-reached');
  });
});

describe('--threads on the command line', () => {
  it('needs lock granularity and at most 4 threads: one line, exit 2', async () => {
    const a = await runCli(['check', '--threads', '2', '--depth', '1']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/--walkers, --threads, --no-reduce and --por need --granularity lock/);
    const b = await runCli(['check', '--granularity', 'lock', '--threads', '5', '--depth', '1']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--threads must be at most 4, got 5/);
  });
});
