/**
 * Which messages of a fetched partition a read_committed consumer may see: not those of aborted
 * transactions, as the broker lists them (producer id + first offset) in the fetch response.
 *
 * kafkajs (2.2.4, consumer/filterAbortedMessages.js) moves at most one aborted transaction from the
 * broker's list into its set of aborting producers per message. A fetch that starts while two or
 * more aborted transactions are open (a fetch resumed after the last stable offset moved, or after
 * a rebalance) therefore lets the first messages of the later ones through — for the pairs topic,
 * windows of a fenced pipeline member's aborted transaction, seen twice by `tail`, `top` or any
 * kafkajs reader. This is the rule of Kafka's own consumer instead: before each message, every
 * aborted transaction that started at or before its offset marks its producer; the producer's
 * abort marker (a control record with key type 0) unmarks it; a transactional message of a marked
 * producer is left out. src/pipeline/kafkajs.ts puts it in kafkajs' place.
 */

/** The fields of a kafkajs message the filter reads. */
export interface FetchedMessage {
  offset: string;
  key?: Buffer | Uint8Array | null;
  isControlRecord?: boolean;
  batchContext: { producerId: string; inTransaction: boolean };
}

/** An aborted transaction of the fetch response (kafkajs decodes both as decimal strings). */
export interface AbortedTransaction {
  producerId: string;
  firstOffset: string;
}

/** A control record's key: version (int16) and type (int16); type 0 is ABORT, 1 is COMMIT. */
function isAbortMarker(m: FetchedMessage): boolean {
  const k = m.key;
  return k !== null && k !== undefined && k.length >= 4 && k[2] === 0 && k[3] === 0;
}

/**
 * The messages that are not part of an aborted transaction, in order (control records stay: the
 * caller drops them). The same contract as kafkajs' filterAbortedMessages({ messages, abortedTransactions }).
 */
export function filterAbortedMessages<M extends FetchedMessage>({ messages, abortedTransactions }: { messages: M[]; abortedTransactions?: AbortedTransaction[] | null }): M[] {
  if (!abortedTransactions || abortedTransactions.length === 0) return messages;
  const pending = abortedTransactions.map((t) => ({ producerId: t.producerId, firstOffset: BigInt(t.firstOffset) })).sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
  const aborting = new Set<string>();
  let next = 0;
  return messages.filter((m) => {
    const offset = BigInt(m.offset);
    while (next < pending.length && pending[next]!.firstOffset <= offset) aborting.add(pending[next++]!.producerId);
    const { producerId, inTransaction } = m.batchContext;
    if (m.isControlRecord) {
      if (isAbortMarker(m)) aborting.delete(producerId);
      return true;
    }
    return !(inTransaction && aborting.has(producerId));
  });
}
