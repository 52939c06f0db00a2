"""Development-only tools: what `make run` and `make test` need on a machine with nothing
installed, and that production never runs.

- `devtools.embedded`: the embedded PostgreSQL and Kafka-protocol (Tansu) servers that
  stand in when DATABASE_URL or KAFKA_BOOTSTRAP_SERVERS is not set;
- `devtools.payments_emulator`: a local card/direct-debit provider that answers by signed
  webhook (`manage.py run_gateway_emulator`);
- `manage.py run_local` (the local supervisor), `bootstrap_local` (an admin with a known
  password and a demo API key) and `demo` (the whole story, end to end).

No production module imports this package (import-linter holds it), the settings list it
as an app only for local runs and tests (DEBUG or BOISSIPAY_ALLOW_DEV_SECRET), and the
production image does not contain it (.dockerignore)."""
