import { cleanFileName, detectType, type DetectedType } from './inspect.ts';
import { DomainError } from '../errors.ts';

/** What the inspection pool answers: the type and cleaned name, or the refusal to raise. */
export type InspectResult =
  | { ok: true; type: DetectedType; name: string }
  | { ok: false; code: DomainError['code']; message: string; details: Record<string, unknown> };

/**
 * Runs in a worker thread (InspectPool): the type checks scan every byte of
 * a file, up to 10 MB, in JavaScript, which would hold the event loop for
 * tens of milliseconds per upload. The bytes arrive as a copy (a memcpy on
 * the main thread, far cheaper than the scans). A refusal crosses back as data, since an Error
 * thrown across threads loses its class and its code.
 */
export default async function inspect({ bytes, name }: { bytes: Uint8Array; name: string }): Promise<InspectResult> {
  try {
    const type = await detectType(bytes);
    return { ok: true, type, name: cleanFileName(name, type) };
  } catch (error) {
    if (error instanceof DomainError) return { ok: false, code: error.code, message: error.message, details: error.details };
    throw error;
  }
}
