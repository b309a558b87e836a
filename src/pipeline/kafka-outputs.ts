/**
 * What `replay --brokers` and `capture --brokers` (and the agent) open: the topics checked or
 * created, a FlowRecord output to the flows topic, optionally the inventory published once, all
 * closed together (flows delivered, inventory delivered, then the client disconnected).
 */
import type { FlowRecord } from '../capture/flow-record.js';
import type { RecordOutput } from '../agent/record-output.js';
import type { InventoryEntry } from '../ovsdb/inventory.js';
import { KafkaProducerClient, openFlowSink, type KafkaFlowBatchSink, type TopicSinkMetrics } from './kafka-producer.js';
import type { KafkaConfig } from './kafka-config.js';
import { InventoryPublisher } from './inventory-publisher.js';
import type { EndpointNamer } from './pair-key.js';

export interface KafkaFlowOutputs {
  flowsOut: RecordOutput<FlowRecord>;
  /** Publishes the whole inventory again (changed VMs and tombstones only); present when opened with `inventory`. */
  publishInventory?: (entries: readonly InventoryEntry[]) => void;
  /** Counters of the flows topic (and the inventory topic, when published). */
  metrics(): { flows: TopicSinkMetrics; inventory?: TopicSinkMetrics };
}

export interface OpenKafkaFlowOutputsOptions {
  agentId: string;
  namer?: EndpointNamer;
  /** Published once to the inventory topic (keyed by agent and VM). */
  inventory?: readonly InventoryEntry[];
  onError?: (e: unknown, fatal: boolean) => void;
}

/** Connects, ensures the topics (a clear error when one is incompatible or the broker is unreachable), opens the sinks. */
export async function openKafkaFlowOutputs(cfg: KafkaConfig, o: OpenKafkaFlowOutputsOptions): Promise<KafkaFlowOutputs> {
  const client = await KafkaProducerClient.create(cfg);
  await client.ensureTopics(o.inventory ? ['flows', 'inventory'] : ['flows']);
  const common = { ...(o.namer ? { namer: o.namer } : {}), ...(o.onError ? { onError: o.onError } : {}) };
  const flows: KafkaFlowBatchSink = openFlowSink(client, common);
  let publisher: InventoryPublisher | undefined;
  if (o.inventory) {
    publisher = new InventoryPublisher(client, o.agentId, common);
    publisher.publish(o.inventory);
  }
  let closing: Promise<void> | undefined;
  const flowsOut: RecordOutput<FlowRecord> = {
    write: (r) => flows.write(r),
    get behind() {
      return flows.behind;
    },
    drained: () => flows.drained(),
    close: () =>
      (closing ??= (async () => {
        try {
          await flows.close();
          await publisher?.close();
        } finally {
          await client.disconnect();
        }
      })()),
  };
  return {
    flowsOut,
    metrics: () => ({ flows: flows.metrics(), ...(publisher ? { inventory: publisher.sink.metrics() } : {}) }),
    ...(publisher ? { publishInventory: (entries: readonly InventoryEntry[]) => void publisher.publish(entries) } : {}),
  };
}

/** One line for a command's summary. */
export function formatKafkaSummary(command: string, topic: string, m: TopicSinkMetrics): string {
  const parts = [`sent=${m.sent}`, `batches=${m.batches}`, `retried=${m.retried}`, `spooled=${m.spooled}`, `spool-pending=${m.spoolPending}`, `dropped=${m.dropped}`];
  return `${command}: kafka topic=${topic} ${parts.join(' ')}`;
}
