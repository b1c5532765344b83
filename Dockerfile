# syntax=docker/dockerfile:1
#
# appeals-bot in a container (SPEC §17; README, "Deploy").
#
#   docker build -t appeals-bot .
#   docker run -d --name appeals-bot --restart unless-stopped --stop-timeout 30 \
#     -v appeals-data:/var/lib/appeals-bot \
#     -v "$PWD/config.toml:/etc/appeals-bot/config.toml:ro" \
#     --env-file appeals-bot.env \
#     -p 127.0.0.1:8080:8080 \
#     appeals-bot
#
# - Configuration: the TOML file mounted at /etc/appeals-bot/config.toml (readable by uid
#   10001; it holds no secrets), and APPEALS_* variables (tokens and secrets: --env-file),
#   which win over the file (README, "Configure and run for real").
# - Data: the volume /var/lib/appeals-bot is the working directory, so the default
#   `[storage] url = "sqlite:///appeals.db"` puts the database (and its -wal and -shm) there;
#   backups go to its backups/ folder. Logs go to standard error: `docker logs`, or the
#   logging driver (compose.yaml caps their size).
# - Stopping: SIGTERM (exec form: the bot is PID 1 and gets the signal itself). It finishes
#   the message in hand and sends what it can within 10 s, so give `docker stop` more than
#   its default 10 s: --stop-timeout 30 (compose.yaml: stop_grace_period).
#
# Two stages: the builder makes wheels of the bot and of everything it needs; the final image
# installs those wheels and nothing else: no compiler, no build tools, no pip cache, no
# source tree.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: wheels ------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# The dependencies first, from pyproject.toml alone: this layer stays cached while only the
# code changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip wheel --wheel-dir /wheels -r requirements.txt
# Then the bot's own wheel (.dockerignore lets nothing else into the build context).
COPY README.md config.example.toml ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- the image ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="appeals-bot" \
      org.opencontainers.image.description="Citizens' appeals through VK, Odnoklassniki and Telegram" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    APPEALS_WEB__HOST=0.0.0.0 \
    APPEALS_WEB__SERVE=true
# APPEALS_WEB__HOST: inside a container the web server must listen on all interfaces to be
# reachable through a published port; publish it on the host's loopback only
# (-p 127.0.0.1:8080:8080) and let the TLS proxy be the one door in.
# APPEALS_WEB__SERVE: the server runs even with long polling only, for the HEALTHCHECK
# (/healthz) and /metrics.

# A user of its own with fixed ids, so files on the volume keep their owner across images
# (and an orchestrator's runAsNonRoot can check it).
RUN groupadd --system --gid 10001 appeals \
 && useradd --system --uid 10001 --gid appeals --no-create-home \
        --home-dir /var/lib/appeals-bot --shell /usr/sbin/nologin appeals \
 && install -d -o appeals -g appeals -m 0750 /var/lib/appeals-bot /var/lib/appeals-bot/backups \
 && install -d -m 0755 /etc/appeals-bot /usr/local/lib/appeals-bot

# Installed from the builder's wheels only (--no-index): nothing is compiled here, and the
# wheels are mounted for this step, not copied into a layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels appeals-bot

COPY deploy/healthcheck.py /usr/local/lib/appeals-bot/healthcheck.py

USER 10001:10001
WORKDIR /var/lib/appeals-bot
VOLUME ["/var/lib/appeals-bot"]
EXPOSE 8080

# GET http://127.0.0.1:<port>/healthz with the standard library (no curl in slim images);
# the port is the bot's own (APPEALS_WEB__PORT, else [web] port of the file, else 8080).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/lib/appeals-bot/healthcheck.py", "/etc/appeals-bot/config.toml"]

STOPSIGNAL SIGTERM
# `docker run IMAGE check-config --config /etc/appeals-bot/config.toml` and
# `docker exec CONTAINER appeals-bot backup …` use the same program.
ENTRYPOINT ["appeals-bot"]
CMD ["run", "--config", "/etc/appeals-bot/config.toml"]
