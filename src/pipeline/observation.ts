/**
 * From a FlowRecord to what the per-pair aggregator needs: endpoints named after VMs, the counters,
 * the RTT distributions in µs.
 */
import type { FlowRecord } from '../capture/flow-record.js';
import { RttSketch, type RttSketchData } from '../capture/rtt-sketch.js';
import type { EndpointResolver } from './endpoint-resolver.js';
import type { Distribution, PairObservation } from './pair-window.js';

/** The capture's RTT sketch (ns, ≤0.5 % relative error) seen as a distribution in µs. */
export class SketchDistribution implements Distribution {
  constructor(readonly sketch: RttSketch = new RttSketch()) {}
  static fromData(d: RttSketchData): SketchDistribution {
    return new SketchDistribution(RttSketch.fromData(d));
  }
  get count(): number {
    return this.sketch.count;
  }
  get min(): number {
    return this.sketch.minNs / 1000;
  }
  get max(): number {
    return this.sketch.maxNs / 1000;
  }
  add(us: number): void {
    this.sketch.add(us * 1000);
  }
  merge(other: Distribution): void {
    if (other instanceof SketchDistribution) this.sketch.merge(other.sketch);
    else throw new TypeError('SketchDistribution can only merge another SketchDistribution');
  }
  quantile(q: number): number {
    return this.sketch.quantileUs(q);
  }
}

/** Identity of the bidirectional flow key, the same whichever side the table took as client. */
export function flowKeyIdentity(r: FlowRecord): string {
  const k = r.key;
  const c = `${k.clientIp}|${k.clientPort}|${k.clientMac}`;
  const s = `${k.serverIp}|${k.serverPort}|${k.serverMac}`;
  const [x, y] = c <= s ? [c, s] : [s, c];
  return [k.vlans.join('.'), k.tunnel, k.vni ?? '', k.ipVersion, k.protocol, k.etherType, k.icmpId ?? '', k.icmpType ?? '', x, y].join('/');
}

export function observationFromRecord(r: FlowRecord, resolver: EndpointResolver): PairObservation {
  const k = r.key;
  const ip = k.ipVersion === 4 || k.ipVersion === 6;
  const o: PairObservation = {
    flowKey: flowKeyIdentity(r),
    client: resolver.nameFromText(k.clientMac || undefined, ip ? k.clientIp : undefined),
    server: resolver.nameFromText(k.serverMac || undefined, ip ? k.serverIp : undefined),
    firstUs: r.startUs,
    lastUs: r.endUs,
    clientToServer: r.clientToServer,
    serverToClient: r.serverToClient,
  };
  if (r.tcp) {
    const t = r.tcp;
    o.tcp = {
      ...(t.handshakeRttUs !== undefined ? { handshakeRttUs: t.handshakeRttUs } : {}),
      failedHandshake: t.failed,
      retransmits: t.clientToServer.retransmits + t.serverToClient.retransmits,
      gapFills: t.clientToServer.gapFills + t.serverToClient.gapFills,
      dataSegments: t.clientToServer.dataSegments + t.serverToClient.dataSegments,
    };
  }
  if (r.icmp) {
    o.icmp = {
      echoRequests: r.icmp.echoRequests,
      echoReplies: r.icmp.echoReplies,
      ...(r.icmp.rtt ? { rtt: SketchDistribution.fromData(r.icmp.rtt) } : {}),
    };
  }
  return o;
}
