// The piscina worker entry of the parallel explorer (src/engine/parallel.ts).
// Plain JavaScript so that plain node can load it in a fresh thread: it
// registers tsx for this thread, then loads the TypeScript task handler.
import { register } from 'tsx/esm/api';

register();
const { default: handler } = await import('./expand-task.ts');
export default handler;
