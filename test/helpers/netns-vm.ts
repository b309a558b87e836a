// A test "VM": a network namespace whose eth0 is a port of an OVS bridge (made by scripts/vm.sh),
// directly or through the impairment forwarder (scripts/vm.sh add --impair-*: induced delay and loss).
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ImpairmentStats } from '../../src/capture/native-binding.js';
import { runFile, type RunResult } from './exec.js';

const VM_SH = fileURLToPath(new URL('../../scripts/vm.sh', import.meta.url));

/** Delay and loss induced between a VM and its bridge, both directions (scripts/impair.ts). */
export interface VmImpairmentOptions {
  /** Added to every frame (default 0). */
  delayMs?: number;
  /** Probability a frame is dropped, 0..1 (default 0). */
  lossProb?: number;
  /** PRNG seed (default random). */
  seed?: number;
}

export interface VmImpairment extends VmImpairmentOptions {
  /** The forwarder process (scripts/vm.sh del stops it). */
  pid: number;
  /** Host-side peer of the VM's eth0 (the forwarder's a side). */
  ifaceA: string;
  /** The forwarder's b side, whose peer is the bridge port (hostIface). */
  ifaceB: string;
  /** The forwarder's output (its JSON counters at exit). */
  log: string;
}

/** scripts/vm.sh add options for an impairment. */
export function impairArgs(opts: VmImpairmentOptions): string[] {
  const args = ['--impair-delay-ms', String(opts.delayMs ?? 0), '--impair-loss', String(opts.lossProb ?? 0)];
  if (opts.seed !== undefined) args.push('--impair-seed', String(opts.seed));
  return args;
}

/** The impairment from scripts/vm.sh add's output lines (parsed by parseEnvLines), if any. */
export function parseImpairment(env: Record<string, string>, opts: VmImpairmentOptions): VmImpairment | undefined {
  if (!env.VM_IMPAIR_PID) return undefined;
  return { ...opts, pid: Number(env.VM_IMPAIR_PID), ifaceA: env.VM_IMPAIR_A ?? '', ifaceB: env.VM_IMPAIR_B ?? '', log: env.VM_IMPAIR_LOG ?? '' };
}

export interface PingResult {
  sent: number;
  received: number;
  stdout: string;
}

export interface NetnsVmInfo {
  name: string;
  ns: string;
  hostIface: string;
  mac: string;
  /** Address without prefix length, e.g. '10.0.0.1'. */
  ip: string;
  /** Prefix length, e.g. 24. */
  prefixLen: number;
  vmUuid: string;
  ifaceId: string;
  bridge: string;
  /** Set when eth0 reaches the bridge through the impairment forwarder. */
  impair?: VmImpairment;
}

export class NetnsVm implements NetnsVmInfo {
  readonly name: string;
  readonly ns: string;
  readonly hostIface: string;
  readonly mac: string;
  readonly ip: string;
  readonly prefixLen: number;
  readonly vmUuid: string;
  readonly ifaceId: string;
  readonly bridge: string;
  readonly impair?: VmImpairment;
  private readonly children = new Set<ChildProcess>();

  constructor(info: NetnsVmInfo) {
    this.name = info.name;
    this.ns = info.ns;
    this.hostIface = info.hostIface;
    this.mac = info.mac;
    this.ip = info.ip;
    this.prefixLen = info.prefixLen;
    this.vmUuid = info.vmUuid;
    this.ifaceId = info.ifaceId;
    this.bridge = info.bridge;
    if (info.impair) this.impair = info.impair;
  }

  /** The impairment forwarder's counters so far (scripts/vm.sh impair-stats); throws when the VM has none. */
  async impairStats(): Promise<ImpairmentStats> {
    if (!this.impair) throw new Error(`netns-vm: VM is not impaired (vm=${this.name})`);
    const { stdout } = await runFile('bash', [VM_SH, 'impair-stats', this.name], { timeoutMs: 15_000 });
    return JSON.parse(stdout) as ImpairmentStats;
  }

  /** Runs a command inside the namespace; rejects on a non-zero exit. */
  exec(cmd: readonly string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    if (cmd.length === 0) throw new Error(`netns-vm: empty command (vm=${this.name})`);
    return runFile('ip', ['netns', 'exec', this.ns, ...cmd], opts);
  }

  /**
   * Starts a long-running command inside the namespace (a server, a traffic generator). It is
   * killed by kill() and, at the latest, when the VM is removed (scripts/vm.sh del kills the netns' processes).
   */
  spawn(cmd: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    if (cmd.length === 0) throw new Error(`netns-vm: empty command (vm=${this.name})`);
    const child = spawn('ip', ['netns', 'exec', this.ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Sends `count` echo requests (0.2 s apart, 2 s reply timeout); resolves with what came back, even 0. */
  async ping(ip: string, count = 3): Promise<PingResult> {
    const args = ['ping', '-n', '-c', String(count), '-i', '0.2', '-W', '2', ip];
    let stdout: string;
    try {
      stdout = (await this.exec(args, { timeoutMs: 10_000 + count * 1_000 })).stdout;
    } catch (err) {
      // ping exits 1 when replies are missing; anything else (2: bad address, no netns) is an error.
      const e = err as { code?: unknown; stdout?: string };
      if (e.code !== 1 || typeof e.stdout !== 'string') throw err;
      stdout = e.stdout;
    }
    const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(stdout);
    if (!m) throw new Error(`netns-vm: unexpected ping output (vm=${this.name}, ip=${ip}): ${stdout.trim()}`);
    return { sent: Number(m[1]), received: Number(m[2]), stdout };
  }

  /** Kills the processes started with spawn(). */
  kill(): void {
    for (const child of this.children) child.kill('SIGKILL');
    this.children.clear();
  }
}

/**
 * Only the traffic a test makes: IPv6 off in each VM (no router or neighbour solicitations), static
 * neighbours among them (no ARP), and with `paceMbit` a tbf on eth0 (the userspace datapath drops
 * unpaced bursts: real loss a test asserting none must not see).
 */
export async function quietVms(vms: readonly NetnsVm[], opts: { paceMbit?: number } = {}): Promise<void> {
  for (const vm of vms) {
    await vm.exec(['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
    await vm.exec(['sysctl', '-q', '-w', 'net.ipv6.conf.eth0.disable_ipv6=1']);
    for (const other of vms) if (other !== vm) await vm.exec(['ip', 'neigh', 'replace', other.ip, 'lladdr', other.mac, 'dev', 'eth0', 'nud', 'permanent']);
    if (opts.paceMbit) await vm.exec(['tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', 'tbf', 'rate', `${opts.paceMbit}mbit`, 'burst', '32kb', 'latency', '50ms']);
  }
}
