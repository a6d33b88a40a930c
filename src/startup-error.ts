/**
 * A reason the process cannot start that the operator can act on: the entry
 * points print its message alone, as one line, and exit with code 1.
 */
export class StartupError extends Error {
  override name = 'StartupError';
}
