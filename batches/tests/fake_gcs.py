"""An in-process Google Cloud Storage for tests: a small HTTP server speaking the part of the
GCS JSON API that google-cloud-storage uses for django-storages' calls (multipart upload,
media download, object metadata, delete, list) and the XML API's GET of an object (where a
signed URL points). STORAGE_EMULATOR_HOST points the real client at it, so the client and
django-storages run unmodified. It does not check signatures or permissions."""

import hashlib
import json
import threading
from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import google_crc32c


class Buckets:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, dict[str, Any]]] = {}
        self.generation = 0
        self.lock = threading.Lock()
        self.requests: list[str] = []

    def put(self, bucket: str, name: str, data: bytes, content_type: str) -> dict[str, Any]:
        with self.lock:
            self.generation += 1
            meta = {
                "kind": "storage#object",
                "id": f"{bucket}/{name}/{self.generation}",
                "bucket": bucket,
                "name": name,
                "generation": str(self.generation),
                "metageneration": "1",
                "contentType": content_type,
                "size": str(len(data)),
                "md5Hash": b64encode(hashlib.md5(data).digest()).decode(),  # nosec B324 (GCS's own checksum)
                "crc32c": b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode(),
                "timeCreated": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "updated": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            }
            self.objects[(bucket, name)] = (data, meta)
            return meta

    def names(self, bucket: str) -> list[str]:
        return sorted(name for b, name in self.objects if b == bucket)


class Handler(BaseHTTPRequestHandler):
    buckets: Buckets

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes = b"", content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, value: Any) -> None:
        self._send(code, json.dumps(value).encode())

    def _missing(self) -> None:
        self._json(404, {"error": {"code": 404, "message": "No such object.", "errors": [{"reason": "notFound"}]}})

    def _route(self) -> tuple[list[str], dict[str, list[str]]]:
        parts = urlsplit(self.path)
        self.buckets.requests.append(f"{self.command} {parts.path}")
        return [unquote(p) for p in parts.path.split("/")[1:]], parse_qs(parts.query)

    def do_GET(self) -> None:
        path, query = self._route()
        if path[:3] == ["download", "storage", "v1"]:
            path = path[3:]
        elif path[:2] == ["storage", "v1"]:
            path = path[2:]
        elif len(path) >= 2:  # XML API: /bucket/name (a signed URL)
            return self._media(path[0], "/".join(path[1:]))
        if len(path) == 3 and path[0] == "b" and path[2] == "o":
            return self._list(path[1], query)
        if len(path) >= 4 and path[0] == "b" and path[2] == "o":
            name = "/".join(path[3:])
            if query.get("alt") == ["media"]:
                return self._media(path[1], name)
            found = self.buckets.objects.get((path[1], name))
            return self._json(200, found[1]) if found else self._missing()
        return self._json(400, {"error": {"code": 400, "message": f"unsupported: GET {self.path}"}})

    def _media(self, bucket: str, name: str) -> None:
        found = self.buckets.objects.get((bucket, name))
        if found is None:
            return self._missing()
        data, meta = found
        self.send_response(200)
        self.send_header("Content-Type", meta["contentType"])
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-goog-hash", f"crc32c={meta['crc32c']},md5={meta['md5Hash']}")
        self.send_header("x-goog-generation", meta["generation"])
        self.end_headers()
        self.wfile.write(data)

    def _list(self, bucket: str, query: dict[str, list[str]]) -> None:
        prefix = query.get("prefix", [""])[0]
        delimiter = query.get("delimiter", [""])[0]
        items, prefixes = [], set()
        for name in self.buckets.names(bucket):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest.split(delimiter, 1)[0] + delimiter)
            else:
                items.append(self.buckets.objects[(bucket, name)][1])
        self._json(200, {"kind": "storage#objects", "items": items, "prefixes": sorted(prefixes)})

    def do_POST(self) -> None:
        path, query = self._route()
        if path[:5] != ["upload", "storage", "v1", "b", path[4] if len(path) > 4 else ""] or query.get(
            "uploadType"
        ) != ["multipart"]:
            return self._json(400, {"error": {"code": 400, "message": f"unsupported: POST {self.path}"}})
        bucket = path[4]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + body)
        metadata_part, media_part = list(message.iter_parts())
        metadata = json.loads(metadata_part.get_payload(decode=True))
        name = metadata.get("name") or query["name"][0]
        if query.get("ifGenerationMatch") == ["0"] and (bucket, name) in self.buckets.objects:
            return self._json(412, {"error": {"code": 412, "message": "conditionNotMet"}})
        data = media_part.get_payload(decode=True)
        content_type = metadata.get("contentType") or media_part.get_content_type()
        self._json(200, self.buckets.put(bucket, name, data, content_type))

    def do_DELETE(self) -> None:
        path, _ = self._route()
        name = "/".join(path[5:])
        if path[:3] != ["storage", "v1", "b"] or path[4] != "o":
            return self._json(400, {"error": {"code": 400, "message": f"unsupported: DELETE {self.path}"}})
        if self.buckets.objects.pop((path[3], name), None) is None:
            return self._missing()
        self._send(204)


@contextmanager
def serving() -> Iterator[tuple[str, Buckets]]:
    """(http://host:port, the buckets) while the server runs."""
    buckets = Buckets()
    handler = type("BoundHandler", (Handler,), {"buckets": buckets})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", buckets
    finally:
        server.shutdown()
        server.server_close()
