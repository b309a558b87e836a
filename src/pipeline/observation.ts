/**
 * From a FlowRecord to what the per-pair aggregator needs: endpoints named after VMs, the counters,
 * the RTT distributions in µs.
 */
import type { FlowRecord } from '../capture/flow-record.js';
import { RttSketch, type RttSketchData } from '../capture/rtt-sketch.js';
import type { EndpointResolver } from './endpoint-resolver.js';
import type { FlowKeyRecord, LatencySummary } from '../capture/flow-record.js';
import { flowKeyIdentityOf, type Distribution, type PairObservation } from './pair-window.js';

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

  /**
   * What summarize() gives for a SketchDistribution after add(us) once, without making one: the
   * sketch keeps its one sample exactly (ns, negative and NaN as 0) and clamps every quantile to it.
   */
  static summarizeOne(us: number): LatencySummary {
    const ns = us * 1000;
    const v = (ns > 0 ? ns : 0) / 1000;
    return { count: 1, min: v, p50: v, p95: v, max: v };
  }
}

/** Identity of the bidirectional flow key, the same whichever side the table took as client. */
export function flowKeyIdentity(r: FlowRecord): string {
  return flowKeyIdentityOf(r.key);
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

/**
 * A reusable observation for observationInto (one per caller): filled in place per record, for
 * PairWindowAggregator.addTo, which keeps nothing of it.
 */
export class ObservationScratch implements PairObservation {
  keyRecord: FlowKeyRecord | undefined = undefined;
  private identity: string | undefined = undefined;
  /** flowKeyIdentity of the record, made when first read. */
  get flowKey(): string {
    return (this.identity ??= flowKeyIdentityOf(this.keyRecord!));
  }
  client = '';
  server = '';
  firstUs = 0;
  lastUs = 0;
  clientToServer: { packets: number; bytes: number } = { packets: 0, bytes: 0 };
  serverToClient: { packets: number; bytes: number } = { packets: 0, bytes: 0 };
  tcp: NonNullable<PairObservation['tcp']> | undefined = undefined;
  icmp: NonNullable<PairObservation['icmp']> | undefined = undefined;
  private readonly tcpPart: NonNullable<PairObservation['tcp']> = { handshakeRttUs: undefined, failedHandshake: false, retransmits: 0, gapFills: 0, dataSegments: 0 };
  private readonly icmpPart: NonNullable<PairObservation['icmp']> = { echoRequests: 0, echoReplies: 0, rtt: undefined };
  /** The echo RTT distribution of the record, filled in place (the aggregator merges it, keeps nothing). */
  private readonly rttPart = new SketchDistribution();

  /**
   * The same observation as observationFromRecord(r, resolver), written into this object.
   * `captured`: the record comes from this process's flow table (its address text is canonical:
   * EndpointResolver.nameFromCapturedText).
   */
  fill(r: FlowRecord, resolver: EndpointResolver, captured = false): this {
    const k = r.key;
    const ip = k.ipVersion === 4 || k.ipVersion === 6;
    this.keyRecord = k;
    this.identity = undefined;
    if (captured) {
      this.client = resolver.nameFromCapturedText(k.clientMac || undefined, ip ? k.clientIp : undefined);
      this.server = resolver.nameFromCapturedText(k.serverMac || undefined, ip ? k.serverIp : undefined);
    } else {
      this.client = resolver.nameFromText(k.clientMac || undefined, ip ? k.clientIp : undefined);
      this.server = resolver.nameFromText(k.serverMac || undefined, ip ? k.serverIp : undefined);
    }
    this.firstUs = r.startUs;
    this.lastUs = r.endUs;
    this.clientToServer = r.clientToServer;
    this.serverToClient = r.serverToClient;
    const t = r.tcp;
    if (t) {
      const o = this.tcpPart;
      o.handshakeRttUs = t.handshakeRttUs;
      o.failedHandshake = t.failed;
      o.retransmits = t.clientToServer.retransmits + t.serverToClient.retransmits;
      o.gapFills = t.clientToServer.gapFills + t.serverToClient.gapFills;
      o.dataSegments = t.clientToServer.dataSegments + t.serverToClient.dataSegments;
      this.tcp = o;
    } else this.tcp = undefined;
    const i = r.icmp;
    if (i) {
      const o = this.icmpPart;
      o.echoRequests = i.echoRequests;
      o.echoReplies = i.echoReplies;
      if (i.rtt) {
        this.rttPart.sketch.loadData(i.rtt);
        o.rtt = this.rttPart;
      } else o.rtt = undefined;
      this.icmp = o;
    } else this.icmp = undefined;
    return this;
  }
}
