/**
 * The content rules of attachments, without a server: what `detectType`
 * accepts and refuses, what `cleanFileName` makes of hostile names, and what
 * `ImageProcessor` serves of an image (no GPS, orientation applied, WebP
 * thumbnails, bombs refused from the header). The upload tests run the same
 * rules end to end over multipart HTTP.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../src/services/errors.ts';
import { ImageProcessor } from '../src/services/files/images.ts';
import { cleanFileName, detectType, looksLikeCsv, type DetectedType } from '../src/services/files/inspect.ts';
import * as files from './helpers/files.ts';

/** The DomainError a promise (or function) fails with. */
async function refusal(attempt: Promise<unknown> | (() => unknown)): Promise<DomainError> {
  try {
    await (typeof attempt === 'function' ? attempt() : attempt);
  } catch (error) {
    expect(error).toBeInstanceOf(DomainError);
    return error as DomainError;
  }
  throw new Error('expected a refusal, got none');
}

async function refused(bytes: Uint8Array | Promise<Uint8Array>, reason: RegExp): Promise<void> {
  const error = await refusal(detectType(await bytes));
  expect(error.code).toBe('BAD_USER_INPUT');
  expect(error.details).toEqual({ field: 'file' });
  expect(error.message).toMatch(reason);
  // Every refusal says what would have been accepted.
  expect(error.message).toMatch(/Allowed: images \(JPEG, PNG, GIF, WebP, BMP\), PDF, Word/);
}

const DOCX = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';
const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

describe('detectType: allowed types, from the bytes', () => {
  const cases: [string, () => Uint8Array | Promise<Uint8Array>, DetectedType][] = [
    ['JPEG', () => files.jpegWithGps(), { kind: 'IMAGE', contentType: 'image/jpeg', ext: 'jpg' }],
    ['PNG', () => files.png(), { kind: 'IMAGE', contentType: 'image/png', ext: 'png' }],
    ['GIF', () => files.gif(), { kind: 'IMAGE', contentType: 'image/gif', ext: 'gif' }],
    ['animated GIF', () => files.animatedGif(), { kind: 'IMAGE', contentType: 'image/gif', ext: 'gif' }],
    ['WebP', () => files.webp(), { kind: 'IMAGE', contentType: 'image/webp', ext: 'webp' }],
    ['BMP', () => files.bmp(), { kind: 'IMAGE', contentType: 'image/bmp', ext: 'bmp' }],
    ['PDF', () => files.pdf(), { kind: 'PDF', contentType: 'application/pdf', ext: 'pdf' }],
    [
      'PDF with an object stream',
      () => files.pdfWithObjectStream('<< /Type /Action /S /URI /URI (https://example.com/) >>'),
      { kind: 'PDF', contentType: 'application/pdf', ext: 'pdf' },
    ],
    [
      'PDF with a /toString name',
      () => files.pdfOf(['<< /Type /Catalog /toString 1 >>']),
      { kind: 'PDF', contentType: 'application/pdf', ext: 'pdf' },
    ],
    ['.doc', () => files.doc(), { kind: 'DOCUMENT', contentType: 'application/msword', ext: 'doc' }],
    ['.docx', () => files.docx(), { kind: 'DOCUMENT', contentType: DOCX, ext: 'docx' }],
    ['.xls', () => files.xls(), { kind: 'SPREADSHEET', contentType: 'application/vnd.ms-excel', ext: 'xls' }],
    ['.xlsx', () => files.xlsx(), { kind: 'SPREADSHEET', contentType: XLSX, ext: 'xlsx' }],
    ['text', () => files.text(), { kind: 'TEXT', contentType: 'text/plain', ext: 'txt' }],
    ['text with a UTF-8 BOM', () => files.textWithBom(), { kind: 'TEXT', contentType: 'text/plain', ext: 'txt' }],
    ['CSV', () => files.csv(), { kind: 'TEXT', contentType: 'text/csv', ext: 'csv' }],
    ['CSV with semicolons', () => files.semicolonCsv(), { kind: 'TEXT', contentType: 'text/csv', ext: 'csv' }],
    ['text of a given size', () => files.bytesOfSize(100_000), { kind: 'TEXT', contentType: 'text/plain', ext: 'txt' }],
  ];
  it.each(cases)('%s', async (_, build, expected) => {
    expect(await detectType(await build())).toEqual(expected);
  });

  it('takes a Uint8Array view into a larger buffer', async () => {
    const bytes = await files.png();
    const padded = new Uint8Array(bytes.length + 10);
    padded.set(bytes, 5);
    expect((await detectType(padded.subarray(5, 5 + bytes.length))).contentType).toBe('image/png');
  });
});

describe('detectType: refused types', () => {
  it('an empty file', () => refused(new Uint8Array(0), /empty/));
  it('random binary', () => refused(files.randomBinary(), /not recognised/));
  it('HTML, whatever its name says', () => refused(files.html(), /markup/));
  it('SVG with a script', () => refused(files.svgWithScript(), /markup/));
  it('XML', () => refused(files.xml(), /XML/));
  it('text with a script tag in the middle', () => refused(Buffer.from('notes\nsee <SCRIPT src=//x></script>\n'), /markup/));
  it('text with NUL or other control characters', async () => {
    await refused(Buffer.from('abc\0def'), /control characters/);
    await refused(Buffer.from('abc\x1b[31mred'), /control characters/);
  });
  it('invalid UTF-8 (Latin-1 text)', () => refused(Buffer.from('Gr\xfc\xdfe', 'latin1'), /not UTF-8/));
  it('a polyglot JPEG (HTML in a comment segment)', async () => {
    const polyglot = await files.polyglotJpeg();
    // It is a JPEG to a decoder...
    expect((await sharp(polyglot).metadata()).format).toBe('jpeg');
    // ...and refused all the same.
    await refused(polyglot, /polyglot/);
  });
  it('a PDF with JavaScript', () => refused(files.pdfWithJavaScript(), /JavaScript/));
  it('a PDF with JavaScript spelled in #xx escapes', () => refused(files.pdfWithEscapedJavaScript(), /JavaScript/));
  it('a PDF with JavaScript inside a compressed object stream', async () => {
    await refused(files.pdfWithJavaScriptInObjectStream(), /JavaScript/);
    await refused(files.pdfWithJavaScriptInObjectStream('/Obj#53tm'), /JavaScript/);
  });
  it('a PDF with an object stream that does not inflate', () =>
    refused(Buffer.from(files.pdfWithObjectStream('<< >>').toString('latin1').replace('x\x9c', 'zz'), 'latin1'), /could not be inspected/));
  it('a PDF with a launch action', () => refused(files.pdfWithLaunch(), /launch/));
  it('a .docx carrying a VBA project', () => refused(files.docm(), /macros/));
  it('a macro-enabled workbook (.xlsm)', () => refused(files.xlsm(), /Macro-enabled/));
  it('old Office files with macros', async () => {
    await refused(files.docWithMacros(), /macros/);
    await refused(files.xlsWithMacros(), /macros/);
  });
  it('other Office files (PowerPoint, old and new)', async () => {
    await refused(files.ppt(), /neither a Word document nor an Excel workbook/);
    await refused(files.pptx(), /pptx/);
  });
  it('a zip that is not an Office file', () => refused(files.zip(), /zip/));
  it('an executable', () => refused(files.exe(), /exe/));
});

describe('cleanFileName', () => {
  const PNG: DetectedType = { kind: 'IMAGE', contentType: 'image/png', ext: 'png' };
  const PDF: DetectedType = { kind: 'PDF', contentType: 'application/pdf', ext: 'pdf' };
  const JPEG: DetectedType = { kind: 'IMAGE', contentType: 'image/jpeg', ext: 'jpg' };
  const TEXT: DetectedType = { kind: 'TEXT', contentType: 'text/plain', ext: 'txt' };
  const bytes = (name: string) => Buffer.byteLength(name, 'utf8');

  it('keeps an honest name', () => {
    expect(cleanFileName('Invoice 42.pdf', PDF)).toBe('Invoice 42.pdf');
    expect(cleanFileName('IMG_0001.JPEG', JPEG)).toBe('IMG_0001.JPEG');
  });
  it('appends the real extension to a name that lies about the content', () => {
    expect(cleanFileName('scan.pdf', PNG)).toBe('scan.pdf.png');
    expect(cleanFileName('run.exe', TEXT)).toBe('run.exe.txt');
    expect(cleanFileName('README', TEXT)).toBe('README.txt');
  });
  it('leaves no path: separators replaced, no leading dots', () => {
    expect(cleanFileName('../../etc/passwd', TEXT)).toBe('_.._etc_passwd.txt');
    expect(cleanFileName('..\\..\\windows\\win.ini', TEXT)).toBe('_.._windows_win.ini');
    expect(cleanFileName('.htaccess', TEXT)).toBe('htaccess.txt');
    expect(cleanFileName('/etc/passwd', TEXT)).not.toMatch(/[/\\]/);
  });
  it('removes bidi overrides, so "invoice<RLO>fdp.exe" cannot pose as a PDF', () => {
    expect(cleanFileName('invoice\u202Efdp.exe', PDF)).toBe('invoicefdp.exe.pdf');
    expect(cleanFileName('a\u2066b\u2069c\u200Fd.pdf', PDF)).toBe('abcd.pdf');
  });
  it('removes zero-width characters, control characters and collapses whitespace', () => {
    expect(cleanFileName('in\u200Bvo\u200Cice\uFEFF.pdf', PDF)).toBe('invoice.pdf');
    expect(cleanFileName('a\0b\x07c\x1b.pdf', PDF)).toBe('abc.pdf');
    expect(cleanFileName('  two \t\n words  .pdf  ', PDF)).toBe('two words.pdf');
  });
  it('normalizes to NFC', () => {
    expect(cleanFileName('Zoe\u0308.pdf', PDF)).toBe('Zo\u00eb.pdf');
  });
  it('keeps emoji, joined sequences included', () => {
    expect(cleanFileName('📄 plan 🏠.pdf', PDF)).toBe('📄 plan 🏠.pdf');
    expect(cleanFileName('👨‍👩‍👧 family.jpg', JPEG)).toBe('👨‍👩‍👧 family.jpg');
  });
  it('bounds the name to 255 UTF-8 bytes, keeping the extension', () => {
    const long = cleanFileName(`${'a'.repeat(1000)}.pdf`, PDF);
    expect(bytes(long)).toBe(255);
    expect(long.endsWith('a.pdf')).toBe(true);
    const emoji = cleanFileName(`${'😀'.repeat(1000)}.pdf`, PDF);
    expect(bytes(emoji)).toBeLessThanOrEqual(255);
    expect(emoji).toMatch(/^(😀)+\.pdf$/u);
    const lying = cleanFileName(`${'é'.repeat(1000)}.exe`, PNG);
    expect(bytes(lying)).toBeLessThanOrEqual(255);
    expect(lying.endsWith('.png')).toBe(true);
  });
  it('names an empty or dots-only name file.<ext>', () => {
    expect(cleanFileName('', PDF)).toBe('file.pdf');
    expect(cleanFileName('....', PNG)).toBe('file.png');
    expect(cleanFileName(' \u202E\u200B ', PNG)).toBe('file.png');
  });
  it('replaces lone surrogates', () => {
    expect(cleanFileName('a\uD800b.pdf', PDF)).toBe('a\uFFFDb.pdf');
  });
});

describe('looksLikeCsv', () => {
  it('needs two records with the same number of separators outside quotes', () => {
    expect(looksLikeCsv(Buffer.from('a,b\n1,2\n'))).toBe(true);
    expect(looksLikeCsv(Buffer.from('a,b\r\n"x\ny, z",2\r\n\r\n'))).toBe(true);
    expect(looksLikeCsv(Buffer.from('a,b\n'))).toBe(false);
    expect(looksLikeCsv(Buffer.from('Hello, world.\nHow are you?\n'))).toBe(false);
    expect(looksLikeCsv(Buffer.from('a,b,c\n1,2\n'))).toBe(false);
    expect(looksLikeCsv(Buffer.from('"unclosed,1\n2,3'))).toBe(false);
  });
});

describe('ImageProcessor', () => {
  const processor = new ImageProcessor({ maxPixels: 40_000_000, thumbnailWidths: [16, 320], concurrency: 2 });
  const webpWidth = async (body: Buffer) => {
    const metadata = await sharp(body).metadata();
    expect(metadata.format).toBe('webp');
    return [metadata.width, metadata.height];
  };

  it('strips GPS and applies the orientation of a JPEG, in the original and the thumbnails', async () => {
    const input = await files.jpegWithGps(80, 40);
    expect((await files.exifOf(input))?.GPSInfo?.GPSLatitude).toEqual([48, 51, 24]);
    const image = await processor.process(input, await detectType(input));

    expect(image.contentType).toBe('image/jpeg');
    // Orientation 6: the 80×40 sensor image is served 40×80, upright.
    expect([image.width, image.height]).toEqual([40, 80]);
    const served = await sharp(image.original).metadata();
    expect(served.format).toBe('jpeg');
    expect([served.width, served.height]).toEqual([40, 80]);
    expect(served.exif).toBeUndefined();
    expect(served.xmp).toBeUndefined();
    expect(served.icc).toBeUndefined();
    expect(served.orientation).toBeUndefined();
    expect(image.original.toString('latin1')).not.toContain('Parley Test Camera');

    expect(image.thumbnails.map((t) => t.width)).toEqual([16, 320]);
    // 16: fit inside 16×16; 320: never enlarged.
    expect(await webpWidth(image.thumbnails[0]!.body)).toEqual([8, 16]);
    expect(await webpWidth(image.thumbnails[1]!.body)).toEqual([40, 80]);
    for (const { body } of image.thumbnails) expect(await files.exifOf(body)).toBeUndefined();
  });

  it('strips GPS from PNG and WebP too, orientation applied', async () => {
    for (const format of ['png', 'webp'] as const) {
      const input = await files.withGps(format, 80, 40);
      expect((await files.exifOf(input))?.GPSInfo, format).toBeTruthy();
      const image = await processor.process(input, await detectType(input));
      const served = await sharp(image.original).metadata();
      expect([served.format, served.width, served.height, served.exif, served.xmp]).toEqual([format, 40, 80, undefined, undefined]);
    }
  });

  it('serves PNG, GIF and WebP in their own format', async () => {
    for (const [build, format] of [
      [files.png, 'png'],
      [files.gif, 'gif'],
      [files.webp, 'webp'],
    ] as const) {
      const input = await build();
      const image = await processor.process(input, await detectType(input));
      const served = await sharp(image.original).metadata();
      expect(served.format).toBe(format);
      expect([image.width, image.height]).toEqual([served.width, served.height]);
      expect(image.thumbnails).toHaveLength(2);
    }
  });

  it('keeps the frames of an animated GIF; its thumbnails are one frame', async () => {
    const input = await files.animatedGif();
    const image = await processor.process(input, await detectType(input));
    const served = await sharp(image.original, { animated: true }).metadata();
    expect(served.pages).toBe(3);
    expect([image.width, image.height]).toEqual([20, 10]);
    const thumbnail = await sharp(image.thumbnails[0]!.body, { animated: true }).metadata();
    expect([thumbnail.pages ?? 1, thumbnail.width, thumbnail.height]).toEqual([1, 16, 8]);
  });

  it('decodes BMP (bmp-js): dimensions and WebP thumbnails, the original as uploaded', async () => {
    const input = files.bmp(30, 20);
    const image = await processor.process(input, await detectType(input));
    expect(image.contentType).toBe('image/bmp');
    expect(image.original.equals(input)).toBe(true);
    expect([image.width, image.height]).toEqual([30, 20]);
    expect(await webpWidth(image.thumbnails[0]!.body)).toEqual([16, 11]);
    expect(await webpWidth(image.thumbnails[1]!.body)).toEqual([30, 20]);
    // The gradient survives the decoding: red grows left to right, green and blue stay.
    const { data } = await sharp(image.thumbnails[1]!.body).raw().toBuffer({ resolveWithObject: true });
    const right = (30 - 1) * 3;
    expect(data[0]!).toBeLessThan(20);
    expect(data[right]!).toBeGreaterThan(230);
    expect(Math.abs(data[right + 1]! - 0x40)).toBeLessThan(12);
    expect(Math.abs(data[right + 2]! - 0x20)).toBeLessThan(12);
  });

  it('decodes BMPs with larger headers and 32-bit bit fields to the same picture', async () => {
    const pixelsOf = async (input: Buffer) => {
      const image = await processor.process(input, await detectType(input));
      expect([image.width, image.height]).toEqual([30, 20]);
      return sharp(image.thumbnails[1]!.body).raw().toBuffer();
    };
    const classic = await pixelsOf(files.bmp(30, 20));
    expect(await pixelsOf(files.bmpV5(30, 20))).toEqual(classic);
    const topDown32 = await pixelsOf(files.bmp32(30, 20));
    expect(Math.max(...topDown32.map((value, at) => Math.abs(value - classic[at]!)))).toBeLessThan(4);
  });

  it('refuses a 100-megapixel bomb from its header, naming the limit', async () => {
    const started = performance.now();
    const bomb = files.pngBomb(100);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(bomb.length).toBeLessThan(100_000);
    const type = await detectType(bomb);
    expect(type.contentType).toBe('image/png');
    const error = await refusal(processor.process(bomb, type));
    expect(error.code).toBe('BAD_USER_INPUT');
    expect(error.message).toMatch(/10000×10000/);
    expect(error.message).toMatch(/at most 40000000 pixels \(40 megapixels\)/);
  });

  it('refuses a BMP over the limit from its header', async () => {
    const small = new ImageProcessor({ maxPixels: 500, thumbnailWidths: [16] });
    const input = files.bmp(30, 20);
    const error = await refusal(small.process(input, await detectType(input)));
    expect(error.message).toMatch(/at most 500 pixels/);
  });

  it('refuses a JPEG that does not decode', async () => {
    const input = await files.truncatedJpeg();
    const type = await detectType(input);
    expect(type.contentType).toBe('image/jpeg');
    const error = await refusal(processor.process(input, type));
    expect(error.code).toBe('BAD_USER_INPUT');
    expect(error.message).toMatch(/could not be decoded/);
  });

  it('refuses a BMP whose pixels are cut off', async () => {
    const input = files.bmp(30, 20).subarray(0, 200);
    const error = await refusal(processor.process(input, await detectType(input)));
    expect(error.message).toMatch(/could not be decoded/);
  });

  it('runs at most `concurrency` images at once, the others in order', async () => {
    const big = await files.png(3000, 3000);
    const small = await files.png(10, 10);
    const type = await detectType(small);
    const finishOrder = async (concurrency: number) => {
      const queue = new ImageProcessor({ maxPixels: 40_000_000, thumbnailWidths: [320, 1280], concurrency });
      const order: string[] = [];
      await Promise.all([
        queue.process(big, type).then(() => order.push('big')),
        queue.process(small, type).then(() => order.push('small')),
      ]);
      return order;
    };
    // One at a time: the small image waits for the big one.
    expect(await finishOrder(1)).toEqual(['big', 'small']);
    // Two at a time: the small one passes it.
    expect(await finishOrder(2)).toEqual(['small', 'big']);
  });
});
