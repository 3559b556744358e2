// The piscina worker entry of `mmcheck simulate` (src/engine/simulate.ts).
// Plain JavaScript so that plain node can load it in a fresh thread: it
// registers tsx for this thread, then loads the TypeScript task handler.
import { register } from 'tsx/esm/api';

register();
const { default: handler } = await import('./simulate-task.ts');
export default handler;
