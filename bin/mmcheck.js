#!/usr/bin/env node
// Entry point: registers tsx so the TypeScript sources (and user variants
// written in TypeScript) load at run time without a build step.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli.ts');
