package io.replstor.replicator.net;

import io.replstor.replicator.config.NodeConfig;
import io.replstor.replicator.config.ReplicationProtocol;
import io.replstor.replicator.config.ResourceConfig;

import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * What one side of a connection brings to the {@link PeerHandshake}: who it is, whom it expects,
 * and the resource both must agree on.
 *
 * @param resourceName    the resource this connection replicates; both sides must name the same
 * @param localName       this node's name (for messages)
 * @param localNodeId     this node's id, sent in HELLO and bound into the authentication response
 * @param peerName        the expected peer's name (for messages)
 * @param peerNodeId      the node id the peer must claim
 * @param volumeSizeBytes must be equal on both sides
 * @param protocol        must be equal on both sides
 * @param sharedSecret    the HMAC key; authentication runs only when both sides have one, and a
 *                        secret on one side only is refused
 * @param timeout         the whole handshake must finish within this (DRBD's {@code timeout})
 * @param versionMin      the lowest protocol version this side speaks
 * @param versionMax      the highest protocol version this side speaks
 */
public record HandshakeSettings(String resourceName, String localName, int localNodeId, String peerName,
                                int peerNodeId, long volumeSizeBytes, ReplicationProtocol protocol,
                                Optional<String> sharedSecret, Duration timeout, int versionMin, int versionMax) {

    public HandshakeSettings {
        Objects.requireNonNull(resourceName, "resourceName");
        Objects.requireNonNull(localName, "localName");
        Objects.requireNonNull(peerName, "peerName");
        Objects.requireNonNull(protocol, "protocol");
        Objects.requireNonNull(sharedSecret, "sharedSecret");
        Objects.requireNonNull(timeout, "timeout");
        if (localNodeId == peerNodeId) {
            throw new IllegalArgumentException("a connection from node " + localNodeId + " to itself");
        }
        if (versionMin < 1 || versionMin > versionMax || versionMax > 0xFFFF) {
            throw new IllegalArgumentException("protocol versions " + versionMin + ".." + versionMax);
        }
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("handshake timeout " + timeout + " must be positive");
        }
        if (sharedSecret.isPresent() && sharedSecret.get().isEmpty()) {
            throw new IllegalArgumentException("an empty shared secret; leave it unset instead");
        }
    }

    /** The settings for {@code local}'s connection to {@code peer} for resource {@code res}. */
    public static HandshakeSettings of(ResourceConfig res, NodeConfig local, NodeConfig peer) {
        return new HandshakeSettings(res.name(), local.name(), local.id(), peer.name(), peer.id(), res.sizeBytes(),
                res.protocol(), res.sharedSecret(), res.timers().timeout(), PeerFrame.PROTOCOL_VERSION_MIN,
                PeerFrame.PROTOCOL_VERSION_MAX);
    }

    public HandshakeSettings withVersions(int min, int max) {
        return new HandshakeSettings(resourceName, localName, localNodeId, peerName, peerNodeId, volumeSizeBytes,
                protocol, sharedSecret, timeout, min, max);
    }

    /** "alpha (node 0)". */
    String localLabel() {
        return localName + " (node " + localNodeId + ")";
    }

    /** "beta (node 1)". */
    String peerLabel() {
        return peerName + " (node " + peerNodeId + ")";
    }

    /** Everything but the secret, which must not reach logs. */
    @Override
    public String toString() {
        return "HandshakeSettings[resource=" + resourceName + ", local=" + localLabel() + ", peer=" + peerLabel()
                + ", size=" + volumeSizeBytes + ", protocol=" + protocol + ", sharedSecret="
                + (sharedSecret.isPresent() ? "(set)" : "(none)") + ", timeout=" + timeout + ", versions="
                + versionMin + ".." + versionMax + "]";
    }
}
