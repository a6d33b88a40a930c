/**
 * Files for the attachment tests, all built in memory: no binary fixture is
 * committed. Each builder makes the smallest file its format's readers (and
 * `file-type`) accept, so a test says what it sends.
 */
import { randomBytes } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';
import bmpJs from 'bmp-js';
import CFB from 'cfb';
import exifReader from 'exif-reader';
import JSZip from 'jszip';
import sharp from 'sharp';

const solid = (width: number, height: number, background: string) => sharp({ create: { width, height, channels: 3, background } });

export const png = (width = 64, height = 48) => solid(width, height, '#3a7').png().toBuffer();

/**
 * A JPEG as a phone takes it: EXIF with a GPS position (Paris) and
 * Orientation 6 (turn 90° clockwise to view), so the served image must be
 * height×width and carry no GPS.
 */
export const jpegWithGps = (width = 80, height = 40) => withGps('jpeg', width, height);

/** The same EXIF (GPS, Orientation 6) in a JPEG, PNG (eXIf chunk) or WebP. */
export const withGps = (format: 'jpeg' | 'png' | 'webp', width = 80, height = 40) =>
  solid(width, height, '#c33')
    .withMetadata({ orientation: 6 })
    .withExif({
      IFD0: { Make: 'Parley Test Camera', Model: 'GPS 1' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 24/1', GPSLongitudeRef: 'E', GPSLongitude: '2/1 21/1 3/1' },
    })
    .toFormat(format)
    .toBuffer();

export const jpeg = (width = 64, height = 48) => solid(width, height, '#36c').jpeg().toBuffer();

export const gif = (width = 32, height = 24) => solid(width, height, '#fc0').gif().toBuffer();

/** Three frames of 20×10, red, green, blue. */
export const animatedGif = async () =>
  sharp(await Promise.all(['#f00', '#0f0', '#00f'].map((background) => solid(20, 10, background).png().toBuffer())), {
    join: { animated: true },
  })
    .gif({ loop: 0, delay: [100, 100, 100] })
    .toBuffer();

export const webp = (width = 40, height = 30) => solid(width, height, '#639').webp().toBuffer();

/** A 24-bit BMP (bmp-js writes the classic 40-byte header), a left-to-right red gradient. */
export function bmp(width = 30, height = 20): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = (y * width + x) * 4;
      // bmp-js wants A, B, G, R.
      data[at] = 0xff;
      data[at + 1] = 0x20;
      data[at + 2] = 0x40;
      data[at + 3] = Math.round((x / Math.max(1, width - 1)) * 255);
    }
  }
  return bmpJs.encode({ data, width, height }).data;
}

/** The same 24-bit BMP with a V5 header (124 bytes, as GIMP and Windows write them): the pixels start later. */
export function bmpV5(width = 30, height = 20): Buffer {
  const classic = bmp(width, height);
  const out = Buffer.concat([classic.subarray(0, 54), Buffer.alloc(124 - 40), classic.subarray(54)]);
  out.writeUInt32LE(out.length, 2);
  out.writeUInt32LE(14 + 124, 10);
  out.writeUInt32LE(124, 14);
  out.write('BGRs', 14 + 56, 'latin1'); // LCS_sRGB
  return out;
}

/** A 32-bit BMP with bit fields (B, G, R, A masks in a V5 header), top-down, the same gradient as `bmp`. */
export function bmp32(width = 30, height = 20): Buffer {
  const header = Buffer.alloc(14 + 124);
  const pixels = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      pixels.set([0x20, 0x40, Math.round((x / Math.max(1, width - 1)) * 255), 0xff], (y * width + x) * 4);
    }
  }
  header.write('BM', 0, 'latin1');
  header.writeUInt32LE(header.length + pixels.length, 2);
  header.writeUInt32LE(header.length, 10);
  header.writeUInt32LE(124, 14);
  header.writeInt32LE(width, 18);
  header.writeInt32LE(-height, 22); // top-down
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(32, 28);
  header.writeUInt32LE(3, 30); // BI_BITFIELDS
  header.writeUInt32LE(pixels.length, 34);
  header.writeUInt32LE(0x00ff0000, 54);
  header.writeUInt32LE(0x0000ff00, 58);
  header.writeUInt32LE(0x000000ff, 62);
  header.writeUInt32LE(0xff000000, 66);
  header.write('BGRs', 70, 'latin1');
  return Buffer.concat([header, pixels]);
}

/** A PDF whose objects are written as given, with a correct cross-reference table. */
export function pdfOf(objects: (string | Buffer)[], trailer = '/Root 1 0 R'): Buffer {
  const parts: Buffer[] = [Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let length = parts[0]!.length;
  const offsets: number[] = [];
  objects.forEach((body, index) => {
    offsets.push(length);
    const object = Buffer.concat([Buffer.from(`${index + 1} 0 obj\n`), Buffer.from(body), Buffer.from('\nendobj\n')]);
    parts.push(object);
    length += object.length;
  });
  const xref = [
    `xref\n0 ${objects.length + 1}\n`,
    '0000000000 65535 f \n',
    ...offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`),
  ];
  parts.push(Buffer.from(`${xref.join('')}trailer\n<< /Size ${objects.length + 1} ${trailer} >>\nstartxref\n${length}\n%%EOF\n`));
  return Buffer.concat(parts);
}

const page = (content = 'BT /F1 24 Tf 72 720 Td (Invoice 42) Tj ET') => [
  '<< /Type /Catalog /Pages 2 0 R >>',
  '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
  '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
  `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
  '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
];

/** A one-page PDF saying "Invoice 42". */
export const pdf = () => pdfOf(page());

/** A PDF that runs JavaScript when opened. */
export const pdfWithJavaScript = () =>
  pdfOf([
    '<< /Type /Catalog /Pages 2 0 R /OpenAction 6 0 R >>',
    ...page().slice(1),
    '<< /Type /Action /S /JavaScript /JS (app.alert\\(1\\)) >>',
  ]);

/** The same action, with the name spelled in #xx escapes (/J#61vaScript is /JavaScript). */
export const pdfWithEscapedJavaScript = () =>
  pdfOf(['<< /Type /Catalog /Pages 2 0 R /OpenAction 6 0 R >>', ...page().slice(1), '<< /Type /Action /S /J#61vaScript /J#53 (1) >>']);

/** A PDF whose object 6 lives in a compressed object stream; `typeName` may spell /ObjStm in #xx escapes. */
export function pdfWithObjectStream(object6: string, typeName = '/ObjStm'): Buffer {
  const header = '6 0 ';
  const compressed = deflateSync(Buffer.from(`${header}${object6}`));
  const objectStream = Buffer.concat([
    Buffer.from(`<< /Type ${typeName} /N 1 /First ${header.length} /Filter /FlateDecode /Length ${compressed.length} >>\nstream\n`),
    compressed,
    Buffer.from('\nendstream'),
  ]);
  return pdfOf(['<< /Type /Catalog /Pages 2 0 R /OpenAction 6 0 R >>', ...page().slice(1), objectStream]);
}

/** The JavaScript action hidden in a compressed object stream, where a plain scan of the file does not see it. */
export const pdfWithJavaScriptInObjectStream = (typeName = '/ObjStm') =>
  pdfWithObjectStream('<< /Type /Action /S /JavaScript /JS (app.alert\\(1\\)) >>', typeName);

/** A PDF that launches a program. */
export const pdfWithLaunch = () =>
  pdfOf(['<< /Type /Catalog /Pages 2 0 R /OpenAction 6 0 R >>', ...page().slice(1), '<< /S /Launch /F (calc.exe) >>']);

const CONTENT_TYPES_HEAD =
  '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
  '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>';

function zipOf(files: Record<string, string | Buffer>): Promise<Buffer> {
  const zip = new JSZip();
  for (const [path, body] of Object.entries(files)) zip.file(path, body);
  return zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE' });
}

const officeRels = (target: string) =>
  '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
  `<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="${target}"/></Relationships>`;

function wordFiles(mainType: string): Record<string, string> {
  return {
    '[Content_Types].xml': `${CONTENT_TYPES_HEAD}<Override PartName="/word/document.xml" ContentType="${mainType}"/></Types>`,
    '_rels/.rels': officeRels('word/document.xml'),
    'word/document.xml':
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">' +
      '<w:body><w:p><w:r><w:t>Floor plan notes</w:t></w:r></w:p></w:body></w:document>',
  };
}

function excelFiles(mainType: string): Record<string, string> {
  return {
    '[Content_Types].xml':
      `${CONTENT_TYPES_HEAD}<Override PartName="/xl/workbook.xml" ContentType="${mainType}"/>` +
      '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
    '_rels/.rels': officeRels('xl/workbook.xml'),
    'xl/workbook.xml':
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" ' +
      'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
    'xl/_rels/workbook.xml.rels':
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
      '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
    'xl/worksheets/sheet1.xml':
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">' +
      '<sheetData><row r="1"><c r="A1"><v>42</v></c></row></sheetData></worksheet>',
  };
}

const DOCX_MAIN = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml';
const XLSX_MAIN = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml';

export const docx = () => zipOf(wordFiles(DOCX_MAIN));
export const xlsx = () => zipOf(excelFiles(XLSX_MAIN));
/** A .docx that carries a VBA project (word/vbaProject.bin) while its content types still say .docx. */
export const docm = () => zipOf({ ...wordFiles(DOCX_MAIN), 'word/vbaProject.bin': Buffer.from('VBA project') });
/** A macro-enabled workbook declared as such (.xlsm). */
export const xlsm = () =>
  zipOf({ ...excelFiles('application/vnd.ms-excel.sheet.macroEnabled.main+xml'), 'xl/vbaProject.bin': Buffer.from('VBA project') });
/** A PowerPoint file: Office, but not a kind Parley takes. */
export const pptx = () =>
  zipOf({
    '[Content_Types].xml': `${CONTENT_TYPES_HEAD}<Override PartName="/ppt/presentation.xml" ContentType="application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"/></Types>`,
    '_rels/.rels': officeRels('ppt/presentation.xml'),
    'ppt/presentation.xml': '<p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"/>',
  });
/** A zip that is no Office file. */
export const zip = () => zipOf({ 'readme.txt': 'hello', 'photos/a.txt': 'not a photo' });

/** A Compound File Binary container with these streams (paths like 'Macros/VBA/dir'). */
export function cfbOf(streams: Record<string, string | Buffer>): Buffer {
  const container = CFB.utils.cfb_new();
  for (const [path, body] of Object.entries(streams)) CFB.utils.cfb_add(container, path, Buffer.from(body));
  return Buffer.from(CFB.write(container, { type: 'buffer' }) as Uint8Array);
}

export const doc = () => cfbOf({ WordDocument: Buffer.alloc(512, 1), '1Table': Buffer.alloc(64) });
export const xls = () => cfbOf({ Workbook: Buffer.alloc(512, 2) });
/** An old Word document with a macro storage. */
export const docWithMacros = () => cfbOf({ WordDocument: Buffer.alloc(512, 1), 'Macros/VBA/dir': Buffer.from('attribute') });
/** An old Excel workbook with a VBA project. */
export const xlsWithMacros = () => cfbOf({ Workbook: Buffer.alloc(512, 2), '_VBA_PROJECT_CUR/VBA/dir': Buffer.from('attribute') });
/** An old PowerPoint file (CFB, neither Word nor Excel). */
export const ppt = () => cfbOf({ 'PowerPoint Document': Buffer.alloc(512, 3) });

export const text = () => Buffer.from('Thermostat in room 4 is broken again.\nPlease send someone tomorrow. Grüße, Zoë ☕\n');
export const textWithBom = () => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), text()]);
export const csv = () => Buffer.from('date,item,amount\n2026-01-05,"Valve, brass",12.50\n2026-01-06,Labour,80\n');
export const semicolonCsv = () => Buffer.from('Datum;Artikel;Betrag\n05.01.2026;Ventil;12,50\n06.01.2026;Arbeit;80,00\n');
export const html = () => Buffer.from('<!DOCTYPE html>\n<html><body><script>alert(document.cookie)</script></body></html>\n');
export const svgWithScript = () =>
  Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script><rect width="10" height="10"/></svg>',
  );
export const xml = () => Buffer.from('<?xml version="1.0"?><note>hi</note>');

/** A valid JPEG with an HTML page in a comment (COM) segment: an image to a decoder, a page to a sniffing browser. */
export async function polyglotJpeg(): Promise<Buffer> {
  const image = await jpeg(16, 16);
  const payload = Buffer.from('<html><script>alert(1)</script></html>');
  const segment = Buffer.alloc(4);
  segment.writeUInt16BE(0xfffe, 0);
  segment.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([image.subarray(0, 2), segment, payload, image.subarray(2)]);
}

/** A JPEG cut inside its header: no decoder can read it. */
export const truncatedJpeg = async () => (await jpeg(64, 48)).subarray(0, 120);

/** The bytes of a Windows executable's header. */
export const exe = () => Buffer.concat([Buffer.from('MZ'), Buffer.alloc(62), Buffer.from('PE\0\0')]);

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([length, body, crc]);
}

/**
 * A decompression bomb: a square PNG of `megapixels` million black pixels,
 * 1 bit each, a few kilobytes on disk (100 megapixels: ~10 KB, decoded ~300 MB).
 * Written by hand, so building it takes milliseconds.
 */
export function pngBomb(megapixels = 100): Buffer {
  const side = Math.ceil(Math.sqrt(megapixels * 1_000_000));
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header[8] = 1; // bit depth
  header[9] = 0; // greyscale
  const row = 1 + Math.ceil(side / 8); // filter byte + pixels
  const pixels = deflateSync(Buffer.alloc(row * side), { level: 9 });
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', pixels),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Random bytes no format claims. */
export const randomBinary = (size = 4096) => {
  const bytes = randomBytes(size);
  bytes[0] = 0x00; // not a magic number of anything allowed
  return bytes;
};

/** Exactly `size` bytes of plain UTF-8 text (lines of "a"), accepted as text/plain: for size limits. */
export function bytesOfSize(size: number): Buffer {
  const bytes = Buffer.alloc(size, 'a');
  for (let at = 79; at < size; at += 80) bytes[at] = 0x0a;
  return bytes;
}

/** The EXIF of an image, parsed (GPSInfo, Image.Orientation...), or undefined when it has none. */
export async function exifOf(image: Buffer): Promise<ReturnType<typeof exifReader> | undefined> {
  const { exif } = await sharp(image).metadata();
  return exif ? exifReader(exif) : undefined;
}
