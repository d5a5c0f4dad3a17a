// Entry point of dist/webview/monitor.js (loaded by the page monitorHtml builds).

import { Monitor } from './app';

const api = acquireVsCodeApi();
const root = document.getElementById('app') ?? document.body;
new Monitor(root, api);
api.postMessage({ type: 'ready' });
