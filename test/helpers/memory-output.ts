import type { RecordOutput } from '../../src/agent/record-output.js';

/** A RecordOutput that keeps what is written, for tests reading the windows a sink emits. */
export class MemoryOutput<T> implements RecordOutput<T> {
  readonly items: T[] = [];
  write(r: T): void {
    this.items.push(r);
  }
  async drained(): Promise<void> {}
  async close(): Promise<void> {}
}
