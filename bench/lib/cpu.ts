import { cpus } from 'node:os';

/** Busy and total CPU time of all cores since boot, in ms. */
export function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const cpu of cpus()) {
    const t = cpu.times;
    const all = t.user + t.nice + t.sys + t.idle + t.irq;
    total += all;
    busy += all - t.idle;
  }
  return { busy, total };
}

/** Share of the machine's CPU time that was busy between two `cpuTimes()` samples. */
export function busyShare(before: { busy: number; total: number }, after: { busy: number; total: number }): number {
  return (after.busy - before.busy) / (after.total - before.total);
}

/** Share of the machine's CPU time that was idle during the next `ms`: other work skews every number. */
export async function idleShare(ms: number): Promise<number> {
  const before = cpuTimes();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return 1 - busyShare(before, cpuTimes());
}
