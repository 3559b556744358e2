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
}

/** null when thread tid's next step can run in s. */
export type BlockedOracle = (s: State, tid: Id) => Waiting | null;

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
 * or, as a reader, behind a queued writer. So when at most one thread holds
 * locks, none is queued and none leaked, some thread can step without
 * asking the oracle, which runs a step. (With a queued writer one holder
 * is enough: it can wait for a read lock behind the writer that waits for it.)
 */
function someThreadFree(s: State): boolean {
  let holding = 0;
  let queued = false;
  forEachThread(s, (t) => {
    if (t.held.length > 0) holding++;
    if (t.queued !== undefined) queued = true;
  });
  return holding <= 1 && !queued && noLeakedLock(s);
}

export function noDeadlockWith(blocked: BlockedOracle): Property<State> {
  return {
    id: 'no-deadlock',
    description: 'whenever a thread is in flight, some thread can take its next step',
    rule: 'kernel-semantics §6.1 (the lock hierarchy every path follows), §6.2 (who holds what)',
    when: 'always',
    check(s) {
      const waits: string[] = [];
      // No thread in flight (every state at syscall granularity): nothing can wait.
      if (!anyThread(s) || someThreadFree(s)) return [];
      const threads: Thread[] = [];
      forEachThread(s, (t) => threads.push(t));
      for (const t of threads) {
        const w = blocked(s, t.id);
        if (w === null) return [];
        const held = t.held.map((h) => `${lockName(h.cls, h.id)}${h.write ? '' : ' (read)'}`).join(', ') || 'nothing';
        waits.push(`${threadName(t.id)} at ${t.pc} holds ${held} and waits for ${w.lock}, held by ${holders(s, w)}`);
      }
      if (waits.length === 0) return [];
      return [`deadlock: ${waits.join('; ')}`];
    },
  };
}

/** At syscall granularity nothing is ever in flight; the model replaces this at lock granularity. */
export const noDeadlock = noDeadlockWith(() => null);
