"""Capture RDKit's parser messages so a rejection can say what RDKit saw.

RDKit reports why a SMILES failed only through its logger. We route that
logger into Python logging once and collect its records while one parse runs;
the lock keeps two threads of one process from reading each other's messages.
Outside a capture, RDKit's chatter goes to the `rdkit` logger at DEBUG, so a
batch of bad input does not flood the server log.
"""

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rdkit import rdBase

_lock = threading.Lock()
_TIMESTAMP = re.compile(r"^\[\d\d:\d\d:\d\d\] ")
_log = logging.getLogger("omtx.rdkit")


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = _TIMESTAMP.sub("", record.getMessage()).strip()
        if self.messages is not None:
            self.messages.append(message)
        else:
            _log.debug("%s", message)


_collector = _Collector()
rdBase.LogToPythonLogger()
_rdkit_logger = logging.getLogger("rdkit")
# RDKit installs its own stderr handler on import; replace it.
_rdkit_logger.handlers = [_collector]
_rdkit_logger.propagate = False


@contextmanager
def rdkit_messages() -> Iterator[list[str]]:
    with _lock:
        messages: list[str] = []
        _collector.messages = messages
        try:
            yield messages
        finally:
            _collector.messages = None
