// Command ids the extension contributes (package.json `contributes.commands`). Kept apart from
// the modules that register them so unit tests can read them without VS Code.
export const CommandIds = {
  openListing: 'synapticBalance.openListing',
  balanceNetwork: 'synapticBalance.balanceNetwork',
  checkBalance: 'synapticBalance.checkBalance',
  showWorstListing: 'synapticBalance.showWorstListing',
  restartServer: 'synapticBalance.restartServer',
  showOutput: 'synapticBalance.showOutput',
  openExample: 'synapticBalance.openExample',
  quickFix: 'synapticBalance.quickFix',
  openMonitor: 'synapticBalance.openMonitor',
  demoTraining: 'synapticBalance.demoTraining',
} as const;

export type CommandId = (typeof CommandIds)[keyof typeof CommandIds];
