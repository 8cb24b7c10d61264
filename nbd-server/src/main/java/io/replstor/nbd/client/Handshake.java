package io.replstor.nbd.client;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.replstor.nbd.Nbd;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The option-haggling plans, composed from {@link OptionNegotiator} primitives. Every step runs on the channel's
 * event loop, so the fields need no synchronisation. The order for a full connection:
 *
 * <ol>
 * <li>greeting; client flags FIXED_NEWSTYLE, plus NO_ZEROES if the server offered it;</li>
 * <li>STARTTLS unless the policy is NEVER (all earlier state is void after it, so it comes first);</li>
 * <li>STRUCTURED_REPLY if asked for; an error reply just means simple replies;</li>
 * <li>SET_META_CONTEXT if asked for and structured replies were negotiated;</li>
 * <li>GO with INFO_EXPORT, NAME, DESCRIPTION, BLOCK_SIZE; on ERR_UNSUP, EXPORT_NAME instead.</li>
 * </ol>
 *
 * {@link #list()} does steps 1-2 and LIST; {@link #info(String)} steps 1-3 and INFO, so that it reports the
 * transmission flags a connection would get. The caller ends both with {@link #abort()}.
 */
final class Handshake {
    private static final Logger LOG = LoggerFactory.getLogger(Handshake.class);
    private static final int[] INFO_REQUESTS = {
            Nbd.INFO_EXPORT, Nbd.INFO_NAME, Nbd.INFO_DESCRIPTION, Nbd.INFO_BLOCK_SIZE};
    private static final int META_CONTEXT_ID_BYTES = 4;
    private static final int SERVER_NAME_LENGTH_BYTES = 4;

    /** What a finished handshake agreed on. */
    record Negotiated(ExportInfo export, boolean structuredReplies, boolean tls, Map<String, Integer> metaContexts) {
    }

    private final OptionNegotiator negotiator;
    private final NbdClientOptions opts;
    private final ByteBufAllocator alloc;
    private boolean noZeroes;
    private boolean tls;
    private boolean structured;
    private final Map<String, Integer> metaContexts = new LinkedHashMap<>();

    Handshake(OptionNegotiator negotiator, NbdClientOptions opts, ByteBufAllocator alloc) {
        this.negotiator = negotiator;
        this.opts = opts;
        this.alloc = alloc;
    }

    /** The full handshake, ending with the transmission handlers installed in the pipeline. */
    CompletableFuture<Negotiated> toTransmission(TransmissionHandler handler) {
        return open()
                .thenCompose(v -> structuredReplies())
                .thenCompose(v -> metaContexts())
                .thenCompose(v -> go(handler));
    }

    CompletableFuture<List<ExportEntry>> list() {
        List<ExportEntry> entries = new ArrayList<>();
        return open()
                .thenCompose(v -> negotiator.exchange(Nbd.OPT_LIST, OptionRequests.option(alloc, Nbd.OPT_LIST),
                        reply -> entries.add(exportEntry(reply))))
                .thenCompose(r -> r.acked()
                        ? CompletableFuture.completedFuture(List.copyOf(entries))
                        : CompletableFuture.failedFuture(NbdException.optionRefused(
                                negotiator.peer(), r.option(), r.replyType(), r.message(), hint(r.replyType()))));
    }

    CompletableFuture<ExportInfo> info(String exportName) {
        ExportInfoCollector collector = new ExportInfoCollector(where(exportName), Nbd.OPT_INFO, exportName);
        // Structured replies first, as connect() does: the transmission flags (SEND_DF) depend on them.
        return open()
                .thenCompose(v -> structuredReplies())
                .thenCompose(v -> negotiator.exchange(Nbd.OPT_INFO,
                        OptionRequests.exportQuery(alloc, Nbd.OPT_INFO, exportName, INFO_REQUESTS), collector::accept))
                .thenCompose(r -> {
                    if (!r.acked()) {
                        return CompletableFuture.failedFuture(NbdException.optionRefused(where(exportName),
                                r.option(), r.replyType(), r.message(), hint(r.replyType())));
                    }
                    try {
                        return CompletableFuture.completedFuture(collector.build());
                    } catch (NbdException e) {
                        return CompletableFuture.failedFuture(e);
                    }
                });
    }

    /** Sends ABORT and completes on its ACK, or when the server closes instead; never fails. */
    CompletableFuture<Void> abort() {
        return negotiator.exchange(Nbd.OPT_ABORT, OptionRequests.option(alloc, Nbd.OPT_ABORT), reply -> { })
                .handle((r, e) -> null);
    }

    private CompletableFuture<Void> open() {
        return negotiator.greeting().thenCompose(greeting -> {
            int flags = greeting.handshakeFlags();
            if ((flags & Nbd.FLAG_FIXED_NEWSTYLE) == 0) {
                return CompletableFuture.failedFuture(new NbdException(NbdException.Kind.PROTOCOL_VIOLATION,
                        negotiator.peer() + " does not offer fixed newstyle negotiation (handshake flags 0x"
                                + Integer.toHexString(flags) + "); this client needs it"));
            }
            noZeroes = (flags & Nbd.FLAG_NO_ZEROES) != 0;
            negotiator.sendClientFlags(Nbd.FLAG_C_FIXED_NEWSTYLE | (noZeroes ? Nbd.FLAG_C_NO_ZEROES : 0));
            return startTls();
        });
    }

    private CompletableFuture<Void> startTls() {
        if (opts.tlsPolicy() == ClientTlsPolicy.NEVER) {
            return CompletableFuture.completedFuture(null);
        }
        return negotiator.exchange(Nbd.OPT_STARTTLS, OptionRequests.option(alloc, Nbd.OPT_STARTTLS),
                unexpectedReply(Nbd.OPT_STARTTLS)).thenCompose(r -> {
                    if (r.acked()) {
                        return negotiator.startTls(opts.sslContext(), opts.host(), opts.port()).thenRun(() -> {
                            tls = true;
                            LOG.debug("TLS established with {}", negotiator.peer());
                        });
                    }
                    if (opts.tlsPolicy() == ClientTlsPolicy.REQUIRED) {
                        return CompletableFuture.failedFuture(new NbdException(NbdException.Kind.TLS,
                                negotiator.peer() + " refused STARTTLS with "
                                        + NbdException.replyTypeName(r.replyType())
                                        + (r.message().isEmpty() ? "" : " (\"" + r.message() + "\")")
                                        + ", but the client's TLS policy is REQUIRED"));
                    }
                    LOG.debug("{} refused STARTTLS with {}; continuing without TLS", negotiator.peer(),
                            NbdException.replyTypeName(r.replyType()));
                    return CompletableFuture.completedFuture(null);
                });
    }

    private CompletableFuture<Void> structuredReplies() {
        if (!opts.structuredReplies()) {
            return CompletableFuture.completedFuture(null);
        }
        return negotiator.exchange(Nbd.OPT_STRUCTURED_REPLY, OptionRequests.option(alloc, Nbd.OPT_STRUCTURED_REPLY),
                unexpectedReply(Nbd.OPT_STRUCTURED_REPLY)).thenCompose(r -> {
                    if (r.acked()) {
                        structured = true;
                    } else if (r.replyType() == Nbd.REP_ERR_TLS_REQD) {
                        return refused(r);
                    } else {
                        LOG.debug("{} refused STRUCTURED_REPLY with {}; using simple replies", negotiator.peer(),
                                NbdException.replyTypeName(r.replyType()));
                    }
                    return CompletableFuture.completedFuture(null);
                });
    }

    private CompletableFuture<Void> metaContexts() {
        if (opts.metaContexts().isEmpty()) {
            return CompletableFuture.completedFuture(null);
        }
        if (!structured) {
            LOG.debug("not selecting meta contexts {} on {}: they need structured replies", opts.metaContexts(),
                    negotiator.peer());
            return CompletableFuture.completedFuture(null);
        }
        ByteBuf query = OptionRequests.metaContextQuery(alloc, Nbd.OPT_SET_META_CONTEXT, opts.exportName(),
                opts.metaContexts());
        return negotiator.exchange(Nbd.OPT_SET_META_CONTEXT, query, this::metaContext).thenCompose(r -> {
            if (r.replyType() == Nbd.REP_ERR_TLS_REQD) {
                return refused(r);
            }
            if (!r.acked()) {
                // SET_META_CONTEXT replaces the selection even when it fails: nothing is selected now.
                metaContexts.clear();
                LOG.debug("{} refused SET_META_CONTEXT with {}", where(opts.exportName()),
                        NbdException.replyTypeName(r.replyType()));
            }
            return CompletableFuture.completedFuture(null);
        });
    }

    private void metaContext(OptionReply reply) throws NbdException {
        ByteBuf data = reply.content();
        if (reply.type() != Nbd.REP_META_CONTEXT || data.readableBytes() <= META_CONTEXT_ID_BYTES) {
            throw new NbdException(NbdException.Kind.PROTOCOL_VIOLATION, where(opts.exportName()) + " sent "
                    + NbdException.replyTypeName(reply.type()) + " with " + data.readableBytes()
                    + " bytes in reply to SET_META_CONTEXT, expected META_CONTEXT (id u32, name) or ACK");
        }
        int id = data.readInt();
        metaContexts.put(data.readCharSequence(data.readableBytes(), StandardCharsets.UTF_8).toString(), id);
    }

    private CompletableFuture<Negotiated> go(TransmissionHandler handler) {
        String name = opts.exportName();
        ExportInfoCollector collector = new ExportInfoCollector(where(name), Nbd.OPT_GO, name);
        ByteBuf query = OptionRequests.exportQuery(alloc, Nbd.OPT_GO, name, INFO_REQUESTS);
        return negotiator.exchange(Nbd.OPT_GO, query, collector::accept).thenCompose(r -> {
            if (r.replyType() == Nbd.REP_ERR_UNSUP) {
                LOG.debug("{} does not support GO; falling back to EXPORT_NAME", negotiator.peer());
                return exportName(handler);
            }
            if (!r.acked()) {
                return refused(r);
            }
            try {
                return CompletableFuture.completedFuture(transmission(collector.build(), handler));
            } catch (NbdException e) {
                return CompletableFuture.failedFuture(e);
            }
        });
    }

    private CompletableFuture<Negotiated> exportName(TransmissionHandler handler) {
        String name = opts.exportName();
        return negotiator.exportName(name, noZeroes).thenCompose(reply -> {
            if (reply.sizeBytes() < 0) {
                return CompletableFuture.failedFuture(new NbdException(NbdException.Kind.PROTOCOL_VIOLATION,
                        where(name) + " announced an export size over 2^63 bytes in reply to EXPORT_NAME: "
                                + Long.toUnsignedString(reply.sizeBytes())));
            }
            return CompletableFuture.completedFuture(transmission(new ExportInfo(name, "", reply.sizeBytes(),
                    reply.transmissionFlags(), ExportInfo.DEFAULT_BLOCK_SIZE_MIN,
                    ExportInfo.DEFAULT_BLOCK_SIZE_PREFERRED, ExportInfo.DEFAULT_BLOCK_SIZE_MAX_PAYLOAD, false),
                    handler));
        });
    }

    private Negotiated transmission(ExportInfo export, TransmissionHandler handler) {
        Negotiated negotiated = new Negotiated(export, structured, tls,
                Collections.unmodifiableMap(new LinkedHashMap<>(metaContexts)));
        negotiator.enterTransmission(handler);
        return negotiated;
    }

    private ExportEntry exportEntry(OptionReply reply) throws NbdException {
        ByteBuf data = reply.content();
        if (reply.type() != Nbd.REP_SERVER || data.readableBytes() < SERVER_NAME_LENGTH_BYTES) {
            throw new NbdException(NbdException.Kind.PROTOCOL_VIOLATION, negotiator.peer() + " sent "
                    + NbdException.replyTypeName(reply.type()) + " with " + data.readableBytes()
                    + " bytes in reply to LIST, expected SERVER or ACK");
        }
        long nameLength = data.readUnsignedInt();
        if (nameLength > data.readableBytes()) {
            throw new NbdException(NbdException.Kind.PROTOCOL_VIOLATION, negotiator.peer()
                    + " sent a SERVER reply whose name length " + nameLength + " exceeds the "
                    + data.readableBytes() + " bytes left");
        }
        String name = data.readCharSequence((int) nameLength, StandardCharsets.UTF_8).toString();
        String description = data.readCharSequence(data.readableBytes(), StandardCharsets.UTF_8).toString();
        return new ExportEntry(name, description);
    }

    private <T> CompletableFuture<T> refused(OptionNegotiator.OptionResult r) {
        return CompletableFuture.failedFuture(NbdException.optionRefused(where(opts.exportName()), r.option(),
                r.replyType(), r.message(), hint(r.replyType())));
    }

    private static String hint(int replyType) {
        return switch (replyType) {
            case Nbd.REP_ERR_UNKNOWN -> "no such export";
            case Nbd.REP_ERR_TLS_REQD -> "the server requires TLS; connect with ClientTlsPolicy.REQUIRED or IF_OFFERED";
            case Nbd.REP_ERR_POLICY -> "the server's policy refuses this request";
            case Nbd.REP_ERR_UNSUP -> "the server does not support this option";
            case Nbd.REP_ERR_SHUTDOWN -> "the server is shutting down";
            case Nbd.REP_ERR_BLOCK_SIZE_REQD -> "the server requires the client to ask for block sizes";
            default -> null;
        };
    }

    private OptionNegotiator.ReplySink unexpectedReply(int option) {
        return reply -> {
            throw new NbdException(NbdException.Kind.PROTOCOL_VIOLATION, negotiator.peer() + " sent "
                    + NbdException.replyTypeName(reply.type()) + " in reply to " + Nbd.optionName(option)
                    + ", which takes only ACK or an error");
        };
    }

    private String where(String exportName) {
        return negotiator.peer() + " (export '" + exportName + "')";
    }
}
