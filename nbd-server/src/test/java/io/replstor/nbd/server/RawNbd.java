package io.replstor.nbd.server;

import io.replstor.nbd.Nbd;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;

/** A blocking, byte-level NBD peer for protocol tests: it sends exactly what the test says. */
final class RawNbd implements AutoCloseable {
    final Socket socket;
    final DataInputStream in;
    final DataOutputStream out;

    RawNbd(InetSocketAddress address) throws IOException {
        socket = new Socket();
        socket.connect(address, 5_000);
        socket.setSoTimeout(10_000);
        socket.setTcpNoDelay(true);
        in = new DataInputStream(socket.getInputStream());
        out = new DataOutputStream(socket.getOutputStream());
    }

    /** Reads the greeting and sends fixed-newstyle + NO_ZEROES client flags. */
    RawNbd greet() throws IOException {
        if (in.readLong() != Nbd.NBDMAGIC || in.readLong() != Nbd.IHAVEOPT) {
            throw new IOException("bad greeting");
        }
        int flags = in.readUnsignedShort();
        if ((flags & (Nbd.FLAG_FIXED_NEWSTYLE | Nbd.FLAG_NO_ZEROES)) != 3) {
            throw new IOException("server flags " + flags);
        }
        out.writeInt(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES);
        return this;
    }

    void option(int option, byte[] data) throws IOException {
        out.writeLong(Nbd.IHAVEOPT);
        out.writeInt(option);
        out.writeInt(data.length);
        out.write(data);
        out.flush();
    }

    record OptionReply(int option, int type, byte[] data) {
        String text() {
            return new String(data, StandardCharsets.UTF_8);
        }
    }

    OptionReply optionReply() throws IOException {
        long magic = in.readLong();
        if (magic != Nbd.OPTION_REPLY_MAGIC) {
            throw new IOException("bad option reply magic " + Long.toHexString(magic));
        }
        int option = in.readInt();
        int type = in.readInt();
        byte[] data = new byte[in.readInt()];
        in.readFully(data);
        return new OptionReply(option, type, data);
    }

    static byte[] infoData(String name, int... infos) {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 + n.length + 2 + 2 * infos.length);
        b.putInt(n.length).put(n).putShort((short) infos.length);
        for (int i : infos) {
            b.putShort((short) i);
        }
        return b.array();
    }

    static byte[] metaData(String export, String... queries) {
        java.io.ByteArrayOutputStream bos = new java.io.ByteArrayOutputStream();
        try (DataOutputStream d = new DataOutputStream(bos)) {
            byte[] n = export.getBytes(StandardCharsets.UTF_8);
            d.writeInt(n.length);
            d.write(n);
            d.writeInt(queries.length);
            for (String q : queries) {
                byte[] qb = q.getBytes(StandardCharsets.UTF_8);
                d.writeInt(qb.length);
                d.write(qb);
            }
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        return bos.toByteArray();
    }

    /** OPT_GO; returns the INFO_EXPORT flags after reading every reply up to ACK. */
    int go(String export) throws IOException {
        option(Nbd.OPT_GO, infoData(export));
        int flags = -1;
        while (true) {
            OptionReply r = optionReply();
            if (r.type() == Nbd.REP_ACK) {
                return flags;
            }
            if (r.type() != Nbd.REP_INFO) {
                throw new IOException("GO failed: reply type 0x" + Integer.toHexString(r.type()) + " " + r.text());
            }
            java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(r.data());
            if (b.getShort() == Nbd.INFO_EXPORT) {
                b.getLong();
                flags = b.getShort() & 0xffff;
            }
        }
    }

    void structuredReplies() throws IOException {
        option(Nbd.OPT_STRUCTURED_REPLY, new byte[0]);
        if (optionReply().type() != Nbd.REP_ACK) {
            throw new IOException("no structured replies");
        }
    }

    void setBaseAllocation(String export) throws IOException {
        option(Nbd.OPT_SET_META_CONTEXT, metaData(export, Nbd.BASE_ALLOCATION));
        OptionReply r = optionReply();
        if (r.type() != Nbd.REP_META_CONTEXT) {
            throw new IOException("SET_META_CONTEXT: " + r.type());
        }
        if (optionReply().type() != Nbd.REP_ACK) {
            throw new IOException("SET_META_CONTEXT: no ACK");
        }
    }

    void request(int flags, int type, long cookie, long offset, long length, byte[] payload) throws IOException {
        out.writeInt(Nbd.REQUEST_MAGIC);
        out.writeShort(flags);
        out.writeShort(type);
        out.writeLong(cookie);
        out.writeLong(offset);
        out.writeInt((int) length);
        if (payload != null) {
            out.write(payload);
        }
        out.flush();
    }

    /** Reads a simple reply; returns its error and fills {@code data} for a successful READ. */
    int simpleReply(long cookie, byte[] data) throws IOException {
        int magic = in.readInt();
        if (magic != Nbd.SIMPLE_REPLY_MAGIC) {
            throw new IOException("expected a simple reply, magic 0x" + Integer.toHexString(magic));
        }
        int error = in.readInt();
        long c = in.readLong();
        if (c != cookie) {
            throw new IOException("cookie " + c + " != " + cookie);
        }
        if (error == 0 && data != null) {
            in.readFully(data);
        }
        return error;
    }

    record Chunk(int flags, int type, long cookie, byte[] payload) {
        boolean done() {
            return (flags & Nbd.REPLY_FLAG_DONE) != 0;
        }

        java.nio.ByteBuffer buffer() {
            return java.nio.ByteBuffer.wrap(payload);
        }
    }

    Chunk chunk() throws IOException {
        int magic = in.readInt();
        if (magic != Nbd.STRUCTURED_REPLY_MAGIC) {
            throw new IOException("expected a structured reply, magic 0x" + Integer.toHexString(magic));
        }
        int flags = in.readUnsignedShort();
        int type = in.readUnsignedShort();
        long cookie = in.readLong();
        byte[] payload = new byte[in.readInt()];
        in.readFully(payload);
        return new Chunk(flags, type, cookie, payload);
    }

    /** True if the server closed the connection (EOF or reset) within the socket timeout. */
    boolean closedByServer() throws IOException {
        try {
            while (in.read() >= 0) {
                // drain whatever was in flight
            }
            return true;
        } catch (EOFException | SocketException e) {
            return true;
        } catch (SocketTimeoutException e) {
            return false;
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
