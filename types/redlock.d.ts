// redlock@5.0.0-beta.2 ships dist/index.d.ts, but its "exports" map has no "types" condition, so
// moduleResolution nodenext cannot find it (TS7016). Re-export it here (see TOOLCHAIN.md).
declare module 'redlock' {
  export * from 'redlock-types';
  export { default } from 'redlock-types';
}
