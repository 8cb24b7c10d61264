package io.replstor.systemtest.repl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Locale;

/**
 * {@code GET} on a node's admin API (HTTP/1.1 on its Unix socket), from the JVM: polling {@code /status} through
 * {@code replctl status --json} would start a JVM every 100 ms. The verbs the tests exercise go through
 * {@code bin/replctl}, so the CLI is tested too.
 */
final class AdminSocket {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long ANSWER_TIMEOUT_MILLIS = 15_000;

    private AdminSocket() {
    }

    /** The JSON answer of {@code GET path}; fails with the status line and body unless it is 200. */
    static JsonNode getJson(Path socket, String path) throws IOException {
        String body = get(socket, path);
        return JSON.readTree(body);
    }

    /**
     * The body of {@code GET path}; IOException for anything but a 200 answer, and for no complete answer within
     * {@value #ANSWER_TIMEOUT_MILLIS} ms (a frozen node, or a store read that never completes, must not hang the
     * test's poll loop: the loop reports the last answer when its own deadline passes).
     */
    static String get(Path socket, String path) throws IOException {
        long deadline = System.nanoTime() + ANSWER_TIMEOUT_MILLIS * 1_000_000L;
        try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX);
             Selector selector = Selector.open()) {
            channel.connect(UnixDomainSocketAddress.of(socket));
            byte[] request = ("GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII);
            ByteBuffer out = ByteBuffer.wrap(request);
            while (out.hasRemaining()) {
                channel.write(out);
            }
            channel.configureBlocking(false);
            channel.register(selector, SelectionKey.OP_READ);
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            ByteBuffer in = ByteBuffer.allocate(64 << 10);
            while (true) {
                long leftMillis = (deadline - System.nanoTime()) / 1_000_000L;
                if (leftMillis <= 0) {
                    throw new IOException(socket + " GET " + path + ": no complete answer within "
                            + ANSWER_TIMEOUT_MILLIS + " ms (" + all.size() + " bytes so far)");
                }
                selector.select(leftMillis);
                selector.selectedKeys().clear();
                int n = channel.read(in);
                if (n < 0) {
                    break;
                }
                all.write(in.array(), 0, in.position());
                in.clear();
            }
            return parse(all.toByteArray(), socket, path);
        }
    }

    private static String parse(byte[] response, Path socket, String path) throws IOException {
        String text = new String(response, StandardCharsets.ISO_8859_1);
        int headerEnd = text.indexOf("\r\n\r\n");
        if (headerEnd < 0) {
            throw new IOException(socket + " GET " + path + ": incomplete HTTP answer: " + text);
        }
        String[] headerLines = text.substring(0, headerEnd).split("\r\n");
        boolean chunked = false;
        for (String line : headerLines) {
            String lower = line.toLowerCase(Locale.ROOT);
            if (lower.startsWith("transfer-encoding:") && lower.contains("chunked")) {
                chunked = true;
            }
        }
        byte[] rawBody = java.util.Arrays.copyOfRange(response, headerEnd + 4, response.length);
        String body = new String(chunked ? dechunk(rawBody) : rawBody, StandardCharsets.UTF_8);
        if (!headerLines[0].contains(" 200 ")) {
            throw new IOException(socket + " GET " + path + ": " + headerLines[0] + ": " + body);
        }
        return body;
    }

    private static byte[] dechunk(byte[] raw) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int pos = 0;
        while (pos < raw.length) {
            int lineEnd = indexOfCrlf(raw, pos);
            if (lineEnd < 0) {
                break;
            }
            String sizeText = new String(raw, pos, lineEnd - pos, StandardCharsets.US_ASCII).split(";")[0].trim();
            int size = Integer.parseInt(sizeText, 16);
            pos = lineEnd + 2;
            if (size == 0) {
                break;
            }
            out.write(raw, pos, Math.min(size, raw.length - pos));
            pos += size + 2;
        }
        return out.toByteArray();
    }

    private static int indexOfCrlf(byte[] raw, int from) {
        for (int i = from; i + 1 < raw.length; i++) {
            if (raw[i] == '\r' && raw[i + 1] == '\n') {
                return i;
            }
        }
        return -1;
    }
}
