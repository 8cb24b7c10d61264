package io.replstor.replicator.engine;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The Secondary's record of a Primary's writes until a peer acknowledgement settles them. */
class UnconfirmedWritesTest {
    private static final int ALPHA = 1;
    private static final int BETA = 2;
    private static final int GAMMA = 4;

    private record Mark(int missing, long offset, int length) {
    }

    private final List<Mark> marks = new ArrayList<>();
    private final UnconfirmedWrites.Marker marker = (missing, off, len) -> marks.add(new Mark(missing, off, len));

    @Test
    void aPeerAckForgetsTheWritesOfEverySegmentUpToItsBarrierAndMarksOnlyTheTargetsThatLackThem() {
        UnconfirmedWrites w = new UnconfirmedWrites();
        int all = ALPHA | BETA | GAMMA;
        w.add(0, 4096, all);
        w.add(8192, 4096, all);
        w.barrier(1);
        w.add(65536, 4096, all);
        w.barrier(2);
        w.add(1 << 20, 8192, all); // after barrier 2: not covered by its peer ack
        assertEquals(4, w.count());

        w.settle(1, all, marker);
        assertEquals(List.of(), marks, "every target holds the writes before barrier 1");
        assertEquals(2, w.count());

        w.settle(2, ALPHA | BETA, marker);
        assertEquals(List.of(new Mark(GAMMA, 65536, 4096)), marks, "gamma did not acknowledge barrier 2");
        assertEquals(1, w.count());
    }

    @Test
    void aWriteThatWasNotMeantForANodeIsNotMarkedForItByAPeerAck() {
        UnconfirmedWrites w = new UnconfirmedWrites();
        w.add(0, 4096, ALPHA | BETA); // gamma was not connected: the write never went to it
        w.barrier(7);
        w.settle(7, ALPHA | BETA, marker);
        assertEquals(List.of(), marks);
    }

    @Test
    void losingThePrimaryMarksEveryWriteStillKeptForEveryNodeAndEmptiesTheRecord() {
        UnconfirmedWrites w = new UnconfirmedWrites();
        int all = ALPHA | BETA | GAMMA;
        w.add(0, 4096, all);
        w.barrier(3);
        w.add(4096, 4096, all);
        w.settle(2, all, marker); // an older barrier's ack settles nothing here
        assertEquals(List.of(), marks);

        assertEquals(2, w.drain(marker));
        assertEquals(List.of(new Mark(all, 0, 4096), new Mark(all, 4096, 4096)), marks);
        assertEquals(0, w.count());
        marks.clear();
        assertEquals(0, w.drain(marker));
        assertEquals(List.of(), marks);
    }

    @Test
    void manyWritesInOneSegmentAreAllKept() {
        UnconfirmedWrites w = new UnconfirmedWrites();
        for (int i = 0; i < 10_000; i++) {
            w.add(i * 4096L, 4096, ALPHA | BETA);
        }
        w.barrier(1);
        w.settle(1, ALPHA, marker);
        assertEquals(10_000, marks.size());
        assertEquals(new Mark(BETA, 9_999 * 4096L, 4096), marks.get(9_999));
    }
}
