"""Building ``$batch`` request bodies and reading multipart responses, for the batch tests."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import httpx


@dataclass
class Part:
    """One parsed response part."""

    status: int
    headers: dict[str, str]
    body: str
    content_id: str | None


def batch_request(
    method: str, url: str, body: str | None = None, content_id: str | None = None, headers: str = ""
) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{method} {url} HTTP/1.1"]
    if body is not None:
        lines.append("Content-Type: application/json; type=entry")
    if headers:
        lines.append(headers)
    lines.append("")
    return "\r\n".join(lines) + "\r\n" + (body or "") + "\r\n"


def batch_body(parts: list[str | list[str]], boundary: str) -> str:
    out = []
    for part in parts:
        if isinstance(part, list):
            changeset = f"changeset_{uuid.uuid4()}"
            inner = "".join(f"--{changeset}\r\n{p}" for p in part) + f"--{changeset}--\r\n"
            header = f'Content-Type: multipart/mixed; boundary="{changeset}"'
            out.append(f"--{boundary}\r\n{header}\r\n\r\n{inner}")
        else:
            out.append(f"--{boundary}\r\n{part}")
    return "".join(out) + f"--{boundary}--\r\n"


def parse_batch_response(response: httpx.Response) -> list[Part]:
    """Flatten the multipart response (change sets included) into parts, in order."""
    boundary = re.search(r"boundary=([^;\s]+)", response.headers["Content-Type"])
    assert boundary is not None
    return parse_batch_body(response.text, boundary.group(1))


def parse_batch_body(text: str, boundary: str) -> list[Part]:
    parts: list[Part] = []
    for chunk in text.split(f"--{boundary}")[1:]:
        if chunk.startswith("--"):
            break
        head, _, rest = chunk.strip("\r\n").partition("\r\n\r\n")
        inner = re.search(r"boundary=([^;\s]+)", head)
        if "multipart/mixed" in head and inner is not None:
            parts.extend(parse_batch_body(rest, inner.group(1)))
            continue
        content_id = re.search(r"Content-ID: (\S+)", head)
        status_line, _, after = rest.partition("\r\n")
        header_text, _, body = after.partition("\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in header_text.split("\r\n") if ": " in line)
        parts.append(
            Part(
                int(status_line.split()[1]),
                headers,
                body.strip(),
                content_id.group(1) if content_id else None,
            )
        )
    return parts


def post_batch(
    api: httpx.Client, body: str, boundary: str, quoted: bool = True, prefer: str | None = None
) -> httpx.Response:
    content_type = (
        f'multipart/mixed; boundary="{boundary}"'
        if quoted
        else f"multipart/mixed;boundary={boundary}"
    )
    headers = {"Content-Type": content_type}
    if prefer:
        headers["Prefer"] = prefer
    return api.post("$batch", content=body.encode(), headers=headers)
