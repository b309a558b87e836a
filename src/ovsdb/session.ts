/**
 * An OVSDB session for mirrorflow's own use: one client, one monitor of the tables the mirror
 * controller and the inventory read, and their row cache. Adapts the client to ControllerSession.
 */
import type { OvsdbConnectConfig } from '../config/ovsdb-config.js';
import { OvsdbClient, type MonitorHandle, type MonitorMethod, type MonitorTableRequest } from './client.js';
import type { ControllerSession, LoggerLike, Tables } from './mirror-controller.js';
import type { Operation } from './ops.js';

export const VSWITCH_DB = 'Open_vSwitch';

/** Columns mirrorflow reads; statistics included for `mirror stats`. */
export const MONITORED_TABLES: Record<string, MonitorTableRequest> = {
  Open_vSwitch: { columns: ['bridges', 'next_cfg', 'cur_cfg'] },
  Bridge: { columns: ['name', 'ports', 'mirrors', 'datapath_type', 'external_ids'] },
  Port: { columns: ['name', 'interfaces', 'tag', 'trunks', 'external_ids'] },
  Interface: { columns: ['name', 'type', 'external_ids', 'ofport', 'mac_in_use', 'admin_state', 'link_state'] },
  Mirror: {
    columns: ['name', 'select_all', 'select_src_port', 'select_dst_port', 'select_vlan', 'output_port', 'output_vlan', 'snaplen', 'statistics', 'external_ids'],
  },
};

export interface OvsdbSession extends ControllerSession {
  readonly client: OvsdbClient;
  readonly monitor: MonitorHandle;
  close(): Promise<void>;
}

export interface OpenSessionOptions {
  logger?: LoggerLike;
  /** Keep reconnecting after a lost connection (daemons); one-shot commands fail instead. */
  reconnect?: boolean;
  probeIntervalMs?: number;
  monitorMethod?: MonitorMethod;
  db?: string;
}

export async function openOvsdbSession(config: OvsdbConnectConfig, opts: OpenSessionOptions = {}): Promise<OvsdbSession> {
  const db = opts.db ?? VSWITCH_DB;
  const client = await OvsdbClient.connect({
    url: config.url,
    ...(config.ssl ? { ssl: config.ssl } : {}),
    reconnect: opts.reconnect ?? true,
    ...(opts.probeIntervalMs !== undefined ? { probeIntervalMs: opts.probeIntervalMs } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.monitorMethod ? { monitorMethod: opts.monitorMethod } : {}),
  });
  let monitor: MonitorHandle;
  try {
    monitor = await client.monitor(db, MONITORED_TABLES);
  } catch (e) {
    await client.close();
    throw e;
  }
  const cache = monitor.cache;
  return {
    client,
    monitor,
    transact: (ops: Operation[]) => client.transact(db, ops),
    tables: (): Tables => cache.tables,
    onChange(listener: () => void) {
      cache.on('add', listener);
      cache.on('update', listener);
      cache.on('delete', listener);
      return () => {
        cache.off('add', listener);
        cache.off('update', listener);
        cache.off('delete', listener);
      };
    },
    close: async () => {
      await monitor.cancel().catch(() => undefined);
      await client.close();
    },
  };
}
