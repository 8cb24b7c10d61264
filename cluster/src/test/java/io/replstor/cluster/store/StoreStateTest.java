package io.replstor.cluster.store;

import io.replstor.cluster.store.StoreCommand.AddInSync;
import io.replstor.cluster.store.StoreCommand.Demote;
import io.replstor.cluster.store.StoreCommand.Promote;
import io.replstor.cluster.store.StoreCommand.RemoveInSync;
import io.replstor.cluster.store.StoreCommand.Renew;
import io.replstor.replicator.authority.AuthorityException;
import io.replstor.replicator.config.HostPort;
import io.replstor.replicator.config.NodeConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The store's rules without Raft: what one command does to one state. */
@Timeout(10)
class StoreStateTest {
    private static final StoreMembers MEMBERS = members();
    private long index;

    private static StoreMembers members() {
        Map<String, NodeConfig> nodes = new LinkedHashMap<>();
        nodes.put("alpha", new NodeConfig("alpha", 0, new HostPort("127.0.0.1", 1), new HostPort("127.0.0.1", 2),
                Path.of("/run/a.sock")));
        nodes.put("beta", new NodeConfig("beta", 1, new HostPort("127.0.0.1", 3), new HostPort("127.0.0.1", 4),
                Path.of("/run/b.sock")));
        nodes.put("tie", new NodeConfig("tie", 2, NodeConfig.Role.WITNESS, null, null, Path.of("/run/t.sock"),
                null, NodeConfig.RAFT_DIR_DEFAULT));
        return new StoreMembers("prod", nodes, Map.of("r0", Set.of("alpha", "beta")));
    }

    private StoreState.Outcome apply(StoreState s, StoreCommand c) {
        return s.apply(c, ++index, MEMBERS);
    }

    private StoreState promoted(String node) {
        StoreState.Outcome o = apply(StoreState.initial(MEMBERS), new Promote("r0", node, false, "test", Map.of()));
        assertNull(o.reply().code(), o.reply().message());
        return o.state();
    }

    @Test
    void initialStateHasEveryHolderInSyncAndNoPrimary() {
        ResourceState r0 = StoreState.initial(MEMBERS).resource("r0");
        assertEquals(0, r0.term());
        assertEquals(Set.of(), r0.primaries());
        assertEquals(Set.of("alpha", "beta"), r0.inSync());
    }

    @Test
    void promotionStartsANewTermAndRepeatingItChangesNothing() {
        StoreState s = promoted("alpha");
        ResourceState r0 = s.resource("r0");
        assertEquals(1, r0.term());
        assertEquals(Set.of("alpha"), r0.primaries());
        assertEquals("term 1: alpha promoted (test)", r0.lastChange());
        StoreState.Outcome again = apply(s, new Promote("r0", "alpha", false, "again", Map.of()));
        assertSame(s, again.state());
        assertEquals(1, again.reply().view().term());
        assertNull(again.changed());
    }

    @Test
    void anotherPrimaryMustBeDeposedWithItsCurrentLeaseSequence() {
        StoreState s = apply(promoted("alpha"), new Renew("alpha", 41)).state();
        StoreState.Outcome plain = apply(s, new Promote("r0", "beta", false, "t", Map.of()));
        assertEquals(AuthorityException.Code.REFUSED, plain.reply().code());
        assertTrue(plain.reply().message().startsWith("alpha is Primary of r0 (term 1)"), plain.reply().message());
        StoreState.Outcome renewedSince = apply(s, new Promote("r0", "beta", false, "t", Map.of("alpha", 40L)));
        assertEquals(AuthorityException.Code.REFUSED, renewedSince.reply().code());
        assertTrue(renewedSince.reply().message().contains("renewed its lease"), renewedSince.reply().message());
        StoreState.Outcome deposed = apply(s, new Promote("r0", "beta", false, "t", Map.of("alpha", 41L)));
        ResourceState r0 = deposed.reply().view();
        assertNotNull(r0, deposed.reply().message());
        assertEquals(2, r0.term());
        assertEquals(Set.of("beta"), r0.primaries());
        assertEquals(Set.of("alpha", "beta"), r0.inSync(), "the deposed Primary holds every acknowledged write");
        assertTrue(r0.lastChange().contains("deposing alpha"), r0.lastChange());
    }

    @Test
    void onlyAnInSyncNodeIsPromotedUnlessForced() {
        StoreState s = promoted("alpha");
        s = apply(s, new RemoveInSync("r0", "alpha", 1, "beta", "no ack")).state();
        s = apply(s, new Demote("r0", "alpha", "t")).state();
        StoreState.Outcome refused = apply(s, new Promote("r0", "beta", false, "t", Map.of()));
        assertEquals("beta is not in the in-sync set of r0 [alpha]: it may lack acknowledged writes; resync it first,"
                + " or promote with --force", refused.reply().message());
        ResourceState forced = apply(s, new Promote("r0", "beta", true, "alpha's disk died", Map.of())).reply().view();
        assertEquals(Set.of("beta"), forced.inSync());
        assertEquals(new ResourceState.ForcedPromotion("beta", 3, "alpha's disk died"), forced.forced());
    }

    @Test
    void inSyncChangesNeedThePrimaryOfTheCurrentTerm() {
        StoreState s = promoted("alpha");
        StoreState.Outcome old = apply(s, new RemoveInSync("r0", "alpha", 0, "beta", "x"));
        assertEquals(AuthorityException.Code.STALE_TERM, old.reply().code());
        assertEquals("term 0 is not current for r0: term 1, Primary alpha", old.reply().message());
        StoreState.Outcome notPrimary = apply(s, new AddInSync("r0", "beta", 1, "beta"));
        assertEquals(AuthorityException.Code.STALE_TERM, notPrimary.reply().code());
        StoreState removed = apply(s, new RemoveInSync("r0", "alpha", 1, "beta", "x")).state();
        assertEquals(Set.of("alpha"), removed.resource("r0").inSync());
        assertEquals(1, removed.resource("r0").term(), "in-sync changes keep the term");
        assertSame(removed, apply(removed, new RemoveInSync("r0", "alpha", 1, "beta", "x")).state());
        assertEquals(Set.of("alpha", "beta"), apply(removed, new AddInSync("r0", "alpha", 1, "beta")).state()
                .resource("r0").inSync());
    }

    @Test
    void demotionOfASecondaryIsANoOp() {
        StoreState s = promoted("alpha");
        assertSame(s, apply(s, new Demote("r0", "beta", "t")).state());
        ResourceState r0 = apply(s, new Demote("r0", "alpha", "t")).reply().view();
        assertEquals(2, r0.term());
        assertEquals(Set.of(), r0.primaries());
    }

    @Test
    void stateAndCommandsRoundTripThroughJson() throws IOException {
        StoreState s = apply(apply(promoted("alpha"), new Renew("tie", 7)).state(),
                new Promote("r0", "beta", true, "r", Map.of("alpha", 0L))).state();
        assertEquals(s, StoreJson.state(StoreJson.state(s)));
        StoreCommand c = new Promote("r0", "beta", true, "why", Map.of("alpha", 3L));
        assertEquals(c, StoreJson.command(StoreJson.command(c)));
        StoreJson.Snapshot snap = new StoreJson.Snapshot(StoreJson.SNAPSHOT_FORMAT, "prod", s);
        assertEquals(snap, StoreJson.snapshot(StoreJson.snapshot(snap)));
    }

    @Test
    void withoutAPrimaryAMemberOfTheInSyncSetAddsAPeerButOnlyInTheCurrentTerm() {
        StoreState s = apply(promoted("alpha"), new RemoveInSync("r0", "alpha", 1, "beta", "no ack")).state();
        s = apply(s, new Demote("r0", "alpha", "switchover")).state(); // term 2, no Primary, in sync: alpha
        assertEquals(Set.of("alpha"), s.resource("r0").inSync());
        StoreState.Outcome notMember = apply(s, new AddInSync("r0", "beta", 2, "beta"));
        assertEquals(AuthorityException.Code.STALE_TERM, notMember.reply().code(), "beta cannot vouch for itself");
        StoreState.Outcome oldTerm = apply(s, new AddInSync("r0", "alpha", 1, "beta"));
        assertEquals(AuthorityException.Code.STALE_TERM, oldTerm.reply().code());
        StoreState.Outcome ok = apply(s, new AddInSync("r0", "alpha", 2, "beta"));
        assertNull(ok.reply().code(), ok.reply().message());
        assertEquals(Set.of("alpha", "beta"), ok.state().resource("r0").inSync());
        assertEquals(2, ok.state().resource("r0").term());
        assertEquals("term 2: beta joined the in-sync set (alpha, a member, with no Primary: resynced)",
                ok.state().resource("r0").lastChange());
        // once a promotion took the term on, a Secondary's addition of the old term is refused
        StoreState late = apply(apply(s, new Promote("r0", "alpha", false, "t", Map.of())).state(),
                new AddInSync("r0", "alpha", 2, "beta")).state();
        assertEquals(Set.of("alpha"), late.resource("r0").inSync());
    }
}
