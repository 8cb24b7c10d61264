/**
 * The connect-time sync decision, as DRBD makes it: {@link io.replstor.replicator.sync.SyncDecider}
 * compares both sides' {@link io.replstor.replicator.sync.GenerationIds} and returns a
 * {@link io.replstor.replicator.sync.SyncDecision}: no sync, bitmap or full resync in one direction,
 * split brain (resolved only by an opt-in {@link io.replstor.replicator.sync.AfterSbPolicy} or
 * {@code --discard-my-data}), unrelated data, or no consistent source. Pure functions, no I/O: the
 * peer protocol feeds them from the metadata and the handshake, and logs the decision's reason.
 */
package io.replstor.replicator.sync;
