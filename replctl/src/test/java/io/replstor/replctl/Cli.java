package io.replstor.replctl;

import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.Arrays;

/** Runs replctl in this JVM, as main does, capturing what it prints. */
final class Cli {
    record Result(int exit, String out, String err) {
        @Override
        public String toString() {
            return "exit " + exit + "\n--- out ---\n" + out + "--- err ---\n" + err;
        }
    }

    private Cli() {
    }

    static Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int exit = run(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Result(exit, out.toString(), err.toString());
    }

    /** {@link #run} with {@code --admin SOCKET} appended: a verb aimed at one node's admin socket. */
    static Result runAt(String adminSocket, String... args) {
        String[] all = Arrays.copyOf(args, args.length + 2);
        all[args.length] = "--admin";
        all[args.length + 1] = adminSocket;
        return run(all);
    }

    static int run(PrintWriter out, PrintWriter err, String... args) {
        CommandLine cl = Replctl.commandLine();
        cl.setOut(out);
        cl.setErr(err);
        return cl.execute(args);
    }
}
