"""Fixtures shared by the whole suite live in plugin modules under `tests/fixtures/`."""

pytest_plugins: list[str] = [
    # one entry per fixture module, e.g. "tests.fixtures.database"
    "tests.fixtures.brokers",
    "tests.fixtures.database",
    "tests.fixtures.mock_exchange",
    "tests.fixtures.hub",
]
