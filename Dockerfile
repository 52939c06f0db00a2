# Boissipay's production image: the production requirements only (hashes checked), no
# development tool (devtools/, tests, benchmarks: .dockerignore), run as a non-root user.
# One image for every process of the Procfile; compose.yaml picks the command.
# Not built on the development machines (no container engine there): see docs/deploy.md.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements/prod.txt /tmp/prod.txt
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/prod.txt

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 boissipay \
    && useradd --system --uid 10001 --gid boissipay --home-dir /app --shell /usr/sbin/nologin boissipay \
    && mkdir -p /var/lib/boissipay && chown boissipay:boissipay /var/lib/boissipay
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    BOISSIPAY_LOCAL_DIR=/var/lib/boissipay \
    STATIC_ROOT=/app/static \
    GUNICORN_BIND=0.0.0.0:8000
WORKDIR /app
COPY . /app
# The static files (admin, Swagger UI) are collected at build time. Settings refuse to load
# without production values, so the build gives throwaway ones that serve nothing.
RUN DATABASE_URL=postgres://build@localhost/build KAFKA_BOOTSTRAP_SERVERS=build:9092 CELERY_BROKER_URL=redis://build \
    SECRET_KEY=build-only-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ \
    PAYMENTS_WEBHOOK_SECRET=build-only-webhook-secret PAYMENTS_GATEWAY=sepa_file \
    EINVOICING_GATEWAY=platform EINVOICING_PLATFORM_TOKEN=build-only-token \
    EINVOICING_WEBHOOK_SECRET=build-only-platform-secret \
    EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend EMAIL_HOST=build \
    python manage.py collectstatic --noinput --verbosity 0
USER boissipay
VOLUME ["/var/lib/boissipay"]
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--config", "gunicorn.conf.py"]
