"""The container's HEALTHCHECK: GET http://127.0.0.1:<port>/healthz, healthy on 200.

Standard library only (the slim image has no curl), and fast: it does not import the bot.
The port is the bot's own: ``APPEALS_WEB__PORT`` if set, else ``[web] port`` of the config
file (the first argument, default /etc/appeals-bot/config.toml), else 8080 — the same
precedence as the bot's configuration. Exit status 0 = healthy, 1 = unhealthy (what Docker
expects); one line on standard output says why, and `docker inspect` shows it.
"""

from __future__ import annotations

import os
import sys
import tomllib
import urllib.error
import urllib.request

DEFAULT_CONFIG = "/etc/appeals-bot/config.toml"
DEFAULT_PORT = 8080
PATH = "/healthz"
TIMEOUT_SECONDS = 5.0


def web_port(config_path: str) -> int:
    """The port the bot listens on, by the bot's own precedence: environment, file, default."""
    from_env = os.environ.get("APPEALS_WEB__PORT")
    if from_env:
        return int(from_env)
    try:
        with open(config_path, "rb") as stream:
            web = tomllib.load(stream).get("web", {})
    except (OSError, tomllib.TOMLDecodeError):
        return DEFAULT_PORT  # the bot itself reports a bad file; this only needs the port
    return int(web.get("port", DEFAULT_PORT))


def check(port: int) -> tuple[bool, str]:
    url = f"http://127.0.0.1:{port}{PATH}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            body = response.read(512).decode("utf-8", "replace")
            return response.status == 200, f"{response.status} {body}"
    except urllib.error.HTTPError as error:  # 503 and every other non-2xx answer
        body = error.read(512).decode("utf-8", "replace")
        return False, f"{error.code} {body}"
    except (OSError, ValueError) as error:  # refused, timed out, not HTTP
        return False, f"{url}: {error}"


def main(argv: list[str]) -> int:
    try:
        port = web_port(argv[1] if len(argv) > 1 else DEFAULT_CONFIG)
    except (ValueError, TypeError, AttributeError) as error:
        print(f"unhealthy: no usable [web] port: {error}")
        return 1
    if port == 0:
        print("unhealthy: [web] port is 0 (any free port), which cannot be checked")
        return 1
    healthy, detail = check(port)
    print(("healthy: " if healthy else "unhealthy: ") + " ".join(detail.split())[:300])
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
