"""A loopback TCP relay that cuts connections: the network dropping a download mid-way."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Sequence


class CuttingRelay:
    """Relays 127.0.0.1:`port` to `target_port`. The n-th connection is cut (both sockets
    closed) once more than `cuts[n]` bytes went from the server to the client; connections
    past the end of `cuts`, or with None, are never cut."""

    def __init__(self, target_port: int, cuts: Sequence[int | None] = ()):
        self.target_port = target_port
        self.cuts = list(cuts)
        self.connections = 0
        self.cut = 0  # connections actually cut
        self.bytes_down: list[int] = []  # per connection, server to client
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="cutting-relay", daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                number = self.connections
                self.connections += 1
                self.bytes_down.append(0)
            limit = self.cuts[number] if number < len(self.cuts) else None
            server = socket.create_connection(("127.0.0.1", self.target_port))
            pair = (client, server)
            for source, sink, down in ((client, server, None), (server, client, (number, limit))):
                args = (source, sink, down, pair)
                threading.Thread(target=self._pump, args=args, daemon=True).start()

    def _pump(
        self,
        source: socket.socket,
        sink: socket.socket,
        down: tuple[int, int | None] | None,
        pair: tuple[socket.socket, socket.socket],
    ) -> None:
        try:
            while data := source.recv(16384):
                if down is not None:
                    number, limit = down
                    with self._lock:
                        self.bytes_down[number] += len(data)
                        over = limit is not None and self.bytes_down[number] > limit
                        if over:
                            self.cut += 1
                    if over:
                        break  # the rest of this chunk never arrives
                sink.sendall(data)
        except OSError:
            pass
        for sock in pair:  # one side gone: the whole connection is gone
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
