/**
 * mirrorflow's Kafka topics: names, what they must look like, and ensureTopics(), which creates the
 * missing ones and refuses an existing topic whose config would break us (one KafkaTopicError
 * listing every problem).
 *
 *   flows      FlowRecord, keyed by the unordered endpoint pair (pair-key.ts); deleted by time.
 *   pairs      PairWindow; deleted by time.
 *   alerts     Alert; deleted by time.
 *   inventory  the VMs every agent publishes (inventory-publisher.ts); compacted: the latest
 *              value per key stays forever, tombstones remove VMs that are gone.
 *
 * Incompatible: inventory without cleanup.policy=compact, or with delete (VMs would vanish after
 * the retention); flows/pairs/alerts with compact (compaction keeps one record per KEY: it would
 * silently throw away all but the last flow record of every pair); a max.message.bytes below the
 * producer's batch size (every full batch would be refused). Fewer partitions than we would create,
 * other retention values, and replication are the operator's business and accepted.
 */
import kafkajs from './kafkajs.js';
import { type Admin } from 'kafkajs';

// kafkajs is CommonJS: its enums are read from the default export (named ESM imports of them fail)
const { ConfigResourceTypes } = kafkajs;
import { MirrorflowError, kv } from '../errors.js';
import type { KafkaConfig } from './kafka-config.js';

export type TopicRole = 'flows' | 'pairs' | 'alerts' | 'inventory';
export const TOPIC_ROLES: readonly TopicRole[] = ['flows', 'pairs', 'alerts', 'inventory'];

export class KafkaTopicError extends MirrorflowError {
  constructor(code: string, message: string, opts: { retriable?: boolean; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(code, message, opts);
  }
}

export function topicName(prefix: string, role: TopicRole): string {
  return `${prefix}${role}`;
}

export function topicNames(prefix: string): Record<TopicRole, string> {
  return { flows: `${prefix}flows`, pairs: `${prefix}pairs`, alerts: `${prefix}alerts`, inventory: `${prefix}inventory` };
}

export interface TopicSpec {
  role: TopicRole;
  topic: string;
  numPartitions: number;
  /** Configs set when the topic is created. */
  configs: Record<string, string>;
}

/** The topics ensureTopics creates, from the config's prefix, partition counts and retentions. */
export function topicSpecs(cfg: Pick<KafkaConfig, 'topicPrefix' | 'topics' | 'batchBytes'>): TopicSpec[] {
  const names = topicNames(cfg.topicPrefix);
  // Room for a whole batch in one partition (kafkajs batches are per partition, plus overhead).
  const maxMessageBytes = String(Math.max(cfg.batchBytes + 65_536, 1_048_588));
  const timed = (role: 'flows' | 'pairs' | 'alerts'): TopicSpec => ({
    role,
    topic: names[role],
    numPartitions: cfg.topics.partitions[role],
    configs: { 'cleanup.policy': 'delete', 'retention.ms': String(cfg.topics.retentionMs[role]), 'max.message.bytes': maxMessageBytes },
  });
  return [
    timed('flows'),
    timed('pairs'),
    timed('alerts'),
    {
      role: 'inventory',
      topic: names.inventory,
      numPartitions: cfg.topics.partitions.inventory,
      configs: {
        'cleanup.policy': 'compact',
        // tombstones stay a day so that a reader that was down a while still sees the deletion
        'delete.retention.ms': String(86_400_000),
        'min.cleanable.dirty.ratio': '0.1',
        'segment.ms': String(3_600_000),
      },
    },
  ];
}

/** Problems of an existing topic's config for its role (empty: compatible). */
export function topicConfigProblems(role: TopicRole, configs: Record<string, string | undefined>, minMessageBytes: number): string[] {
  const problems: string[] = [];
  const policies = (configs['cleanup.policy'] ?? 'delete').split(',').map((p) => p.trim());
  if (role === 'inventory') {
    if (!policies.includes('compact') || policies.includes('delete')) {
      problems.push(`cleanup.policy=${policies.join(',')} (expected compact: the inventory must keep the latest entry of every VM)`);
    }
  } else if (policies.includes('compact')) {
    problems.push(`cleanup.policy=${policies.join(',')} (expected delete: compaction would keep one record per pair key)`);
  }
  const max = Number(configs['max.message.bytes']);
  if (role !== 'inventory' && Number.isFinite(max) && max > 0 && max < minMessageBytes) {
    problems.push(`max.message.bytes=${max} (expected at least ${minMessageBytes}, the producer's batch size)`);
  }
  return problems;
}

/** Polls metadata until every partition of the topics has a leader (errors in between are "not yet"). */
async function waitForLeaders(admin: Admin, topics: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    try {
      const known = new Set(await admin.listTopics());
      if (topics.every((t) => known.has(t))) {
        const meta = await admin.fetchTopicMetadata({ topics });
        if (meta.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
        last = 'partitions without a leader';
      } else {
        last = 'not in the metadata yet';
      }
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) {
      throw new KafkaTopicError('kafka-topic-create', `kafka: created topics did not get leaders in time${kv({ topics: topics.join(','), timeoutMs, last })}`, { retriable: true });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface EnsureTopicsResult {
  created: string[];
  existing: string[];
}

/**
 * Creates the missing topics (replication: cfg.topics.replicationFactor, or min(3, brokers)),
 * then checks the configs of all of them; incompatible existing topics → one KafkaTopicError
 * ('kafka-topic-incompatible') naming every topic and setting.
 */
export async function ensureTopics(
  admin: Admin,
  cfg: Pick<KafkaConfig, 'topicPrefix' | 'topics' | 'batchBytes'>,
  roles: readonly TopicRole[] = TOPIC_ROLES,
): Promise<EnsureTopicsResult> {
  const specs = topicSpecs(cfg).filter((s) => roles.includes(s.role));
  const present = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !present.has(s.topic));
  const created: string[] = [];
  if (missing.length) {
    let rf = cfg.topics.replicationFactor;
    if (rf === 0) rf = Math.max(1, Math.min(3, (await admin.describeCluster()).brokers.length));
    try {
      // waitForLeaders: false — kafkajs' own wait fails on a metadata race (UNKNOWN_TOPIC_OR_PARTITION
      // right after the create); we wait for the leaders ourselves below
      await admin.createTopics({
        waitForLeaders: false,
        topics: missing.map((s) => ({
          topic: s.topic,
          numPartitions: s.numPartitions,
          replicationFactor: rf,
          configEntries: Object.entries(s.configs).map(([name, value]) => ({ name, value })),
        })),
      });
    } catch (e) {
      // another agent created it meanwhile: fine, checked below
      const inner = (e as { errors?: { type?: string }[] }).errors ?? [];
      const onlyExists = inner.length > 0 && inner.every((x) => x.type === 'TOPIC_ALREADY_EXISTS');
      if (!onlyExists && (e as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') {
        throw new KafkaTopicError('kafka-topic-create', `kafka: cannot create topics${kv({ topics: missing.map((s) => s.topic).join(','), reason: (e as Error).message })}`, {
          cause: e,
          retriable: (e as { retriable?: boolean }).retriable ?? false,
        });
      }
    }
    await waitForLeaders(admin, missing.map((s) => s.topic), 30_000);
    for (const s of missing) created.push(s.topic);
  }
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: specs.map((s) => ({ type: ConfigResourceTypes.TOPIC, name: s.topic, configNames: ['cleanup.policy', 'max.message.bytes', 'retention.ms'] })),
  });
  const minMessageBytes = cfg.batchBytes;
  const problems: string[] = [];
  for (const s of specs) {
    const res = described.resources.find((r) => r.resourceName === s.topic);
    const configs: Record<string, string | undefined> = {};
    for (const e of res?.configEntries ?? []) configs[e.configName] = e.configValue;
    for (const p of topicConfigProblems(s.role, configs, minMessageBytes)) problems.push(`topic=${s.topic}: ${p}`);
  }
  if (problems.length) {
    throw new KafkaTopicError('kafka-topic-incompatible', `kafka: existing topic has an incompatible config (${problems.join('; ')})`, {
      details: { problems },
    });
  }
  return { created, existing: specs.filter((s) => !created.includes(s.topic)).map((s) => s.topic) };
}
