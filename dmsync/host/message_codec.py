"""Queue message text ↔ body bytes, per host.json ``messageEncoding`` [reference §3, §9].

With ``base64`` (the default) the stored text is the base64 of the body; text that is not valid
base64 cannot be bound and the message goes to the poison queue. With ``none`` the text is the
body itself (UTF-8).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal

MessageEncoding = Literal["base64", "none"]

_WHITESPACE = re.compile(r"\s+")


class MessageDecodeError(ValueError):
    """The message text does not decode under the configured encoding."""


def decode_message_text(text: str, encoding: MessageEncoding) -> bytes:
    """The body a stored message text stands for.

    Raises:
        MessageDecodeError: if ``encoding`` is base64 and ``text`` is not valid base64.
    """
    if encoding == "none":
        return text.encode("utf-8")
    # .NET's Convert.FromBase64String skips whitespace but insists on the alphabet and padding.
    compact = _WHITESPACE.sub("", text)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise MessageDecodeError("the message text is not valid base64") from None


def encode_message_text(body: bytes, encoding: MessageEncoding) -> str:
    """The text to store for ``body``.

    Raises:
        MessageDecodeError: if ``encoding`` is none and ``body`` is not UTF-8 text.
    """
    if encoding == "base64":
        return base64.b64encode(body).decode("ascii")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise MessageDecodeError(
            "messageEncoding 'none' can only send UTF-8 text, and this body is binary"
        ) from None
