#!/usr/bin/env python3
"""slowclients.py - hostile slow uploads against fieldsync-hq, for
tests/cli/test_slow_clients.sh.

  slowclients.py PORT COUNT STATUS_FILE [LIMIT_S]

Opens COUNT connections to 127.0.0.1:PORT, each from its own loopback
address (127.0.1.1, 127.0.1.2, ...), so a per-address limit does not stop
them.  Each starts POST /v1/changesets with a Content-Length of 100000
and the first 24 bytes of a change set naming a device HQ does not know,
then sends one more byte every 2 seconds.  STATUS_FILE gets a line
"connected N" once all are open and sent, and "closed N" each time the
count of connections HQ has closed changes.  Exits when HQ has closed
them all, or after LIMIT_S seconds (default 300), so it always ends.
"""
import os
import socket
import sys
import time


def main():
    port, count, status = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    limit = float(sys.argv[4]) if len(sys.argv) > 4 else 300.0
    head = (b"POST /v1/changesets HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/vnd.fieldsync.changeset\r\n"
            b"Content-Length: 100000\r\n\r\n")
    prefix = b"FSCS\x01\x01\x00\x00" + os.urandom(16)
    socks = []
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.%d.%d" % (1 + i // 250, 1 + i % 250), 0))
        s.connect(("127.0.0.1", port))
        s.sendall(head + prefix)
        s.setblocking(False)
        socks.append(s)

    def say(line):
        with open(status, "a") as f:
            f.write(line + "\n")

    say("connected %d" % count)
    closed, reported, start = set(), -1, time.monotonic()
    while len(closed) < count and time.monotonic() - start < limit:
        for i, s in enumerate(socks):
            if i in closed:
                continue
            try:
                if s.recv(4096) == b"":
                    closed.add(i)  # HQ closed it
                    continue
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
                continue
            try:
                s.send(b"x")
            except OSError:
                closed.add(i)
        if len(closed) != reported:
            reported = len(closed)
            say("closed %d" % reported)
        time.sleep(2)
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
