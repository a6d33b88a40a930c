import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join, relative, isAbsolute } from 'node:path';
import { StartupError } from '../startup-error.ts';

/** Another live process holds the data directory. */
export class DataDirectoryInUse extends StartupError {
  constructor(dataDir: string, pid: number) {
    super(`data directory ${shown(dataDir)} is in use by process ${pid}`);
  }
}

export interface DataDirLock {
  release(): void;
}

/**
 * Takes `dataDir/parley.pid` for this process. PGlite has no lock of its own:
 * two processes on one directory each believe they own the files, and the
 * second one's writes (a seed, say) are lost or corrupt the first's. A file
 * left by a process that died is taken over.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  const file = join(dataDir, 'parley.pid');
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number.parseInt(readFileSync(file, 'utf8'), 10);
      const live = Number.isInteger(holder) && holder > 0 && alive(holder);
      // A second try that finds the file again lost a race for a stale lock.
      if (live || attempt > 0) throw new DataDirectoryInUse(dataDir, holder);
      rmSync(file, { force: true });
    }
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      rmSync(file, { force: true });
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The directory as the operator named it: relative to where they stand when it is inside. */
function shown(dir: string): string {
  const rel = relative(process.cwd(), dir);
  if (rel === '') return '.';
  return rel.startsWith('..') || isAbsolute(rel) ? dir : `./${rel}`;
}
