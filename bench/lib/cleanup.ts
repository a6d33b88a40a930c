/**
 * Steps that undo a benchmark run (drop the database, stop servers and child
 * processes), run in reverse on success, failure or Ctrl-C.
 */
export const cleanups: (() => Promise<unknown> | unknown)[] = [];

export async function cleanup(): Promise<void> {
  for (const step of cleanups.splice(0).reverse()) {
    try {
      await step();
    } catch (error) {
      console.error('cleanup:', (error as Error).message);
    }
  }
}

/** Ctrl-C also reaches the child processes, whose exit then fails the step in progress: not worth a stack trace. */
export const interruption = { interrupted: false };
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interruption.interrupted = true;
    console.error(`\n${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

/**
 * Runs a benchmark's `main`: an error fails the run (printed unless Ctrl-C
 * caused it), and the cleanups run whatever happened.
 */
export async function runBenchmark(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    if (!interruption.interrupted) console.error(error);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}
