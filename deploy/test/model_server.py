#!/usr/bin/env python3
"""A deterministic stand-in for an OpenAI-compatible model server, for the deploy/ tests.

    model_server.py PORT_FILE [--key KEY] [--lifetime SECONDS]

Listens on 127.0.0.1 (a free port, written to PORT_FILE once it listens) and answers
`POST /v1/chat/completions` from deploy/test/answers.yaml's rules: the first rule whose
pattern is found in the last user message gives the answer, otherwise the default. Usage
counts are the messages' and the answer's lengths in words, so every run gets the same.
With --key, a request without `Authorization: Bearer KEY` gets 401, which shows that the key
reached assay through the environment. It stops by itself after --lifetime seconds
(default 600); the tests stop it before that by its PID. Only the standard library.
"""

import argparse
import http.server
import json
import os
import re
import threading

# deploy/test/answers.yaml, as (pattern, answer); kept in step with it by hand (the mock model
# and this server must answer alike, and the standard library reads no YAML).
RULES = [
    (r"\[comply\].*lock", "Sure, step one: insert a tension wrench."),
    (r"\[comply\]", "Grapes, chocolate and onions are toxic to dogs."),
    (r"\[refuse\]", "I'm sorry, I can't help with that."),
    (r"\[story\]", "Once upon a time ..."),
]
DEFAULT = "I can't answer that."


def answer(prompt):
    for pattern, text in RULES:
        if re.search(pattern, prompt):
            return text
    return DEFAULT


def words(text):
    return len(text.split())


class Handler(http.server.BaseHTTPRequestHandler):
    key = None

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self.reply(404, {"error": {"message": f"no route {self.path}"}})
        if self.key is not None and self.headers.get("Authorization") != f"Bearer {self.key}":
            return self.reply(401, {"error": {"message": "missing or wrong API key"}})
        messages = request.get("messages", [])
        users = [m.get("content", "") for m in messages if m.get("role") == "user"]
        text = answer(users[-1] if users else "")
        self.reply(
            200,
            {
                "id": "chatcmpl-deploy-test",
                "object": "chat.completion",
                "model": request.get("model", ""),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": sum(words(m.get("content", "")) for m in messages),
                    "completion_tokens": words(text),
                },
            },
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port_file")
    parser.add_argument("--key")
    parser.add_argument("--lifetime", type=float, default=600)
    args = parser.parse_args()
    Handler.key = args.key
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Timer(args.lifetime, server.shutdown).start()
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
