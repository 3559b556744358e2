// no-deadlock (DESIGN.md §4; kernel-semantics §6): some thread is in flight
// and none can take its next step. Whether a step can run depends on the
// kernel variant's code, so the model supplies that oracle; the property is
// a pure function of the state given it. At syscall granularity there are
// no threads in flight, and nothing can deadlock.
import type { Property } from '../src/engine/model.ts';
import { anyThread, forEachThread, threadOf, type Id, type LockClass, type State, type Thread } from '../models/mm/state.ts';
import { threadName } from '../models/mm/ops.ts';
import { lockName } from '../models/mm/locks.ts';

/** The lock a thread's next step waits for, as the model's WouldBlock reports it. */
export interface Waiting {
  lock: string;
  cls: LockClass;
  id: Id;
  /** The writer or spinlock holder, or -1 when readers hold it. */
  holder: Id;
  /** Locks the step took before it came to this one (it waits holding them). */
  acquired: number;
  /** The step released nothing before it came here: it stays blocked while the lock is held. */
  firm: boolean;
}

/** null when thread tid's next step can run in s. */
export type BlockedOracle = (s: State, tid: Id) => Waiting | null;

/**
 * The state in which thread tid's next step waits inside itself, holding
 * the locks it took in the step so far, or null (the kernel's thread sleeps
 * there; the model's step, all or nothing, is just not enabled).
 */
export type StuckOracle = (s: State, tid: Id) => { state: State; wait: Waiting } | null;

/** Who holds the lock w waits for: its writer, or the threads holding it for read. */
function holders(s: State, w: Waiting): string {
  if (w.holder >= 0) return threadName(w.holder) + (threadOf(s, w.holder) === undefined ? ' (not running: the lock leaked)' : '');
  const readers: Thread[] = [];
  forEachThread(s, (t) => {
    if (t.held.some((h) => h.cls === w.cls && h.id === w.id)) readers.push(t);
  });
  return readers.length > 0 ? readers.map((t) => `${threadName(t.id)} (read)`).join(', ') : 'readers not running (the lock leaked)';
}

/**
 * Every lock held in s is on some thread's held list: nothing leaked. Each
 * holding (a writer, a reader, a spinlock or folio lock holder) is one entry.
 */
function noLeakedLock(s: State): boolean {
  let onLists = 0;
  forEachThread(s, (t) => (onLists += t.held.length));
  let held = 0;
  for (const key in s.mms) {
    const m = s.mms[key]!;
    held += (m.mmapLock.writer >= 0 ? 1 : 0) + m.mmapLock.readers + (m.pageTableLock >= 0 ? 1 : 0) + (m.ptl >= 0 ? 1 : 0);
  }
  for (const key in s.anonVmas) {
    const l = s.anonVmas[key]!.rwsem;
    held += (l.writer >= 0 ? 1 : 0) + l.readers;
  }
  for (const key in s.folios) if (s.folios[key]!.locked >= 0) held++;
  for (const key in s.vmas) held += s.vmas[key]!.readers;
  return held === onLists;
}

/**
 * A step waits only for a lock another thread holds (or one that leaked),
 * or, as a reader, behind a queued writer (another thread too). So when one
 * thread is in flight, or none holds a lock or is queued, and none leaked,
 * every thread can step without asking the oracle, which runs a step. (One
 * holder among several threads is not enough: a thread can take a lock
 * inside its step and then wait for the holder, which waits for it; or the
 * holder can wait for a read lock behind a writer that waits for it.)
 */
function someThreadFree(s: State): boolean {
  let threads = 0;
  let busy = false;
  forEachThread(s, (t) => {
    threads++;
    if (t.held.length > 0 || t.queued !== undefined) busy = true;
  });
  return (threads <= 1 || !busy) && noLeakedLock(s);
}

/** "P0 at move_ptes holds ... and waits for ..., held by ...". */
function waitLine(s: State, t: Thread, w: Waiting): string {
  const held = t.held.map((h) => `${lockName(h.cls, h.id)}${h.write ? '' : ' (read)'}`).join(', ') || 'nothing';
  return `${threadName(t.id)} at ${t.pc} holds ${held} and waits for ${w.lock}, held by ${holders(s, w)}`;
}

/** Every thread of s is blocked for good (each thread's wait is firm): their wait lines, or null. */
function allFirmlyBlocked(s: State, blocked: BlockedOracle, except: Id): string[] | null {
  const lines: string[] = [];
  let ok = true;
  forEachThread(s, (t) => {
    if (!ok || t.id === except) return;
    const w = blocked(s, t.id);
    if (w === null || !w.firm) ok = false;
    else lines.push(waitLine(s, t, w));
  });
  return ok ? lines : null;
}

export function noDeadlockWith(blocked: BlockedOracle, stuck?: StuckOracle): Property<State> {
  return {
    id: 'no-deadlock',
    description: 'whenever a thread is in flight, some thread can take its next step, also when one sleeps inside its step holding what it took there',
    rule: 'kernel-semantics §6.1 (the lock hierarchy every path follows), §6.2 (who holds what)',
    when: 'always',
    check(s) {
      // No thread in flight (every state at syscall granularity): nothing can wait.
      if (!anyThread(s) || someThreadFree(s)) return [];
      const waits: string[] = [];
      const inside: Thread[] = [];
      let free = false;
      forEachThread(s, (t) => {
        const w = blocked(s, t.id);
        if (w === null) free = true;
        else {
          waits.push(waitLine(s, t, w));
          if (w.acquired > 0 && w.firm) inside.push(t);
        }
      });
      if (!free && waits.length > 0) return [`deadlock: ${waits.join('; ')}`];
      // ABBA inside one step: a thread that takes a lock, then sleeps on the
      // next inside the same step, holding the first, while everyone else
      // waits for good. Its step would have stopped there in the kernel.
      for (const t of inside) {
        const p = stuck?.(s, t.id);
        if (!p) continue;
        const others = allFirmlyBlocked(p.state, blocked, t.id);
        if (others === null) continue;
        return [`deadlock inside a step: ${[waitLine(p.state, threadOf(p.state, t.id)!, p.wait), ...others].join('; ')}`];
      }
      return [];
    },
  };
}

/** At syscall granularity nothing is ever in flight; the model replaces this at lock granularity. */
export const noDeadlock = noDeadlockWith(() => null);
