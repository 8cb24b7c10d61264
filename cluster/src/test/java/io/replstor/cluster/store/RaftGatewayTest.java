package io.replstor.cluster.store;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import io.replstor.replicator.authority.RoleView;
import io.replstor.replicator.config.ClusterConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Only members of the cluster file holding its shared secret get through the raft gateway. */
class RaftGatewayTest {
    private static final Duration WAIT = Duration.ofSeconds(15);

    @RegisterExtension
    final StoreCluster.Dirs dirs = new StoreCluster.Dirs();

    /** The gateway's log lines, as logged. */
    private final List<String> lines = new CopyOnWriteArrayList<>();
    private final AppenderBase<ILoggingEvent> capture = new AppenderBase<>() {
        @Override
        protected void append(ILoggingEvent e) {
            lines.add(e.getFormattedMessage());
        }
    };

    @BeforeEach
    void captureGatewayLog() {
        capture.start();
        ((Logger) LoggerFactory.getLogger(RaftGateway.class)).addAppender(capture);
    }

    @AfterEach
    void stopCapture() {
        ((Logger) LoggerFactory.getLogger(RaftGateway.class)).detachAppender(capture);
    }

    private String awaitLine(String... parts) {
        StoreCluster.await(WAIT, () -> find(parts) != null, () -> "no gateway line with " + List.of(parts) + " in "
                + lines);
        return find(parts);
    }

    private String find(String... parts) {
        for (String l : lines) {
            if (List.of(parts).stream().allMatch(l::contains)) {
                return l;
            }
        }
        return null;
    }

    @Test
    @Timeout(60)
    @SuppressWarnings("unchecked")
    void aNodeThatOnlyItsOwnClusterFileListsIsRefusedAndTheMembersGoOn() throws Exception {
        try (StoreCluster c = StoreCluster.start(dirs, "gw", List.of("alpha", "beta"), List.of("tie"),
                StoreCluster.oneSecondLease(), "s3cret")) {
            c.awaitQuorum(WAIT);
            List<StoreCluster.Node> withGamma = new ArrayList<>(c.nodes());
            withGamma.add(StoreCluster.Node.of("gamma", false));
            ClusterConfig gammasFile = c.config(withGamma, "s3cret");
            ClusterStore gamma = c.startWith("gamma", gammasFile);

            String refusal = awaitLine("raft gateway: refused 127.0.0.1:", "claiming node 'gamma': not a member of"
                    + " cluster 'gw' (members: alpha, beta, tie)");
            System.out.println(refusal);
            awaitLine("refused node 'gamma': not a member of cluster 'gw'");

            RoleView v = StoreCluster.get(c.store("alpha").promote("r0", "alpha", false, "members go on"));
            assertEquals(Set.of("alpha"), v.primaries());
            assertFalse(gamma.quorum().present(), gamma.quorum().why());
            assertEquals(0, gamma.view("r0").term(), "gamma applied nothing of the cluster's");
            for (String member : List.of("alpha", "beta", "tie")) {
                StoreCluster.await(WAIT, () -> refused(c.store(member)) > 0, () -> member + " counted no refusal");
                Map<String, Object> gw = (Map<String, Object>) c.store(member).status().get(10, TimeUnit.SECONDS)
                        .get("gateway");
                assertTrue(((String) gw.get("last_refusal")).contains("claiming node 'gamma'"), gw.toString());
            }
        }
    }

    @SuppressWarnings("unchecked")
    private static long refused(ClusterStore store) {
        try {
            return (Long) ((Map<String, Object>) store.status().get(10, TimeUnit.SECONDS).get("gateway")).get("refused");
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    @Test
    @Timeout(60)
    void aMemberWithAnotherSharedSecretIsRefusedAndTheOthersGoOn() throws Exception {
        try (StoreCluster c = StoreCluster.start(dirs, "sec", List.of("alpha", "beta"), List.of("tie"),
                StoreCluster.oneSecondLease(), "s3cret")) {
            c.awaitQuorum(WAIT);
            c.kill("tie");
            c.setSecret("tie", "not-the-secret");
            ClusterStore tie = c.restart("tie");

            String refusal = awaitLine("raft gateway: refused 127.0.0.1:", "claiming node 'tie': authentication failed"
                    + " (shared-secret differs)");
            System.out.println(refusal);

            RoleView v = StoreCluster.get(c.store("beta").promote("r0", "beta", false, "tie is not one of us"));
            assertEquals(Set.of("beta"), v.primaries());
            StoreCluster.await(WAIT, () -> c.store("alpha").view("r0").isPrimary("beta"), () -> "alpha's view");
            assertFalse(tie.quorum().present(), tie.quorum().why());
            assertFalse(tie.view("r0").isPrimary("beta"), "tie cannot have applied it");
        }
    }
}
