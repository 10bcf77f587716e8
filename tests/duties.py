"""cron on the test's anvil chain: its settings (the `env` fixture, a plugin of
tests/conftest.py) and one duty run in-process on a tasks.Context (`duty`)."""
import pytest

from tests.cron_support import cron_env


@pytest.fixture
def env(anvil, tmp_path):
    """cron's settings for the test's anvil chain (tests/cron_support.py cron_env)."""
    return cron_env(anvil.url, tmp_path)


def duty(env, db, fn):
    """Run the cron duty `fn` once on a tasks.Context, without the payout engine; the
    test fails on any error the duty recorded. Returns the context (its counts, clients)."""
    from cron import tasks
    ctx = tasks.Context(env, db)
    try:
        fn(ctx)
    finally:
        ctx.close()
    assert not ctx.errors, ctx.errors
    return ctx
