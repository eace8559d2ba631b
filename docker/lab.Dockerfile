# The lab's peers (Kamailio, SIPp) and sipkit with pjsua2, as root inside the container.
FROM python:3.12-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends \
        kamailio kamailio-tls-modules sip-tester sipsak openssl iproute2 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/sipkit
COPY pyproject.toml README.md ./
COPY sipkit ./sipkit
RUN pip install --no-cache-dir .
ENTRYPOINT []
