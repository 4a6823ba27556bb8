import secrets

import pytest

RETENTION_TTL_S = 4

# A stack configured as production is (no anonymous sign-up; sign-in with the local identity provider's
# tokens), plus what makes webhooks, retention and metrics observable within a test: loopback webhook
# receivers, retries after 1 s, short TTLs. Shared by the suites that need it, so it starts once.
PROD_VARS = {"ALLOW_ANONYMOUS": "false", "JWT_HEADER": "cf-access-jwt-assertion",
             "LEASE_TIMEOUT_S": "3", "HEARTBEAT_INTERVAL_S": "1", "MAX_ATTEMPTS": "2", "REQUEUE_DELAY_S": "1",
             "METRICS_TOKEN": secrets.token_hex(16),
             "WEBHOOK_ALLOW_LOOPBACK": "true", "WEBHOOK_RETRY_BASE_S": "1", "WEBHOOK_TIMEOUT_S": "2",
             "UPLOAD_TTL_S": str(RETENTION_TTL_S), "OUTPUT_TTL_S": str(RETENTION_TTL_S),
             "MULTIPART_TTL_S": str(RETENTION_TTL_S)}


@pytest.fixture
def client_for():
    """Makes gpu_export Clients of a stack: `client_for(stack)` signs up a new anonymous user,
    `client_for(stack, token)` uses a token. They are closed after the test."""
    from gpu_export import Client

    made = []

    def make(stack, token: str | None = None) -> Client:
        made.append(Client(stack.url, token))
        if token is None:
            made[-1].sign_up_anonymous()
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture(scope="session")
def identity_provider():
    from tests.idp import IdentityProvider

    with IdentityProvider() as idp:
        yield idp


@pytest.fixture(scope="session")
def prod_stack(tmp_path_factory, identity_provider):
    from scripts.localstack import LocalStack

    stack = LocalStack(persist_dir=tmp_path_factory.mktemp("prod-stack"),
                       vars={**PROD_VARS, **identity_provider.vars()})
    identity_provider.page_url = f"{stack.url}/"
    with stack:
        yield stack


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the tests marked slow (long inputs)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow (make test-slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
