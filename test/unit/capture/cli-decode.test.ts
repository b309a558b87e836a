import { expect } from 'chai';
import { parseCommandArgs, type Io } from '../../../src/cli/command.js';
import { decodeCommand } from '../../../src/cli/decode.js';
import { reportError } from '../../../src/cli/main.js';
import { ether, ETH_IPV4, ETH_IPV6, icmp, ipv4, ipv6, tcp, TCP_FLAGS, udp, vxlan, writePcap } from '../../helpers/pcap-writer.js';
import { tempDir } from './readers.fixture.js';

async function runDecode(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l), env: {}, signal: new AbortController().signal };
  let code: number;
  try {
    const { values, positionals } = parseCommandArgs(decodeCommand, argv);
    code = await decodeCommand.run(values, positionals, io);
  } catch (e) {
    code = reportError(e, io);
  }
  return { code, out, err };
}

describe('cli/decode (mirrorflow decode --pcap)', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  const tcpFrame = ether({ vlans: [7] }, ETH_IPV4, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6 }, tcp({ sport: 40000, dport: 443, flags: TCP_FLAGS.SYN })));
  const pingFrame = ether({}, ETH_IPV6, ipv6({ src: 'fd00::1', dst: 'fd00::2', next: 58 }, icmp({ type: 128, id: 1, seq: 2 })));
  const inner = ether({ src: '0a:00:00:00:00:01' }, ETH_IPV4, ipv4({ src: '192.168.1.1', dst: '192.168.1.2', proto: 17 }, udp({ sport: 5353, dport: 53 })));
  const vxlanFrame = ether({}, ETH_IPV4, ipv4({ src: '172.16.0.1', dst: '172.16.0.2', proto: 17 }, udp({ sport: 49152, dport: 4789 }, vxlan({ vni: 5001 }, inner))));

  it('prints one JSON line per frame, omitting fields that do not apply, and a summary on stderr', async () => {
    const file = tmp.write('a.pcap', writePcap([{ data: tcpFrame, tsSec: 1_700_000_000, tsNsec: 123_456_789 }, { data: pingFrame }, { data: vxlanFrame }, { data: tcpFrame.subarray(0, 20) }], { nanos: true }));
    const r = await runDecode(['--pcap', file]);
    expect(r.code).to.equal(0);
    const lines = r.out.map((l) => JSON.parse(l));
    expect(lines[0]).to.deep.equal({
      frame: 1, tsUs: 1_700_000_000_123_456, len: tcpFrame.length, caplen: tcpFrame.length, srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02',
      vlans: [7], etherType: 0x0800, ipVersion: 4, srcIp: '10.0.0.1', dstIp: '10.0.0.2', protocol: 6, srcPort: 40000, dstPort: 443, tcpFlags: 2,
    });
    expect(lines[1]).to.include({ ipVersion: 6, srcIp: 'fd00::1', protocol: 58, icmpType: 128, icmpCode: 0 });
    expect(lines[1]).to.not.have.property('srcPort');
    expect(lines[1]).to.not.have.property('vlans');
    expect(lines[2]).to.include({ tunnel: 'vxlan', vni: 5001, srcIp: '192.168.1.1', srcPort: 5353, outerSrcIp: '172.16.0.1', srcMac: '0a:00:00:00:00:01' });
    expect(lines[3]).to.include({ frame: 4, error: 'ipv4-truncated', len: 20 });
    expect(lines[3]).to.not.have.property('srcIp');
    expect(r.err).to.deep.equal([`decode: frames=4 ok=3 ipv4-truncated=1 (file=${file})`]);
  });

  it('exits 1 with one line after the good frames of a damaged file', async () => {
    const good = writePcap([{ data: tcpFrame }, { data: pingFrame }]);
    const file = tmp.write('bad.pcap', Buffer.concat([good, Buffer.alloc(16, 0xff)]));
    const r = await runDecode(['--pcap', file]);
    expect(r.code).to.equal(1);
    expect(r.out).to.have.length(2);
    expect(r.err).to.deep.equal([`mirrorflow: capture: damaged pcap file (file=${file}, offset=${good.length}, problem=record length 4294967295 exceeds 262144)`]);
  });

  it('exits 2 for a missing --pcap or a missing file', async () => {
    const a = await runDecode([]);
    expect([a.code, a.err]).to.deep.equal([2, ['mirrorflow: decode: missing --pcap FILE']]);
    const b = await runDecode(['--pcap', tmp.path('nope.pcap')]);
    expect(b.code).to.equal(2);
    expect(b.err[0]).to.match(/cannot read capture file .*reason=ENOENT/);
    const c = await runDecode(['--pcap', tmp.write('x.txt', Buffer.from('not a capture'))]);
    expect(c.code).to.equal(1);
    expect(c.err[0]).to.match(/not a pcap or pcapng file .*offset=0/);
  });
});
