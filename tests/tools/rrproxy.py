#!/usr/bin/env python3
"""rrproxy.py - a TCP proxy that hands each new connection to the next of
several backends in turn: a load balancer in front of several
`fieldsync-hq serve` processes, for tests/cli/test_pg_multi.sh.

Usage: rrproxy.py LISTEN_PORT BACKEND_PORT...   (all on 127.0.0.1)
Prints "listening on 127.0.0.1:PORT" once it accepts connections.  A
connection is closed as soon as either side closes, so a client that
reconnects (a new request, a retry) may land on another process.
"""
import itertools
import socket
import sys
import threading


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main():
    port = int(sys.argv[1])
    backends = itertools.cycle(int(p) for p in sys.argv[2:])
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(128)
    print("listening on 127.0.0.1:%d" % port, file=sys.stderr, flush=True)
    lock = threading.Lock()
    while True:
        client, _ = lsock.accept()
        with lock:
            backend = next(backends)
        try:
            upstream = socket.create_connection(("127.0.0.1", backend))
        except OSError:
            client.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(a, b), daemon=True).start()


if __name__ == "__main__":
    main()
