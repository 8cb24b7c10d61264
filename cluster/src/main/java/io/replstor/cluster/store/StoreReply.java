package io.replstor.cluster.store;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.replstor.replicator.authority.AuthorityException;

/**
 * What applying one command answered (JSON in the Raft reply): the resource's resulting state, or why
 * nothing changed. A renewal answers with neither.
 *
 * @param view    the resource after the command, if it succeeded
 * @param code    REFUSED or STALE_TERM if it did not
 * @param message the sentence for the refusal
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
record StoreReply(ResourceState view, AuthorityException.Code code, String message) {

    static StoreReply ok(ResourceState view) {
        return new StoreReply(view, null, null);
    }

    static StoreReply refused(String message) {
        return new StoreReply(null, AuthorityException.Code.REFUSED, message);
    }

    static StoreReply staleTerm(String message) {
        return new StoreReply(null, AuthorityException.Code.STALE_TERM, message);
    }

    static StoreReply done() {
        return new StoreReply(null, null, null);
    }

    boolean failed() {
        return code != null;
    }
}
