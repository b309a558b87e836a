import { hostname } from 'node:os';
import { stat } from 'node:fs/promises';
import { openCaptureFile } from '../capture/open-file.js';
import { runCapture } from '../agent/capture-run.js';
import { UsageError } from '../errors.js';
import type { Command } from './command.js';
import { captureOutputOptions, formatSummary, openCaptureOutputs } from './capture-options.js';

export const replayCommand: Command = {
  name: 'replay',
  summary: 'Run the capture worker and per-VM-pair aggregation over a pcap/pcapng file',
  usage: 'replay --pcap FILE [--inventory FILE] [--flows-out FILE|-] [--pairs-out FILE|-] [--window SECONDS] [--format json|protobuf|avro] [--brokers B [--topic-prefix P]]',
  description: [
    'Flow records and PairWindows use the schemas in proto/ (JSON: the canonical proto3 mapping).',
    'Endpoints are named after VMs from --inventory (by MAC, else IP); others by IP (MAC without IP).',
    'A summary goes to stderr: frames, bytes, undecodable frames by reason, flows, seconds, frames/s.',
    'A damaged file: everything before the damage is processed and written, then exit 1.',
    'With --brokers, flow records go to the Kafka topic <prefix>flows (keyed by the endpoint pair; protobuf unless --format)',
    'and the --inventory to <prefix>inventory, the path the agent uses; replay ends once the broker acknowledged them.',
  ].join('\n'),
  options: {
    pcap: { type: 'string', arg: 'FILE', description: 'Capture file (pcap or pcapng)' },
    ...captureOutputOptions,
  },
  async run(values, _positionals, io) {
    const path = values.pcap;
    if (typeof path !== 'string' || path === '') throw new UsageError('replay: missing --pcap FILE');
    try {
      if (!(await stat(path)).isFile()) throw new UsageError(`replay: not a file (file=${path})`);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`replay: cannot read capture file (file=${path}, reason=${(e as NodeJS.ErrnoException).code ?? 'unknown'})`);
    }
    const agentId = values['agent-id'] === undefined ? hostname() : String(values['agent-id']);
    const outputs = await openCaptureOutputs(values, [], agentId);
    const source = await openCaptureFile(path);
    let failure: unknown;
    let result;
    try {
      result = await runCapture({
        source,
        windowUs: outputs.windowUs,
        resolver: outputs.resolver,
        ...(outputs.flowsOut ? { flowsOut: outputs.flowsOut } : {}),
        ...(outputs.pairsOut ? { pairsOut: outputs.pairsOut } : {}),
        table: { ...outputs.table, observation: { interface: path } },
        agentId,
        signal: io.signal,
      });
    } catch (e) {
      failure = e;
    } finally {
      await source.close();
    }
    if (failure) throw failure;
    for (const line of formatSummary('replay', result!)) io.err(line);
    if (outputs.kafka) {
      const { formatKafkaSummary } = await import('../pipeline/kafka-outputs.js');
      io.err(formatKafkaSummary('replay', outputs.kafka.topic, outputs.kafka.metrics().flows));
    }
    return 0;
  },
};
