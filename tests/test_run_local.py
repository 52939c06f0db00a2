"""The README's run command starts every process the configuration needs."""

from boissipay.management.commands.run_local import local_processes


def test_the_local_run_starts_web_relay_celery_worker_and_beat(settings):
    processes = local_processes("127.0.0.1", 8000)
    assert {"web", "relay", "worker", "beat"} <= set(processes)
    assert processes["beat"][3:6] == ["-A", "config", "beat"]
    assert processes["worker"][3:6] == ["-A", "config", "worker"]


def test_a_context_fed_from_kafka_gets_its_consumer(settings):
    settings.EVENT_FEED = {**settings.EVENT_FEED, "billing": "kafka"}
    processes = local_processes("127.0.0.1", 8000)
    assert processes["consume-billing"][-2:] == ["--context", "billing"]
    assert "consume-payments" not in processes
