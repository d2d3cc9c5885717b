"""A local stand-in for an LLM provider's HTTP API: OpenAI-compatible ``/v1/chat/completions`` and
Anthropic ``/v1/messages``. It replays per-role scripted answers (like ScriptedLLM) so the REAL provider
adapters — the openai and anthropic SDKs, their error classes and headers — are exercised end to end.

A script entry is either answer text or ``(status, retry_after)`` for an HTTP error.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.scripted_llm import ROLE_NAMES


class FakeLlmServer:
    """Serve scripted answers on 127.0.0.1; ``calls`` and ``auth`` record what arrived."""

    def __init__(self, script: dict[str, list[Any]]) -> None:
        self.script = {role: list(answers) for role, answers in script.items()}
        self.calls: dict[str, int] = {}
        self.auth: set[str] = set()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                server.auth.add(self.headers.get("authorization") or self.headers.get("x-api-key") or "")
                text = (body.get("system") or "") + " " + " ".join(
                    str(m.get("content")) for m in body.get("messages", [])[:1])
                role = next((k for k, name in ROLE_NAMES.items() if f"You are {name}" in text), "unknown")
                with server.lock:
                    server.calls[role] = server.calls.get(role, 0) + 1
                    queue = server.script.get(role) or [(500, None)]
                    answer = queue.pop(0) if len(queue) > 1 else queue[0]
                if isinstance(answer, tuple):
                    status, retry_after = answer
                    payload = json.dumps({"error": {"message": f"scripted {status}", "type": "scripted"}}).encode()
                    self.send_response(status)
                    if retry_after is not None:
                        self.send_header("retry-after", str(retry_after))
                else:
                    tokens_in, tokens_out = len(json.dumps(body)) // 4, len(answer) // 4
                    if self.path.endswith("/messages"):
                        payload = json.dumps({"id": "msg_1", "type": "message", "role": "assistant",
                                              "model": body.get("model"), "content": [{"type": "text", "text": answer}],
                                              "stop_reason": "end_turn", "stop_sequence": None,
                                              "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out}}).encode()
                    else:
                        payload = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                                              "model": body.get("model"), "choices": [{
                                                  "index": 0, "finish_reason": "stop",
                                                  "message": {"role": "assistant", "content": answer}}],
                                              "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                                                        "total_tokens": tokens_in + tokens_out}}).encode()
                    self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "FakeLlmServer":
        self.thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
