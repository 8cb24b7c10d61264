#!/usr/bin/python3
"""Acknowledged-write checker for crash tests, over NBD (libnbd's Python bindings).

write URI LOG --region BYTES [--qd 32] [--seconds N] [--seed S]
    Writes 4 KiB blocks at random block offsets in [0, region) with up to QD requests in flight.
    Every block carries (magic, offset, sequence) and a pattern derived from them. Each request is
    logged as "I seq offset" when issued and "A seq offset" when the server acknowledged it, so the
    log survives whatever happens to the server. Stops after N seconds or at the first error (the
    server died): exit 0 either way, printing how many writes were acknowledged.

selftest
    Checks the rule verify applies on a few logs written by hand.

verify URI LOG
    Reads every block that has an acknowledged write and checks it holds a write that may be the
    last one to that offset: the newest acknowledged write, a newer one that was issued but not
    acknowledged (it may or may not have landed), or an older one that was still in flight when the
    newest acknowledged write was issued (NBD does not order concurrent requests: the server may
    execute the older one last). A write acknowledged before another acknowledged write to the same
    offset was issued can never be the last. Exit 0 if every acknowledged write is there; 1 with the
    first bad blocks and what the log says about them.
"""
import argparse
import os
import random
import struct
import sys
import time

import nbd

MAGIC = 0x52504C41434B3031  # "RPLACK01"
BLOCK = 4096


def block(offset, seq):
    head = struct.pack(">QQQ", MAGIC, offset, seq)
    rnd = random.Random(offset * 1000003 + seq)
    return head + rnd.randbytes(BLOCK - len(head))


def write(args):
    h = nbd.NBD()
    h.connect_uri(args.uri)
    blocks = args.region // BLOCK
    rnd = random.Random(args.seed)
    fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    acked = 0
    failed = []
    seq = 0
    deadline = time.monotonic() + args.seconds
    state = {"inflight": 0}

    def done(s, off, err):
        nonlocal acked
        state["inflight"] -= 1
        if err.value != 0:
            failed.append((s, off, err.value))
        else:
            os.write(fd, b"A %d %d\n" % (s, off))
            acked += 1
        return 1

    try:
        while time.monotonic() < deadline and not failed:
            while state["inflight"] < args.qd and not failed:
                seq += 1
                off = rnd.randrange(blocks) * BLOCK
                os.write(fd, b"I %d %d\n" % (seq, off))
                buf = nbd.Buffer.from_bytearray(bytearray(block(off, seq)))
                state["inflight"] += 1
                h.aio_pwrite(buf, off, lambda err, s=seq, o=off: done(s, o, err))
            h.poll(-1)
        while state["inflight"] > 0 and not failed:
            h.poll(-1)
    except nbd.Error as e:
        print("ackcheck: connection ended: %s" % e)
    os.close(fd)
    print("ackcheck: issued %d writes, %d acknowledged, %d failed" % (seq, acked, len(failed)))
    return 0


def may_be_last(events):
    """The writes that may be the last one to a block, from its log lines [(line, "I"/"A", seq)] in order.

    Any issued write whose acknowledgement (if any) came after the issue of every acknowledged write.
    """
    issue_line = {t: n for n, kind, t in events if kind == "I"}
    ack_line = {t: n for n, kind, t in events if kind == "A"}
    latest_issue = max((issue_line.get(t, 0) for t in ack_line), default=0)
    return {t for t in issue_line if ack_line.get(t, float("inf")) > latest_issue}


def selftest(_args):
    cases = [
        # sequential: 1 acknowledged before 2 was issued; 2 acknowledged
        ([(1, "I", 1), (2, "A", 1), (3, "I", 2), (4, "A", 2)], {2}),
        # 1 and 2 in flight together, both acknowledged: either may have been executed last
        ([(1, "I", 1), (2, "I", 2), (3, "A", 2), (4, "A", 1)], {1, 2}),
        ([(1, "I", 1), (2, "I", 2), (3, "A", 1), (4, "A", 2)], {1, 2}),
        # 2 acknowledged, 3 issued after it and never acknowledged (the crash): 2 or 3
        ([(1, "I", 1), (2, "A", 1), (3, "I", 2), (4, "A", 2), (5, "I", 3)], {2, 3}),
        # 1 acknowledged before 3 was issued, 2 in flight throughout: 2 or 3, never 1
        ([(1, "I", 1), (2, "I", 2), (3, "A", 1), (4, "I", 3), (5, "A", 3)], {2, 3}),
    ]
    for events, want in cases:
        got = may_be_last(events)
        if got != want:
            print("ackcheck selftest: %s: got %s, want %s" % (events, sorted(got), sorted(want)))
            return 1
    print("ackcheck selftest: %d cases pass" % len(cases))
    return 0


def verify(args):
    newest_acked = {}
    history = {}  # offset -> [(log line number, "I"/"A", seq)], to show what happened to a bad block
    with open(args.log) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) != 3:
                continue  # a torn last line: the writer was killed mid-write
            kind, s, off = parts[0], int(parts[1]), int(parts[2])
            history.setdefault(off, []).append((n, kind, s))
            if kind == "A":
                newest_acked[off] = max(s, newest_acked.get(off, 0))
    h = nbd.NBD()
    h.connect_uri(args.uri)
    bad = []
    for off, s in sorted(newest_acked.items()):
        data = h.pread(BLOCK, off)
        ok = may_be_last(history[off])  # always holds s, the newest acknowledged
        if not any(data == block(off, t) for t in ok):
            magic, got_off, got_seq = struct.unpack(">QQQ", data[:24])
            bad.append("offset %d: expected write %d (or one in flight with it), found %s; log lines for it: %s" % (
                off, s, "write %d" % got_seq if magic == MAGIC and got_off == off else "other data",
                ", ".join("%d:%s %d" % e for e in history[off])))
    print("ackcheck: %d acknowledged blocks checked, %d missing" % (len(newest_acked), len(bad)))
    for b in bad[:20]:
        print("  " + b)
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("uri")
    w.add_argument("log")
    w.add_argument("--region", type=int, required=True)
    w.add_argument("--qd", type=int, default=32)
    w.add_argument("--seconds", type=float, default=30)
    w.add_argument("--seed", type=int, default=1)
    v = sub.add_parser("verify")
    v.add_argument("uri")
    v.add_argument("log")
    sub.add_parser("selftest")
    args = p.parse_args()
    sys.exit({"write": write, "verify": verify, "selftest": selftest}[args.cmd](args))


if __name__ == "__main__":
    main()
