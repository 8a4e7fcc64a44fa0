"""The process behind one minicloud instance: a tiny durable key-value server.

Started by the hypervisor as ``python -S -m minicloud.workload --uuid U --bind ADDR
--port P --state-dir D``. It is stdlib-only and imports as little as it can
(no ``http.server``, no ``json``): one runs per instance and ten of them must fit
in about 100 MB, so every import here costs ten times.

Protocol (HTTP/1.1, keep-alive):

- ``PUT /kv/<key>`` (body = value) -> 204 once the record is in the log;
  ``GET /kv/<key>`` -> 200 value | 404; ``GET /health`` -> 200
  ``{"uuid", "host", "writes", "mode", "pid", "log_end"}``.
- live migration (driven by the hypervisor, see ``minicloud.dataplane.migration``):
  ``GET /_migration/log?offset=N`` -> raw log bytes [N, end) (header ``X-Log-End``);
  ``POST /_migration/append?offset=N`` (incoming only) appends raw log bytes;
  ``POST /_migration/activate?end=N`` (incoming -> active);
  ``POST /_migration/hold`` (active -> hold; answers once in-flight writes are
  in the log, with the final ``log_end``); ``POST /_migration/resume`` (hold ->
  active, the rollback); ``POST /_migration/forward?target=IP:PORT`` (hold ->
  forward: held and later requests are proxied to the destination and answered
  with ``Connection: close``; the process exits once its connections are gone).

Modes: ``incoming`` and ``hold`` park client requests (bounded by
``--hold-timeout``) instead of answering them, so a client sees latency, never
an error. A hold whose lease runs out resumes by itself: a crashed migration
must not freeze the instance forever.
"""
from __future__ import annotations

import _signal
import _socket
import os
import sys
import threading
import time

from minicloud.dataplane.workload_wire import REASONS, SocketReader, forward, read_message

LOG_NAME = "kv.log"


def encode_record(key: bytes, value: bytes) -> bytes:
    """One log record: ``b"<klen> <vlen>\\n" + key + value``."""
    return b"%d %d\n" % (len(key), len(value)) + key + value


def decode_records(data: bytes) -> tuple[list[tuple[bytes, bytes]], int]:
    """Parse records; return them and the length of the complete prefix.

    A process killed in the middle of a write leaves a torn last record; it was
    never acknowledged, so the caller drops it (truncates to the prefix).
    """
    records: list[tuple[bytes, bytes]] = []
    pos = 0
    while True:
        newline = data.find(b"\n", pos)
        if newline < 0:
            break
        try:
            key_len, value_len = (int(part) for part in data[pos:newline].split(b" "))
        except ValueError:
            break
        end = newline + 1 + key_len + value_len
        if end > len(data):
            break
        records.append((data[newline + 1:newline + 1 + key_len], data[newline + 1 + key_len:end]))
        pos = end
    return records, pos


def _json(fields: dict[str, object]) -> bytes:
    """Format a flat dict of str/int as JSON without importing ``json``."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, int):
            text = str(value)
        else:
            text = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(f'"{key}": {text}')
    return ("{" + ", ".join(parts) + "}").encode()


class Workload:
    """The key-value state, its log and the migration mode machine."""

    def __init__(self, args: Options) -> None:
        self.uuid: str = args.uuid
        self.host: str = args.host
        self.hold_timeout: float = args.hold_timeout
        self.linger: float = args.linger
        os.makedirs(args.state_dir, exist_ok=True)
        self.log_path = os.path.join(args.state_dir, LOG_NAME)
        self.data: dict[bytes, bytes] = {}
        self.writes = 0
        self.log_end = self._replay()
        # Unbuffered append handle: every write() is one write(2) of a whole
        # record, so once it returns the record is in the kernel's page cache and
        # survives the death of this process (a SIGKILL, a crash). It is not
        # fsync'ed: minicloud's "host reboot" kills processes, it does not cut
        # power, and an fsync per write would cap throughput for no gain here.
        self.log = open(self.log_path, "ab", buffering=0)  # noqa: SIM115
        self.cond = threading.Condition()
        self.mode = "incoming" if args.incoming else "active"
        self.hold_deadline = 0.0
        self.forward_target = ""
        self.forward_since = 0.0
        self.connections = 0
        self.stop = threading.Event()

    def _replay(self) -> int:
        try:
            with open(self.log_path, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            return 0
        records, complete = decode_records(raw)
        if complete != len(raw):
            with open(self.log_path, "r+b") as handle:
                handle.truncate(complete)
        for key, value in records:
            self.data[key] = value
        self.writes = len(records)
        return complete

    # -- modes ---------------------------------------------------------------
    def wait_while_parked(self) -> str:
        """Block (bounded) while incoming/held; return the mode to serve in. Holds cond."""
        deadline = time.monotonic() + self.hold_timeout
        while self.mode in ("incoming", "hold"):
            now = time.monotonic()
            if self.mode == "hold" and now >= self.hold_deadline:
                sys.stderr.write(f"workload {self.uuid}: hold lease ran out; resuming\n")
                self.mode = "active"
                self.cond.notify_all()
                break
            if self.mode == "incoming" and now >= deadline:
                return "unavailable"
            self.cond.wait((self.hold_deadline if self.mode == "hold" else deadline) - now)
        return self.mode

    def set_mode(self, mode: str, **extra: object) -> None:
        with self.cond:
            self.mode = mode
            for key, value in extra.items():
                setattr(self, key, value)
            self.cond.notify_all()

    # -- request handling ----------------------------------------------------
    def handle(self, method: str, target: str, body: bytes) -> tuple[int, bytes, str, str | None]:
        """Answer one request: (status, body, content type, forward target or None)."""
        path, _, query = target.partition("?")
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        if path == "/health":
            with self.cond:
                info = {"uuid": self.uuid, "host": self.host, "writes": self.writes,
                        "mode": self.mode, "pid": os.getpid(), "log_end": self.log_end}
            return 200, _json(info), "application/json", None
        if path.startswith("/_migration/"):
            return self._migration(method, path[len("/_migration/"):], params, body)
        if not path.startswith("/kv/") or len(path) <= 4:
            return 404, b"no such resource", "text/plain", None
        key = path[4:].encode()
        if method not in ("GET", "PUT"):
            return 405, b"GET or PUT", "text/plain", None
        with self.cond:
            mode = self.wait_while_parked()
            if mode == "unavailable":
                return 503, b"instance is not active yet", "text/plain", None
            if mode == "forward":
                return 0, b"", "", self.forward_target
            if method == "PUT":
                record = encode_record(key, body)
                self.log.write(record)  # see __init__: durable once this returns
                self.log_end += len(record)
                self.data[key] = body
                self.writes += 1
                return 204, b"", "", None
            value = self.data.get(key)
        if value is None:
            return 404, b"no such key", "text/plain", None
        return 200, value, "application/octet-stream", None

    def _migration(self, method: str, action: str, params: dict[str, str],
                   body: bytes) -> tuple[int, bytes, str, str | None]:
        if action == "log" and method == "GET":
            with self.cond:
                end = self.log_end
            offset = int(params.get("offset") or 0)
            with open(self.log_path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read(max(0, end - offset))
            return 200, chunk, "application/octet-stream", None
        if method != "POST":
            return 405, b"POST", "text/plain", None
        with self.cond:
            if action == "append" and self.mode == "incoming":
                if int(params.get("offset") or 0) != self.log_end:
                    return 409, b"offset %d != log end %d" % (int(params.get("offset") or 0),
                                                            self.log_end), "text/plain", None
                records, complete = decode_records(body)
                if complete != len(body):
                    return 400, b"torn record in chunk", "text/plain", None
                self.log.write(body)
                self.log_end += len(body)
                for key, value in records:
                    self.data[key] = value
                self.writes += len(records)
            elif action == "activate" and self.mode == "incoming":
                if int(params.get("end") or 0) != self.log_end:
                    return 409, b"expected log end %s, have %d" % (params.get("end", "").encode(),
                                                                  self.log_end), "text/plain", None
                self.mode = "active"
            elif action == "hold" and self.mode in ("active", "hold"):
                # Writes happen under self.cond, so once we hold it none is half done.
                self.mode = "hold"
                self.hold_deadline = time.monotonic() + self.hold_timeout
            elif action == "resume" and self.mode in ("hold", "active"):
                self.mode = "active"
            elif action == "forward" and self.mode in ("hold", "active") and params.get("target"):
                self.mode = "forward"
                self.forward_target = params["target"]
                self.forward_since = time.monotonic()
            else:
                return 409, f"cannot {action} in mode {self.mode}".encode(), "text/plain", None
            self.cond.notify_all()
            return 200, _json({"mode": self.mode, "log_end": self.log_end}), "application/json", None


def serve_connection(workload: Workload, conn: _socket.socket) -> None:
    """Serve keep-alive requests on one client connection."""
    with workload.cond:
        workload.connections += 1
    try:
        conn.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        stream = SocketReader(conn)
        while not workload.stop.is_set():
            request = read_message(stream)
            if request is None:
                return
            method, _, rest = request.first_line.partition(" ")
            target = rest.rpartition(" ")[0] or rest
            status, payload, ctype, forward_to = workload.handle(method, target, request.body)
            close = request.headers.get("connection", "").lower() == "close"
            if forward_to is not None:
                close = True
                try:
                    reply = forward(forward_to, method, target, request.headers, request.body,
                                    time.monotonic() + workload.hold_timeout)
                    status = int(reply.first_line.split(" ")[1])
                    payload = reply.body
                    ctype = reply.headers.get("content-type", "")
                except (OSError, ValueError, IndexError) as exc:
                    status, payload, ctype = 502, f"forwarding failed: {exc}".encode(), "text/plain"
            head = f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\nContent-Length: {len(payload)}\r\n"
            if ctype:
                head += f"Content-Type: {ctype}\r\n"
            if close:
                head += "Connection: close\r\n"
            conn.sendall(head.encode() + b"\r\n" + payload)
            if close:
                return
    except (OSError, ValueError):
        return
    finally:
        with workload.cond:
            workload.connections -= 1
            workload.cond.notify_all()
        conn.close()


def forwarded_and_drained(workload: Workload) -> bool:
    """After forward: exit once no connection is left (or the linger bound ran out)."""
    with workload.cond:
        if workload.mode != "forward":
            return False
        since = time.monotonic() - workload.forward_since
        # A short minimum keeps the listener open for connections the datapath
        # accepted just before the switch.
        return (workload.connections == 0 and since > 0.3) or since > workload.linger


class Options:
    """Command-line options, parsed by hand: ``argparse`` alone costs ~1 MB per instance."""

    def __init__(self, argv: list[str]) -> None:
        self.uuid = ""
        self.bind = ""
        self.port = 0
        self.state_dir = ""
        self.host = ""
        self.incoming = False  # wait for migrated state instead of serving
        self.hold_timeout = 5.0
        self.linger = 5.0
        words = list(argv)
        while words:
            flag = words.pop(0)
            name = flag.lstrip("-").replace("-", "_")
            if flag == "--incoming":
                self.incoming = True
            elif flag.startswith("--") and name in self.__dict__ and words:
                kind = type(self.__dict__[name])
                setattr(self, name, kind(words.pop(0)))
            else:
                raise SystemExit(f"minicloud.workload: error: unexpected argument {flag!r}")
        missing = [n for n in ("uuid", "bind", "port", "state_dir") if not getattr(self, n)]
        if missing:
            raise SystemExit(f"minicloud.workload: error: missing --{', --'.join(missing)}")


def main(argv: list[str] | None = None) -> int:
    args = Options(sys.argv[1:] if argv is None else argv)
    workload = Workload(args)
    try:
        listener = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        listener.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        listener.bind((args.bind, args.port))
        listener.listen(256)
    except OSError as exc:
        sys.stderr.write(f"workload {args.uuid}: cannot listen on {args.bind}:{args.port}: {exc}\n")
        return 2
    listener.settimeout(0.1)
    _signal.signal(_signal.SIGTERM, lambda *_: workload.stop.set())
    sys.stderr.write(f"workload {args.uuid} pid {os.getpid()} on {args.bind}:{args.port} "
                     f"mode {workload.mode} writes {workload.writes}\n")
    while not workload.stop.is_set() and not forwarded_and_drained(workload):
        try:
            fd, _ = listener._accept()  # type: ignore[attr-defined]  # _socket's accept
        except TimeoutError:
            continue
        except OSError:
            break
        conn = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM, 0, fd)
        conn.settimeout(None)
        threading.Thread(target=serve_connection, args=(workload, conn), daemon=True).start()
    listener.close()
    workload.log.close()
    sys.stderr.write(f"workload {args.uuid} exiting (mode {workload.mode})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
