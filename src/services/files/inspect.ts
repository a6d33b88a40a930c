import { promisify } from 'node:util';
import { constants as zlibConstants, inflate } from 'node:zlib';
import CFB from 'cfb';
import { fileTypeFromBuffer } from 'file-type';
import JSZip from 'jszip';
import type { AttachmentKind } from '../../generated/prisma/client.ts';
import { badInput } from '../errors.ts';

/**
 * What an upload is, decided from its bytes alone: the name and the declared
 * content type are never trusted. The policy, in one place:
 *
 * | kind        | accepted                          | refused among them                                 |
 * | ----------- | --------------------------------- | -------------------------------------------------- |
 * | IMAGE       | JPEG, PNG, GIF, WebP, BMP         | images whose bytes carry HTML/SVG markup (polyglots) |
 * | PDF         | PDF                               | JavaScript, launch actions, embedded files, markup |
 * | DOCUMENT    | .doc (CFB WordDocument), .docx    | macros (.docm, vbaProject.bin, Macros storage)     |
 * | SPREADSHEET | .xls (CFB Workbook/Book), .xlsx   | macros (.xlsm, vbaProject.bin, _VBA_PROJECT_CUR)   |
 * | TEXT        | UTF-8 text: CSV or plain          | control characters, markup a browser would run     |
 *
 * Everything else (SVG, HTML, XML, executables, archives, other Office files,
 * empty files) is refused with BAD_USER_INPUT naming what is allowed.
 */
export interface DetectedType {
  kind: AttachmentKind;
  contentType: string;
  /** Canonical extension, without the dot. */
  ext: string;
}

export const ALLOWED_TYPES_TEXT =
  'Allowed: images (JPEG, PNG, GIF, WebP, BMP), PDF, Word (.doc, .docx), Excel (.xls, .xlsx), plain text and CSV (UTF-8).';

const refuse = (reason: string) => badInput('file', `${reason}. ${ALLOWED_TYPES_TEXT}`);

const IMAGES: Record<string, DetectedType> = {
  'image/jpeg': { kind: 'IMAGE', contentType: 'image/jpeg', ext: 'jpg' },
  'image/png': { kind: 'IMAGE', contentType: 'image/png', ext: 'png' },
  // An animated PNG is a PNG (its first frame for decoders that know no APNG).
  'image/apng': { kind: 'IMAGE', contentType: 'image/png', ext: 'png' },
  'image/gif': { kind: 'IMAGE', contentType: 'image/gif', ext: 'gif' },
  'image/webp': { kind: 'IMAGE', contentType: 'image/webp', ext: 'webp' },
  'image/bmp': { kind: 'IMAGE', contentType: 'image/bmp', ext: 'bmp' },
};
const PDF: DetectedType = { kind: 'PDF', contentType: 'application/pdf', ext: 'pdf' };
const DOC: DetectedType = { kind: 'DOCUMENT', contentType: 'application/msword', ext: 'doc' };
const DOCX: DetectedType = {
  kind: 'DOCUMENT',
  contentType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  ext: 'docx',
};
const XLS: DetectedType = { kind: 'SPREADSHEET', contentType: 'application/vnd.ms-excel', ext: 'xls' };
const XLSX: DetectedType = {
  kind: 'SPREADSHEET',
  contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  ext: 'xlsx',
};
const TEXT: DetectedType = { kind: 'TEXT', contentType: 'text/plain', ext: 'txt' };
const CSV: DetectedType = { kind: 'TEXT', contentType: 'text/csv', ext: 'csv' };

/** Extensions a name may keep for each content type; any other gets the canonical one appended. */
const EXTENSIONS: Record<string, readonly string[]> = {
  'image/jpeg': ['jpg', 'jpeg', 'jpe', 'jfif'],
  'image/png': ['png'],
  'image/gif': ['gif'],
  'image/webp': ['webp'],
  'image/bmp': ['bmp', 'dib'],
  'application/pdf': ['pdf'],
  'application/msword': ['doc', 'dot'],
  [DOCX.contentType]: ['docx'],
  'application/vnd.ms-excel': ['xls', 'xlt'],
  [XLSX.contentType]: ['xlsx'],
  // Only names no system runs or renders: "notes.js" becomes "notes.js.txt".
  'text/plain': ['txt', 'text', 'log', 'md', 'markdown', 'csv', 'tsv', 'json', 'yaml', 'yml', 'ini', 'cfg', 'conf'],
  'text/csv': ['csv', 'txt'],
};

/** Markup a browser would render or run, inside an image or a PDF (polyglots). A tag name ends at whitespace, `/` or `>`. */
const BINARY_MARKUP = /<(?:script|html|svg|iframe|body)[\s/>]|<!doctype\s+html/i;
/** Markup refused in text files. */
const TEXT_MARKUP = /<(?:script|html|svg|iframe|object|embed|body)(?:[\s/>]|$)|<!doctype|<\?xml/i;
/** C0 controls other than tab, LF, FF and CR; NUL included. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const TEXT_CONTROL = /[\x00-\x08\x0B\x0E-\x1F]/;

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

function refusePolyglot(text: string, what: string): void {
  if (BINARY_MARKUP.test(text)) throw refuse(`This ${what} also contains HTML or SVG markup (a polyglot file) and is refused`);
}

/**
 * Decides the type from the bytes only (magic bytes via `file-type`, then a
 * look inside PDFs, Office containers and text). Throws BAD_USER_INPUT for
 * anything refused, saying why and what is allowed.
 */
export async function detectType(bytes: Uint8Array): Promise<DetectedType> {
  if (bytes.byteLength === 0) throw refuse('The file is empty');
  const found = await fileTypeFromBuffer(bytes);
  if (!found) return detectText(bytes);

  const image = Object.hasOwn(IMAGES, found.mime) ? IMAGES[found.mime] : undefined;
  if (image) {
    refusePolyglot(latin1(bytes), 'image');
    return image;
  }
  switch (found.ext) {
    case 'pdf':
      await inspectPdf(bytes);
      return PDF;
    case 'cfb':
      return inspectCfb(bytes);
    case 'docx':
      await inspectOpenXml(bytes, 'Word document');
      return DOCX;
    case 'xlsx':
      await inspectOpenXml(bytes, 'Excel workbook');
      return XLSX;
    case 'docm':
    case 'dotm':
    case 'xlsm':
    case 'xltm':
    case 'pptm':
    case 'potm':
    case 'ppsm':
      throw refuse(`Macro-enabled Office files (.${found.ext}) are refused`);
    case 'xml':
      throw refuse('XML (and SVG) files are refused');
    default:
      throw refuse(`This file type (${found.ext}) is not allowed`);
  }
}

// --- text ---------------------------------------------------------------

function detectText(bytes: Uint8Array): DetectedType {
  let text: string;
  try {
    // The default ignoreBOM: false strips one leading UTF-8 BOM.
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw refuse('This file type is not recognised and is not UTF-8 text');
  }
  if (TEXT_CONTROL.test(text)) throw refuse('This file is neither a recognised type nor text (it contains control characters)');
  if (TEXT_MARKUP.test(text)) throw refuse('Text containing HTML, SVG or XML markup is refused');
  return looksLikeCsv(bytes) ? CSV : TEXT;
}

/**
 * At least two non-empty records, each with the same number (≥ 1) of commas,
 * or each with the same number of semicolons, outside double quotes (a quoted
 * field may hold separators and line breaks). Reads the UTF-8 bytes: the
 * characters that matter are ASCII, which no multi-byte sequence contains.
 */
export function looksLikeCsv(bytes: Uint8Array): boolean {
  let records = 0;
  let commaCount = 0;
  let semicolonCount = 0;
  let commas = 0;
  let semicolons = 0;
  let empty = true;
  let quoted = false;
  const length = bytes.length;
  // One pass past the end, as if the text ended with a line break.
  for (let i = 0; i <= length; i++) {
    const c = i === length ? 0x0a : bytes[i];
    if (c === 0x22 /* " */) {
      quoted = !quoted;
      empty = false;
    } else if (quoted) {
      continue;
    } else if (c === 0x0a || c === 0x0d) {
      if (!empty) {
        records += 1;
        if (records === 1) {
          commaCount = commas;
          semicolonCount = semicolons;
        } else {
          // A count that disagrees once rules that separator out.
          if (commas !== commaCount) commaCount = 0;
          if (semicolons !== semicolonCount) semicolonCount = 0;
        }
        if (commaCount === 0 && semicolonCount === 0) return false;
      }
      commas = 0;
      semicolons = 0;
      empty = true;
    } else if (c === 0x2c /* , */) {
      commas += 1;
      empty = false;
    } else if (c === 0x3b /* ; */) {
      semicolons += 1;
      empty = false;
    } else if (c !== 0x20 && c !== 0x09) {
      empty = false;
    }
  }
  return !quoted && records >= 2;
}

// --- PDF ----------------------------------------------------------------

/** Names that make a PDF act rather than display (scripts, launching programs, carrying other files, Flash). */
const ACTIVE_PDF_NAMES = new Map([
  ['JavaScript', 'JavaScript'],
  ['JS', 'JavaScript'],
  ['Launch', 'a launch action (it can start programs)'],
  ['EmbeddedFile', 'embedded files'],
  ['EmbeddedFiles', 'embedded files'],
  ['RichMedia', 'rich media (Flash)'],
]);
const PDF_NAME = /\/([^\s/[\]<>(){}%]+)/g;
const inflateAsync = promisify(inflate);
/** Caps on what is inflated to look inside object streams, per stream and per file. */
const OBJECT_STREAM_MAX_BYTES = 8 * 1024 * 1024;
const OBJECT_STREAMS_TOTAL_BYTES = 32 * 1024 * 1024;

interface PdfNames {
  /** What an active name found makes the PDF do, or null. */
  active: string | null;
  /** Where each /ObjStm name stands: its stream follows. */
  objectStreams: number[];
}

function scanPdfNames(text: string): PdfNames {
  const objectStreams: number[] = [];
  for (const match of text.matchAll(PDF_NAME)) {
    let name = match[1]!;
    // PDF names may spell any byte as #xx: /J#61vaScript is /JavaScript.
    if (name.includes('#')) name = name.replace(/#([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    const active = ACTIVE_PDF_NAMES.get(name);
    if (active) return { active, objectStreams };
    if (name === 'ObjStm') objectStreams.push(match.index);
  }
  return { active: null, objectStreams };
}

/**
 * Refuses a PDF that can run or carry something: the names are looked for in
 * the file and inside its compressed object streams, where a dictionary can
 * hide from a plain scan. An object stream that cannot be inflated (an
 * encrypted PDF, a broken one, another filter) is refused too: what cannot be
 * inspected is not accepted.
 */
async function inspectPdf(bytes: Uint8Array): Promise<void> {
  const text = latin1(bytes);
  refusePolyglot(text, 'PDF');
  const { active, objectStreams } = scanPdfNames(text);
  if (active) throw refuse(`PDFs containing ${active} are refused`);

  let inflatedTotal = 0;
  let after = 0;
  for (const at of objectStreams) {
    if (at < after) continue;
    // The dictionary's stream follows it; "/ObjStm" met inside some other stream's data leads to an "endstream".
    const streamAt = text.indexOf('stream', at);
    if (streamAt === -1) break;
    if (text.startsWith('end', streamAt - 3)) continue;
    let start = streamAt + 'stream'.length;
    if (text[start] === '\r') start += 1;
    if (text[start] === '\n') start += 1;
    const end = text.indexOf('endstream', start);
    if (end === -1) throw refuse('This PDF is damaged (an object stream has no end)');
    let inflated: Buffer;
    try {
      inflated = await inflateAsync(Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start), {
        maxOutputLength: OBJECT_STREAM_MAX_BYTES,
        finishFlush: zlibConstants.Z_SYNC_FLUSH,
      });
    } catch {
      throw refuse('This PDF could not be inspected (an encrypted, damaged or oversized object stream)');
    }
    inflatedTotal += inflated.byteLength;
    if (inflatedTotal > OBJECT_STREAMS_TOTAL_BYTES) throw refuse('This PDF could not be inspected (its object streams are too large)');
    const inner = scanPdfNames(inflated.toString('latin1')).active;
    if (inner) throw refuse(`PDFs containing ${inner} are refused`);
    after = end;
  }
}

// --- Office -------------------------------------------------------------

/** Old Office files (Compound File Binary): Word and Excel only, without macros. */
function inspectCfb(bytes: Uint8Array): DetectedType {
  let names: Set<string>;
  try {
    const container = CFB.read(bytes, { type: 'buffer' });
    names = new Set(container.FileIndex.map((entry) => entry.name));
  } catch {
    throw refuse('This Office file is damaged');
  }
  if (['Macros', '_VBA_PROJECT', '_VBA_PROJECT_CUR', 'VBA'].some((name) => names.has(name))) {
    throw refuse('Office files with macros are refused');
  }
  if (names.has('EncryptedPackage')) throw refuse('Password-protected Office files are refused (they cannot be inspected)');
  if (names.has('WordDocument')) return DOC;
  if (names.has('Workbook') || names.has('Book')) return XLS;
  throw refuse('This Office file is neither a Word document nor an Excel workbook');
}

/** New Office files (zip): no VBA project anywhere, whatever [Content_Types].xml says. */
async function inspectOpenXml(bytes: Uint8Array, what: string): Promise<void> {
  let paths: string[];
  try {
    // Reads the central directory only; no entry is inflated.
    const zip = await JSZip.loadAsync(bytes, { checkCRC32: false });
    paths = Object.keys(zip.files);
  } catch {
    throw refuse(`This ${what} is damaged`);
  }
  if (paths.some((path) => /(^|\/)vbaProject\.bin$|(^|\/)vbaData\.xml$/i.test(path))) {
    throw refuse('Office files with macros are refused');
  }
}

// --- names --------------------------------------------------------------

const MAX_NAME_BYTES = 255;
const utf8Bytes = (text: string) => Buffer.byteLength(text, 'utf8');
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** Format characters (bidi controls, zero-width spaces and joiners, BOM, tags) but a joiner inside an emoji sequence. */
const FORMAT_CHARACTERS =
  /(?<!\p{Extended_Pictographic}(?:\u{FE0F}|\p{Emoji_Modifier})?)\u200D|\u200D(?!\p{Extended_Pictographic})|(?!\u200D)\p{Cf}/gu;

/**
 * The uploader's file name, made safe to keep as metadata and to hand back:
 * NFC; control, bidi and zero-width characters removed; path separators
 * replaced; no leading dots; whitespace collapsed; at most 255 UTF-8 bytes
 * with the extension kept; `file.<ext>` when nothing is left; and the
 * canonical extension appended when the name's own does not fit the content
 * ("scan.pdf" that is a PNG becomes "scan.pdf.png").
 */
export function cleanFileName(name: string, type: DetectedType): string {
  let clean = name
    .replace(LONE_SURROGATE, '\uFFFD')
    .normalize('NFC')
    .replace(FORMAT_CHARACTERS, '')
    .replace(/\p{Cc}/gu, (c) => (/\s/.test(c) ? ' ' : ''))
    .replace(/[/\\]/g, '_')
    .replace(/\s+/g, ' ')
    .replace(/^[.\s]+/, '')
    .replace(/[.\s]+$/, '');

  const allowed = EXTENSIONS[type.contentType] ?? [type.ext];
  const dot = clean.lastIndexOf('.');
  const ownExt = dot > 0 ? clean.slice(dot + 1).toLowerCase() : '';
  let base = clean;
  let ext = type.ext;
  if (allowed.includes(ownExt)) {
    base = clean.slice(0, dot);
    ext = clean.slice(dot + 1);
  }
  base = truncateToBytes(base, MAX_NAME_BYTES - utf8Bytes(`.${ext}`)).replace(/[.\s]+$/, '');
  clean = base ? `${base}.${ext}` : `file.${ext}`;
  return clean;
}

/** Cuts whole grapheme clusters (an emoji with its modifiers stays whole) until the text fits. */
function truncateToBytes(text: string, maxBytes: number): string {
  if (utf8Bytes(text) <= maxBytes) return text;
  let out = '';
  let size = 0;
  for (const { segment } of new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text)) {
    const bytes = utf8Bytes(segment);
    if (size + bytes > maxBytes) break;
    out += segment;
    size += bytes;
  }
  return out;
}
