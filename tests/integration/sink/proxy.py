"""A TCP proxy that a test can cut: the database "goes away" for the sink (connections dropped, new ones
closed at once) and comes back, while the server itself stays up for the test's own checks."""

from __future__ import annotations

import contextlib
import socket
import threading

import psycopg


class CuttableProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        """`upstream_host` a host name, or a directory of the server's Unix socket (as in a libpq URL: the
        embedded server's URL gives one)."""
        self.upstream: tuple[str, int] | str = (
            f"{upstream_host}/.s.PGSQL.{upstream_port}" if upstream_host.startswith("/")
            else (upstream_host, upstream_port)
        )
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        self.connections = 0
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @classmethod
    def to(cls, url: str) -> tuple[CuttableProxy, str]:
        """A proxy in front of the server of `url`, and the same URL through it."""
        info = psycopg.conninfo.conninfo_to_dict(url)
        proxy = cls(str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432))
        info["host"], info["port"] = "127.0.0.1", proxy.port
        return proxy, psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]

    def cut(self) -> None:
        """Drop every connection; refuse new ones until `restore()`."""
        with self._lock:
            self._cut = True
            sockets, self._open = self._open, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refused = self._cut
            if refused:
                client.close()
                continue
            try:
                server = self._connect_upstream()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, server))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        if isinstance(self.upstream, str):
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.settimeout(5)
            try:
                server.connect(self.upstream)
            except OSError:
                server.close()
                raise
        else:
            server = socket.create_connection(self.upstream, timeout=5)
        server.settimeout(None)
        return server

    def _pump(self, source: socket.socket, destination: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                destination.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, destination):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self._lock:
                self._open.discard(source)
                self._open.discard(destination)
