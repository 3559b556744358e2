// Between tests, a turn of the event loop. vitest's runner goes from one
// test to the next on promises alone, so a file of synchronous tests can
// hold the worker's thread for the sum of their times; its RPC answers from
// the main process wait until then and time out after a minute on a loaded
// machine, failing `npm test` with every test passing (issue 14).
import { afterEach } from 'vitest';

afterEach(() => new Promise<void>((r) => setImmediate(r)));
