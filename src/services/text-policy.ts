/**
 * The input policy for text that names things (display names, channel and
 * project names, titles): no character that hides itself or reorders the text
 * around it, so a name cannot pass for another (Trojan Source, CVE-2021-42574).
 * Message bodies keep what users type, but never carry an unclosed bidi
 * embedding, override or isolate past their end (`closeBidi`). File names are
 * cleaned apart (files/inspect.ts).
 */

/** Bidirectional controls: embeddings, overrides, isolates, marks. */
const BIDI = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;

/**
 * Characters that show nothing or may be shown as nothing: C0 and C1
 * controls, soft hyphen, combining grapheme joiner, Hangul fillers, Khmer
 * and Mongolian invisibles, zero-width space, word joiner and invisible
 * operators, deprecated format characters, byte order mark, interlinear
 * annotation, tag characters.
 */
const INVISIBLE =
  // eslint-disable-next-line no-control-regex, no-misleading-character-class -- the class lists exactly these code points, one by one
  /[\u0000-\u001F\u007F-\u009F\u00AD\u034F\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B\u2060-\u2064\u206A-\u206F\u3164\uFEFF\uFFA0\uFFF9-\uFFFB\u{E0000}-\u{E007F}]/u;

/** Joiners are fine where scripts and emoji need them; these take them out of the text before the check. */
const ALLOWED_JOINS = [
  // An emoji ZWJ sequence (👨‍👩‍👧): a joiner between two pictographs (each perhaps with VS16 or a skin tone).
  // eslint-disable-next-line no-misleading-character-class -- VS16 and the skin tones are wanted one by one
  /(?<=\p{Extended_Pictographic}[\uFE0F\u{1F3FB}-\u{1F3FF}]?)\u200D(?=\p{Extended_Pictographic})/gu,
  // A zero-width non-joiner between letters (Persian, Indic scripts): "می‌خواهم".
  /(?<=\p{L}\p{M}*)\u200C(?=\p{L})/gu,
  // A subdivision flag (🏴󠁧󠁢󠁳󠁣󠁴󠁿): tag letters after the black flag, closed by the cancel tag.
  /\u{1F3F4}[\u{E0030}-\u{E0039}\u{E0061}-\u{E007A}]+\u{E007F}/gu,
];

/** Why `text` breaks the naming policy (the first offending character and where), or null when it does not. */
export function hiddenCharacterIn(text: string): string | null {
  let rest = text;
  for (const allowed of ALLOWED_JOINS) rest = rest.replace(allowed, (m) => (m.startsWith('\u{1F3F4}') ? '\u{1F3F4}' : ''));
  // Any joiner left is outside an emoji or a word.
  const found = BIDI.exec(rest) ?? INVISIBLE.exec(rest) ?? /[\u200C\u200D]/u.exec(rest);
  if (!found) return null;
  const code = found[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
  return `must not contain invisible or bidirectional control characters (U+${code})`;
}

const OPENS_EMBEDDING = new Set(['\u202A', '\u202B', '\u202D', '\u202E']);
const OPENS_ISOLATE = new Set(['\u2066', '\u2067', '\u2068']);
const POP_EMBEDDING = '\u202C';
const POP_ISOLATE = '\u2069';

/**
 * `body` with every bidi embedding, override and isolate it leaves open
 * closed at its end (UAX #9 matching: a PDF closes the innermost embedding
 * opened since the last open isolate; a PDI closes the innermost isolate and
 * any embedding opened inside it). Nothing else changes, so right-to-left
 * text and balanced controls stay as typed, and whatever a client shows
 * after a message is not reordered by it.
 */
export function closeBidi(body: string): string {
  const open: ('embedding' | 'isolate')[] = [];
  for (const ch of body) {
    if (OPENS_EMBEDDING.has(ch)) open.push('embedding');
    else if (OPENS_ISOLATE.has(ch)) open.push('isolate');
    else if (ch === POP_EMBEDDING) {
      if (open.at(-1) === 'embedding') open.pop();
    } else if (ch === POP_ISOLATE) {
      const isolate = open.lastIndexOf('isolate');
      if (isolate >= 0) open.length = isolate;
    }
  }
  if (!open.length) return body;
  return (
    body +
    open
      .reverse()
      .map((kind) => (kind === 'embedding' ? POP_EMBEDDING : POP_ISOLATE))
      .join('')
  );
}
