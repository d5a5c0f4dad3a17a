// The heatmap's colour scale: relative deficit on a log axis, mapped through a 256-entry
// lookup table so a frame renders with one table read per unit. No DOM here: the tests import
// it in Node to know which colour each value must come out as.

export type Rgb = readonly [number, number, number];

/** Decades shown: 1e-4 … 1. Anything at or below 1e-4 (balanced to within float noise) is the bottom colour. */
export const LOG_MIN = -4;
export const LUT_SIZE = 256;
/** Index of the dead-unit colour in `Palette.packed` (one past the scale). */
export const DEAD_INDEX = LUT_SIZE;

export type ThemeKind = 'dark' | 'light' | 'high-contrast' | 'high-contrast-light';

export interface ThemeColors {
  kind: ThemeKind;
  background: Rgb;
  foreground: Rgb;
  /** Cursor and focus accents (`--vscode-focusBorder`). */
  accent: Rgb;
  /** Balance-event ticks (`--vscode-charts-green`); balanceColor() falls back when absent. */
  balance?: Rgb;
}

/** The colour of balance-event ticks on the series and the scrubber. */
export function balanceColor(theme: ThemeColors): Rgb {
  return theme.balance ?? (isLightKind(theme.kind) ? [56, 138, 52] : [137, 209, 133]);
}

export interface Palette {
  theme: ThemeColors;
  /** The scale's colours, bottom (1e-4) to top (1). */
  scale: Rgb[];
  dead: Rgb;
  /** `scale` then `dead`, packed as the ImageData pixels of this machine's byte order. */
  packed: Uint32Array;
}

// Sequential maps whose low end recedes into the editor background and whose top end has the
// most contrast against it: inferno (dark to pale yellow) on dark themes, OrRd (near-white to
// dark red) on light ones. Dead units get a hue neither map contains.
const DARK_STOPS: Rgb[] = [
  [0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99],
  [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164],
];
const LIGHT_STOPS: Rgb[] = [
  [255, 247, 236], [254, 232, 200], [253, 212, 158], [253, 187, 132],
  [252, 141, 89], [239, 101, 72], [215, 48, 31], [153, 0, 13], [103, 0, 13],
];
const DARK_DEAD: Rgb = [78, 201, 176];
const LIGHT_DEAD: Rgb = [0, 122, 204];

export function isLightKind(kind: ThemeKind): boolean {
  return kind === 'light' || kind === 'high-contrast-light';
}

/** Where relative deficit `v` falls on the scale: 0 … 255, or DEAD_INDEX for NaN. */
export function deficitIndex(v: number): number {
  if (v !== v) return DEAD_INDEX;
  if (v <= 1e-4) return 0;
  if (v >= 1) return LUT_SIZE - 1;
  return ((Math.log10(v) - LOG_MIN) * ((LUT_SIZE - 1) / -LOG_MIN) + 0.5) | 0;
}

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** One RGBA pixel (opaque) as a Uint32 over ImageData's bytes. */
export function packRgb(c: Rgb): number {
  return littleEndian
    ? ((255 << 24) | (c[2] << 16) | (c[1] << 8) | c[0]) >>> 0
    : ((c[0] << 24) | (c[1] << 16) | (c[2] << 8) | 255) >>> 0;
}

function interpolate(stops: Rgb[], t: number): Rgb {
  const x = t * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = stops[i]!;
  const b = stops[i + 1]!;
  return [
    Math.round(a[0] + (b[0] - a[0]) * f),
    Math.round(a[1] + (b[1] - a[1]) * f),
    Math.round(a[2] + (b[2] - a[2]) * f),
  ];
}

export function buildPalette(theme: ThemeColors): Palette {
  const stops = isLightKind(theme.kind) ? LIGHT_STOPS : DARK_STOPS;
  const scale: Rgb[] = [];
  for (let i = 0; i < LUT_SIZE; i++) scale.push(interpolate(stops, i / (LUT_SIZE - 1)));
  const dead = isLightKind(theme.kind) ? LIGHT_DEAD : DARK_DEAD;
  const packed = new Uint32Array(LUT_SIZE + 1);
  for (let i = 0; i < LUT_SIZE; i++) packed[i] = packRgb(scale[i]!);
  packed[DEAD_INDEX] = packRgb(dead);
  return { theme, scale, dead, packed };
}

/** Distinct line colours for the layers' time series, light enough or dark enough for the theme. */
export function layerColor(layer: number, theme: ThemeColors): string {
  const hue = (layer * 137.508 + 200) % 360;
  return isLightKind(theme.kind) ? `hsl(${hue.toFixed(1)} 70% 38%)` : `hsl(${hue.toFixed(1)} 75% 66%)`;
}

export function rgbCss(c: Rgb, alpha = 1): string {
  return alpha === 1 ? `rgb(${c[0]}, ${c[1]}, ${c[2]})` : `rgba(${c[0]}, ${c[1]}, ${c[2]}, ${alpha})`;
}

/** `#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa`, `rgb()`/`rgba()` → RGB (alpha dropped); null for anything else. */
export function parseCssColor(text: string): Rgb | null {
  const s = text.trim().toLowerCase();
  let m = /^#([0-9a-f]{3,8})$/.exec(s);
  if (m) {
    const h = m[1]!;
    if (h.length === 3 || h.length === 4) {
      return [parseInt(h[0]! + h[0]!, 16), parseInt(h[1]! + h[1]!, 16), parseInt(h[2]! + h[2]!, 16)];
    }
    if (h.length === 6 || h.length === 8) {
      return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)];
    }
    return null;
  }
  m = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)/.exec(s);
  if (m) return [Math.round(+m[1]!), Math.round(+m[2]!), Math.round(+m[3]!)];
  return null;
}

/** Relative luminance (WCAG), to tell a light background from a dark one when no body class says. */
export function luminance(c: Rgb): number {
  const lin = (v: number) => {
    const x = v / 255;
    return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
}

/** Tick values of the legend: each decade from 1e-4 to 1. */
export function legendTicks(): { value: number; label: string; position: number }[] {
  const ticks = [];
  for (let d = LOG_MIN; d <= 0; d++) {
    ticks.push({ value: 10 ** d, label: d === 0 ? '1' : `1e${d}`, position: (d - LOG_MIN) / -LOG_MIN });
  }
  return ticks;
}
