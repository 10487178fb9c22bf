"""Issue 11 item 8: the API keeps its own contract, checked by Schemathesis against a live stack.

A real ``gamead serve`` (tokens of every role configured, so auth is enforced) on a real nats-server, with a
worker, of this module's own. Schemathesis sends every operation of the contract generated requests, valid and
invalid (its coverage phase: boundaries, wrong types, missing fields, methods a path does not take; then fuzzing).
Each operation is one pytest item, ``test_every_operation_keeps_the_contract_for_every_caller[GET /ads]``: the
operations are read at collection from the document the app builds (:data:`CONTRACT`, no server needed), and
:func:`test_the_contract_is_whole_and_every_caller_was_answered` checks that the live API serves that same document
and that it has every route the app has. Each fuzzing request is sent four times: without a token and with the
submitter's, the viewer's and the operator's; each coverage request once, as the least privileged caller its
handler admits (:func:`callers_for`). Every answer must be documented and match its schema:

* 0 server errors (``not_a_server_error``),
* 0 undocumented status codes (``status_code_conformance``), content types and headers as documented,
* 0 answers that violate their schema (``response_schema_conformance``),
* invalid data refused (``negative_data_rejection``: ``{"replicas": false}`` was accepted), an ``Allow`` header
  that lists the path's methods on ``OPTIONS`` and on ``405`` (``unsupported_method``,
  ``allow_header_conformance``: ``OPTIONS /ads`` said ``Allow: POST``), no protected route answering without a
  token (``ignored_auth``),
* each caller answered as its role (:func:`wrong_for_the_role`): no 2xx to a caller the route does not admit, no
  401 or 403 to one it does.

``positive_data_acceptance`` is off: gamead refuses some schema-valid requests on purpose, by rules a JSON
schema cannot say (an ``Idempotency-Key`` reused with another ad, a purge without ``confirm: true``, a selection
that is not exactly one of ids / filter / all), and answers them with documented 4xx codes.

The operations are dealt out over :data:`UNITS` units of work (``xdist_group``), each starting this module's
servers once on its worker: they share no state but the stack. The number of examples per operation
is bounded (:data:`MAX_EXAMPLES`); Hypothesis runs with the suite's profile (``deadline=None``), no shrinking.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from gamead_core.api.app import create_app
from gamead_core.api.auth import allowed_roles, route_class
from gamead_core.api.route_table import route_rows
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from tests.support import Proc, start_api, start_worker

#: one operation per test: its coverage phase (up to a few hundred requests) and ~10 fuzzing examples, each sent as
#: up to four callers. Session 58 at load ~35: all 28 in one test took 527 s; at load ~45 the slowest one here took
#: 40 s (POST /ads, 5 s at load 8), so an operation gets twice the suite's 120 s per test (a hang still ends)
pytestmark = pytest.mark.timeout(240)

#: generated requests per operation in the fuzzing phase (the coverage phase adds its own, deterministic, set)
MAX_EXAMPLES = 10

TOKENS = {"submitter": "contract-submitter-token", "viewer": "contract-viewer-token",
          "operator": "contract-operator-token"}
#: every caller each request is sent as: no token, then each role's
CALLERS: dict[str, str | None] = {"anonymous": None, **TOKENS}
TOKEN_CONFIG = [{"name": f"contract-{role}", "token": token, "role": role} for role, token in TOKENS.items()]

CONFIG = {
    "generation": {"max-examples": MAX_EXAMPLES, "no-shrink": True, "database": "none",
                   "with-security-parameters": False},  # the token is the caller's, set below
    "checks": {
        "positive_data_acceptance": {"enabled": False},
        # invalid data may also be refused for its size: a body over api.max_body_bytes (413), a request target
        # or head over the framing bounds (414, 431)
        "negative_data_rejection": {"expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 414, 415, 422,
                                                          428, 429, 431, "5xx"]},
    },
    "phases": {"stateful": {"enabled": False}, "coverage": {"enabled": True}},
    "request-timeout": 15,
}

#: the app ``gamead serve`` builds with :data:`TOKENS` configured (never served: its routes and its contract)
APP = create_app(GameadSettings(auth={"tokens": TOKEN_CONFIG}), "nats://127.0.0.1:4222")
#: the contract the live API serves at ``/openapi.json`` (checked), read at collection
CONTRACT = json.loads(json.dumps(APP.openapi()))
#: its operations, ``GET /ads``…: one test each. Only their names at collection: Schemathesis' own collection of
#: a schema builds every operation's coverage cases: ~7 CPU-s (load 50) in each pytest process collecting it
OPERATIONS = [f"{method.upper()} {path}" for path, methods in CONTRACT["paths"].items() for method in methods]
#: units of work (``xdist_group``) the operations are dealt over, each starting this module's servers once on its
#: worker (they share nothing else): all 28 on one worker took 527 s at load ~35 (session 58), the suite's longest
UNITS = 2


def weight(operation: str) -> int:
    """How much an operation's coverage phase sends, roughly: the size in characters of its request body's and
    parameters' schemas, ``$ref`` resolved, plus 1,000 for its fuzzing (at load ~45: ``POST /v1/dlq/import`` 5,424
    took 21 s, ``POST /ads`` 3,059 11 s, ``GET /v1/jobs`` 885 6 s, ``GET /v1/stats`` 298 2 s)."""
    method, path = operation.split(" ", 1)
    op = CONTRACT["paths"][path][method.lower()]
    return 1000 + len(json.dumps(_resolved([op.get("requestBody", {}), op.get("parameters", [])])))


def _resolved(node: object, seen: tuple[str, ...] = ()) -> object:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[1]
            return {} if name in seen else _resolved(CONTRACT["components"]["schemas"][name], (*seen, name))
        return {key: _resolved(value, seen) for key, value in node.items()}
    return [_resolved(item, seen) for item in node] if isinstance(node, list) else node


def deal(operations: list[str], units: int) -> dict[str, int]:
    """Each operation's unit, 0 … ``units`` - 1: the heaviest (:func:`weight`) first, each to the lightest unit."""
    loads, unit = [0] * units, {}
    for operation in sorted(operations, key=weight, reverse=True):
        unit[operation] = loads.index(min(loads))
        loads[unit[operation]] += weight(operation)
    return unit


UNIT_OF = deal(OPERATIONS, UNITS)


def in_unit(k: int) -> pytest.MarkDecorator:
    return pytest.mark.xdist_group(f"tests/integration/test_schemathesis.py#{k}")


#: one keep-alive connection pool for every request of the module; not reading proxies and .netrc from the
#: environment for each of its ~3,000 requests to a loopback API (requests' merge_environment_settings: 5.9 of the
#: pytest process's 124 s under cProfile, os.environ walked 482,000 times)
SESSION = requests.Session()
SESSION.trust_env = False


@pytest.fixture(scope="module")
def contract_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("contract")
    nats = EmbeddedNats(root / "nats").start()
    procs: list[Proc] = []
    try:
        api, url = start_api(nats.url, root, GAMEAD_AUTH__TOKENS=json.dumps(TOKEN_CONFIG),
                             GAMEAD_JOBS__FOLLOW_TIMEOUT="0",  # a replay job's progress stream ends at once
                             GAMEAD_DLQ__SCAN_TIME="0.5")
        procs.append(api)
        procs.append(start_worker(nats.url, root, worker_id="contract-worker", concurrency=2))
        yield url
    finally:
        for proc in reversed(procs):
            proc.stop(timeout=10)
        nats.stop()


@pytest.fixture(params=[pytest.param(operation, id=operation, marks=in_unit(UNIT_OF[operation]))
                        for operation in OPERATIONS])
def api_schema(request: pytest.FixtureRequest) -> schemathesis.BaseSchema:
    """The contract with every operation but this test's (``request.param``) turned off in its configuration."""
    others_off = {"exclude-name": request.param, "enabled": False}
    config = schemathesis.Config.from_dict({**CONFIG, "operations": [others_off]})
    return schemathesis.openapi.from_dict(json.loads(json.dumps(CONTRACT)), config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


def callers_for(case: schemathesis.Case) -> dict[str, str | None]:
    """Every caller, for the fuzzing phase's requests. The coverage phase's (hundreds of boundary and invalid
    variants of one body) go to one caller that reaches the handler, the least privileged one: for the others
    the gate answers 401 or 403 before the request is read, which the fuzzing phase already checks on every
    operation, and a handler reads a body the same way for every role it admits (the operator's own rights are
    fuzzed). One caller instead of each admitted one: ~2,100 → ~1,200 coverage requests, a third of the module."""
    if case.meta is None or case.meta.phase.name != "coverage" or route_class(case.path) == "open":
        return CALLERS
    allowed = allowed_roles(case.method.upper(), route_class(case.path))
    first = next(caller for caller in CALLERS if caller in allowed)  # CALLERS: least privileged first
    return {first: CALLERS[first]}


def wrong_for_the_role(case: schemathesis.Case, caller: str, method: str, status: int) -> str | None:
    """What is wrong with ``status`` as the answer to ``caller`` (``anonymous`` or a role) for ``case`` sent with
    ``method``, or None. A route that is not open admits the roles :func:`allowed_roles` names for its method:
    no 2xx to any other caller, no 401 or 403 to one of those (its token is valid and its role may). A method
    the operation does not have (the coverage phase's) is the app's 405 or the gate's 403, not judged here."""
    klass = route_class(case.path)
    if klass == "open" or method.upper() != case.method.upper():
        return None
    admitted = caller in allowed_roles(method, klass)
    if not admitted and 200 <= status < 300:
        return f"{status} to a caller the route does not admit"
    if admitted and status in (401, 403):
        return f"{status} to a caller the route admits"
    return None


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), database=None)
def test_every_operation_keeps_the_contract_for_every_caller(case: schemathesis.Case, contract_api: str) -> None:
    failures = []
    for caller, token in callers_for(case).items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = case.call_and_validate(base_url=contract_api, headers=headers, session=SESSION)
        except AssertionError as exc:  # Schemathesis' failures are assertion errors: name the caller
            failures.append(f"as {caller}: {str(exc)[:3000]}")
        else:
            wrong = wrong_for_the_role(case, caller, str(response.request.method), response.status_code)
            if wrong:
                failures.append(f"as {caller}: {response.request.method} {response.request.url}: {wrong}")
    assert not failures, "\n".join(failures)


@in_unit(UNITS - 1)
def test_the_contract_is_whole_and_every_caller_was_answered(contract_api: str) -> None:
    """The live API serves the document the operations were collected from, which has every route of the app (a
    route added without a place in it would have no test); the document has no dangling ``$ref``, every operation
    documents the error schema for the statuses the framing, the gate and NATS can answer; and each caller is
    told apart (401 without a token, 403 for a role's missing rights, 2xx for an operator)."""
    served = httpx.get(f"{contract_api}/openapi.json", timeout=5).json()
    assert served == CONTRACT, "the live API serves another contract than the one the operations were read from"
    documented = {(path, method.upper()) for path, operations in CONTRACT["paths"].items() for method in operations}
    own = {APP.openapi_url, APP.docs_url, APP.swagger_ui_oauth2_redirect_url, APP.redoc_url}  # FastAPI's docs
    routes = {(path, method) for path, _, methods, _ in route_rows(APP.routes) if path not in own
              for method in methods - {"HEAD"}}
    assert routes == documented, f"routes without an operation: {sorted(routes - documented)}"
    assert sorted(OPERATIONS) == sorted(f"{method} {path}" for path, method in documented) and len(OPERATIONS) == 28
    operator = {"Authorization": f"Bearer {TOKENS['operator']}"}
    options = httpx.options(f"{contract_api}/ads", headers=operator, timeout=5)
    assert options.status_code == 204 and options.headers["allow"] == "GET, HEAD, OPTIONS, POST"  # said "POST"
    refused = httpx.post(f"{contract_api}/v1/scale/override", json={"replicas": False, "forSeconds": 60},
                         headers=operator, timeout=5)
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["loc"] == "replicas"  # was 201
    statuses = {caller: httpx.get(f"{contract_api}/v1/workers", timeout=5,
                                  headers={"Authorization": f"Bearer {token}"} if token else {}).status_code
                for caller, token in CALLERS.items()}
    assert statuses == {"anonymous": 401, "submitter": 403, "viewer": 200, "operator": 200}
    names = set(CONTRACT["components"]["schemas"])
    refs = {r.rsplit("/", 1)[1] for r in _refs(CONTRACT)}
    assert refs <= names, f"dangling $ref: {sorted(refs - names)}"
    for path, operations in CONTRACT["paths"].items():
        for method, op in operations.items():
            must = {"400", "408", "413", "414", "431"}
            if path.startswith(("/v1", "/ads")):
                must |= {"401", "403", "429", "503"}
            missing = must - set(op["responses"])
            assert not missing, f"{method.upper()} {path} does not document {sorted(missing)}"


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)
