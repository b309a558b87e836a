import { expect } from 'chai';
import { decodeFrame } from '../../../../src/capture/decode/decode.js';
import { DecodeError, DecodedFrame, DECODE_ERROR_NAMES, formatIp, formatMac, Tunnel, TCP_ACK, TCP_SYN } from '../../../../src/capture/decode/frame.js';
import { hex } from '../../../helpers/pcap-writer.js';

const ETH = 1;
const f = new DecodedFrame();

function run(bytes: Uint8Array, opts: { caplen?: number; len?: number; linkType?: number; at?: number } = {}): string {
  // place the frame at an offset inside a larger buffer, as in a batch
  const at = opts.at ?? 7;
  const buf = Buffer.alloc(at + bytes.length + 5, 0xee);
  buf.set(bytes, at);
  const code = decodeFrame(buf, at, opts.caplen ?? bytes.length, opts.len ?? bytes.length, opts.linkType ?? ETH, f);
  expect(code).to.equal(f.error);
  return DECODE_ERROR_NAMES[code]!;
}

// ---- fixtures (commented hex)

const ethHdr = (type: string) => '020000000002' /* dst */ + '020000000001' /* src */ + type;

const ipv4Tcp =
  ethHdr('0800') +
  '45' /* v4, ihl 5 */ + '00' + '0044' /* total 68 */ + '1234' /* id */ + '4000' /* DF */ + '40' /* ttl */ + '06' /* TCP */ + '0000' +
  '0a000001' /* src */ + '0a000002' /* dst */ +
  'c350' /* sport 50000 */ + '0050' /* dport 80 */ + '00000001' /* seq */ + '00000000' /* ack */ +
  'a0' /* doff 10 (40 bytes) */ + '02' /* SYN */ + 'faf0' /* window */ + '0000' + '0000' +
  '020405b4' /* MSS 1460 */ + '0402' /* SACK permitted */ + '080a' + '00000064' + '00000000' /* TS 100/0 */ + '01' + '030307' /* NOP, WS 7 */ +
  'deadbeef'.repeat(2) /* 8 payload bytes */;

const ipv6ExtUdp =
  ethHdr('86dd') +
  '60000000' + '0030' /* payload 48 */ + '00' /* next: hop-by-hop */ + '40' +
  '20010db8000000000000000000000001' /* src */ + '20010db8000000000000000000000002' /* dst */ +
  '3c' /* next: dest opts */ + '00' /* len 0 → 8 */ + '010400000000' /* PadN */ +
  '2c' /* next: fragment */ + '00' + '010400000000' +
  '11' /* next: UDP */ + '00' + '0000' /* offset 0, M 0 */ + 'cafebabe' /* id */ +
  '1f90' /* sport 8080 */ + '0035' /* dport 53 */ + '0018' /* len 24 */ + '0000' + '00'.repeat(16);

const innerEthTcp =
  '0a0000000002' /* inner dst */ + '0a0000000001' /* inner src */ + '0800' +
  '45000028' + '00010000' + '4006' + '0000' + 'c0a80001' /* inner src */ + 'c0a80002' /* inner dst */ +
  '04d2' /* 1234 */ + '162e' /* 5678 */ + '00000000' + '00000000' + '5012' /* doff 5, SYN|ACK */ + '1000' + '00000000';

const vxlanFrame =
  ethHdr('0800') +
  '45000060' /* total 96 = 20 + 8 + 8 + 54 + 6? */ + '00000000' + '4011' /* UDP */ + '0000' + 'ac100001' /* outer src */ + 'ac100002' /* outer dst */ +
  'c000' /* sport */ + '12b5' /* 4789 */ + '004c' /* len 76 */ + '0000' +
  '08000000' + '00006400' /* VNI 100 */ +
  innerEthTcp + '00'.repeat(8) /* padding inside the UDP payload */;

describe('capture/decode', () => {
  it('decodes Ethernet/IPv4/TCP with options', () => {
    expect(run(hex(ipv4Tcp))).to.equal('ok');
    expect(formatMac(f.srcMac)).to.equal('02:00:00:00:00:01');
    expect(formatMac(f.dstMac)).to.equal('02:00:00:00:00:02');
    expect(f.etherType).to.equal(0x0800);
    expect(f.ipVersion).to.equal(4);
    expect(formatIp(4, f.srcIp)).to.equal('10.0.0.1');
    expect(formatIp(4, f.dstIp)).to.equal('10.0.0.2');
    expect([f.protocol, f.ttl, f.ipId, f.fragOffset]).to.deep.equal([6, 64, 0x1234, 0]);
    expect([f.srcPort, f.dstPort, f.seq, f.ack, f.tcpFlags, f.window]).to.deep.equal([50000, 80, 1, 0, TCP_SYN, 0xfaf0]);
    expect([f.mss, f.windowScale, f.sackPermitted, f.hasTimestamp, f.tsVal, f.tsEcr]).to.deep.equal([1460, 7, true, true, 100, 0]);
    expect(f.payloadLength).to.equal(8);
    expect(f.l3Offset).to.equal(7 + 14);
    expect(f.l4Offset).to.equal(7 + 34);
    expect(f.l4Length).to.equal(48);
  });

  it('keeps payloadLength from the IP header when the payload is cut by snaplen', () => {
    const b = hex(ipv4Tcp);
    expect(run(b, { caplen: 14 + 20 + 40, len: b.length })).to.equal('ok');
    expect(f.payloadLength).to.equal(8);
    expect([f.len, f.caplen]).to.deep.equal([b.length, 74]);
  });

  it('reports tcp-truncated for a frame cut inside the TCP header, keeping the IP fields', () => {
    const b = hex(ipv4Tcp);
    expect(run(b, { caplen: 14 + 20 + 25, len: b.length })).to.equal('tcp-truncated');
    expect(formatIp(4, f.dstIp)).to.equal('10.0.0.2');
    expect(f.srcPort).to.equal(50000); // the fixed header was complete
    expect(run(b, { caplen: 14 + 20 + 10, len: b.length })).to.equal('tcp-truncated');
    expect(f.hasL4).to.equal(false);
  });

  it('decodes 802.1Q, 802.1ad and QinQ (0x9100) tags, outermost first', () => {
    const frame = hex(
      '020000000002' + '020000000001' + '88a8' + '0064' /* S-tag vid 100 */ + '9100' + '00c8' /* vid 200 */ + '8100' + 'a12c' /* pcp 5, vid 300 */ + '0806' + '0001080006040001' + '020000000001' + 'c0a80001' + '000000000000' + 'c0a80002',
    );
    expect(run(frame)).to.equal('ok');
    expect(Array.from(f.vlans.subarray(0, f.vlanCount))).to.deep.equal([100, 200, 300]);
    expect(f.etherType).to.equal(0x0806);
    expect([f.arpOp, formatIp(4, [f.arpSenderIp]), formatIp(4, [f.arpTargetIp])]).to.deep.equal([1, '192.168.0.1', '192.168.0.2']);
  });

  it('rejects more than MAX_VLANS tags and a cut tag', () => {
    const tags = '81000001'.repeat(5);
    expect(run(hex(ethHdr(tags.slice(0, 4)) + tags.slice(4) + '0800'))).to.equal('vlan-too-deep');
    expect(run(hex(ethHdr('8100') + '00'))).to.equal('truncated-vlan');
    expect(run(hex('0200000000020200'))).to.equal('truncated-ethernet');
    expect(f.hasL2).to.equal(false);
  });

  it('treats an unknown EtherType and an 802.3 length as other traffic', () => {
    expect(run(hex(ethHdr('88cc') + '0000'))).to.equal('ok');
    expect([f.etherType, f.ipVersion]).to.deep.equal([0x88cc, 0]);
    expect(run(hex(ethHdr('0026') + '424203000000'))).to.equal('ok');
    expect(f.etherType).to.equal(0x26);
  });

  it('skips IPv4 options and treats an unknown protocol as other traffic', () => {
    const frame = hex(ethHdr('0800') + '46' /* ihl 6 */ + '00' + '0018' /* 24 */ + '00010000' + '40' + 'fd' /* proto 253 */ + '0000' + '01020304' + '05060708' + '01010100' /* NOP options */);
    expect(run(frame)).to.equal('ok');
    expect([f.protocol, f.l4Length]).to.deep.equal([253, 0]);
  });

  it('reports IPv4 header problems', () => {
    const ip = (vihl: string, total: string) => hex(ethHdr('0800') + vihl + '00' + total + '00010000' + '4006' + '0000' + '0a000001' + '0a000002' + '00'.repeat(20));
    expect(run(ip('44', '0028'))).to.equal('ipv4-bad-header-length');
    expect(run(ip('55', '0028'))).to.equal('ipv4-bad-version');
    expect(run(ip('45', '0010'))).to.equal('ipv4-bad-total-length'); // below the header
    expect(run(ip('45', '0100'))).to.equal('ipv4-bad-total-length'); // beyond the frame on the wire
    expect(formatIp(4, f.srcIp)).to.equal('10.0.0.1'); // addresses kept
    expect(run(ip('4f', '003c'))).to.equal('ipv4-bad-total-length');
  });

  it('marks a later IPv4 fragment and leaves its ports 0', () => {
    const frag = hex(ethHdr('0800') + '45000024' + 'abcd' /* id */ + '00b9' /* offset 185*8 = 1480 */ + '4011' + '0000' + '0a000001' + '0a000002' + '00'.repeat(16));
    expect(run(frag)).to.equal('ok');
    expect([f.fragOffset, f.moreFragments, f.ipId, f.protocol, f.srcPort, f.hasL4]).to.deep.equal([1480, false, 0xabcd, 17, 0, false]);
    const first = hex(ethHdr('0800') + '45000024' + 'abcd' + '2000' /* MF */ + '4011' + '0000' + '0a000001' + '0a000002' + '0035' + '0035' + '05dc' /* whole datagram 1500 */ + '0000' + '00'.repeat(8));
    expect(run(first)).to.equal('ok');
    expect([f.fragOffset, f.moreFragments, f.srcPort, f.payloadLength]).to.deep.equal([0, true, 53, 1492]);
  });

  it('walks IPv6 extension headers to UDP', () => {
    expect(run(hex(ipv6ExtUdp))).to.equal('ok');
    expect(formatIp(6, f.srcIp)).to.equal('2001:db8::1');
    expect([f.protocol, f.ipId, f.srcPort, f.dstPort, f.payloadLength, f.fragOffset]).to.deep.equal([17, 0xcafebabe, 8080, 53, 16, 0]);
  });

  it('stops at a later IPv6 fragment and reports bad extension headers', () => {
    const s = ipv6ExtUdp.replace('11' + '00' + '0000', '11' + '00' + '0171' /* offset 46*8=368, M */);
    expect(run(hex(s))).to.equal('ok');
    expect([f.fragOffset, f.moreFragments, f.protocol, f.hasL4]).to.deep.equal([368, true, 17, false]);
    // hop-by-hop length runs past the payload length
    expect(run(hex(ipv6ExtUdp.replace('3c' + '00', '3c' + '09')))).to.equal('ipv6-bad-extension-header');
    expect(run(hex(ipv6ExtUdp.replace('0030', '0100')))).to.equal('ipv6-bad-payload-length');
    expect(run(hex(ipv6ExtUdp.replace('60000000', '70000000')))).to.equal('ipv6-bad-version');
    const many = ethHdr('86dd') + '60000000' + '0050' + '3c40' + '20010db8000000000000000000000001' + '20010db8000000000000000000000002' + '3c00010400000000'.repeat(9) + '3b00010400000000';
    expect(run(hex(many))).to.equal('ipv6-too-many-extension-headers');
  });

  it('decodes AH as an extension header', () => {
    const ah = ethHdr('86dd') + '60000000' + '0014' /* 20 */ + '33' /* AH */ + '40' + '00'.repeat(16) + '00'.repeat(15) + '01' +
      '3a' /* next ICMPv6 */ + '01' /* (1+2)*4 = 12 */ + '0000' + '00000001' /* SPI */ + '00000001' /* seq */ +
      '80' /* echo request */ + '00' + '0000' + '0007' /* id */ + '0002' /* seq */;
    expect(run(hex(ah))).to.equal('ok');
    expect([f.protocol, f.icmpType, f.icmpCode, f.icmpId, f.icmpSeq]).to.deep.equal([58, 128, 0, 7, 2]);
  });

  it('decodes ICMP echo and a non-echo ICMP', () => {
    const icmp = (type: string) => hex(ethHdr('0800') + '4500001c' + '00010000' + '4001' + '0000' + '0a000001' + '0a000002' + type + '00' + '0000' + '1234' /* id */ + '0005' /* seq */);
    expect(run(icmp('08'))).to.equal('ok');
    expect([f.icmpType, f.icmpCode, f.icmpId, f.icmpSeq, f.srcPort]).to.deep.equal([8, 0, 0x1234, 5, 0]);
    expect(run(icmp('03'))).to.equal('ok');
    expect([f.icmpType, f.icmpId]).to.deep.equal([3, -1]);
  });

  it('reports UDP length problems', () => {
    const u = (len: string) => hex(ethHdr('0800') + '4500001c' + '00010000' + '4011' + '0000' + '0a000001' + '0a000002' + '0035' + '0035' + len + '0000');
    expect(run(u('0008'))).to.equal('ok');
    expect(run(u('0007'))).to.equal('udp-bad-length');
    expect(run(u('0009'))).to.equal('udp-bad-length');
  });

  it('reports TCP header-length problems and bad options', () => {
    const t = (doffFlags: string, opts = '') =>
      hex(ethHdr('0800') + '45' + '00' + (40 + opts.length / 2).toString(16).padStart(4, '0') + '00010000' + '4006' + '0000' + '0a000001' + '0a000002' + '0001' + '0002' + '00000001' + '00000002' + doffFlags + '1000' + '00000000' + opts);
    expect(run(t('4010'))).to.equal('tcp-bad-header-length');
    expect(run(t('6010'))).to.equal('tcp-bad-header-length'); // 24 > segment of 20
    expect(run(t('6010', '02010000'))).to.equal('tcp-bad-option'); // option length 1
    expect(f.tcpFlags).to.equal(TCP_ACK);
    expect(run(t('6010', '050a0000'))).to.equal('tcp-bad-option'); // runs past the header
    expect(run(t('8010', '050a' + '00000001' + '00000002' + '0000'))).to.equal('ok');
    expect(f.sackBlocks).to.equal(1);
  });

  it('decodes VXLAN as the inner flow with the VNI and outer IPs', () => {
    expect(run(hex(vxlanFrame))).to.equal('ok');
    expect([f.tunnel, f.vni, f.outerIpVersion]).to.deep.equal([Tunnel.Vxlan, 100, 4]);
    expect(formatIp(4, f.outerSrcIp)).to.equal('172.16.0.1');
    expect(formatIp(4, f.srcIp)).to.equal('192.168.0.1');
    expect(formatMac(f.srcMac)).to.equal('0a:00:00:00:00:01');
    expect([f.protocol, f.srcPort, f.dstPort, f.tcpFlags]).to.deep.equal([6, 1234, 5678, 0x12]);
  });

  it('decodes Geneve with options, and IP inside Geneve', () => {
    const geneve = (b0: string, proto: string, opts: string, inner: string) => {
      const udpLen = 8 + 8 + opts.length / 2 + inner.length / 2;
      return hex(ethHdr('0800') + '45' + '00' + (20 + udpLen).toString(16).padStart(4, '0') + '00000000' + '4011' + '0000' + 'ac100001' + 'ac100002' +
        'c000' + '17c1' /* 6081 */ + udpLen.toString(16).padStart(4, '0') + '0000' + b0 + '00' + proto + '000fa0' /* VNI 4000 */ + '00' + opts + inner);
    };
    const opt = '0102' + '03' + '01' /* class 0x0102, type 3, len 1 */ + 'aabbccdd';
    expect(run(geneve('02', '6558', opt, innerEthTcp))).to.equal('ok');
    expect([f.tunnel, f.vni, f.srcPort]).to.deep.equal([Tunnel.Geneve, 4000, 1234]);
    expect(run(geneve('00', '0800', '', innerEthTcp.slice(28)))).to.equal('ok');
    expect([f.tunnel, f.ipVersion, f.srcPort, formatMac(f.srcMac)]).to.deep.equal([Tunnel.Geneve, 4, 1234, '02:00:00:00:00:01']);
    expect(run(geneve('42', '6558', opt, innerEthTcp))).to.equal('tunnel-unsupported'); // version 1
    expect(run(geneve('3f', '6558', opt, innerEthTcp))).to.equal('tunnel-truncated'); // options beyond the datagram
  });

  it('decodes GRE with key (transparent Ethernet bridging) and IP in GRE', () => {
    const gre = (flags: string, proto: string, extra: string, inner: string) => {
      const total = 20 + 4 + extra.length / 2 + inner.length / 2;
      return hex(ethHdr('0800') + '45' + '00' + total.toString(16).padStart(4, '0') + '00000000' + '402f' /* GRE */ + '0000' + 'ac100001' + 'ac100002' + flags + proto + extra + inner);
    };
    expect(run(gre('2000' /* K */, '6558', '0000002a' /* key 42 */, innerEthTcp))).to.equal('ok');
    expect([f.tunnel, f.vni, f.srcPort, formatIp(4, f.outerDstIp)]).to.deep.equal([Tunnel.Gre, 42, 1234, '172.16.0.2']);
    expect(run(gre('b000' /* C K S */, '0800', '00000000' + '00000007' + '00000001', innerEthTcp.slice(28)))).to.equal('ok');
    expect([f.vni, f.dstPort, formatIp(4, f.dstIp)]).to.deep.equal([7, 5678, '192.168.0.2']);
    expect(run(gre('0000', '0800', '', innerEthTcp.slice(28)))).to.equal('ok');
    expect(f.vni).to.equal(-1);
    expect(run(gre('0001' /* version 1 */, '880b', '', ''))).to.equal('gre-unsupported');
    expect(run(gre('0000', '2001' /* NHRP */, '', '00'.repeat(8)))).to.equal('tunnel-unsupported');
  });

  it('stops tunnels nested deeper than MAX_TUNNEL_DEPTH', () => {
    // GRE(IPv4 GRE(IPv4 GRE(IPv4 TCP)))
    let inner = innerEthTcp.slice(28);
    for (let i = 0; i < 3; i++) {
      const total = 20 + 4 + inner.length / 2;
      inner = '45' + '00' + total.toString(16).padStart(4, '0') + '00000000' + '402f' + '0000' + 'ac100001' + 'ac100002' + '0000' + '0800' + inner;
    }
    expect(run(hex(ethHdr('0800') + inner))).to.equal('tunnel-too-deep');
  });

  it('decodes raw IP and Linux SLL link types, and counts others as unsupported', () => {
    const ipOnly = hex(ipv4Tcp).subarray(14);
    expect(run(ipOnly, { linkType: 101 })).to.equal('ok');
    expect([f.hasL2, f.srcPort]).to.deep.equal([false, 50000]);
    expect(run(hex('00'), { linkType: 101 })).to.equal('raw-bad-version');
    const sll = hex('0000' /* to us */ + '0001' /* ARPHRD_ETHER */ + '0006' + '020000000001' + '0000' + '0800') ;
    expect(run(concat2(sll, ipOnly), { linkType: 113 })).to.equal('ok');
    expect([formatMac(f.srcMac), f.dstPort]).to.deep.equal(['02:00:00:00:00:01', 80]);
    expect(run(sll.subarray(0, 10), { linkType: 113 })).to.equal('truncated-sll');
    expect(run(hex(ipv4Tcp), { linkType: 105 })).to.equal('unsupported-linktype');
  });

  it('clears the state of the previous frame', () => {
    run(hex(vxlanFrame));
    expect(run(hex(ethHdr('88cc')))).to.equal('ok');
    expect([f.tunnel, f.vni, f.ipVersion, f.hasL4, f.vlanCount]).to.deep.equal([Tunnel.None, -1, 0, false, 0]);
  });

  for (const [name, s] of [
    ['IPv4/TCP with options', ipv4Tcp],
    ['IPv6 extension headers/UDP', ipv6ExtUdp],
    ['VXLAN/Ethernet/IPv4/TCP', vxlanFrame],
  ] as const) {
    it(`never throws on ${name} cut at any byte, and gives a sensible reason`, () => {
      const full = hex(s);
      for (let cut = 0; cut <= full.length; cut++) {
        // cut by snaplen: the IP lengths still describe the whole frame
        const reason = run(full, { caplen: cut, len: full.length, at: 0 });
        if (cut < 14) expect(reason, `snaplen ${cut}`).to.equal('truncated-ethernet');
        else if (cut === full.length) expect(reason).to.equal('ok');
        else expect(reason, `snaplen ${cut}`).to.match(/^(ok|.*truncated.*)$/);
        // cut on the wire too (a damaged frame): must not throw; mostly a length error
        const wire = run(full.subarray(0, cut), { at: 3 });
        if (cut < full.length) expect(DecodeError[wire as keyof typeof DecodeError], `cut ${cut}`).to.not.equal(undefined);
      }
      // the first byte at which the frame is only "ok" is after the last header
      const okFrom = [...Array(full.length + 1).keys()].find((c) => run(full, { caplen: c, len: full.length, at: 0 }) === 'ok');
      expect(okFrom, 'first ok snaplen').to.be.greaterThan(34);
    });
  }

  it('decodes every byte value at every position without throwing (random frames)', () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >>> 16) & 255;
    const base = hex(vxlanFrame);
    const counts = new Map<string, number>();
    for (let i = 0; i < 20000; i++) {
      const b = Uint8Array.from(base);
      const flips = 1 + (rnd() % 4);
      for (let k = 0; k < flips; k++) b[12 + (rnd() * 7919 + rnd()) % (b.length - 12)] = rnd();
      const r = run(b, { at: 0, caplen: b.length - (rnd() % 3) });
      counts.set(r, (counts.get(r) ?? 0) + 1);
    }
    expect(counts.get('ok')).to.be.greaterThan(1000);
    expect(counts.size).to.be.greaterThan(3);
  });
});

function concat2(a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.length + b.length);
  o.set(a);
  o.set(b, a.length);
  return o;
}
