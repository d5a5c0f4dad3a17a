// The slice of the webview API the monitor uses (`acquireVsCodeApi` is injected by VS Code).

import type { MonitorViewMessage, MonitorViewState } from '../../server/src/contract/monitor';

export interface VsCodeApi {
  postMessage(message: MonitorViewMessage): void;
  getState(): MonitorViewState | undefined;
  setState(state: MonitorViewState): void;
}

declare global {
  function acquireVsCodeApi(): VsCodeApi;
}
