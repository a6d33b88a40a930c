import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import sharp, { type Metadata, type Sharp, type SharpOptions } from 'sharp';
import { badInput } from '../errors.ts';
import type { DetectedType } from './inspect.ts';

export interface ProcessedImage {
  /**
   * What is served as the original: metadata (EXIF with GPS, XMP, ICC,
   * comments) stripped, EXIF orientation applied first; the same format (BMP:
   * the bytes as uploaded, BMP carries no metadata); animated GIF and WebP keep
   * their frames.
   */
  original: Buffer;
  contentType: string;
  /** Of the served original, after orientation; one frame's height for animations. */
  width: number;
  height: number;
  /** One WebP per requested width, fit inside width×width, never enlarged (first frame of animations). */
  thumbnails: { width: number; body: Buffer }[];
}

export interface ImageProcessorOptions {
  /** Largest image, width × height (all frames of an animation), refused from its header before decoding. */
  maxPixels: number;
  thumbnailWidths: number[];
  /** Images processed at once; more wait their turn. Default 1. */
  concurrency?: number;
}

/** Quality of re-encoded originals (JPEG, WebP) and of thumbnails. */
const ORIGINAL_QUALITY = 90;
const THUMBNAIL_QUALITY = 80;
/** A BMP that the decoder has not finished in this time is refused (a malformed run-length stream). */
const BMP_DECODE_TIMEOUT_MS = 20_000;

const undecodable = () => badInput('file', 'The image could not be decoded: it is damaged, truncated or not an image');
const unsupportedBmp = (what: string) => badInput('file', `This BMP variant (${what}) is not supported; save it as PNG or JPEG`);

/**
 * Makes what Parley serves of an image: the original without its metadata
 * and WebP thumbnails. Decoding happens on libvips' threads (sharp) or, for
 * BMP, in a worker thread, never on the event loop; at most `concurrency`
 * images at once, the rest queue.
 */
export class ImageProcessor {
  private readonly maxPixels: number;
  private readonly thumbnailWidths: number[];
  private readonly gate: Gate;

  constructor(options: ImageProcessorOptions) {
    this.maxPixels = options.maxPixels;
    this.thumbnailWidths = [...options.thumbnailWidths];
    this.gate = new Gate(Math.max(1, options.concurrency ?? 1));
  }

  /**
   * Refuses (BAD_USER_INPUT) an image over `maxPixels`, read from its header
   * before anything is decoded (decompression bombs), and an image that does
   * not decode.
   */
  process(bytes: Uint8Array, type: DetectedType): Promise<ProcessedImage> {
    if (type.kind !== 'IMAGE') return Promise.reject(new Error(`ImageProcessor.process: ${type.contentType} is not an image`));
    const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return this.gate.run(() => (type.contentType === 'image/bmp' ? this.processBmp(input) : this.processSharp(input, type.contentType)));
  }

  private checkPixels(width: number, height: number, frames = 1): void {
    if (width * height <= this.maxPixels) return;
    const megapixels = (pixels: number) => Math.round(pixels / 100_000) / 10;
    const size = frames > 1 ? `${width}×${height / frames} × ${frames} frames` : `${width}×${height}`;
    throw badInput(
      'file',
      `This image is too large: ${size} is ${megapixels(width * height)} megapixels; images may have at most ${this.maxPixels} pixels (${megapixels(this.maxPixels)} megapixels)`,
    );
  }

  private async processSharp(input: Buffer, contentType: string): Promise<ProcessedImage> {
    const animated = contentType === 'image/gif' || contentType === 'image/webp';
    // The header alone: width and height (of all frames) before any pixel is decoded.
    let metadata: Metadata;
    try {
      metadata = await sharp(input, { animated, limitInputPixels: false }).metadata();
    } catch {
      throw undecodable();
    }
    if (!metadata.width || !metadata.height) throw undecodable();
    this.checkPixels(metadata.width, metadata.height, metadata.pages ?? 1);

    // sharp keeps no metadata unless asked (withMetadata, keepExif, keepIccProfile):
    // EXIF (GPS included), XMP, IPTC and comments are dropped, colours converted to sRGB.
    const options: SharpOptions = { animated, limitInputPixels: this.maxPixels, failOn: 'error' };
    const original = sharp(input, options).autoOrient();
    if (contentType === 'image/jpeg') original.jpeg({ quality: ORIGINAL_QUALITY });
    else if (contentType === 'image/png') original.png({ palette: metadata.isPalette === true });
    else if (contentType === 'image/gif') original.gif();
    else original.webp({ quality: ORIGINAL_QUALITY });

    try {
      const served = await original.toBuffer({ resolveWithObject: true });
      const thumbnails = await this.thumbnails(() => sharp(input, { ...options, animated: false }).autoOrient());
      return {
        original: served.data,
        contentType,
        width: served.info.width,
        height: served.info.pageHeight ?? served.info.height,
        thumbnails,
      };
    } catch {
      throw undecodable();
    }
  }

  private async processBmp(input: Buffer): Promise<ProcessedImage> {
    const header = readBmpHeader(input);
    this.checkPixels(header.width, header.height);
    const rgb = await decodeBmp(normalizeBmp(input, header));
    const raw = { width: header.width, height: header.height, channels: 3 as const };
    try {
      const thumbnails = await this.thumbnails(() => sharp(rgb, { raw, limitInputPixels: this.maxPixels }));
      return { original: input, contentType: 'image/bmp', width: header.width, height: header.height, thumbnails };
    } catch {
      throw undecodable();
    }
  }

  /**
   * One after the other, as the original before them: an image is decoded by
   * one pipeline at a time (each on libvips' threads), which bounds the memory
   * a large image takes to one decoding.
   */
  private async thumbnails(source: () => Sharp): Promise<ProcessedImage['thumbnails']> {
    const thumbnails: ProcessedImage['thumbnails'] = [];
    for (const width of this.thumbnailWidths) {
      const body = await source()
        .resize(width, width, { fit: 'inside', withoutEnlargement: true })
        .webp({ quality: THUMBNAIL_QUALITY })
        .toBuffer();
      thumbnails.push({ width, body });
    }
    return thumbnails;
  }
}

/** A counting semaphore: at most `limit` tasks run, the others wait in order. */
class Gate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active < this.limit) this.active += 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      // The slot passes to the next task, or frees.
      const next = this.waiting.shift();
      if (next) next();
      else this.active -= 1;
    }
  }
}

// --- BMP ----------------------------------------------------------------

interface BmpHeader {
  pixelOffset: number;
  headerSize: number;
  width: number;
  height: number;
  bitsPerPixel: number;
  compression: number;
  paletteEntries: number;
}

const BI_RGB = 0;
const BI_RLE8 = 1;
const BI_RLE4 = 2;
const BI_BITFIELDS = 3;

/** The BMP header, checked: what bmp-js can decode, and whole enough to try. */
function readBmpHeader(input: Buffer): BmpHeader {
  if (input.length < 54 || input.toString('latin1', 0, 2) !== 'BM') throw undecodable();
  const headerSize = input.readUInt32LE(14);
  if (headerSize < 40) throw unsupportedBmp('an OS/2 header');
  const width = input.readInt32LE(18);
  const height = Math.abs(input.readInt32LE(22));
  if (width <= 0 || height <= 0) throw undecodable();
  const header: BmpHeader = {
    pixelOffset: input.readUInt32LE(10),
    headerSize,
    width,
    height,
    bitsPerPixel: input.readUInt16LE(28),
    compression: input.readUInt32LE(30),
    paletteEntries: 0,
  };
  return header;
}

/**
 * bmp-js reads the palette and pixels right after a 40-byte header and knows
 * 32-bit bit fields only in one byte order; real files have larger headers
 * (V4, V5) and gaps before the pixels. This rewrites the file into the shape
 * bmp-js reads: 40-byte header, palette or masks, pixels.
 */
function normalizeBmp(input: Buffer, header: BmpHeader): Buffer {
  const { bitsPerPixel: bits, compression, headerSize, pixelOffset, width, height } = header;
  if (![1, 4, 8, 16, 24, 32].includes(bits)) throw unsupportedBmp(`${bits} bits per pixel`);
  const compressionOk =
    compression === BI_RGB ||
    (compression === BI_RLE8 && bits === 8) ||
    (compression === BI_RLE4 && bits === 4) ||
    (compression === BI_BITFIELDS && (bits === 16 || bits === 32));
  if (!compressionOk) throw unsupportedBmp(`compression ${compression} with ${bits} bits per pixel`);

  const colors = input.readUInt32LE(46);
  const paletteEntries = bits <= 8 ? colors || 2 ** bits : 0;
  if (paletteEntries > 256) throw undecodable();
  const paletteStart = 14 + headerSize;
  if (pixelOffset > input.length || paletteStart + paletteEntries * 4 > pixelOffset) throw undecodable();
  if (compression === BI_RGB || compression === BI_BITFIELDS) {
    const rowBytes = Math.ceil((width * bits) / 32) * 4;
    if (pixelOffset + rowBytes * height > input.length) throw undecodable();
  }

  let outCompression = compression;
  let masks = Buffer.alloc(0);
  if (compression === BI_BITFIELDS) {
    if (input.length < 66) throw undecodable();
    const [red, green, blue] = [input.readUInt32LE(54), input.readUInt32LE(58), input.readUInt32LE(62)];
    if (bits === 32) {
      // bmp-js decodes BI_RGB 32-bit as B, G, R, X: the usual masks say the same.
      if (red !== 0xff0000 || green !== 0xff00 || blue !== 0xff) throw unsupportedBmp('32-bit with unusual colour masks');
      outCompression = BI_RGB;
    } else {
      masks = Buffer.alloc(16);
      input.copy(masks, 0, 54, 66);
    }
  }

  const fileHeader = Buffer.alloc(14);
  const info = Buffer.from(input.subarray(14, 54));
  const palette = input.subarray(paletteStart, paletteStart + paletteEntries * 4);
  const pixels = input.subarray(pixelOffset);
  const newOffset = 14 + 40 + palette.length + masks.length;
  fileHeader.write('BM', 0, 'latin1');
  fileHeader.writeUInt32LE(newOffset + pixels.length, 2);
  fileHeader.writeUInt32LE(newOffset, 10);
  info.writeUInt32LE(40, 0);
  info.writeUInt32LE(outCompression, 16);
  info.writeUInt32LE(paletteEntries, 32);
  return Buffer.concat([fileHeader, info, palette, masks, pixels]);
}

const bmpJsPath = createRequire(import.meta.url).resolve('bmp-js');

/**
 * bmp-js decodes in JavaScript, which would hold the event loop for the
 * whole image: it runs in a worker thread of its own, ended if it takes too
 * long. It hands back RGB (bmp-js gives A, B, G, R, with an alpha byte that
 * is 0 for 24-bit files, so alpha is dropped).
 */
const BMP_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { decode } = require(workerData.bmpJs);
const input = Buffer.from(workerData.bytes.buffer, workerData.bytes.byteOffset, workerData.bytes.byteLength);
const image = decode(input);
const abgr = image.data;
const rgb = new Uint8Array(image.width * image.height * 3);
for (let i = 0, j = 0; j < rgb.length; i += 4, j += 3) {
  rgb[j] = abgr[i + 3];
  rgb[j + 1] = abgr[i + 2];
  rgb[j + 2] = abgr[i + 1];
}
parentPort.postMessage(rgb, [rgb.buffer]);
`;

function decodeBmp(bmp: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(BMP_WORKER, { eval: true, workerData: { bmpJs: bmpJsPath, bytes: bmp } });
    const timer = setTimeout(() => {
      reject(undecodable());
      void worker.terminate();
    }, BMP_DECODE_TIMEOUT_MS);
    worker.once('message', (rgb: Uint8Array) => {
      clearTimeout(timer);
      resolve(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength));
      void worker.terminate();
    });
    worker.once('error', () => {
      clearTimeout(timer);
      reject(undecodable());
    });
    worker.once('exit', () => {
      clearTimeout(timer);
      reject(undecodable());
    });
  });
}
