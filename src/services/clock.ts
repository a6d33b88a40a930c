/**
 * The time services reason with where it matters beyond one request (SLA due
 * times and breaches). Tests move it forward to see a clock run out without
 * waiting; PostgreSQL's own now() is not used for those timestamps, so the
 * two cannot disagree.
 */
export class Clock {
  private offsetMs = 0;

  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  /** Moves this process's time forward (tests). */
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}
