// A private, real Open vSwitch for integration tests: ovsdb-server + ovs-vswitchd (userspace datapath)
// in a temp dir, started by scripts/ovs-sandbox.sh; namespace "VMs" wired by scripts/vm.sh.
// ovs-vsctl is used here for FIXTURES only (what libvirt / OpenStack would do), never in src/.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnvLines, runFile } from './exec.js';
import { NetnsVm, impairArgs, parseImpairment, type VmImpairmentOptions } from './netns-vm.js';
import { makePki, type Pki } from './pki.js';

const SCRIPTS_DIR = fileURLToPath(new URL('../../scripts/', import.meta.url));
export const OVS_SANDBOX_SCRIPT = join(SCRIPTS_DIR, 'ovs-sandbox.sh');
export const VM_SCRIPT = join(SCRIPTS_DIR, 'vm.sh');
/** Sandbox dirs made by tests start with this (scripts/test.sh looks for leftovers by it). */
export const TEST_DIR_PREFIX = '/tmp/mf-ovs-test.';
/** Names made by uniqueName() start with this and 5 hex digits (scripts/test.sh looks for leftovers by it). */
export const TEST_NAME_PREFIX = 'mft';
/** Linux interface names (bridges' tap devices) are at most 15 characters. */
export const MAX_IFACE_NAME = 15;

export interface SandboxOptions {
  /** Also listen on pssl:PORT:127.0.0.1 with a fresh PKI (see makePki); exposes sslUrl and pki. */
  ssl?: boolean;
  /**
   * Start ovs-vswitchd too (default true). Without it only ovsdb-server runs: enough for OVSDB
   * client tests, and not subject to the one-userspace-datapath-per-host limit.
   */
  vswitchd?: boolean;
  /**
   * Only one sandbox per host can run ovs-vswitchd with netdev bridges (the datapath is a tap
   * named ovs-netdev); a second one waits for the first to stop, at most this long (default 45).
   */
  datapathWaitS?: number;
}

export interface AddVmOptions {
  name: string;
  bridge: string;
  /** '10.0.0.1/24'; without a prefix length /24 is assumed. */
  ip: string;
  mac?: string;
  vmUuid?: string;
  ifaceId?: string;
  /** Join the bridge through the impairment forwarder (induced delay and loss; scripts/vm.sh --impair-*). */
  impair?: VmImpairmentOptions;
}

export interface Sandbox {
  dir: string;
  /** unix:DIR/db.sock */
  dbUrl: string;
  /** tcp:127.0.0.1:PORT */
  tcpUrl: string;
  unixSocket: string;
  tcpPort: number;
  /** ssl:127.0.0.1:PORT when started with ssl: true. */
  sslUrl?: string;
  sslPort?: number;
  /** Certificates and keys when started with ssl: true (ovsdb-server uses ca/server). */
  pki?: Pki;
  /** Per-sandbox random suffix that uniqueName() uses. */
  suffix: string;
  /** `mft<suffix>-<base>`: unique per test run; for a bridge, keep base <= 6 characters. */
  uniqueName(base: string): string;
  /** Runs ovs-vsctl against this sandbox (fixtures only) and returns its stdout. */
  vsctl(args: string[]): Promise<string>;
  /** Adds a bridge with datapath_type=netdev (name <= 15 characters: it is a tap device). */
  addBridge(name: string): Promise<void>;
  addVm(opts: AddVmOptions): Promise<NetnsVm>;
  /** Removes a VM made by addVm (port, veth, netns, its processes). */
  removeVm(vm: NetnsVm | string): Promise<void>;
  /** SIGKILLs ovsdb-server (ovs-vswitchd keeps running and reconnects after restartOvsdb). */
  killOvsdb(): Promise<void>;
  /** Starts ovsdb-server again on the same db file, unix socket and tcp (and ssl) port. */
  restartOvsdb(): Promise<void>;
  /** Stops ovs-vswitchd and starts it again (ports and internal ports are recreated from the database). */
  restartVswitchd(): Promise<void>;
  /** Pid of ovsdb-server / ovs-vswitchd when running. */
  pids(): Promise<{ ovsdbServer?: number; ovsVswitchd?: number }>;
  /** Removes all VMs it created, stops both daemons, removes the dir. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * When set (scripts/test.sh does), every sandbox dir, netns and bridge a test creates is recorded in
 * this file as `<kind> <name>` lines, so the script can find and remove what a run left behind.
 */
export const TEST_REGISTRY_ENV = 'MIRRORFLOW_TEST_REGISTRY';

function record(kind: 'dir' | 'netns' | 'iface', name: string): void {
  const file = process.env[TEST_REGISTRY_ENV];
  if (file) appendFileSync(file, `${kind} ${name}\n`);
}

const live = new Set<OvsSandbox>();
let safetyNetInstalled = false;

function installSafetyNet(): void {
  if (safetyNetInstalled) return;
  safetyNetInstalled = true;
  process.on('exit', stopAllSync);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stopAllSync();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}

/** Synchronous last-resort cleanup (process 'exit' runs no async work). */
function stopAllSync(): void {
  for (const sb of live) {
    for (const vm of sb.vms.values()) {
      try {
        vm.kill();
        execFileSync('bash', [VM_SCRIPT, 'del', vm.name, '--db', sb.dbUrl], { stdio: 'ignore', timeout: 20_000 });
      } catch {
        // best effort: scripts/test.sh reports what is left
      }
    }
    try {
      execFileSync('bash', [OVS_SANDBOX_SCRIPT, 'stop', sb.dir], { stdio: 'ignore', timeout: 30_000 });
      if (sb.pki) execFileSync('rm', ['-rf', '--', sb.pki.dir], { stdio: 'ignore' });
    } catch {
      // best effort
    }
  }
  live.clear();
}

class OvsSandbox implements Sandbox {
  readonly dbUrl: string;
  readonly unixSocket: string;
  readonly tcpUrl: string;
  readonly tcpPort: number;
  readonly sslUrl?: string;
  readonly sslPort?: number;
  readonly vms = new Map<string, NetnsVm>();
  private stopped = false;

  constructor(
    readonly dir: string,
    readonly suffix: string,
    env: Record<string, string>,
    readonly pki?: Pki,
  ) {
    this.unixSocket = join(dir, 'db.sock');
    this.dbUrl = `unix:${this.unixSocket}`;
    this.tcpPort = Number(env.OVS_SANDBOX_TCP_PORT);
    this.tcpUrl = `tcp:127.0.0.1:${this.tcpPort}`;
    if (env.OVS_SANDBOX_SSL_PORT) {
      this.sslPort = Number(env.OVS_SANDBOX_SSL_PORT);
      this.sslUrl = `ssl:127.0.0.1:${this.sslPort}`;
    }
  }

  uniqueName(base: string): string {
    return `${TEST_NAME_PREFIX}${this.suffix}-${base}`;
  }

  async vsctl(args: string[]): Promise<string> {
    const { stdout } = await runFile('ovs-vsctl', [`--db=${this.dbUrl}`, '--timeout=30', ...args], { timeoutMs: 40_000 });
    return stdout.replace(/\n$/, '');
  }

  async addBridge(name: string): Promise<void> {
    if (name.length === 0 || name.length > MAX_IFACE_NAME) {
      throw new Error(`ovs-sandbox: bridge name must have 1..${MAX_IFACE_NAME} characters (bridge=${name})`);
    }
    record('iface', name);
    await this.vsctl(['add-br', name, '--', 'set', 'bridge', name, 'datapath_type=netdev']);
    // ovs-vsctl only warns when ovs-vswitchd fails to create the bridge; make that an error.
    const error = await this.vsctl(['get', 'Interface', name, 'error']);
    if (error !== '[]') {
      throw new Error(
        `ovs-sandbox: bridge could not be created (bridge=${name}, error=${error}); ` +
          'is another ovs-vswitchd with the userspace datapath (tap ovs-netdev) running on this host?',
      );
    }
  }

  async addVm(opts: AddVmOptions): Promise<NetnsVm> {
    const ip = opts.ip.includes('/') ? opts.ip : `${opts.ip}/24`;
    const args = ['add', opts.name, '--bridge', opts.bridge, '--ip', ip, '--db', this.dbUrl];
    if (opts.mac) args.push('--mac', opts.mac);
    if (opts.vmUuid) args.push('--vm-uuid', opts.vmUuid);
    if (opts.ifaceId) args.push('--iface-id', opts.ifaceId);
    if (opts.impair) args.push(...impairArgs(opts.impair));
    record('netns', opts.name);
    const { stdout } = await runFile('bash', [VM_SCRIPT, ...args], { timeoutMs: 60_000 });
    const env = parseEnvLines(stdout);
    const [addr, len] = (env.VM_IP ?? ip).split('/');
    const vm = new NetnsVm({
      name: env.VM_NAME ?? opts.name,
      ns: env.VM_NS ?? opts.name,
      hostIface: env.VM_HOST_IFACE ?? '',
      mac: env.VM_MAC ?? '',
      ip: addr!,
      prefixLen: Number(len),
      vmUuid: env.VM_UUID ?? '',
      ifaceId: env.VM_IFACE_ID ?? '',
      bridge: opts.bridge,
      impair: opts.impair ? parseImpairment(env, opts.impair) : undefined,
    });
    this.vms.set(vm.name, vm);
    return vm;
  }

  async removeVm(vm: NetnsVm | string): Promise<void> {
    const name = typeof vm === 'string' ? vm : vm.name;
    this.vms.get(name)?.kill();
    await runFile('bash', [VM_SCRIPT, 'del', name, '--db', this.dbUrl], { timeoutMs: 60_000 });
    this.vms.delete(name);
  }

  async killOvsdb(): Promise<void> {
    await runFile('bash', [OVS_SANDBOX_SCRIPT, 'kill-ovsdb', this.dir], { timeoutMs: 30_000 });
  }

  async restartOvsdb(): Promise<void> {
    await runFile('bash', [OVS_SANDBOX_SCRIPT, 'restart-ovsdb', this.dir], { timeoutMs: 60_000 });
  }

  async restartVswitchd(): Promise<void> {
    await runFile('bash', [OVS_SANDBOX_SCRIPT, 'restart-vswitchd', this.dir], { timeoutMs: 60_000 });
  }

  async pids(): Promise<{ ovsdbServer?: number; ovsVswitchd?: number }> {
    const out: { ovsdbServer?: number; ovsVswitchd?: number } = {};
    const running = new Set(await findSandboxProcesses(this.dir));
    for (const [key, file] of [
      ['ovsdbServer', 'ovsdb-server.pid'],
      ['ovsVswitchd', 'ovs-vswitchd.pid'],
    ] as const) {
      const pid = await readFile(join(this.dir, file), 'utf8').then(
        (s) => Number(s.trim()),
        () => NaN,
      );
      if (running.has(pid)) out[key] = pid;
    }
    return out;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    const errors: string[] = [];
    for (const vm of [...this.vms.values()]) {
      try {
        await this.removeVm(vm);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    try {
      await runFile('bash', [OVS_SANDBOX_SCRIPT, 'stop', this.dir], { timeoutMs: 60_000 });
    } catch (err) {
      errors.push((err as Error).message);
    }
    await removePkiDir(this.pki);
    this.stopped = true;
    live.delete(this);
    if (errors.length > 0) throw new Error(`ovs-sandbox: stop failed (dir=${this.dir}): ${errors.join('; ')}`);
  }
}

/** Starts a private ovsdb-server (+ ovs-vswitchd unless vswitchd: false) in a new /tmp dir. */
export async function startSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  installSafetyNet();
  const dir = await mkdtemp(TEST_DIR_PREFIX);
  record('dir', dir);
  const suffix = randomBytes(3).toString('hex').slice(0, 5);
  const args = ['start', dir];
  let pki: Pki | undefined;
  if (opts.ssl) {
    // Outside the sandbox dir, which must be empty when the script starts.
    record('dir', `${dir}-pki`);
    pki = await makePki(`${dir}-pki`);
    args.push('--ssl-key', pki.serverKey, '--ssl-cert', pki.serverCert, '--ssl-ca', pki.caCert);
  }
  if (opts.vswitchd === false) args.push('--no-vswitchd');
  const env = { ...process.env, OVS_SANDBOX_DP_WAIT_S: String(opts.datapathWaitS ?? 45) };
  const placeholder = new OvsSandbox(dir, suffix, {}, pki);
  live.add(placeholder); // so the exit safety net stops a half-started sandbox too
  let stdout: string;
  try {
    ({ stdout } = await runFile('bash', [OVS_SANDBOX_SCRIPT, ...args], { env, timeoutMs: 120_000 }));
  } catch (err) {
    live.delete(placeholder);
    await runFile('bash', [OVS_SANDBOX_SCRIPT, 'stop', dir], { timeoutMs: 60_000 }).catch(() => undefined);
    await removePkiDir(pki);
    throw new Error(`ovs-sandbox: start failed (dir=${dir}): ${(err as Error).message}`, { cause: err });
  }
  live.delete(placeholder);
  const sandbox = new OvsSandbox(dir, suffix, parseEnvLines(stdout), pki);
  live.add(sandbox);
  return sandbox;
}

async function removePkiDir(pki: Pki | undefined): Promise<void> {
  if (!pki) return;
  await rm(pki.dir, { recursive: true, force: true });
}

/** Pids of live (non-zombie) processes whose command line mentions `dir` (e.g. a sandbox's daemons). */
export async function findSandboxProcesses(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmdline.split('\0').some((arg) => arg.includes(dir))) continue;
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state !== 'Z' && state !== 'X') pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** Names of the network namespaces that exist now. */
export function listNetns(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

/** Is there a network interface of this name in the host namespace? */
export function hostIfaceExists(name: string): boolean {
  try {
    readFileSync(`/sys/class/net/${name}/ifindex`);
    return true;
  } catch {
    return false;
  }
}
