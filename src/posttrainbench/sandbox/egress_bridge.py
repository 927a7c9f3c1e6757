"""In-sandbox forwarder: loopback TCP ports -> the egress proxy's unix socket. Stdlib only.

Run as ``python -I egress_bridge.py --socket S --proxy-port P [--tunnel L=HOST:PORT ...] -- CMD...``
inside the sandbox. It binds its listening sockets, forks a child that serves them, and execs
``CMD`` in the original process (so the agent keeps its pid, stdin and exit status). The child
dies with the sandbox (it is inside its PID namespace).

- proxy port ``P``: bytes are relayed unchanged; the client speaks the HTTP proxy protocol.
- tunnel ``L=HOST:PORT``: the forwarder sends ``CONNECT HOST:PORT`` first, then relays; the
  client sees a plain TCP connection to HOST:PORT (e.g. an API base URL ``http://127.0.0.1:L``).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import sys
import threading


def relay(a: socket.socket, b: socket.socket, *, idle_s: float = 600, close: bool = True) -> None:
    """Copy bytes both ways until both sides are done, a send fails or nothing moves for
    ``idle_s``; then close both sockets if ``close``. Shared with the host-side proxy
    (``egress.py``); this file stays stdlib-only because it also runs inside the sandbox."""
    peer = {a: b, b: a}
    open_ = {a, b}
    while open_:
        try:
            readable, _, _ = select.select(list(open_), [], [], idle_s)
        except (OSError, ValueError):
            break
        if not readable:
            break
        for s in readable:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                open_.discard(s)
                with contextlib.suppress(OSError):
                    peer[s].shutdown(socket.SHUT_WR)
                continue
            try:
                peer[s].sendall(data)
            except OSError:
                open_.clear()
                break
    if close:
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.close()


def _serve_conn(client: socket.socket, sock_path: str, target: str | None) -> None:
    up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        up.connect(sock_path)
        if target is not None:
            up.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = up.recv(4096)
                if not chunk:
                    break
                head += chunk
            status = head.split(b"\r\n", 1)[0]
            if b" 200 " not in status + b" ":
                # Denied or unreachable: hand the proxy's answer to the client and close.
                client.sendall(head)
                raise OSError(status.decode(errors="replace"))
            extra = head.split(b"\r\n\r\n", 1)[1]
            if extra:
                client.sendall(extra)
    except OSError:
        for s in (client, up):
            with contextlib.suppress(OSError):
                s.close()
        return
    relay(client, up)


def _accept_loop(listener: socket.socket, sock_path: str, target: str | None) -> None:
    """Serve every connection of ``listener`` in a thread; returns when the listener is closed."""
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            if listener.fileno() < 0:
                return
            continue
        threading.Thread(target=_serve_conn, args=(client, sock_path, target), daemon=True).start()


def main(args: list[str]) -> None:
    if "--" not in args:
        sys.exit("egress_bridge: usage: --socket S --proxy-port P [--tunnel L=H:P ...] -- CMD...")
    i = args.index("--")
    opts, cmd = args[:i], args[i + 1 :]
    if not cmd:
        sys.exit("egress_bridge: no command")
    sock_path = ""
    listeners: list[tuple[int, str | None]] = []
    it = iter(opts)
    for o in it:
        v = next(it, "")
        if o == "--socket":
            sock_path = v
        elif o == "--proxy-port":
            listeners.append((int(v), None))
        elif o == "--tunnel":
            local, _, dest = v.partition("=")
            listeners.append((int(local), dest))
        else:
            sys.exit(f"egress_bridge: unknown option {o}")
    bound = []
    for port, target in listeners:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            sys.exit(f"egress_bridge: cannot listen on 127.0.0.1:{port}: {e}")
        s.listen(128)
        bound.append((s, target))
    pid = os.fork()
    if pid == 0:
        # Forwarder: detach stdio so the agent's output pipes close when the agent is done.
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1):
            os.dup2(devnull, fd)
        threads = [threading.Thread(target=_accept_loop, args=(s, sock_path, t), daemon=True) for s, t in bound]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        os._exit(0)
    for s, _ in bound:
        s.close()
    try:
        os.execvp(cmd[0], cmd)
    except OSError as e:
        sys.stderr.write(f"egress_bridge: cannot execute {cmd[0]}: {e}\n")
        os._exit(127)


if __name__ == "__main__":
    main(sys.argv[1:])
