// The synbal command line, run in-process (main) and as the bundled binary.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { main } from '../../server/src/cli';
import { parseNetworkJson } from '../../server/src/formats/networkJson';
import { compareFunctions } from '../../server/src/engine/verify';
import Ajv2020 from 'ajv/dist/2020';
import { scratchDir } from '../support/scratch';

const SCHEMAS = join(__dirname, '..', '..', 'server', 'schemas');
const ajv = new Ajv2020({ allErrors: true, strict: false });
const validateReport = ajv.compile(JSON.parse(readFileSync(join(SCHEMAS, 'report.schema.json'), 'utf8')));

function assertReport(doc: unknown): void {
  assert.ok(validateReport(doc), JSON.stringify(validateReport.errors));
}

const EXAMPLE = join(__dirname, '..', '..', 'server', 'examples', 'mlp.json');

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

function scratch(): string {
  const dir = scratchDir('synbal-cli-');
  copyFileSync(EXAMPLE, join(dir, 'mlp.json'));
  return dir;
}

describe('synbal check', async () => {
  it('exits 1 on an unbalanced file and reports every layer', async () => {
    const r = (await run(['check', EXAMPLE]));
    assert.equal(r.code, 1);
    assert.match(r.out, /h1\s+hidden\s+leaky_relu\s+16\s+16/);
    assert.match(r.out, /32 of 32 balanceable units are out of balance/);
  });

  it('json output carries layers, totals and R, and follows the schema', async () => {
    const r = (await run(['check', EXAMPLE, '--format', 'json', '--p', '1']));
    const doc = JSON.parse(r.out);
    assertReport(doc);
    assert.equal(doc.regularizer, 'L1');
    assert.equal(doc.layers.length, 4);
    assert.equal(doc.totals.balanceableUnits, 32);
    assert.ok(doc.R > 0);
  });
});

describe('synbal check --predict', async () => {
  it('predicts each fix: the worst unit\'s λ* and ΔR and each layer\'s tied optimum are what balancing them gives', async () => {
    const doc = JSON.parse((await run(['check', EXAMPLE, '--format', 'json', '--predict'])).out);
    assertReport(doc);
    assert.equal(doc.predictions.length, doc.layers.filter((l: { role: string }) => l.role === 'hidden').length);
    for (const p of doc.predictions.slice(0, 2)) {
      const worst = p.units[0];
      assert.ok(worst && worst.relativeDeficit >= p.units[p.units.length - 1].relativeDeficit, p.layer);
      const dir = scratch();
      const unit = JSON.parse((await run(['balance', join(dir, 'mlp.json'), '--scope', `unit:${p.layer}#${worst.index}`, '-o', join(dir, 'u.json'), '--format', 'json'])).out);
      assert.ok(Math.abs(unit.RBefore - unit.RAfter - worst.deltaR) <= 1e-9 * unit.RBefore, `${p.layer}#${worst.index}: predicted ΔR ${worst.deltaR}, balancing gives ${unit.RBefore - unit.RAfter}`);
      assert.ok(Math.abs(unit.scales[p.layer][worst.index] - worst.lambda) <= 1e-6 * worst.lambda, `${p.layer}#${worst.index}: λ*`);
      const tied = JSON.parse((await run(['balance', join(dir, 'mlp.json'), '--scope', `layer-tied:${p.layer}`, '-o', join(dir, 't.json'), '--format', 'json'])).out);
      assert.ok(Math.abs(tied.RBefore - tied.RAfter - p.tied.deltaR) <= 1e-9 * tied.RBefore, `${p.layer} tied: predicted ΔR ${p.tied.deltaR}, balancing gives ${tied.RBefore - tied.RAfter}`);
    }
  });

  it('shows the predicted fixes as a table after the report', async () => {
    const r = await run(['check', EXAMPLE, '--predict']);
    assert.equal(r.code, 1);
    assert.match(r.out, /predicted fixes/);
    assert.match(r.out, /layer\s+out of balance\s+ΔR each\s+tied λ\*/);
  });
});

describe('synbal check --format sarif', async () => {
  it('has one result per unbalanced unit up to the cap, then one for the layer, and notes for visible units', async () => {
    const dir = scratch();
    const big = join(dir, 'wide.json');
    assert.equal((await run(['example', 'autoencoder', '-o', big])).code, 0);
    const r = (await run(['check', big, '--format', 'sarif']));
    assert.equal(r.code, 1);
    const sarif = JSON.parse(r.out);
    assert.equal(sarif.version, '2.1.0');
    const results = sarif.runs[0].results;
    const perUnit = results.filter((x: { ruleId: string }) => x.ruleId === 'SB001');
    const perLayer = results.filter((x: { ruleId: string }) => x.ruleId === 'SB002');
    // Five hidden layers (200, 100, 50, 100, 200 units): 25 listed each, the rest summarised.
    assert.equal(perUnit.length, 5 * 25);
    assert.equal(perLayer.length, 5);
    assert.equal(perUnit[0].locations[0].logicalLocations[0].fullyQualifiedName.split('#')[0], 'h1');
    assert.match(perLayer[0].message.text, /h1: 175 more units out of balance/);
    assert.deepEqual(sarif.runs[0].tool.driver.rules.map((x: { id: string }) => x.id), ['SB001', 'SB002', 'SB003']);
  });

  it('reports visible units as notes, and nothing else for a balanced file', async () => {
    const dir = scratch();
    const file = join(dir, 'mlp.json');
    const net = JSON.parse(readFileSync(file, 'utf8'));
    net.groups[1].activation = 'tanh';
    writeFileSync(file, JSON.stringify(net));
    assert.equal((await run(['balance', file, '--in-place'])).code, 0);
    const r = (await run(['check', file, '--format', 'sarif']));
    assert.equal(r.code, 0);
    const results = JSON.parse(r.out).runs[0].results;
    assert.deepEqual(results.map((x: { ruleId: string }) => x.ruleId), ['SB003']);
    assert.match(results[0].message.text, /h1: 16 units cannot be balanced: activation tanh is not positively homogeneous/);
  });
});

describe('synbal balance', async () => {
  it('writes <name>.balanced.json beside the input, which then checks clean and computes the same', async () => {
    const dir = scratch();
    const r = (await run(['balance', join(dir, 'mlp.json'), '--verify']));
    assert.equal(r.code, 0, r.err);
    const out = join(dir, 'mlp.balanced.json');
    assert.ok(existsSync(out));
    assert.match(r.out, /converged/);
    assert.equal((await run(['check', out])).code, 0);
    const a = parseNetworkJson(readFileSync(join(dir, 'mlp.json'), 'utf8'), 'a');
    const b = parseNetworkJson(readFileSync(out, 'utf8'), 'b');
    assert.ok(compareFunctions(a, b).maxRelative < 1e-9);
    // Only the balanced file and the original: no temporary files left behind.
    assert.deepEqual(readdirSync(dir).sort(), ['mlp.balanced.json', 'mlp.json']);
  });

  it('with nothing to balance, says why layer by layer (the reasons check gives)', async () => {
    const dir = scratch();
    // The example without an activation: every hidden unit's activation is unknown.
    const doc = JSON.parse(readFileSync(EXAMPLE, 'utf8'));
    for (const g of doc.groups) delete g.activation;
    const path = join(dir, 'noact.json');
    writeFileSync(path, JSON.stringify(doc));
    const r = await run(['balance', path]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /no balanceable units, nothing written:\n {2}\S+: \d+ units? .*activation/);
    assert.equal(readdirSync(dir).filter((f) => f.includes('balanced')).length, 0);
  });

  it('-o naming the input itself replaces it keeping a .bak, and says so', async () => {
    const dir = scratch();
    const input = join(dir, 'mlp.json');
    const before = readFileSync(input);
    const r = await run(['balance', input, '-o', join(dir, '.', 'mlp.json')]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /is the input itself: it is replaced, and the original kept as .*mlp\.json\.bak/);
    assert.deepEqual(readFileSync(`${input}.bak`), before);
  });

  it('--in-place keeps the original as .bak', async () => {
    const dir = scratch();
    const before = readFileSync(join(dir, 'mlp.json'), 'utf8');
    assert.equal((await run(['balance', join(dir, 'mlp.json'), '--in-place'])).code, 0);
    assert.equal(readFileSync(join(dir, 'mlp.json.bak'), 'utf8'), before);
    assert.notEqual(readFileSync(join(dir, 'mlp.json'), 'utf8'), before);
  });

  it('scopes and methods reach the engine', async () => {
    const dir = scratch();
    const r = (await run(['balance', join(dir, 'mlp.json'), '--scope', 'unit:h1#3', '--format', 'json', '-o', join(dir, 'u.json')]));
    assert.equal(r.code, 0, r.err);
    const unit = JSON.parse(r.out);
    assert.equal(unit.method, 'unit');
    // Every unit's Λ is reported; only h1#3 moved.
    assert.equal(unit.scales.h1.length, 16);
    assert.deepEqual(unit.scales.h1.map((v: number, i: number) => (v !== 1 ? i : -1)).filter((i: number) => i >= 0), [3]);
    assert.ok(unit.scales.h2.every((v: number) => v === 1));
    const s = (await run(['balance', join(dir, 'mlp.json'), '--method', 'stochastic', '--seed', '4', '--format', 'json', '-o', join(dir, 's.json')]));
    const doc = JSON.parse(s.out);
    assertReport(doc);
    assert.equal(doc.method, 'stochastic');
    assert.ok(doc.converged && doc.maxRelativeDeficitAfter <= 1e-7);
  });
});

describe('bad input', async () => {
  const cases: [string, string | Buffer, RegExp][] = [
    ['random.bin', Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]), /not a model format this tool knows/],
    ['broken.json', '{"format": "synbal-network", "name": "x", "groups": [', /not valid JSON/],
    ['shape.json', JSON.stringify({ format: 'synbal-network', name: 'x', groups: [], tensors: [{ name: 'w', shape: [2, 2], values: [1, 2, 3] }], connections: [] }), /tensor w: shape \[2, 2\] needs 4 values, found 3/],
    ['dtype.json', JSON.stringify({ format: 'synbal-network', name: 'x', groups: [], tensors: [{ name: 'w', dtype: 'int4', shape: [1], values: [1] }], connections: [] }), /unknown dtype "int4"/],
    ['conn.json', JSON.stringify({ format: 'synbal-network', name: 'x', groups: [{ name: 'a', size: 1, role: 'input' }], tensors: [], connections: [{ tensor: 'nope', kind: 'dense', to: 'a', target: { axis: 0 } }] }), /no tensor named "nope"/],
  ];
  for (const [name, content, message] of cases) {
    it(`${name}: one clear error naming the file, exit 2, nothing written`, async () => {
      const dir = scratchDir('synbal-bad-');
      const file = join(dir, name);
      writeFileSync(file, content);
      const r = (await run(['balance', file]));
      assert.equal(r.code, 2);
      assert.ok(r.err.includes(file), r.err);
      assert.match(r.err, message);
      assert.equal(r.err.trim().split('\n').length, 1);
      assert.deepEqual(readdirSync(dir), [name]);
    });
  }

  it('a missing file and unknown options are errors too', async () => {
    assert.match((await run(['check', '/nonexistent/model.json'])).err, /\/nonexistent\/model.json: cannot read the file \(ENOENT\)/);
    assert.match((await run(['check', EXAMPLE, '--bogus'])).err, /unknown option --bogus/);
    assert.match((await run(['balance', EXAMPLE, '--scope', 'layer'])).err, /--scope must be/);
    assert.equal((await run(['frobnicate'])).code, 2);
  });
});

describe('the bundled binary', async () => {
  it('dist/cli.js runs the demo end to end', async () => {
    const dir = scratchDir('synbal-demo-');
    const r = spawnSync(process.execPath, [join(__dirname, '..', '..', 'dist', 'cli.js'), 'demo', '--out', dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /30 of 30 balanceable units are out of balance/);
    assert.match(r.stdout, /function check \(4 random inputs\): largest output difference/);
    assert.match(r.stdout, /all 30 balanceable units are within the tolerance/);
    assert.ok(existsSync(join(dir, 'cnn_bn.balanced.onnx')));
  });
});
