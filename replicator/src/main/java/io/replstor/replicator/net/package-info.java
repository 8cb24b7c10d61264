/**
 * The peer protocol between replicas of a resource: the frame format ({@link
 * io.replstor.replicator.net.PeerFrame}, whose javadoc holds the grammar), its Netty codec ({@link
 * io.replstor.replicator.net.PeerFrameDecoder}, {@link io.replstor.replicator.net.PeerFrameEncoder}) and
 * the authenticated connection handshake ({@link io.replstor.replicator.net.PeerHandshake}).
 *
 * <p>A connection's pipeline: {@code PeerFrameDecoder → PeerHandshake → (the replication engine)}.
 * The handshake removes itself after it fires {@code PeerHandshake.Completed}; from then on every
 * inbound message is one validated frame as a {@code ByteBuf}, owned by whoever receives it.
 */
package io.replstor.replicator.net;
