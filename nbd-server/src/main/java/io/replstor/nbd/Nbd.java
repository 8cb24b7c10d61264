package io.replstor.nbd;

/**
 * NBD protocol constants, from {@code doc/proto.md} of the NetworkBlockDevice/nbd project.
 * All integers on the wire are big-endian.
 *
 * <pre>
 * greeting        NBDMAGIC u64 | IHAVEOPT u64 | handshake flags u16
 * client flags    u32
 * option          IHAVEOPT u64 | option u32 | length u32 | data[length]
 * option reply    OPTION_REPLY_MAGIC u64 | option u32 | reply type u32 | length u32 | data[length]
 * EXPORT_NAME ok  size u64 | transmission flags u16 | 124 zero bytes unless NO_ZEROES
 * request         REQUEST_MAGIC u32 | flags u16 | type u16 | cookie u64 | offset u64 | length u32 | data (WRITE)
 * simple reply    SIMPLE_REPLY_MAGIC u32 | error u32 | cookie u64 | data (successful READ)
 * chunk           STRUCTURED_REPLY_MAGIC u32 | flags u16 | type u16 | cookie u64 | length u32 | payload[length]
 * </pre>
 */
public final class Nbd {
    private Nbd() {
    }

    public static final long NBDMAGIC = 0x4e42444d41474943L;
    public static final long IHAVEOPT = 0x49484156454F5054L;
    public static final long OPTION_REPLY_MAGIC = 0x0003e889045565a9L;
    public static final int REQUEST_MAGIC = 0x25609513;
    public static final int SIMPLE_REPLY_MAGIC = 0x67446698;
    public static final int STRUCTURED_REPLY_MAGIC = 0x668e33ef;

    public static final int DEFAULT_PORT = 10809;

    // handshake flags (server, u16) and client flags (u32)
    public static final int FLAG_FIXED_NEWSTYLE = 0x1;
    public static final int FLAG_NO_ZEROES = 0x2;
    public static final int FLAG_C_FIXED_NEWSTYLE = 0x1;
    public static final int FLAG_C_NO_ZEROES = 0x2;

    // options
    public static final int OPT_EXPORT_NAME = 1;
    public static final int OPT_ABORT = 2;
    public static final int OPT_LIST = 3;
    public static final int OPT_STARTTLS = 5;
    public static final int OPT_INFO = 6;
    public static final int OPT_GO = 7;
    public static final int OPT_STRUCTURED_REPLY = 8;
    public static final int OPT_LIST_META_CONTEXT = 9;
    public static final int OPT_SET_META_CONTEXT = 10;
    public static final int OPT_EXTENDED_HEADERS = 11;

    // option replies
    public static final int REP_ACK = 1;
    public static final int REP_SERVER = 2;
    public static final int REP_INFO = 3;
    public static final int REP_META_CONTEXT = 4;
    public static final int REP_ERR_UNSUP = 0x80000001;
    public static final int REP_ERR_POLICY = 0x80000002;
    public static final int REP_ERR_INVALID = 0x80000003;
    public static final int REP_ERR_PLATFORM = 0x80000004;
    public static final int REP_ERR_TLS_REQD = 0x80000005;
    public static final int REP_ERR_UNKNOWN = 0x80000006;
    public static final int REP_ERR_SHUTDOWN = 0x80000007;
    public static final int REP_ERR_BLOCK_SIZE_REQD = 0x80000008;
    public static final int REP_ERR_TOO_BIG = 0x80000009;

    // info types
    public static final int INFO_EXPORT = 0;
    public static final int INFO_NAME = 1;
    public static final int INFO_DESCRIPTION = 2;
    public static final int INFO_BLOCK_SIZE = 3;

    // transmission flags (u16)
    public static final int TFLAG_HAS_FLAGS = 0x0001;
    public static final int TFLAG_READ_ONLY = 0x0002;
    public static final int TFLAG_SEND_FLUSH = 0x0004;
    public static final int TFLAG_SEND_FUA = 0x0008;
    public static final int TFLAG_ROTATIONAL = 0x0010;
    public static final int TFLAG_SEND_TRIM = 0x0020;
    public static final int TFLAG_SEND_WRITE_ZEROES = 0x0040;
    public static final int TFLAG_SEND_DF = 0x0080;
    public static final int TFLAG_CAN_MULTI_CONN = 0x0100;
    public static final int TFLAG_SEND_RESIZE = 0x0200;
    public static final int TFLAG_SEND_CACHE = 0x0400;
    public static final int TFLAG_SEND_FAST_ZERO = 0x0800;

    // commands
    public static final int CMD_READ = 0;
    public static final int CMD_WRITE = 1;
    public static final int CMD_DISC = 2;
    public static final int CMD_FLUSH = 3;
    public static final int CMD_TRIM = 4;
    public static final int CMD_CACHE = 5;
    public static final int CMD_WRITE_ZEROES = 6;
    public static final int CMD_BLOCK_STATUS = 7;

    // command flags (u16)
    public static final int CMD_FLAG_FUA = 0x01;
    public static final int CMD_FLAG_NO_HOLE = 0x02;
    public static final int CMD_FLAG_DF = 0x04;
    public static final int CMD_FLAG_REQ_ONE = 0x08;
    public static final int CMD_FLAG_FAST_ZERO = 0x10;

    // structured reply
    public static final int REPLY_FLAG_DONE = 0x1;
    public static final int REPLY_TYPE_NONE = 0;
    public static final int REPLY_TYPE_OFFSET_DATA = 1;
    public static final int REPLY_TYPE_OFFSET_HOLE = 2;
    public static final int REPLY_TYPE_BLOCK_STATUS = 5;
    public static final int REPLY_TYPE_ERROR = 0x8001;
    public static final int REPLY_TYPE_ERROR_OFFSET = 0x8002;

    // errors (Linux errno values, as the protocol fixes them)
    public static final int EPERM = 1;
    public static final int EIO = 5;
    public static final int ENOMEM = 12;
    public static final int EINVAL = 22;
    public static final int ENOSPC = 28;
    public static final int EOVERFLOW = 75;
    public static final int ENOTSUP = 95;
    public static final int ESHUTDOWN = 108;

    // base:allocation flags
    public static final int STATE_HOLE = 0x1;
    public static final int STATE_ZERO = 0x2;
    public static final String BASE_ALLOCATION = "base:allocation";

    public static final int REQUEST_HEADER_BYTES = 28;
    public static final int SIMPLE_REPLY_HEADER_BYTES = 16;
    public static final int CHUNK_HEADER_BYTES = 20;
    /** Longest name, description or query string the protocol allows. */
    public static final int MAX_STRING_BYTES = 4096;
    /** Payloads up to this size must not be treated as denial of service (proto.md). */
    public static final int MAX_PAYLOAD_BYTES = 32 << 20;

    public static String optionName(int option) {
        return switch (option) {
            case OPT_EXPORT_NAME -> "EXPORT_NAME";
            case OPT_ABORT -> "ABORT";
            case OPT_LIST -> "LIST";
            case OPT_STARTTLS -> "STARTTLS";
            case OPT_INFO -> "INFO";
            case OPT_GO -> "GO";
            case OPT_STRUCTURED_REPLY -> "STRUCTURED_REPLY";
            case OPT_LIST_META_CONTEXT -> "LIST_META_CONTEXT";
            case OPT_SET_META_CONTEXT -> "SET_META_CONTEXT";
            case OPT_EXTENDED_HEADERS -> "EXTENDED_HEADERS";
            default -> "option " + option;
        };
    }

    public static String commandName(int type) {
        return switch (type) {
            case CMD_READ -> "READ";
            case CMD_WRITE -> "WRITE";
            case CMD_DISC -> "DISC";
            case CMD_FLUSH -> "FLUSH";
            case CMD_TRIM -> "TRIM";
            case CMD_CACHE -> "CACHE";
            case CMD_WRITE_ZEROES -> "WRITE_ZEROES";
            case CMD_BLOCK_STATUS -> "BLOCK_STATUS";
            default -> "command " + type;
        };
    }
}
