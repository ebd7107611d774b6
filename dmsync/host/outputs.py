"""Queue output bindings: write what a function returned or ``set`` to its output queues.

Like the extension's queue output binding, the queue is created on first use and bodies are
stored under the host's ``messageEncoding`` (base64 by default) [reference §1, §3, §9]. After a
write, listeners of this host on that queue are told, so they poll at once instead of waiting
out their idle backoff (the extension's shared queue watcher does the same).
"""

from __future__ import annotations

from collections.abc import Callable

from dmsync.host.function_index import QueueOutput
from dmsync.host.message_codec import MessageEncoding, encode_message_text
from dmsync.host.queue_backend import QueueBackend

QueueLookup = Callable[[str, str], QueueBackend]
"""(connection name, queue name) → the queue."""


class OutputWriter:
    """Sends output-binding messages."""

    def __init__(
        self,
        queues: QueueLookup,
        encoding: MessageEncoding,
        on_sent: Callable[[str, str], None] | None = None,
    ) -> None:
        """Create a writer.

        Args:
            queues: finds the queue for a (connection, queue name).
            encoding: host.json ``messageEncoding``.
            on_sent: called with (connection, queue name) after messages were written.
        """
        self._queues = queues
        self._encoding = encoding
        self._on_sent = on_sent

    async def write(self, output: QueueOutput, bodies: list[bytes]) -> None:
        """Send ``bodies`` to ``output``'s queue, in order (encoding checked before any send)."""
        if not bodies:
            return
        texts = [encode_message_text(body, self._encoding) for body in bodies]
        queue = self._queues(output.connection, output.queue_name)
        for text in texts:
            await queue.send(text)
        if self._on_sent is not None:
            self._on_sent(output.connection, output.queue_name)
