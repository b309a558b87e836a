import type { Command } from './command.js';

/** A command as the dispatcher knows it: its name and summary, and its module loaded on use. */
export interface CommandEntry {
  name: string;
  summary: string;
  load(): Promise<Command>;
}

/**
 * Every command of `mirrorflow`, in the order `--help` lists them. Modules load only when their
 * command runs, so `replay` does not pay for the OVSDB client or kafkajs at startup. The summary
 * here must equal the command's own (a unit test checks).
 */
export const commands: CommandEntry[] = [
  { name: 'mirror create', summary: 'Create a port mirror, or update it in place when its spec changed (idempotent)', load: async () => (await import('./mirror-create.js')).mirrorCreateCommand },
  { name: 'mirror list', summary: 'List the mirrors of the database (all of them; OWNER says which mirrorflow made)', load: async () => (await import('./mirror-list.js')).mirrorListCommand },
  { name: 'mirror delete', summary: 'Delete a mirror made by mirrorflow, and the internal port it created for it', load: async () => (await import('./mirror-delete.js')).mirrorDeleteCommand },
  { name: 'mirror stats', summary: 'Show what each mirror sent to its output (Mirror.statistics, updated by ovs-vswitchd)', load: async () => (await import('./mirror-stats.js')).mirrorStatsCommand },
  { name: 'inventory', summary: 'List the VMs on this hypervisor (Interface external_ids vm-uuid/vm-id, iface-id, attached-mac)', load: async () => (await import('./inventory.js')).inventoryCommand },
  { name: 'decode', summary: 'Decode a pcap/pcapng file: one JSON line per frame, a summary of counts on stderr', load: async () => (await import('./decode.js')).decodeCommand },
  { name: 'replay', summary: 'Run the capture worker and per-VM-pair aggregation over a pcap/pcapng file', load: async () => (await import('./replay.js')).replayCommand },
  { name: 'capture', summary: "Capture live on a mirror's output interface: flow records and per-VM-pair windows until SIGINT/SIGTERM", load: async () => (await import('./capture.js')).captureCommand },
  { name: 'agent', summary: 'Run the hypervisor daemon: mirror the VMs, capture, aggregate per VM pair (embedded) or send to Kafka', load: async () => (await import('./agent.js')).agentCommand },
  { name: 'pipeline', summary: 'Aggregate the flows topic per VM pair into the pairs topic, exactly once (a Kafka consumer group)', load: async () => (await import('./pipeline.js')).pipelineCommand },
  { name: 'tail', summary: 'Print a mirrorflow Kafka topic (flows, pairs, alerts, inventory) as JSON lines, decoded by the message headers', load: async () => (await import('./tail.js')).tailCommand },
  { name: 'top', summary: 'Live table of VM pairs per window (throughput, packets, flows, RTT, loss, alerts) from a pairs file or the pairs topic', load: async () => (await import('./top.js')).topCommand },
  { name: 'version', summary: 'Print the mirrorflow version', load: async () => (await import('./version.js')).versionCommand },
];
