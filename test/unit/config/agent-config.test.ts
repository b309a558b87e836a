import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AGENT_FLAGS,
  AGENT_SETTINGS,
  MIRROR_SHORTHAND,
  loadAgentConfig,
  parseConfigText,
  parseListenAddress,
  resolveAgentConfig,
  suggestKey,
  type ConfigProblem,
} from '../../../src/config/agent-config.js';
import { ConfigError } from '../../../src/errors.js';
import { internalPortName } from '../../../src/ovsdb/mirror-spec.js';
import { parseCommandArgs, type Command } from '../../../src/cli/command.js';

const ROOT = join(import.meta.dirname, '../../..');

/** The ConfigError a resolution throws (fails the test when it does not throw). */
function problemsOf(f: () => unknown): { error: ConfigError; lines: string[]; problems: ConfigProblem[] } {
  try {
    f();
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    const error = e as ConfigError;
    return { error, lines: error.message.split('\n'), problems: (error.details?.problems ?? []) as ConfigProblem[] };
  }
  throw new Error('expected a ConfigError');
}

async function problemsOfAsync(p: Promise<unknown>): Promise<string[]> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    return (e as Error).message.split('\n');
  }
  throw new Error('expected a ConfigError');
}

/** Flags as the CLI parser returns them for the agent's flag table. */
function argv(...args: string[]): Record<string, unknown> {
  const cmd: Command = { name: 'agent', summary: '', usage: '', options: AGENT_FLAGS, run: async () => 0 };
  return parseCommandArgs(cmd, args).values;
}

const MINIMAL = { mirrors: [{ name: 'm1', bridge: 'br0', selection: { kind: 'all' }, output: { kind: 'internal' } }] };

describe('config/agent-config', () => {
  describe('the common case from flags', () => {
    it('--bridge --select-all makes one mirror to an internal port and captures on it; everything else defaults', () => {
      const c = resolveAgentConfig(undefined, '', {}, argv('--bridge', 'br-int', '--select-all'));
      expect(c.mirrors).to.deep.equal([{ bridge: 'br-int', name: 'mirrorflow-br-int', selection: { kind: 'all' }, direction: 'both', output: { kind: 'internal' } }]);
      expect(c.capture.interface).to.equal(internalPortName('br-int', 'mirrorflow-br-int'));
      expect(c.agentId).to.equal(hostname());
      expect(c.ovsdb).to.deep.equal({ remote: 'unix:/var/run/openvswitch/db.sock' });
      expect(c.capture).to.include({ filter: '', snaplen: 262144, bufferBytes: 32 << 20, immediate: false });
      expect(c.flows).to.deep.equal({ idleTimeoutS: 15, tcpIdleTimeoutS: 300, activeTimeoutS: 60, maxFlows: 1_000_000 });
      expect(c.sink).to.include({ kind: 'embedded', windowS: 10, allowedLatenessS: 0, pairsOut: '-', format: 'json' });
      expect(c.sink.kafka).to.equal(undefined);
      expect(c.inventory.publish).to.equal(false);
      expect(c.metrics).to.deep.equal({ enabled: true, address: '127.0.0.1:9477', host: '127.0.0.1', port: 9477 });
      expect(c.keepMirrors).to.equal(false);
      expect(c.logLevel).to.equal('info');
    });

    it('takes every flag of the issue: --select-vm (several), --db, --window, --pairs-out, --brokers, --metrics', () => {
      const c = resolveAgentConfig(
        undefined,
        '',
        {},
        argv('--bridge', 'br0', '--select-vm', 'vm-a', 'vm-b', '--select-vm', 'vm-c,52:54:00:00:00:01', '--db', 'tcp:127.0.0.1:6640', '--window', '2.5', '--pairs-out', 'pairs.jsonl', '--brokers', 'k1:9092,k2:9092', '--metrics', '0.0.0.0:9100'),
      );
      expect(c.mirrors[0]!.selection).to.deep.equal({ kind: 'vms', vms: ['vm-a', 'vm-b', 'vm-c', '52:54:00:00:00:01'] });
      expect(c.ovsdb.remote).to.equal('tcp:127.0.0.1:6640');
      expect(c.sink.windowS).to.equal(2.5);
      expect(c.sink.pairsOut).to.equal('pairs.jsonl');
      expect(c.sink.kind).to.equal('kafka');
      expect(c.sink.kafka!.brokers).to.deep.equal(['k1:9092', 'k2:9092']);
      expect(c.sink.kafka!.clientId).to.equal(`mirrorflow-${c.agentId}`);
      expect(c.inventory.publish).to.equal(true);
      expect(c.metrics).to.include({ host: '0.0.0.0', port: 9100 });
    });

    it('the shorthand works from env as well, and flags win over it field by field', () => {
      const env = { MIRRORFLOW_BRIDGE: 'br-env', MIRRORFLOW_SELECT_VM: 'a,b', MIRRORFLOW_DIRECTION: 'to-vm' };
      const c = resolveAgentConfig(undefined, '', env, {});
      expect(c.mirrors[0]).to.deep.include({ bridge: 'br-env', name: 'mirrorflow-br-env', selection: { kind: 'vms', vms: ['a', 'b'] }, direction: 'to-vm' });
      const d = resolveAgentConfig(undefined, '', env, argv('--bridge', 'br-flag', '--select-all', '--mirror-name', 'mine'));
      expect(d.mirrors[0]).to.deep.include({ bridge: 'br-flag', name: 'mine', selection: { kind: 'all' }, direction: 'to-vm' });
    });

    it('the shorthand replaces the file\'s mirrors', () => {
      const c = resolveAgentConfig(MINIMAL, 'agent.yaml', {}, argv('--bridge', 'br9', '--select-all'));
      expect(c.mirrors.map((m) => m.name)).to.deep.equal(['mirrorflow-br9']);
    });

    it('names what is missing or contradictory in the shorthand', () => {
      expect(problemsOf(() => resolveAgentConfig(undefined, '', {}, argv('--bridge', 'br0'))).lines[1]).to.equal(
        '--bridge: mirrors[0].selection: expected --select-all or --select-vm ID… with --bridge (or MIRRORFLOW_SELECT_ALL / MIRRORFLOW_SELECT_VM)',
      );
      expect(problemsOf(() => resolveAgentConfig(undefined, '', {}, argv('--select-vm', 'x'))).lines[1]).to.equal(
        '--select-vm: mirrors[0].bridge: expected --bridge BR (or MIRRORFLOW_BRIDGE) with --select-vm',
      );
      expect(problemsOf(() => resolveAgentConfig(undefined, '', {}, argv('--bridge', 'b', '--select-all', '--select-vm', 'x'))).lines[1]).to.equal(
        '--select-vm: mirrors[0].selection: expected either --select-all or --select-vm, not both',
      );
      const bad = problemsOf(() => resolveAgentConfig(undefined, '', {}, argv('--bridge', 'br 0', '--select-vm', 'ok', 'b/d')));
      expect(bad.lines.slice(1)).to.deep.equal([
        '--bridge: mirrors[0].bridge: expected characters matching /^[A-Za-z0-9_.@+-][A-Za-z0-9_.:@+-]*$/ (got "br 0")',
        '--select-vm: mirrors[0].selection.vms[1]: expected characters matching /^[A-Za-z0-9_.:@+-]+$/ (got "b/d")',
      ]);
    });

    it('needs some interface to capture on', () => {
      expect(problemsOf(() => resolveAgentConfig(undefined, '', {}, {})).lines[1]).to.match(/^config: capture\.interface: expected an interface name, or a mirror/);
      const c = resolveAgentConfig(undefined, '', {}, argv('--interface', 'eth1'));
      expect(c.capture.interface).to.equal('eth1');
      expect(c.mirrors).to.deep.equal([]);
    });
  });

  describe('precedence: flags > env > file > defaults', () => {
    const file = { ...MINIMAL, sink: { windowS: 30, allowedLatenessS: 2 }, metrics: { address: '127.0.0.1:9600' }, logLevel: 'warn', capture: { snaplen: 512 } };
    it('each source overrides the one below it, setting by setting', () => {
      expect(resolveAgentConfig(undefined, '', {}, argv('--interface', 'x')).sink.windowS).to.equal(10);
      const fromFile = resolveAgentConfig(file, 'agent.yaml', {}, {});
      expect([fromFile.sink.windowS, fromFile.sink.allowedLatenessS, fromFile.metrics.port, fromFile.logLevel, fromFile.capture.snaplen]).to.deep.equal([30, 2, 9600, 'warn', 512]);
      const env = { MIRRORFLOW_SINK_WINDOW_S: '20', MIRRORFLOW_METRICS_ADDRESS: '127.0.0.1:9700', MIRRORFLOW_LOG_LEVEL: 'debug' };
      const fromEnv = resolveAgentConfig(file, 'agent.yaml', env, {});
      expect([fromEnv.sink.windowS, fromEnv.sink.allowedLatenessS, fromEnv.metrics.port, fromEnv.logLevel, fromEnv.capture.snaplen]).to.deep.equal([20, 2, 9700, 'debug', 512]);
      const fromFlags = resolveAgentConfig(file, 'agent.yaml', env, argv('--window', '5', '--log-level', 'error', '--snaplen', '128'));
      expect([fromFlags.sink.windowS, fromFlags.sink.allowedLatenessS, fromFlags.metrics.port, fromFlags.logLevel, fromFlags.capture.snaplen]).to.deep.equal([5, 2, 9700, 'error', 128]);
    });

    it('an empty env variable counts as unset', () => {
      expect(resolveAgentConfig(file, 'agent.yaml', { MIRRORFLOW_SINK_WINDOW_S: '' }, {}).sink.windowS).to.equal(30);
    });

    it('env values are converted by the setting\'s type; --buffer-size takes MiB', () => {
      const c = resolveAgentConfig(MINIMAL, 'a.yaml', { MIRRORFLOW_CAPTURE_IMMEDIATE: 'yes', MIRRORFLOW_KEEP_MIRRORS: 'true', MIRRORFLOW_FLOWS_MAX_FLOWS: '5000' }, argv('--buffer-size', '64'));
      expect([c.capture.immediate, c.keepMirrors, c.flows.maxFlows, c.capture.bufferBytes]).to.deep.equal([true, true, 5000, 64 << 20]);
    });

    it('--set reaches any setting, JSON values included', () => {
      const c = resolveAgentConfig(
        MINIMAL,
        'a.yaml',
        {},
        argv('--brokers', 'k:9092', '--set', 'sink.kafka.lingerMs=50', '--set', 'sink.rules.trend={"alpha":0.2}', '--set', 'inventory.publish=false', '--set', 'flows.tcpIdleTimeoutS=60'),
      );
      expect(c.sink.kafka!.lingerMs).to.equal(50);
      expect(c.sink.rules.trend.alpha).to.equal(0.2);
      expect(c.inventory.publish).to.equal(false);
      expect(c.flows.tcpIdleTimeoutS).to.equal(60);
    });

    it('names the env variable or flag a bad value came from', () => {
      const { lines } = problemsOf(() =>
        resolveAgentConfig({ ...MINIMAL, flows: { maxFlows: 0 } }, 'agent.yaml', { MIRRORFLOW_CAPTURE_SNAPLEN: '9' }, argv('--window', 'ten', '--set', 'capture.bogus=1', '--set', 'nonsense')),
      );
      expect(lines[0]).to.equal('config: 5 invalid settings in agent.yaml');
      expect(lines.slice(1).sort()).to.deep.equal(
        [
          '--set: nonsense: expected PATH=VALUE with a dotted config path, e.g. sink.kafka.lingerMs=50 (got "nonsense")',
          '--set capture.bogus: capture.bogus: unknown setting; expected one of interface, filter, snaplen, bufferBytes, immediate',
          'MIRRORFLOW_CAPTURE_SNAPLEN: capture.snaplen: expected an integer 14..262144 (got 9)',
          'agent.yaml: flows.maxFlows: expected an integer 1..268435456 (got 0)',
          '--window: sink.windowS: expected a number > 0 and <= 86400 (got "ten")',
        ].sort(),
      );
    });
  });

  describe('every problem at once', () => {
    const bad = {
      agentId: '',
      ovsdb: { remote: 'http://nope', tls: { caFile: 3 } },
      mirrors: [
        { name: 'ok', bridge: 'br0', selection: { kind: 'all' }, output: { kind: 'internal' } },
        { name: 'm2', bridge: 'br0', selection: { kind: 'vlans', vlans: [1, 5000, 'x'] }, direction: 'sideways', output: { kind: 'internal' }, snaplenn: 3 },
        { name: 'ok', bridge: 'br1', selection: { kind: 'all' }, output: { kind: 'port', port: 'eth0' } },
      ],
      capture: { snaplen: 9, bufferBytes: 'big', immediate: 'sometimes' },
      flows: { idleTimeoutS: -1, maxFlow: 10 },
      sink: {
        kind: 'kafka',
        windowS: 0,
        format: 'xml',
        kafka: { brokers: 'k1:9092,k2', lingerMs: -1, compression: 'lz77', sasl: { mechanism: 'plain', username: 'agent', password: '' }, tls: { caFile: '/ca', certfile: 'x' } },
        rules: { thresholds: [{ metric: 'lossRate', operator: '>>', value: 1 }, { metric: 'nope', operator: '>', value: 'x' }], trend: { alpha: 3 }, anomaly: { poison: {} } },
      },
      inventory: { publish: 'yes' },
      metrics: { address: 'localhost' },
      keepMirrors: 1,
      logLevel: 'loud',
      extra: true,
    };

    it('reports each bad field as `<file>: <path>: <expected> (got <value>)` in one ConfigError', () => {
      const { lines, problems } = problemsOf(() => resolveAgentConfig(bad, 'agent.yaml', {}, {}));
      const expected = [
        'agent.yaml: extra: unknown setting; expected one of agentId, ovsdb, mirrors, capture, flows, sink, inventory, metrics, keepMirrors, logLevel',
        'agent.yaml: agentId: expected an id of 1..128 letters, digits, _ . : @ - (got "")',
        'agent.yaml: ovsdb.remote: expected unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT (got "http://nope")',
        'agent.yaml: ovsdb.tls.caFile: expected a file name (got 3)',
        'agent.yaml: mirrors[1].snaplenn: unknown setting; did you mean mirrors[1].snaplen?',
        'agent.yaml: mirrors[1].selection.vlans[1]: expected 0..4095 (got 5000)',
        'agent.yaml: mirrors[1].selection.vlans[2]: expected 0..4095 (got "x")',
        'agent.yaml: mirrors[1].direction: expected both|to-vm|from-vm (got "sideways")',
        'agent.yaml: mirrors[2].name: expected a name no other mirror has (mirrors[0] has it) (got "ok")',
        'agent.yaml: capture.snaplen: expected an integer 14..262144 (got 9)',
        'agent.yaml: capture.bufferBytes: expected an integer 65536..2147483647 (got "big")',
        'agent.yaml: capture.immediate: expected true or false (got "sometimes")',
        'agent.yaml: flows.maxFlow: unknown setting; did you mean flows.maxFlows?',
        'agent.yaml: flows.idleTimeoutS: expected a number 0.001..3600 (got -1)',
        'agent.yaml: sink.kafka.tls.certfile: unknown setting; did you mean sink.kafka.tls.certFile?',
        'agent.yaml: sink.kafka.brokers: expected HOST:PORT with a port 1..65535 (got "k1:9092,k2")',
        'agent.yaml: sink.kafka.compression: expected none, gzip (got "lz77")',
        'agent.yaml: sink.kafka.lingerMs: expected a whole number 0..60000 (got -1)',
        'agent.yaml: sink.kafka.sasl.password: expected a non-empty string',
        'agent.yaml: sink.format: expected one of json, protobuf, avro (got "xml")',
        'agent.yaml: sink.windowS: expected a number > 0 and <= 86400 (got 0)',
        'agent.yaml: sink.rules.thresholds[0].operator: expected one of > >= < <= == != (got ">>")',
        'agent.yaml: sink.rules.thresholds[1].value: expected a number (got "x")',
        'agent.yaml: sink.rules.anomaly.poison: unknown setting; did you mean sink.rules.anomaly.poisson?',
        'agent.yaml: sink.rules.trend.alpha: expected a number in (0, 1] (got 3)',
        'agent.yaml: inventory.publish: expected true or false (got "yes")',
        'agent.yaml: metrics.address: expected HOST:PORT (port 0..65535), [IPv6]:PORT, or off (got "localhost")',
        'agent.yaml: keepMirrors: expected true or false (got 1)',
        'agent.yaml: logLevel: expected one of fatal, error, warn, info, debug, trace, silent (got "loud")',
      ];
      expect(lines[0]).to.equal(`config: ${problems.length} invalid settings in agent.yaml`);
      for (const line of expected) expect(lines, line).to.include(line);
      // the unknown metric is named with the list of metrics
      expect(lines.find((l) => l.startsWith('agent.yaml: sink.rules.thresholds[1].metric: expected a PairWindow metric: one of '))).to.match(/lossRate.*\(got "nope"\)$/);
      expect(lines.length).to.equal(expected.length + 2);
      expect(problems.find((p) => p.path === 'capture.snaplen')).to.deep.equal({ source: 'agent.yaml', path: 'capture.snaplen', message: 'expected an integer 14..262144', got: '9' });
    });

    it('never shows a password', () => {
      const { error } = problemsOf(() =>
        resolveAgentConfig({ ...MINIMAL, sink: { kafka: { brokers: 'k:1', sasl: { mechanism: 'nope', username: 'u', password: 'hunter2' } } } }, 'a.yaml', {}, {}),
      );
      expect(error.message).to.include('sink.kafka.sasl.mechanism');
      expect(error.message).not.to.include('hunter2');
      expect(JSON.stringify(error.details)).not.to.include('hunter2');
    });

    it('checks how the sink settings fit together', () => {
      const lines = (o: object, flags: Record<string, unknown> = {}) => problemsOf(() => resolveAgentConfig({ ...MINIMAL, ...o }, 'a.yaml', {}, flags)).lines.slice(1);
      expect(lines({ sink: { kind: 'kafka' } })).to.deep.equal(['a.yaml: sink.kafka.brokers: expected HOST:PORT[,HOST:PORT...] with sink.kind kafka (--brokers, MIRRORFLOW_BROKERS) (got nothing)']);
      expect(lines({ sink: { kind: 'embedded', kafka: { brokers: 'k:1' } } })).to.deep.equal(['a.yaml: sink.kind: expected kafka (or no sink.kafka.brokers): brokers are set (got "embedded")']);
      expect(lines({ inventory: { publish: true } })).to.deep.equal(['a.yaml: inventory.publish: expected false with the embedded sink (publishing needs sink.kind kafka) (got true)']);
      expect(lines({ sink: { pairsOut: 'x.jsonl', alertsOut: 'x.jsonl' } })).to.deep.equal(["a.yaml: sink.alertsOut: expected a file other than sink.pairsOut's (got \"x.jsonl\")"]);
      expect(lines({ ovsdb: { remote: 'ssl:h:6640', tls: { caFile: 'ca.pem' } } })).to.deep.equal(['a.yaml: ovsdb.tls: expected certFile, keyFile for an ssl: remote (ovsdb.remote=ssl:h:6640)']);
    });

    it('folds the spool settings and TLS files from env into the Kafka config', () => {
      const c = resolveAgentConfig(MINIMAL, 'a.yaml', { MIRRORFLOW_BROKERS: 'k:9092', MIRRORFLOW_KAFKA_TLS_CA_FILE: '/etc/ca.pem', MIRRORFLOW_KAFKA_SASL_PASSWORD: 'pw' }, argv('--spool-dir', '/var/lib/mf/spool', '--spool-max-bytes', '1048576', '--set', 'sink.kafka.sasl.mechanism=plain', '--set', 'sink.kafka.sasl.username=agent'));
      expect(c.sink.kafka).to.deep.include({ spoolDir: '/var/lib/mf/spool', spoolLimitBytes: 1 << 20 });
      expect(c.sink.kafka!.tls).to.deep.equal({ rejectUnauthorized: true, caFile: '/etc/ca.pem' });
      expect(c.sink.kafka!.sasl).to.deep.equal({ mechanism: 'plain', username: 'agent', password: 'pw' });
      expect(c.sink).to.include({ spoolDir: '/var/lib/mf/spool', spoolMaxBytes: 1 << 20 });
    });

    it('metrics.address: host:port, IPv6, a bare port, port 0, or off', () => {
      const m = (address: unknown) => resolveAgentConfig({ ...MINIMAL, metrics: { address } }, 'a.yaml', {}, {}).metrics;
      expect(m('off')).to.deep.equal({ enabled: false, address: 'off', host: '', port: 0 });
      expect(m('[::1]:9477')).to.deep.equal({ enabled: true, address: '[::1]:9477', host: '::1', port: 9477 });
      expect(m(9100)).to.include({ host: '127.0.0.1', port: 9100 });
      expect(m('localhost:0')).to.include({ host: 'localhost', port: 0 });
      expect(parseListenAddress('1.2.3.4:65536')).to.equal(undefined);
      expect(parseListenAddress(':9477')).to.equal(undefined);
    });

    it('suggests a close key, also across naming styles', () => {
      expect(suggestKey('snaplenn', ['snaplen', 'filter'])).to.equal('snaplen');
      expect(suggestKey('tcp_idle_timeout_s', ['idleTimeoutS', 'tcpIdleTimeoutS'])).to.equal('tcpIdleTimeoutS');
      expect(suggestKey('zzz', ['snaplen', 'filter'])).to.equal(undefined);
    });
  });

  describe('files', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'mf-agent-config-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('reads YAML and JSON (by extension or content) to the same config', async () => {
      const yaml = join(dir, 'a.yaml');
      writeFileSync(yaml, 'mirrors:\n  - name: m1\n    bridge: br0\n    selection: {kind: all}\n    output: {kind: internal}\nsink:\n  windowS: 5\nmetrics: {address: "off"}\n');
      const json = join(dir, 'a.json');
      writeFileSync(json, JSON.stringify({ ...MINIMAL, sink: { windowS: 5 }, metrics: { address: 'off' } }));
      const conf = join(dir, 'agent.conf');
      writeFileSync(conf, readFileSync(json));
      const a = await loadAgentConfig({ file: yaml, env: {}, flags: {} });
      const b = await loadAgentConfig({ file: json, env: {}, flags: {} });
      const c = await loadAgentConfig({ env: { MIRRORFLOW_CONFIG: conf }, flags: {} });
      expect(a.sink.windowS).to.equal(5);
      expect({ ...a, file: '' }).to.deep.equal({ ...b, file: '' });
      expect({ ...c, file: '' }).to.deep.equal({ ...b, file: '' });
      expect(c.file).to.equal(conf);
      const d = await loadAgentConfig({ env: {}, flags: argv('--config', yaml, '--window', '7') });
      expect(d.sink.windowS).to.equal(7);
    });

    it('names the file and line of a syntax error, and an unreadable file', async () => {
      const yaml = join(dir, 'broken.yaml');
      writeFileSync(yaml, 'capture:\n  snaplen: 5\n  snaplen: 6\n');
      const [line] = await problemsOfAsync(loadAgentConfig({ file: yaml, env: {}, flags: {} }));
      expect(line).to.equal(`config: not valid YAML (file=${yaml}, line=3, column=3, reason="Map keys must be unique")`);
      const json = join(dir, 'broken.json');
      writeFileSync(json, '{"capture": ');
      expect((await problemsOfAsync(loadAgentConfig({ file: json, env: {}, flags: {} })))[0]).to.match(/^config: not valid JSON \(file=.*broken\.json, reason=/);
      expect((await problemsOfAsync(loadAgentConfig({ file: join(dir, 'none.yaml'), env: {}, flags: {} })))[0]).to.equal(`config: cannot read file (file=${join(dir, 'none.yaml')}, reason=ENOENT)`);
      expect(() => parseConfigText('- a\n- b\n', 'list.yaml')).not.to.throw();
      expect(problemsOf(() => resolveAgentConfig(parseConfigText('- a\n', 'list.yaml'), 'list.yaml', {}, {})).lines[1]).to.match(/^list\.yaml: \(top\): expected a mapping/);
    });

    it('checks the files the config names and reads the inventory', async () => {
      const inv = join(dir, 'inventory.json');
      writeFileSync(inv, JSON.stringify([{ vm: 'db-1', mac: '52:54:00:00:00:01', ips: ['10.0.0.5'] }]));
      const ok = await loadAgentConfig({ env: {}, flags: argv('--interface', 'eth1', '--inventory', inv) });
      expect(ok.inventory.entries).to.deep.equal([{ vm: 'db-1', mac: '52:54:00:00:00:01', ips: ['10.0.0.5'] }]);
      const badInv = join(dir, 'bad-inventory.json');
      writeFileSync(badInv, JSON.stringify([{ vm: 'x', mac: 'nope' }]));
      const file = join(dir, 'tls.yaml');
      writeFileSync(file, `ovsdb: {remote: "ssl:127.0.0.1:6640", tls: {caFile: ${inv}, certFile: /nonexistent/cert.pem, keyFile: /nonexistent/key.pem}}\ncapture: {interface: eth1}\n`);
      const lines = await problemsOfAsync(loadAgentConfig({ file, env: { MIRRORFLOW_INVENTORY_FILE: badInv }, flags: {} }));
      expect(lines).to.deep.equal([
        `config: 3 invalid settings in ${file}`,
        `${file}: ovsdb.tls.certFile: expected a readable file (ENOENT) (got "/nonexistent/cert.pem")`,
        `${file}: ovsdb.tls.keyFile: expected a readable file (ENOENT) (got "/nonexistent/key.pem")`,
        `MIRRORFLOW_INVENTORY_FILE: inventory.file: expected a readable inventory file: JSON [{"vm", "mac", "ips"}] (inventory ${badInv}: invalid entry (index=0, field=mac, value=nope, expected="a MAC like 52:54:00:12:34:56")) (got "${badInv}")`,
      ]);
    });

    it('the sample config (scripts/agent.sample.yaml) is valid and sets every setting it documents', () => {
      const path = join(ROOT, 'scripts/agent.sample.yaml');
      const text = readFileSync(path, 'utf8');
      const c = resolveAgentConfig(parseConfigText(text, path), 'agent.sample.yaml', {}, {});
      expect(c.agentId).to.equal('hv-01');
      expect(c.mirrors).to.have.length(1);
      expect(c.sink.rules.thresholds[0]!.name).to.equal('high-loss');
      // every setting of the table is mentioned (set or commented)
      for (const s of AGENT_SETTINGS) {
        const leaf = s.path.split('.').pop()!;
        expect(text, s.path).to.match(new RegExp(`\\b${leaf}:`));
      }
      // with its commented-out lines enabled, it is still valid (with a broker for the Kafka part)
      const uncommented = text.replace(/^(\s*)# (\s*(?:interface|alertsOut|flowsOut|spoolDir|snaplen|publish|file|tls|kafka|brokers|topicPrefix|clientId|format|compression|lingerMs|sasl|caFile|certFile|keyFile):)/gm, '$1$2');
      const k = resolveAgentConfig(parseConfigText(uncommented, path), 'uncommented.yaml', { MIRRORFLOW_KAFKA_SASL_PASSWORD: 'pw' }, {});
      expect(k.sink.kind).to.equal('kafka');
      expect(k.sink.kafka).to.deep.include({ brokers: ['kafka-1:9092', 'kafka-2:9092'], lingerMs: 20, spoolDir: '/var/lib/mirrorflow/spool' });
      expect(k.sink.kafka!.sasl).to.deep.equal({ mechanism: 'scram-sha-512', username: 'agent', password: 'pw' });
      expect(k.sink.alertsOut).to.equal('/var/log/mirrorflow/alerts.jsonl');
      expect(k.inventory).to.deep.include({ publish: true, file: '/etc/mirrorflow/inventory.json' });
      expect(k.mirrors[0]!.snaplen).to.equal(256);
      // the TLS files of an ssl: remote only matter for one
      expect(k.ovsdb.tls).to.equal(undefined);
    });
  });

  describe('the flag table and the README', () => {
    it('every flag is one the CLI parser takes, with no defaults that would hide env and file values', () => {
      for (const [name, spec] of Object.entries(AGENT_FLAGS)) {
        expect(spec, name).not.to.have.property('default');
        const values = argv(...(spec.type === 'boolean' ? [`--${name}`] : [`--${name}`, 'v']));
        expect(values[name], name).not.to.equal(undefined);
      }
    });

    it('README documents every setting, env variable and flag', () => {
      const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
      const start = readme.indexOf('## Agent configuration');
      expect(start, 'README has an "Agent configuration" section').to.be.greaterThan(-1);
      const section = readme.slice(start, readme.indexOf('\n## ', start + 10) >>> 0 || undefined);
      for (const s of AGENT_SETTINGS) {
        expect(section, s.path).to.include(`\`${s.path}\``);
        if (s.env) expect(section, s.env).to.include(s.env);
        if (s.flag) expect(section, s.flag).to.include(`--${s.flag}`);
      }
      for (const m of MIRROR_SHORTHAND) {
        expect(section).to.include(`--${m.flag}`);
        expect(section).to.include(m.env);
      }
      expect(section).to.include('--set');
      expect(section).to.include('MIRRORFLOW_CONFIG');
    });
  });
});
