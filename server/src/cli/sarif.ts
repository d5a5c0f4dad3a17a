// SARIF 2.1.0 for `synbal check --format sarif`: one result per unbalanced unit, up to a cap
// per layer, then one result for the rest of the layer; notes for units that cannot be balanced.
import type { Analysis } from '../engine/analyze';
import { fmt } from './render';

export const UNITS_PER_LAYER_CAP = 25;

const RULES = [
  {
    id: 'SB001',
    name: 'UnbalancedUnit',
    shortDescription: { text: 'A hidden unit whose incoming and outgoing weight costs differ.' },
    fullDescription: { text: 'Rescaling the unit (incoming weights ×λ, outgoing ÷λ) lowers the regularizer without changing what the network computes.' },
    defaultConfiguration: { level: 'warning' },
  },
  {
    id: 'SB002',
    name: 'UnbalancedLayer',
    shortDescription: { text: 'More unbalanced units in a layer than are listed one by one.' },
    defaultConfiguration: { level: 'warning' },
  },
  {
    id: 'SB003',
    name: 'NotBalanceable',
    shortDescription: { text: 'Hidden units that cannot be rescaled, and why.' },
    defaultConfiguration: { level: 'note' },
  },
];

function location(uri: string, layer: string, unit?: number) {
  return {
    physicalLocation: { artifactLocation: { uri } },
    logicalLocations: [unit === undefined ? { name: layer, kind: 'module' } : { name: String(unit), fullyQualifiedName: `${layer}#${unit}`, kind: 'member' }],
  };
}

export function toSarif(uri: string, a: Analysis, version: string): object {
  const results: object[] = [];
  for (const l of a.layers) {
    const bad = l.unitReports.filter((u) => u.variable >= 0 && u.relativeDeficit > a.tolerance).sort((x, y) => y.relativeDeficit - x.relativeDeficit);
    for (const u of bad.slice(0, UNITS_PER_LAYER_CAP)) {
      results.push({
        ruleId: 'SB001',
        level: 'warning',
        message: { text: `${l.name}#${u.index} is out of balance: relative deficit ${fmt(u.relativeDeficit)} (IN ${fmt(u.in)}, OUT ${fmt(u.out)}, ${a.regularizer})` },
        locations: [location(uri, l.name, u.index)],
        properties: { layer: l.name, unit: u.index, in: u.in, out: u.out, relativeDeficit: u.relativeDeficit, deficit: u.deficit },
      });
    }
    if (bad.length > UNITS_PER_LAYER_CAP) {
      results.push({
        ruleId: 'SB002',
        level: 'warning',
        message: { text: `${l.name}: ${bad.length - UNITS_PER_LAYER_CAP} more units out of balance (${bad.length} of ${l.balanceable}; worst ${fmt(l.maxRelativeDeficit)})` },
        locations: [location(uri, l.name)],
        properties: { layer: l.name, unbalancedUnits: bad.length },
      });
    }
    for (const r of l.reasons) {
      results.push({
        ruleId: 'SB003',
        level: 'note',
        message: { text: `${l.name}: ${r.units} unit${r.units === 1 ? '' : 's'} cannot be balanced: ${r.reason}` },
        locations: [location(uri, l.name)],
        properties: { layer: l.name, units: r.units, reason: r.reason },
      });
    }
  }
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: 'synbal', version, informationUri: 'https://github.com/synaptic-balance/synaptic-balance', rules: RULES } },
        artifacts: [{ location: { uri } }],
        results,
      },
    ],
  };
}
