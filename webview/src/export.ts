// What the export buttons hand to the host: PNG bytes of a canvas, CSV text of a series.

import { R_VALUE, TOTAL_DEFICIT, WEIGHT_NORM, type RunSeries } from './seriesData';

export const CSV_HEADER = 'step,time,layer,total_deficit,R,weight_norm';

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvNumber(v: number): string {
  // Empty, not "NaN": spreadsheets and pandas read an empty field as missing.
  return Number.isFinite(v) ? String(v) : '';
}

/** Long format, one row per (step, layer): what pandas/R pivot most easily. */
export function seriesCsv(s: RunSeries): string {
  const rows = [CSV_HEADER];
  const names = s.layers.map(csvField);
  for (let i = 0; i < s.length; i++) {
    const head = `${csvNumber(s.step(i))},${csvNumber(s.times[i]!)},`;
    for (let l = 0; l < names.length; l++) {
      rows.push(
        head + names[l] + ',' +
          csvNumber(s.value(i, l, TOTAL_DEFICIT)) + ',' +
          csvNumber(s.value(i, l, R_VALUE)) + ',' +
          csvNumber(s.value(i, l, WEIGHT_NORM)),
      );
    }
  }
  return rows.join('\n') + '\n';
}

/** A name safe on every file system, for the save dialog's suggestion. */
export function fileStem(label: string): string {
  const stem = label.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+|_+$/g, '');
  return stem || 'run';
}

export function canvasPng(canvas: HTMLCanvasElement): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => {
      if (!blob) {
        reject(new Error('the canvas could not be encoded as PNG'));
        return;
      }
      blob.arrayBuffer().then((buf) => resolve(new Uint8Array(buf)), reject);
    }, 'image/png');
  });
}
