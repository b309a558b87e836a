/**
 * A map that forgets entries not used for a while, and bounds its size, in O(1) per operation.
 *
 * Two generations: entries used (get/set) since the last rotation live in `young`, the others in
 * `old`. A rotation drops `old` and makes `young` old. Rotations happen when event time passes
 * `periodUs` since the last one (advance()), so an entry unused for periodUs is dropped at the next
 * rotation after that — between 1× and 2× periodUs after its last use when advance() is called
 * often — and when `young` reaches half of maxSize, so the map never holds more than maxSize.
 *
 * (Why not one Map in least-recently-used order, deleting from the front? V8 leaves deleted
 * entries as holes that iteration skips one by one until the table is rehashed, so "delete the
 * first entry" turns quadratic under churn.)
 */
export type DropReason = 'expired' | 'evicted';

export class AgingMap<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();
  private rotatedAtUs: number | undefined;
  private readonly halfSize: number;

  /**
   * @param periodUs   time without use after which an entry goes (Infinity: only the size bound)
   * @param maxSize    entries at most
   * @param onDrop     told about every entry dropped by a rotation
   */
  constructor(
    readonly periodUs: number,
    readonly maxSize: number,
    private readonly onDrop?: (key: K, value: V, why: DropReason) => void,
  ) {
    this.halfSize = Math.max(1, Math.floor(maxSize / 2));
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  /** The value, marking it used. */
  get(key: K): V | undefined {
    const v = this.young.get(key);
    if (v !== undefined) return v;
    const o = this.old.get(key);
    if (o !== undefined) {
      this.old.delete(key);
      this.insertYoung(key, o);
    }
    return o;
  }

  /** The value without marking it used. */
  peek(key: K): V | undefined {
    return this.young.get(key) ?? this.old.get(key);
  }

  has(key: K): boolean {
    return this.young.has(key) || this.old.has(key);
  }

  set(key: K, value: V): void {
    if (this.young.has(key)) {
      this.young.set(key, value);
      return;
    }
    this.old.delete(key);
    this.insertYoung(key, value);
  }

  /**
   * set() for a key whose get() just missed or hit (nothing else in between): then it is not in the
   * old generation, so one young-map operation does (a new flow costs three map operations with the
   * get instead of seven).
   */
  setAfterGet(key: K, value: V): void {
    const n = this.young.size;
    this.young.set(key, value);
    if (this.young.size !== n && this.young.size >= this.halfSize) this.rotate('evicted');
  }

  delete(key: K): boolean {
    return this.young.delete(key) || this.old.delete(key);
  }

  /** Event time moved to nowUs: rotates when periodUs passed since the last rotation. */
  advance(nowUs: number): void {
    if (this.rotatedAtUs === undefined) {
      this.rotatedAtUs = nowUs;
      return;
    }
    if (nowUs - this.rotatedAtUs >= this.periodUs) {
      this.rotate('expired');
      this.rotatedAtUs = nowUs;
    }
  }

  *values(): IterableIterator<V> {
    yield* this.old.values();
    yield* this.young.values();
  }

  private insertYoung(key: K, value: V): void {
    this.young.set(key, value);
    if (this.young.size >= this.halfSize) this.rotate('evicted');
  }

  private rotate(why: DropReason): void {
    const dropped = this.old;
    this.old = this.young;
    this.young = new Map();
    if (this.onDrop) for (const [k, v] of dropped) this.onDrop(k, v, why);
  }
}
