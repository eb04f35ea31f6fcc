"""A local OpenAI-compatible chat server on 127.0.0.1: the stand-in for hosted providers.

It sits at the boundary the product does not own; the product reaches it through litellm's
``openai/`` provider with ``api_base``, exactly as it would reach vLLM or a hosted API.
Latency and faults are injectable.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ServerConfig:
    latency_s: float = 0.0
    fail_status: int | None = None  # answer requests fail_from..fail_until with this HTTP status
    fail_from: int = 1  # first failing request (1-based)
    fail_until: int = 0  # last failing request; 0 means every request from fail_from on
    retry_after: str | None = None  # Retry-After header sent with injected faults
    required_key: str | None = None  # answer 401 unless "Authorization: Bearer <key>"
    required_auth: str | None = None  # answer 401 unless the Authorization header is exactly this
    slow_first: int = 0  # the first N requests take slow_s seconds (to provoke timeouts)
    slow_s: float = 0.0
    reply: Any = "Synthetic reply {n} to: {prompt}"  # a format string, or a function (n, prompt) -> str
    requests: list[dict] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0


class _Handler(BaseHTTPRequestHandler):
    config: ServerConfig
    lock = threading.Lock()

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "test-model", "object": "model"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        cfg = self.config
        with self.lock:
            cfg.requests.append({"path": self.path, "body": body, "at": time.monotonic(),
                                 "authorization": self.headers.get("Authorization")})
            n = len(cfg.requests)
            cfg.in_flight += 1
            cfg.max_in_flight = max(cfg.max_in_flight, cfg.in_flight)
        try:
            self._answer(cfg, body, n)
        finally:
            with self.lock:
                cfg.in_flight -= 1

    def _answer(self, cfg: ServerConfig, body: dict, n: int) -> None:
        if n <= cfg.slow_first:
            time.sleep(cfg.slow_s)
        if cfg.latency_s:
            time.sleep(cfg.latency_s)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        wanted = cfg.required_auth or (f"Bearer {cfg.required_key}" if cfg.required_key else None)
        if wanted and self.headers.get("Authorization") != wanted:
            return self._send(401, {"error": {"message": "Incorrect API key provided.",
                                              "type": "invalid_request_error", "code": "invalid_api_key"}})
        if cfg.fail_status and cfg.fail_from <= n and (cfg.fail_until == 0 or n <= cfg.fail_until):
            return self._send(cfg.fail_status, {"error": {"message": f"injected fault {cfg.fail_status}",
                                                          "type": "server_error"}},
                              {"Retry-After": cfg.retry_after} if cfg.retry_after else None)
        prompt = body["messages"][-1]["content"]
        text = cfg.reply(n, prompt) if callable(cfg.reply) else cfg.reply.format(n=n, prompt=prompt)
        self._send(200, {
            "id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "test-model"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split()),
                      "total_tokens": len(prompt.split()) + len(text.split())},
        })


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops concurrent connects, which then wait for SYN retransmits.
    request_queue_size = 1024
    daemon_threads = True


class OpenAITestServer:
    """``with OpenAITestServer() as server: server.api_base``"""

    def __init__(self, config: ServerConfig | None = None):
        self.config = config or ServerConfig()
        handler = type("Handler", (_Handler,), {"config": self.config})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> "OpenAITestServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def json_reply(n: int, prompt: str) -> str:
    """Answers the JSON the product asks for: a judge verdict, a labelled request, or the declared
    fields (with string values); plain text otherwise."""
    if '"score"' in prompt:
        checklist = prompt.split("For each criterion", 1)[1].split("\n\n", 1)[0]
        names = re.findall(r"^- (\w+): ", checklist, flags=re.M)
        return json.dumps({"score": 1 + n % 5, "criteria": {k: n % 2 == 0 for k in names},
                           "reason": f"verdict {n}"})
    keys = re.search(r"JSON object with the keys? (.*?), like", prompt)
    if keys is None:
        return f"Plain reply {n}"
    fields = re.findall(r'"(\w+)"', keys.group(1))
    example = json.loads(prompt[prompt.rindex("like: ") + 6:].strip().split("\n")[0])
    answer = {}
    for f in fields:
        if isinstance(example.get(f), dict):
            answer[f] = {k: f"{k} {n}" for k in example[f]} or {}
        else:
            answer[f] = f"{f} {n}"
    return "Sure! " + json.dumps(answer)
