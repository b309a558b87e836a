// A test "VM": a network namespace whose eth0 is a port of an OVS bridge (made by scripts/vm.sh).
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { runFile, type RunResult } from './exec.js';

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
