import { buildApp, type App } from './app.ts';
import { loadConfig } from './config.ts';
import { StartupError } from './startup-error.ts';

// Started as `npm start`, this process is node itself: the script `exec`s
// node, so the SIGTERM npm forwards to its child reaches these handlers
// (through `sh -c` without exec it killed only the shell and left the server
// running). Node is also PID 1 in the container image, where no default
// signal action applies: without handlers it would ignore SIGTERM.

/** A StartupError is what the operator can fix from its message alone: one line, no stack. */
function failStart(error: unknown): never {
  console.error(error instanceof StartupError ? error.message : error);
  process.exit(1);
}

const config = (() => {
  try {
    return loadConfig();
  } catch (error) {
    return failStart(error);
  }
})();
const app: App = await buildApp(config).catch(failStart);
try {
  await app.start();
} catch (error) {
  // The database, pub/sub and the data directory lock are already held.
  await Promise.race([app.stop().catch(() => {}), new Promise((resolve) => setTimeout(resolve, config.shutdownGraceMs).unref())]);
  failStart(error);
}

// stop() bounds each of its steps; this only covers a step that ignores that.
const HARD_STOP_SLACK_MS = 15_000;

let stopping = false;
async function shutdown(signal: NodeJS.Signals) {
  // Ctrl-C signals the whole process group, and npm forwards the same signal
  // to us again: one graceful stop serves both.
  if (stopping) {
    app.log.debug({ signal }, 'signal received again during shutdown');
    return;
  }
  stopping = true;
  app.log.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down');
  // A forced stop drops Redis connections, failing the commands queued on
  // them, some of which nobody awaits (graphql-redis-subscriptions' UNSUBSCRIBE):
  // that must not crash the process before the database is closed.
  process.on('unhandledRejection', (error) => app.log.warn({ err: error }, 'unhandled rejection while shutting down'));
  setTimeout(() => {
    app.log.fatal({ signal }, 'shutdown did not finish in time; exiting');
    process.exit(1);
  }, config.shutdownGraceMs + HARD_STOP_SLACK_MS).unref();
  try {
    await app.stop();
    app.log.info('stopped');
    process.exit(0);
  } catch (error) {
    // A forced stop (a dependency that did not answer) exits non-zero so a
    // supervisor or deploy log shows that something was cut short.
    app.log.error({ err: error }, 'shutdown forced');
    process.exit(1);
  }
}
process.on('SIGTERM', (signal) => void shutdown(signal));
process.on('SIGINT', (signal) => void shutdown(signal));
