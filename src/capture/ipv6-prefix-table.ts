/**
 * Interned 64-bit halves of IPv6 addresses with reference counts: /64 prefixes, so that flows whose
 * addresses share a prefix (VMs in one subnet: many interface ids under a few /64s) store a 16-bit
 * id instead of the prefix's two words; the flow table keeps a second table for interface ids (a
 * server address shared by clients that have a /64 each is stored as prefix id + interface id).
 * At most `maxEntries` (≤ 65,536) distinct values are live at once: intern() returns -1 when the
 * table is full and the caller stores that address whole.
 *
 * Storage: 2 words + refcount + chain link per id (20 bytes with the bucket heads), growing by
 * doubling from `initialEntries`. Freed ids are reused (a free list threaded through the chain
 * links); a value whose last reference goes is unlinked from its bucket.
 */
import { finishHash, mixWord } from './flow-key.js';

export const MAX_PREFIX_IDS = 65536;

export class Ipv6PrefixTable {
  readonly maxEntries: number;
  /** Words per id: [hi, lo] at id*2 (valid while the id is live). */
  words: Uint32Array;
  private refs: Uint32Array;
  private chain: Int32Array;
  private heads: Int32Array;
  private mask: number;
  private top = 0;
  private freeHead = -1;
  private live = 0;

  constructor(maxEntries = MAX_PREFIX_IDS, initialEntries = 64) {
    if (!(maxEntries >= 1 && maxEntries <= MAX_PREFIX_IDS)) throw new RangeError(`ipv6-prefix-table: bad maxEntries (maxEntries=${maxEntries})`);
    this.maxEntries = Math.floor(maxEntries);
    const n = Math.max(1, Math.min(this.maxEntries, Math.floor(initialEntries)));
    this.words = new Uint32Array(n * 2);
    this.refs = new Uint32Array(n);
    this.chain = new Int32Array(n);
    let nb = 1;
    while (nb < n) nb *= 2;
    this.heads = new Int32Array(nb).fill(-1);
    this.mask = nb - 1;
  }

  /** Live values. */
  get size(): number {
    return this.live;
  }

  /** References held on id (0 when free). */
  refCount(id: number): number {
    return this.refs[id] ?? 0;
  }

  /** The id of value (hi, lo) with one more reference; -1 when it is new and the table is full. */
  intern(hi: number, lo: number): number {
    hi >>>= 0;
    lo >>>= 0;
    const w = this.words;
    let id = this.heads[hashPrefix(hi, lo) & this.mask]!;
    while (id >= 0) {
      if (w[id * 2] === hi && w[id * 2 + 1] === lo) {
        this.refs[id]!++;
        return id;
      }
      id = this.chain[id]!;
    }
    if (this.freeHead >= 0) {
      id = this.freeHead;
      this.freeHead = this.chain[id]!;
    } else {
      if (this.top === this.refs.length && !this.grow()) return -1;
      id = this.top++;
    }
    this.words[id * 2] = hi;
    this.words[id * 2 + 1] = lo;
    this.refs[id] = 1;
    const b = hashPrefix(hi, lo) & this.mask;
    this.chain[id] = this.heads[b]!;
    this.heads[b] = id;
    this.live++;
    return id;
  }

  /** Drops one reference; the last one frees the id. */
  release(id: number): void {
    const r = this.refs[id]!;
    if (r > 1) {
      this.refs[id] = r - 1;
      return;
    }
    if (r === 0) return;
    this.refs[id] = 0;
    const b = hashPrefix(this.words[id * 2]!, this.words[id * 2 + 1]!) & this.mask;
    let p = this.heads[b]!;
    if (p === id) this.heads[b] = this.chain[id]!;
    else {
      while (p >= 0 && this.chain[p] !== id) p = this.chain[p]!;
      if (p >= 0) this.chain[p] = this.chain[id]!;
    }
    this.chain[id] = this.freeHead;
    this.freeHead = id;
    this.live--;
  }

  private grow(): boolean {
    const cap = this.refs.length;
    const n = Math.min(cap * 2, this.maxEntries);
    if (n <= cap) return false;
    const words = new Uint32Array(n * 2);
    words.set(this.words);
    const refs = new Uint32Array(n);
    refs.set(this.refs);
    this.words = words;
    this.refs = refs;
    this.chain = new Int32Array(n);
    let nb = 1;
    while (nb < n) nb *= 2;
    this.heads = new Int32Array(nb).fill(-1);
    this.mask = nb - 1;
    // every id below top is live or free (no free id when growing: the free list is empty)
    for (let id = 0; id < this.top; id++) {
      const b = hashPrefix(words[id * 2]!, words[id * 2 + 1]!) & this.mask;
      this.chain[id] = this.heads[b]!;
      this.heads[b] = id;
    }
    return true;
  }
}

function hashPrefix(hi: number, lo: number): number {
  return finishHash(mixWord(mixWord(0x5bd1e995, hi), lo));
}
