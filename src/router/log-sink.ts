// Where the router's lines go. Every line the router writes (calls, failures,
// shadow checks, readiness changes, warnings, training) passes through one
// sink, so a caller can take them all (RouterOptions.log) and nothing else in
// src/router/ writes to stderr.
export type LogSink = (line: string) => void;

/**
 * The caller's sink, which gets every line (already redacted); without one,
 * lines go to stderr, one per line, unless `quiet`.
 */
export function makeLogSink(log: LogSink | undefined, quiet: boolean): LogSink {
  if (log) {
    return (line) => {
      try {
        log(line);
      } catch {
        // A failing sink must not fail the call whose line it was given.
      }
    };
  }
  if (quiet) return () => {};
  return (line) => {
    process.stderr.write(`${line}\n`);
  };
}
