// What the browser benchmark drives directly: the real modules, bundled as-is, exposed on window.

import { Monitor } from '../../webview/src/app';
import { buildPalette, layerColor } from '../../webview/src/colorScale';
import { HeatmapView } from '../../webview/src/heatmap';

(window as unknown as Record<string, unknown>)['__bench'] = { Monitor, HeatmapView, buildPalette, layerColor };
