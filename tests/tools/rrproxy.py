#!/usr/bin/env python3
"""rrproxy.py - a TCP proxy that hands each new connection to the next of
several backends in turn: a load balancer in front of several
`fieldsync-hq serve` processes, for tests/cli/test_pg_multi.sh.

Usage: rrproxy.py LISTEN_PORT BACKEND_PORT...   (all on 127.0.0.1)
       rrproxy.py --capture FILE LISTEN_PORT
       rrproxy.py --replay FILE BACKEND_PORT...
       rrproxy.py --send FILE:PORT...
Prints "listening on 127.0.0.1:PORT" once it accepts connections (PORT
0 picks a free one, and the line names it).  A
connection is closed as soon as either side closes, so a client that
reconnects (a new request, a retry) may land on another process.

--capture takes one HTTP request (headers and Content-Length body),
writes its bytes to FILE, and closes the connection unanswered: the
client's request never reached HQ.  --replay sends FILE to every
backend at the same moment, each on its own connection, and prints one
line per backend: the HTTP status and the answer's body.  --send does
the same with a file of its own for each backend.
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


def read_request(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body[:length]


def capture(path, port):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(8)
    print("listening on 127.0.0.1:%d" % lsock.getsockname()[1], file=sys.stderr, flush=True)
    client, _ = lsock.accept()
    request = read_request(client)
    with open(path, "wb") as f:
        f.write(request)
    client.close()


def replay(path, ports):
    send([(path, p) for p in ports])


def send(pairs):
    requests = [open(path, "rb").read() for path, _ in pairs]
    ports = [port for _, port in pairs]
    answers = [None] * len(ports)
    ready = threading.Barrier(len(ports))

    def one(i):
        s = socket.create_connection(("127.0.0.1", ports[i]))
        ready.wait()
        s.sendall(requests[i])
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = None
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length is not None and len(body) >= length:
                break
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        answers[i] = head.split(b" ")[1].decode() + " " + body.decode()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(ports))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a in answers:
        print(a)


def main():
    if sys.argv[1] == "--capture":
        return capture(sys.argv[2], int(sys.argv[3]))
    if sys.argv[1] == "--replay":
        return replay(sys.argv[2], [int(p) for p in sys.argv[3:]])
    if sys.argv[1] == "--send":
        return send([(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in sys.argv[2:]])
    port = int(sys.argv[1])
    backends = itertools.cycle(int(p) for p in sys.argv[2:])
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(128)
    print("listening on 127.0.0.1:%d" % lsock.getsockname()[1], file=sys.stderr, flush=True)
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
