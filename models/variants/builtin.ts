// The built-in variants: importing this module registers them (registry.ts).
