/**
 * The pipeline's readiness, for /readyz (`mirrorflow pipeline --metrics`): ready once start()
 * resolved, the consumer joined its group and every assigned partition holds its transactional
 * producer with its state restored; not while stopping. Pure: the caller passes the state.
 */

export interface PipelineReadinessState {
  /** KafkaPipeline.start() resolved. */
  started: boolean;
  /** Stopping (a signal came, or the consumer failed). */
  stopping: boolean;
  /** KafkaPipeline.readiness: joined the group; partitions assigned; of those, held (producer + restored state). */
  joined: boolean;
  partitions: number;
  held: number;
  /** The consumer gave up (a fatal error): not live either. */
  failed?: boolean;
}

export interface PipelineHealth {
  live: boolean;
  ready: boolean;
  detail: Record<string, unknown>;
}

/** Each part and, when not ready, which parts are missing (`notReady`: pipeline, consumer, producers). */
export function evaluatePipelineReadiness(s: PipelineReadinessState): PipelineHealth {
  const notReady: string[] = [];
  const running = s.started && !s.stopping && !s.failed;
  if (!running) notReady.push('pipeline');
  if (!s.joined) notReady.push('consumer');
  if (s.held < s.partitions) notReady.push('producers');
  return {
    live: !s.failed,
    ready: notReady.length === 0,
    detail: {
      pipeline: s.failed ? 'failed' : s.stopping ? 'stopping' : s.started ? 'running' : 'starting',
      consumer: s.joined ? 'joined' : 'not joined',
      partitions: s.partitions,
      producers: s.held,
      ...(notReady.length ? { notReady } : {}),
    },
  };
}
